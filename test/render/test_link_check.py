"""
Fast tier: keepalived:track_link's check (havip-check-link), as the formula
renders it, run against a stub of ``ping`` that answers each address as the
test says (every ping answered, or each one unanswered when the next goes
out: what ``ping -O`` prints): its exit status, and what keepalived.conf
does with it.  The script runs with a PATH of the stub, ``timeout`` and
``grep``, so it pings nothing.
"""

import os
import shutil
import subprocess

import pytest
from havip_facts import LINK_FAULT_HOLD

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


# `sleep`, recording what the link fault file holds during the check's hold.
SLEEP = """#!/bin/sh
if [ "$1" = {hold} ]; then
    read -r held < {fault}
    echo "$held" >> {world}/held
fi
exec {sleep} "$@"
"""


# `nft`: `list counter` prints $world/adverts's count and adds
# $world/advert_rate to it (the adverts that come in until the next look),
# or fails while it is not there; `-f` (the table loaded) starts it at
# 0 and the adverts that come in until the next look.
NFT = """#!/bin/sh
world={world}
read -r rate < "$world/advert_rate" || rate=0
if [ "$1" = -f ]; then
    cat > "$world/table"
    echo "$rate" > "$world/adverts"
    exit 0
fi
read -r count < "$world/adverts" || exit 1
printf 'table inet havip_link {{\n\tcounter adverts {{\n\t\tpackets %s bytes 0\n\t}}\n}}\n' "$count"
echo $((count + rate)) > "$world/adverts"
"""


def check_link(tmp_path, edits=()):
    """svr1's link check rendered into ``tmp_path`` (its link fault file
    there too), with a stub ping: a function that runs it with each address
    answered as given ({address: "answered" or unanswered pings}) and
    returns its exit status.  ``tmp_path / "held"`` gets a line per hold:
    what the fault file held meanwhile."""
    havip = seed_pillar()["havip"]
    for edit in edits:
        edit(havip)
    config = validated(havip, "svr1")
    config["lookup"]["keepalived"]["link_fault_file"] = str(tmp_path / "link-fault")
    script = tmp_path / "havip-check-link"
    script.write_text(render("check-link.sh.jinja", config, havip))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {"ping": PING.format(world=tmp_path), "nft": NFT.format(world=tmp_path),
             "sleep": SLEEP.format(hold=LINK_FAULT_HOLD, fault=tmp_path / "link-fault", world=tmp_path,
                                   sleep=shutil.which("sleep"))}
    for tool, text in stubs.items():
        (bin_dir / tool).write_text(text)
        (bin_dir / tool).chmod(0o755)
    for tool in ("timeout", "grep", "cat", "rm"):
        (bin_dir / tool).symlink_to(shutil.which(tool))

    def run(answers, advert_rate=0):
        (tmp_path / "advert_rate").write_text(f"{advert_rate}\n")
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


def held(tmp_path):
    """What the link fault file held during each of the check's holds."""
    record = tmp_path / "held"
    return record.read_text().splitlines() if record.exists() else []


def test_the_run_that_first_sees_a_loss_holds_its_balancer_in_fault_then_lets_go_when_no_other_holds(tmp_path):
    """FAULT sends a priority-0 advert: the other balancer takes the VIPs
    after its skew, not after its master-down timer (a lowered priority
    alone).  No advert came in: nobody took them, so back in the election."""
    run = check_link(tmp_path)
    assert run(dict.fromkeys(OTHERS, 5)) == 1
    assert held(tmp_path) == ["1"]
    assert (tmp_path / "link-fault").read_text() == "0\n"
    assert (tmp_path / "link-fault.seen").exists()


