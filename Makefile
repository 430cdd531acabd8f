# havip: `make demo` shows the stack fail over in a namespace lab,
# `make test` runs every test tier.  Both need a Debian 12 machine and root.
SALT_VERSION ?= 3008.4
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SLS := $(shell find havip -name '*.sls' | sort)

.PHONY: deps debs test test-fast test-lab lint demo bench lab-cleanup

deps: debs $(VENV)/.installed

# Debian packages first: on a fresh machine they bring python3-venv too.
debs:
	sh test/bootstrap-debian.sh

$(VENV)/.installed: requirements.txt Makefile | debs
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check "salt==$(SALT_VERSION)" -r requirements.txt
	touch $@

lint: deps
	$(VENV)/bin/yamllint -s havip pillar.example test
	$(VENV)/bin/salt-lint $(SLS)

test-fast: deps
	$(PY) -m pytest -m "not lab" test

test-lab: deps lab-cleanup
	$(PY) -m pytest -m lab test

test: lint
	$(PY) -m pytest test

demo: deps lab-cleanup
	$(PY) -m pytest -m demo -s -p no:cacheprovider test/test_demo.py

# Failover figures in the lab (see test/test_bench.py); matplotlib only here.
bench: deps lab-cleanup
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-bench.txt
	$(PY) -m pytest -m bench -s -p no:cacheprovider test/test_bench.py

# Removes what a crashed lab run left behind (only the lab's own namespaces,
# mounts and processes).
lab-cleanup: deps
	$(PY) -m test.lab.lab cleanup
