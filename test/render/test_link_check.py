"""
Fast tier: keepalived:track_link's check (havip-check-link), as the formula
renders it, run against a stub of ``ping`` that answers each address as the
test says (every ping answered, or each one unanswered when the next goes
out: what ``ping -O`` prints): its exit status, and what keepalived.conf
does with it.  The script runs with a PATH of the stub, ``timeout`` and
``grep``, so it pings nothing.
"""

import shutil
import subprocess

import pytest

from test.formula import render, set_key, validated
from test.saltcall import seed_pillar
from test.unit.utils.test_havip_pillar import more_backends

# svr1's view of the seed: it pings nginx1, nginx2 and svr2.
OTHERS = ("192.168.100.11", "192.168.100.12", "192.168.100.14")
# `ping -n -O -i GAP ADDRESS`, with ADDRESS answered as $world/ADDRESS says:
# "answered" (a reply per ping, until killed), or a number of pings left
# unanswered (then silence, as a host that answers nothing more).
PING = """#!/bin/sh
world={world}
for address; do :; done
printf '%s\\n' "$*" >> "$world/log"
answer=$(cat "$world/$address")
seq=1
while :; do
    if [ "$answer" = answered ]; then
        echo "64 bytes from $address: icmp_seq=$seq ttl=64 time=0.050 ms"
    elif [ "$seq" -le "$answer" ]; then
        echo "no answer yet for icmp_seq=$seq"
    fi
    seq=$((seq + 1))
    sleep 0.02
done
"""


def check_link(tmp_path, edits=()):
    """svr1's link check rendered into ``tmp_path``, with a stub ping: a
    function that runs it with each address answered as given
    ({address: "answered" or unanswered pings}) and returns its exit
    status."""
    havip = seed_pillar()["havip"]
    for edit in edits:
        edit(havip)
    script = tmp_path / "havip-check-link"
    script.write_text(render("check-link.sh.jinja", validated(havip, "svr1"), havip))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ping").write_text(PING.format(world=tmp_path))
    (bin_dir / "ping").chmod(0o755)
    for tool in ("timeout", "grep", "cat", "sleep"):
        (bin_dir / tool).symlink_to(shutil.which(tool))

    def run(answers):
        for address, answer in answers.items():
            (tmp_path / address).write_text(str(answer))
        return subprocess.run([shutil.which("sh"), str(script)], env={"PATH": str(bin_dir)}, timeout=10).returncode
    return run


def test_the_link_check_pings_every_other_node_every_gap_without_names(tmp_path):
    run = check_link(tmp_path)
    assert run(dict.fromkeys(OTHERS, "answered")) == 0
    assert sorted((tmp_path / "log").read_text().splitlines()) == [f"-n -O -i 0.02 {a}" for a in OTHERS]


def test_at_sixteen_backends_the_link_check_pings_the_other_balancer_and_three_backends(tmp_path):
    """Every node every 20 ms would be 17 x 50 = 850 pings/s; these 4, 200."""
    run = check_link(tmp_path, [more_backends(16)])
    pinged = ("192.168.100.11", "192.168.100.110", "192.168.100.111", "192.168.100.14")
    assert run(dict.fromkeys(pinged, "answered")) == 0
    assert sorted((tmp_path / "log").read_text().splitlines()) == [f"-n -O -i 0.02 {a}" for a in pinged]
    assert run(dict.fromkeys(pinged, 5)) == 1


def test_the_link_check_fails_when_every_other_node_leaves_pings_unanswered(tmp_path):
    assert check_link(tmp_path)(dict.fromkeys(OTHERS, 5)) == 1


@pytest.mark.parametrize("answers", [
    pytest.param({OTHERS[0]: 5, OTHERS[1]: 5, OTHERS[2]: "answered"}, id="one node answers"),
    pytest.param({OTHERS[0]: 5, OTHERS[1]: "answered", OTHERS[2]: "answered"}, id="one node lossy"),
    pytest.param(dict.fromkeys(OTHERS, 1), id="a single ping lost to each"),
])
def test_the_link_check_passes_unless_every_node_leaves_two_pings_unanswered(tmp_path, answers):
    assert check_link(tmp_path)(answers) == 0


def test_keepalived_weighs_a_failed_link_check_like_a_balancer_without_backends():
    havip = seed_pillar()["havip"]
    conf = render("keepalived.conf.jinja", validated(havip, "svr1"), havip)
    assert ('vrrp_script havip_check_link {\n    script "/etc/keepalived/havip-check-link"\n    interval 1\n'
            '    timeout 2\n    fall 1\n    rise 2\n}') in conf
    assert "        havip_check_backends weight -51\n        havip_check_link weight -51\n" in conf


@pytest.mark.parametrize("edit", [
    pytest.param(set_key("keepalived:track_link", False), id="track_link off"),
    pytest.param(lambda havip: havip.update(nodes={"svr1": {"roles": ["backend", "balancer"], "priority": 150,
                                                             "address": "192.168.100.13"}}),
                 id="no other node to ping"),
])
def test_keepalived_tracks_no_link_check_when_off_or_with_nothing_to_ping(edit):
    havip = seed_pillar()["havip"]
    edit(havip)
    conf = render("keepalived.conf.jinja", validated(havip, "svr1"), havip)
    assert "havip_check_link" not in conf



def test_the_holder_repeats_its_gratuitous_arp_every_second_by_default():
    """A lossy balancer that yielded the VIPs still takes them for a moment
    now and then (the holder's adverts lost) with its own gratuitous ARP,
    and yields at the holder's next advert; when its adverts were lost too,
    the holder never hears of it: its refresh brings the clients back."""
    havip = seed_pillar()["havip"]
    conf = render("keepalived.conf.jinja", validated(havip, "svr1"), havip)
    globals_ = conf[conf.index("global_defs {"):conf.index("\n}\n")]
    assert "    vrrp_garp_master_refresh 1" in globals_.splitlines()
