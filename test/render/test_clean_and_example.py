"""
Fast tier, rendered by a real masterless salt-call: havip.clean undoes only
what the minion's roles installed; pillar.example copied as it is refuses to
run without a password of the operator's own; an IPv6 backend's nginx
listens on IPv6; `spm build` packs only what an installation needs.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tarfile

import yaml

from test.formula import render, validated
from test.saltcall import DEBIAN_GRAINS, REPO, RenderError, seed_pillar


def test_clean_on_a_backend_removes_nginx_only(salt_call):
    states = salt_call("nginx1", DEBIAN_GRAINS).show_sls(seed_pillar(), sls="havip.clean")
    assert states["havip-nginx-pkg-clean"]["pkgs"] == ["nginx"]
    assert states["havip-nginx-config-clean"]["names"] == ["/etc/nginx/conf.d/havip.conf", "/var/www/html/index.html"]
    assert not any(name.startswith(("havip-keepalived", "havip-haproxy", "havip-events", "havip-metrics"))
                   for name in states), sorted(states)


def test_clean_on_a_balancer_leaves_curl_nftables_and_what_others_use(salt_call):
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(seed_pillar(), sls="havip.clean")
    removed = [pkg for state in states.values() if state["fun"] == "pkg.removed" for pkg in state["pkgs"]]
    assert sorted(removed) == ["haproxy", "keepalived"]
    assert "havip-keepalived-handover-clean" in states  # (the beacon's clean needs a running minion)
    assert not any(name.startswith("havip-nginx") for name in states)


def test_a_copied_pillar_example_asks_for_a_password_of_ones_own(salt_call):
    pillar = yaml.safe_load((REPO / "pillar.example").read_text())
    try:
        salt_call("svr1", DEBIAN_GRAINS).show_sls(pillar)
    except RenderError as refused:
        assert "havip:stats:password: is required (there is no default password)" in str(refused)
    else:
        raise AssertionError("pillar.example rendered without a stats password")


def test_an_ipv6_backend_gets_nginx_listening_on_ipv6_too():
    havip = seed_pillar()["havip"]
    havip["nodes"]["nginx1"]["address"] = "fd00:100::11"
    site = render("nginx-site.conf.jinja", validated(havip, "nginx1"), havip)
    assert "listen 80;" in site and "listen [::]:80;" in site
    site = render("nginx-site.conf.jinja", validated(havip, "nginx2"), havip)
    assert "[::]" not in site


def test_spm_build_packs_what_an_installation_needs_and_nothing_else(tmp_path):
    (tmp_path / "spm").write_text(yaml.safe_dump({
        "spm_build_dir": str(tmp_path / "build"), "spm_cache_dir": str(tmp_path / "cache"),
        "spm_db": str(tmp_path / "cache" / "packages.db"), "spm_logfile": str(tmp_path / "spm.log")}))
    spm = pathlib.Path(sys.executable).with_name("spm")
    subprocess.run([str(spm), "-c", str(tmp_path), "build", str(REPO), "-y"], cwd=REPO, check=True,
                   capture_output=True, env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"})
    (package,) = (tmp_path / "build").glob("havip-*.spm")
    with tarfile.open(package) as packed:
        tops = {name.split("/")[1] for name in packed.getnames() if name.count("/")}
        names = packed.getnames()
    assert tops == {"FORMULA", "havip", "_modules", "_states", "_runners", "_utils", "_beacons", "pillar.example",
                    "README.md"}, tops
    assert "havip/_utils/havip_pillar.py" in names and "havip/havip/init.sls" in names
    assert "havip/havip/metrics/alerts.yml" in names  # the alerting rules, for salt://havip/metrics/alerts.yml
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_the_lab_tools_write_no_bytecode_into_the_formula():
    """The lab's hosts run ``python3 -m test.lab.probe`` from this tree, which
    imports ``_utils/``: no ``__pycache__`` lands there for ``spm build`` to
    pack (the lab tier runs before the spm test)."""
    pycache = REPO / "_utils" / "__pycache__"
    shutil.rmtree(pycache, ignore_errors=True)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "test.lab.probe", "--help"], cwd=REPO, env=env, check=True,
                   capture_output=True)
    assert not pycache.exists()
