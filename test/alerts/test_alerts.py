"""
Fast tier: havip's Prometheus alerting rules (havip/metrics/alerts.yml) as
Debian's promtool sees them: valid rules, and every alert firing and not
firing as test/alerts/havip-alerts-test.yml says (`promtool test rules`).
promtool is Debian's (the prometheus package), extracted by
test/bootstrap-debian.sh (`make debs`) and never installed: no Prometheus
runs on the test machine.
"""

import re
import subprocess

import yaml

from test.saltcall import REPO

PROMTOOL = "/var/cache/havip/promtool"
RULES = REPO / "havip" / "metrics" / "alerts.yml"
UNIT_TESTS = REPO / "test" / "alerts" / "havip-alerts-test.yml"
VRRP_METRIC = re.compile(r"\bhavip_vrrp_[a-z_]+")


def promtool(*args):
    try:
        return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise AssertionError(f"{PROMTOOL} is missing: `make debs` (as root) extracts it") from None


def rules():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_the_rules_are_valid():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


def test_every_alert_fires_and_keeps_quiet_as_its_unit_tests_say():
    tested = promtool("test", "rules", str(UNIT_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_firing_it_and_one_keeping_it_quiet():
    seen = {"firing": set(), "quiet": set()}
    for case in yaml.safe_load(UNIT_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            seen["firing" if check.get("exp_alerts") else "quiet"].add(check["alertname"])
    names = {rule["alert"] for rule in rules()}
    assert seen == {"firing": names, "quiet": names}


def test_the_rules_read_only_the_vrrp_metrics_the_notify_script_publishes():
    published = set(VRRP_METRIC.findall((REPO / "havip" / "files" / "notify.sh.jinja").read_text()))
    read = {name for rule in rules() for name in VRRP_METRIC.findall(rule["expr"])}
    assert read and read <= published, read - published


def test_the_docs_explain_every_alert():
    docs = (REPO / "docs" / "alerts.md").read_text()
    assert [rule["alert"] for rule in rules() if f"`{rule['alert']}`" not in docs] == []
