"""
Debian's Prometheus on a lab host (the client), as an operator runs it:
scraping the balancers every second in the jobs havip's alerting rules name
(`havip-haproxy`: HAProxy's exporter, `havip-vrrp`: the node exporter's
textfile collector) and loading those rules (havip/metrics/alerts.yml).
Installed offline from apt's cache, asked through its HTTP API.
"""

import datetime
import json
import re
import urllib.parse

import yaml

from test.lab.cluster import REPO

RULES = REPO / "havip" / "metrics" / "alerts.yml"
RULES_FILE = "/etc/prometheus/havip-alerts.yml"
API = "http://127.0.0.1:9090/api/v1/"


def config(haproxy_targets, vrrp_targets=()):
    """prometheus.yml: every second, the rules, a job per list of targets."""
    jobs = [f"  - job_name: havip-haproxy\n    static_configs: [{{targets: {list(haproxy_targets)}}}]\n"]
    if vrrp_targets:
        # The VRRP state alone: a full node-exporter scrape can take longer
        # than the 1 s scrape timeout on the lab's 2 busy CPUs during a failover.
        jobs.append("  - job_name: havip-vrrp\n    params: {'collect[]': [textfile]}\n"
                    f"    static_configs: [{{targets: {list(vrrp_targets)}}}]\n")
    return ("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files: [{RULES_FILE}]\nscrape_configs:\n" + "".join(jobs))


def start(host, haproxy_targets, vrrp_targets=()):
    """Prometheus on ``host`` with the formula's rules, scraping the given
    targets; returns a function asking it: an expression's current samples."""
    host.run("apt-get install -y --no-download --no-install-recommends -o Acquire::Retries=0 prometheus",
             timeout=600)
    host.run(["tee", RULES_FILE], input=RULES.read_text())
    host.run(["tee", "/etc/prometheus/prometheus.yml"], input=config(haproxy_targets, vrrp_targets))
    host.run(["systemctl", "restart", "prometheus"])
    return lambda expression: query(host, expression)


def query(host, expression, at=None):
    """An expression's samples, now or at the time ``at`` (epoch s)."""
    asked = {"query": expression, **({} if at is None else {"time": f"{at:.3f}"})}
    return ask(host, "query?" + urllib.parse.urlencode(asked)).get("result", [])


def ask(host, path):
    """The ``data`` of Prometheus's answer to API ``path``; empty while it
    starts (-f: no body with its 503 Service Unavailable)."""
    out = host.run(["curl", "-sf", "-m", "2", API + path], check=False).stdout
    return json.loads(out)["data"] if out else {}


def alerting_rules(host):
    """{alert name: its health} of the rules Prometheus loaded."""
    return {rule["name"]: rule["health"]
            for group in ask(host, "rules?type=alert").get("groups", []) for rule in group["rules"]}


def alert_names():
    """The alerts of the formula's rules file."""
    return sorted(rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"])


def rfc3339(text):
    """Epoch seconds of a time as Prometheus's API writes it
    (2026-12-06T05:40:01.123456789Z: nanoseconds, which datetime does not
    take; Z or an offset)."""
    parts = re.fullmatch(r"(?P<stamp>[^.]+?)(?:\.(?P<fraction>[0-9]+))?(?P<zone>Z|[+-][0-9:]+)", text)
    zone = "+00:00" if parts["zone"] == "Z" else parts["zone"]
    return datetime.datetime.fromisoformat(parts["stamp"] + zone).timestamp() + float(f"0.{parts['fraction'] or 0}")


def evaluated_since(host, since):
    """Whether every target was scraped after ``since`` (epoch s), and
    every rule group evaluated after the last of those scrapes: what
    Prometheus says now is about the cluster after ``since``."""
    targets = ask(host, "targets?state=active").get("activeTargets", [])
    groups = ask(host, "rules?type=alert").get("groups", [])
    if not (targets and groups):
        return False
    scraped = [rfc3339(target["lastScrape"]) for target in targets]
    return min(scraped) > since and min(rfc3339(group["lastEvaluation"]) for group in groups) > max(scraped)
