# havip: `make demo` shows the stack fail over in a namespace lab,
# `make test` runs every test tier.  Both need a Debian 12 machine and root.
SALT_VERSION ?= 3008.4
PYTHON ?= python3
VENV ?= .venv
# `make test-matrix`: the fast tier on one release of each supported Salt
# branch, each in its own venv .venv-salt<branch>.  The newest 3006/3007
# releases pip can install (3006.30 and 3007.17 ask for a certifi that PyPI
# does not have); 3008 is the default above.
SALT_MATRIX ?= 3006.29 3007.16 3008.4
PY := $(VENV)/bin/python
# The lab's network (test/lab/cluster.py): the machine gets its .1.
HAVIP_LAB_NETWORK ?= 192.168.100.0/24
export HAVIP_LAB_NETWORK
# The lab hosts' Debian release (test/lab/lab.py): bookworm, the machine's
# own root, or trixie, Debian 13's root file system that
# test/bootstrap-debian.sh builds.
HAVIP_LAB_RELEASE ?= bookworm
export HAVIP_LAB_RELEASE
SLS := $(shell find havip -name '*.sls' | sort)

.PHONY: deps debs test test-fast test-matrix test-lab test-trixie lint demo bench chaos lab-cleanup docs

deps: debs $(VENV)/.installed-salt$(SALT_VERSION)

# Debian packages first: on a fresh machine they bring python3-venv too.
debs:
	sh test/bootstrap-debian.sh

# The stamp names the Salt version: another SALT_VERSION reinstalls.
$(VENV)/.installed-salt$(SALT_VERSION): requirements.txt Makefile | debs
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check "salt==$(SALT_VERSION)" -r requirements.txt
	rm -f $(VENV)/.installed*
	touch $@

lint: deps
	$(VENV)/bin/yamllint -s havip pillar.example test
	$(VENV)/bin/salt-lint $(SLS)
	$(VENV)/bin/ruff check .

test-fast: deps
	$(PY) -m pytest -m "not lab" test

# Each version's fast tier even when an earlier one fails; a summary at the end.
test-matrix: debs
	@status=0; summary=""; \
	for v in $(SALT_MATRIX); do \
	    branch=$${v%%.*}; start=$$(date +%s); \
	    echo "== Salt $$v (.venv-salt$$branch)"; \
	    if $(MAKE) --no-print-directory test-fast SALT_VERSION=$$v VENV=.venv-salt$$branch; \
	    then result=passed; else result=FAILED; status=1; fi; \
	    summary="$$summary\n   Salt $$v: $$result in $$(( $$(date +%s) - start )) s"; \
	done; \
	printf "== test-matrix$$summary\n"; exit $$status

test-lab: deps lab-cleanup
	$(PY) -m pytest -m lab test

# The lab tests marked trixie (test/conftest.py) on Debian 13 hosts, and the
# mixed cluster (Debian 13 balancers, Debian 12 backends); not in `make
# test`, whose lab hosts are HAVIP_LAB_RELEASE's.  -s: their figures.
test-trixie: deps lab-cleanup
	HAVIP_LAB_RELEASE=trixie $(PY) -m pytest -m trixie -s test/lab

# lab-cleanup first: what a crashed run left (namespaces, mounts, hosts).
# --durations: where the run's time goes (CI keeps it under 60 minutes).
test: lint lab-cleanup
	$(PY) -m pytest --durations=40 test

demo: deps lab-cleanup
	$(PY) -m pytest -m demo -s -p no:cacheprovider test/lab/test_demo.py

# Failover figures in the lab (see test/lab/test_bench.py); matplotlib only here.
bench: deps lab-cleanup
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-bench.txt
	$(PY) -m pytest -m bench -s -p no:cacheprovider test/lab/test_bench.py

# The seeded fault campaign (see docs/chaos.md): HAVIP_CHAOS_SEED, HAVIP_CHAOS_ROUNDS.
chaos: deps lab-cleanup
	$(PY) -m pytest -m chaos -s -p no:cacheprovider test/lab/test_chaos.py

# Removes what a crashed lab run left behind (only the lab's own namespaces,
# mounts and processes).
lab-cleanup: deps
	$(PY) -m test.lab.lab cleanup

# The pillar reference, generated from the contract (a test checks it).
docs: deps
	$(PY) -m test.pillar_reference > docs/pillar.md