def test_a_lossy_balancer_stays_out_of_the_election_while_another_holds_a_vip(tmp_path):
    """Out of it, it cannot take a VIP for a moment whenever three of the
    holder's adverts are lost on its link; once no advert comes in (the
    holder gone too), it is back in it, so that a VIP keeps a holder."""
    run = check_link(tmp_path)
    assert run(dict.fromkeys(OTHERS, 5), advert_rate=5) == 1
    assert (tmp_path / "link-fault").read_text() == "1\n"
    assert run(dict.fromkeys(OTHERS, 5), advert_rate=5) == 1
    assert (tmp_path / "link-fault").read_text() == "1\n"
    assert run(dict.fromkeys(OTHERS, 5), advert_rate=0) == 1
    assert (tmp_path / "link-fault").read_text() == "0\n"
    assert held(tmp_path) == ["1"]


def test_the_runs_while_the_same_loss_lasts_hold_nothing_and_a_sound_run_ends_it(tmp_path):
    """While the loss lasts the lowered priority keeps the VIPs away; a
    loss after a sound run is a new one."""
    run = check_link(tmp_path)
    assert run(dict.fromkeys(OTHERS, 5)) == 1
    assert run(dict.fromkeys(OTHERS, 5)) == 1
    assert held(tmp_path) == ["1"]
    assert run(dict.fromkeys(OTHERS, "answered"), advert_rate=5) == 0
    assert (tmp_path / "link-fault").read_text() == "0\n"
    assert not (tmp_path / "link-fault.seen").exists()
    assert run(dict.fromkeys(OTHERS, 5)) == 1
    assert held(tmp_path) == ["1", "1"]


def test_a_sound_run_lets_go_of_a_fault_that_a_cut_short_run_left(tmp_path):
    """keepalived's timeout may kill a run in its hold: the next run ends the
    FAULT."""
    run = check_link(tmp_path)
    (tmp_path / "link-fault").write_text("1\n")
    assert run(dict.fromkeys(OTHERS, "answered")) == 0
    assert (tmp_path / "link-fault").read_text() == "0\n"


def test_the_check_loads_its_advert_counter_once_counting_the_vips_vrrp_from_other_hosts(tmp_path):
    def ipv6_vip(havip):
        havip["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 53}
    run = check_link(tmp_path, [ipv6_vip])
    assert run(dict.fromkeys(OTHERS, "answered")) == 0
    table = (tmp_path / "table").read_text()
    assert table.startswith("table inet havip_link\ndelete table inet havip_link\n")
    assert ('        ip protocol vrrp @nh,168,8 { 51 } fib saddr type != local counter name "adverts"\n'
            '        ip6 nexthdr vrrp @nh,328,8 { 53 } fib saddr type != local counter name "adverts"\n') in table
    (tmp_path / "table").unlink()
    assert run(dict.fromkeys(OTHERS, "answered")) == 0
    assert not (tmp_path / "table").exists()
    if shutil.which("nft") and os.geteuid() == 0:
        # Checked (-c: nothing loaded), without the table to delete first.
        checked = subprocess.run([shutil.which("nft"), "-c", "-f", "-"], capture_output=True, text=True, timeout=30,
                                 input=table.replace("delete table inet havip_link\n", ""))
        assert (checked.returncode, checked.stderr) == (0, "")


def test_keepalived_goes_fault_while_the_link_fault_file_holds_one():
    havip = seed_pillar()["havip"]
    conf = render("keepalived.conf.jinja", validated(havip, "svr1"), havip)
    assert 'track_file havip_link_fault {\n    file "/var/lib/havip/link-fault"\n    weight 0\n}' in conf
    assert "    track_file {\n        havip_standby\n        havip_link_fault\n    }" in conf


def test_a_lone_balancer_never_holds_itself_in_fault_for_its_link(tmp_path):
    """No other balancer could take its VIPs."""
    def lone(havip):
        del havip["nodes"]["svr2"]
    run = check_link(tmp_path, [lone])
    assert run(dict.fromkeys(OTHERS, 5)) == 1
    assert held(tmp_path) == []
    assert not (tmp_path / "link-fault").exists()
    havip = seed_pillar()["havip"]
    lone(havip)
    conf = render("keepalived.conf.jinja", validated(havip, "svr1"), havip)
    assert "havip_check_link weight" in conf
    assert "havip_link_fault" not in conf


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
