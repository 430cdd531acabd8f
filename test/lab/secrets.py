"""
Where a lab test looks for the pillar's secrets after salt did its work:
every place the guide names (state output, test=True, show_sls, the job
cache, the event bus), and what the secrets of a pillar are (the stats
password, every VIP's auth_pass, every TLS private key's body).
"""

import json
import re

PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\n(.*?)\n-----END", re.S)


def pillar_secrets(pillar):
    """The secrets of a havip pillar: its stats password, every VIP's
    auth_pass, and each line of every private key in a certificate (the
    frontend's and each service's)."""
    havip = pillar["havip"]
    found = [havip.get("stats", {}).get("password")]
    found += [vip.get("auth_pass") for vip in havip.get("vips", {}).values()]
    pems = list((havip.get("frontend", {}).get("tls") or {}).get("certificates", []))
    for service in (havip.get("services") or {}).values():
        pems += (service.get("tls") or {}).get("certificates", [])
    for pem in pems:
        for body in PRIVATE_KEY.findall(pem):
            found += [line for line in body.splitlines() if len(line) >= 32]
    return [secret for secret in found if secret]


def job_records(cluster, events):
    """The job cache's record (jobs.lookup_jid) of every job in ``events``."""
    jids = {event.tag.split("/")[2] for event in events if event.tag.startswith("salt/job/")
            and event.tag.endswith("/new")}
    return {jid: cluster.run("jobs.lookup_jid", jid).stdout for jid in sorted(jids)}


def where_salt_shows(cluster, event_listener, outputs, started):
    """``outputs`` ({where: text} of the calls the test made since
    ``started``) with the job cache's record of every job since and the
    event bus's events."""
    events = event_listener.get_events([(cluster.master.id, "*")], after_time=started)
    assert events, "no event on the bus"
    shown = dict(outputs)
    shown.update({f"job {jid}": text for jid, text in job_records(cluster, events).items()})
    shown["event bus"] = json.dumps([[event.tag, event.data] for event in events], default=str)
    return shown


def shown_secrets(shown, secrets):
    """[(secret's first characters, where)] of each secret that shows."""
    return [(secret[:6] + "...", where) for where, text in shown.items() for secret in secrets if secret in text]
