"""
The fault campaign's audits of what the lab's Prometheus shows and of the
client's POSTs (test/lab/test_chaos.py): each helper here decides a round's
problems from what was read (Prometheus's answers, the backends' access
logs, what the client saw), so that its logic is tested without the lab
(test/lab/test_chaos_audits.py, fast tier).
"""

import collections

from test.lab.posts import LOGGED

# ---- Prometheus: havip_vrrp_master ---------------------------------------------


def balancer_of(metric):
    """The balancer a sample's ``instance`` label names (svr1:9100: svr1)."""
    return metric.get("instance", "").rpartition(":")[0]


def master_problems(samples, preferred, balancers):
    """Problems of Prometheus's ``samples`` of havip_vrrp_master (its API's
    ``result``): each VIP of ``preferred`` ({vip: its preferred balancer})
    must have a sample from every one of ``balancers``, and exactly one of
    them 1, the preferred one's."""
    values = {(s["metric"].get("vip"), balancer_of(s["metric"])): s["value"][1] for s in samples}
    problems = []
    for vip, balancer in sorted(preferred.items()):
        unscraped = [b for b in balancers if (vip, b) not in values]
        holders = sorted(b for b in balancers if values.get((vip, b)) == "1")
        if unscraped:
            problems.append(f"{vip}: no havip_vrrp_master from {', '.join(unscraped)}")
        if holders != [balancer]:
            problems.append(f"{vip}: havip_vrrp_master 1 on {', '.join(holders) or 'no balancer'}, not on {balancer}"
                            " alone")
    return problems


# ---- Prometheus: the alerts ---------------------------------------------------------


def seen(samples):
    """{(alert, state)} of the samples of ``max_over_time(ALERTS[...])``:
    every alert pending or firing at some evaluation of the window."""
    return {(s["metric"]["alertname"], s["metric"]["alertstate"]) for s in samples}


def missing_alerts(alerts_seen, expected):
    """Each alert of ``expected`` that was neither pending nor firing."""
    names = {name for name, _ in alerts_seen}
    return [f"{name} neither pending nor firing during the fault" for name in sorted(expected) if name not in names]


def unexplained_firing(alerts_seen, explained):
    """Each alert that fired, unless ``explained``."""
    return [f"{name} fired" for name, state in sorted(alerts_seen) if state == "firing" and name not in explained]


def firing_now(groups, ignored=()):
    """Each firing alert of the rule ``groups`` (Prometheus's
    /api/v1/rules), with its labels, unless its rule is ``ignored``."""
    return [f"{rule['name']} firing: {', '.join(f'{k}={v}' for k, v in sorted(alert['labels'].items()))}"
            for group in groups for rule in group.get("rules", []) if rule["name"] not in ignored
            for alert in rule.get("alerts", []) if alert.get("state") == "firing"]


# ---- the POSTs ----------------------------------------------------------------------


def logged_posts(lines, token):
    """The numbers of the POSTs of ``token`` in access log ``lines``, once
    per line."""
    return [int(match["number"]) for line in lines
            if (match := LOGGED.search(line)) and match["token"] == token]


def post_problems(token, posts, logged):
    """Problems of one client's POSTs (``posts``: what test/lab/posts.py
    saw, [sent, status, answered by nginx], numbered from 0) against
    ``logged`` ({backend: the numbers of this token in its access log}): a
    POST that reached the backends more than once, one nginx answered that
    no backend logged, one logged that was never sent."""
    reached = collections.defaultdict(list)
    for backend, numbers in sorted(logged.items()):
        for number in numbers:
            reached[number].append(backend)
    problems = [f"POST {token}.{number} reached the backends {len(backends)} times ({', '.join(backends)})"
                for number, backends in sorted(reached.items()) if len(backends) > 1]
    problems += [f"POST {token}.{number} answered by nginx, in no backend's access log"
                 for number, (_, _, by_nginx) in enumerate(posts) if by_nginx and number not in reached]
    problems += [f"POST {token}.{number} logged, never sent" for number in sorted(reached) if number >= len(posts)]
    return problems
