"""
Fast tier: the handover script (havip-handover), as the formula renders it,
run against stubs of every command it calls (``ip``, ``nft``, ``ss``,
``systemctl``, ``systemd-run``, ``sleep``): the commands it runs, in their
order, for each of its actions, and its exit status, also when one of them
fails.  Its rule is written beside havip_health.handover_problems.

The stubs log their arguments and answer from files the test writes (what
is on lo, which nftables tables exist, the connections ``ss`` sees, which
units run); the script runs with a PATH of the stubs and ``grep`` alone,
so it touches nothing on this host.  Once under dash (Debian's /bin/sh),
once under bash (the RedHat family's).
"""

import os
import shlex
import shutil
import socket
import subprocess

import pytest

from test.formula import render, validated
from test.saltcall import seed_pillar

# svr1's view of a cluster of three balancers with an IPv4 and an IPv6 VIP:
# the others publish their interfaces' addresses of both families (the mine).
PUBLISHED = {"svr2": ["192.168.100.14", "fd00:100::14"], "svr3": ["192.168.100.15", "fd00:100::15"]}
V4 = {"name": "VI_1", "address": "192.168.100.10", "host": "192.168.100.10/32", "family": "ip"}
V6 = {"name": "VI_6", "address": "fd00:100::10", "host": "fd00:100::10/128", "family": "ip6"}
TRACK = "nft list table inet havip_track"
# What asks whether a VIP is kept on lo.
ON_LO = "ip -o addr show dev lo"

# Each stub logs "NAME ARGS", fails where a line of $world/fail (a shell
# pattern) matches that, then answers.
STUB = """#!/bin/sh
world={world}
printf '%s\\n' "${{0##*/}} $*" >> "$world/log"
if [ -r "$world/fail" ]; then
    while IFS= read -r pattern; do
        case "${{0##*/}} $*" in $pattern) exit 1 ;; esac
    done < "$world/fail"
fi
"""
ANSWERS = {
    # `ip -o addr show dev DEV` as ip prints it, from $world/dev.DEV (address/prefix lines).
    "ip": """case "$*" in "-o addr show dev "*)
    [ -r "$world/dev.$5" ] || exit 0
    while read -r address; do
        case "$address" in *:*) kind=inet6 ;; *) kind=inet ;; esac
        printf '1: %s    %s %s scope host %s\\\\       valid_lft forever preferred_lft forever\\n' \\
            "$5" "$kind" "$address" "$5"
    done < "$world/dev.$5" ;;
esac
""",
    # The tables in $world/tables ("FAMILY NAME" lines); the n-th ruleset
    # `nft -f -` loads goes to $world/loaded.n.
    "nft": """case "$*" in
    "-f -") n=1; while [ -e "$world/loaded.$n" ]; do n=$((n + 1)); done; cat > "$world/loaded.$n" ;;
    "list tables") [ -r "$world/tables" ] || exit 0
        while read -r line; do echo "table $line"; done < "$world/tables" ;;
    "list table "*) [ -r "$world/tables" ] && grep -qxF "$3 $4" "$world/tables" ;;
esac
""",
    # The n-th call sees as many connections as line n of $world/ss says
    # (the last line from then on; none without the file).
    "ss": """calls=0
[ -r "$world/ss.calls" ] && read -r calls < "$world/ss.calls"
calls=$((calls + 1))
echo "$calls" > "$world/ss.calls"
[ -r "$world/ss" ] || exit 0
line=0
while read -r answer; do line=$((line + 1)); seen=$answer; [ "$line" -eq "$calls" ] && break; done < "$world/ss"
while [ "$seen" -gt 0 ]; do echo "0 0 192.0.2.1:9090 192.0.2.$seen:40000"; seen=$((seen - 1)); done
""",
    # The units in $world/active are active.
    "systemctl": """case "$*" in "-q is-active "*) [ -r "$world/active" ] && grep -qxF "$3" "$world/active" ;; esac
""",
    "systemd-run": "",
    "sleep": "",
}
# What the stubs need besides the shell (and what the script's pipes use).
TOOLS = ("grep", "cat")


def pillar():
    havip = seed_pillar()["havip"]
    havip["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 52}
    havip["nodes"]["svr3"] = {"roles": ["balancer"], "address": "192.168.100.15", "priority": 50}
    return havip


def mine_get(addresses):
    def get(name, _function):
        v4 = [a for a in addresses.get(name, []) if ":" not in a]
        v6 = [a for a in addresses.get(name, []) if ":" in a]
        return {name: {"ip4_interfaces": {"ens32": v4}, "ip6_interfaces": {"ens32": v6}}}
    return get


class Host:
    """The handover script rendered for svr1 into ``root``, run with the
    stubs; the attributes are what the stubs answer on the next run."""

    def __init__(self, root, shell, published=PUBLISHED):
        self.root, self.shell = root, shell
        self.world = root / "world"
        self.world.mkdir()
        self.bin = root / "bin"
        self.bin.mkdir()
        for name, answer in ANSWERS.items():
            (self.bin / name).write_text(STUB.format(world=shlex.quote(str(self.world))) + answer)
            (self.bin / name).chmod(0o755)
        for name in TOOLS:
            (self.bin / name).symlink_to(shutil.which(name))
        havip = pillar()
        havip["lookup"] = {"keepalived": {"state_dir": str(root / "vrrp")}}
        self.script = root / "havip-handover"
        self.script.write_text(render("handover.sh.jinja", validated(havip, "svr1", mine_get=mine_get(published)),
                                      havip))
        (root / "vrrp").mkdir()
        self.recorded, self.on_lo, self.tables, self.active, self.connections, self.failing = {}, [], [], [], [], []
        self.on_interface = []  # the VIPs' interface (ens32): keepalived's addresses

    def run(self, *args):
        """Run the script with ``args``: (exit status, the commands it ran)."""
        for path in [*self.world.iterdir(), *(self.root / "vrrp").iterdir()]:
            path.unlink()
        for name, state in self.recorded.items():
            (self.root / "vrrp" / name).write_text(f"{state} 150\n")
        for name, lines in (("dev.lo", self.on_lo), ("dev.ens32", self.on_interface), ("tables", self.tables),
                            ("active", self.active), ("ss", self.connections), ("fail", self.failing)):
            if lines:
                (self.world / name).write_text("".join(f"{line}\n" for line in lines))
        proc = subprocess.run([self.shell, str(self.script), *args], env={"PATH": str(self.bin)},
                              capture_output=True, text=True, timeout=60)
        self.stderr = proc.stderr
        assert "not found" not in proc.stderr  # every command it runs is a stub (or grep)
        return proc.returncode, self.read("log")

    def read(self, name):
        path = self.world / name
        return path.read_text().splitlines() if path.exists() else []

    def loaded(self):
        """The rulesets the last run loaded with `nft -f -`, in order."""
        loaded = sorted(self.world.glob("loaded.*"), key=lambda path: int(path.suffix[1:]))
        return [path.read_text() for path in loaded]


@pytest.fixture(params=[name for name in ("dash", "bash") if shutil.which(name)])
def shell(request):
    return shutil.which(request.param)


@pytest.fixture
def host(shell, tmp_path):
    return Host(tmp_path, shell)


def release_start(host, vip):
    return [f"systemctl stop havip-release-{vip['name']}.service",
            f"systemd-run --quiet --collect --unit=havip-release-{vip['name']} {host.script} release {vip['name']}"]


# ---- hold: keepalived's MASTER --------------------------------------------------


def test_hold_turns_conntrack_on_before_it_keeps_the_vip_also_on_lo(host):
    assert host.run("hold", "VI_1") == (0, [
        "systemctl stop havip-release-VI_1.service",  # a release still running cannot take it off again
        TRACK, "nft -f -",
        "ip addr replace 192.168.100.10/32 dev lo"])
    [ruleset] = host.loaded()
    assert "table inet havip_track {" in ruleset
    assert "ip daddr { 192.168.100.10 } ct state new" in ruleset
    assert "ip6 daddr { fd00:100::10 } ct state new" in ruleset


def test_hold_of_an_ipv6_vip_keeps_its_128_on_lo_and_leaves_conntrack_on_as_it_is(host):
    host.tables = ["inet havip_track"]
    assert host.run("hold", "VI_6") == (0, [
        "systemctl stop havip-release-VI_6.service", TRACK, "ip addr replace fd00:100::10/128 dev lo"])
    assert host.loaded() == []


def test_hold_fails_and_keeps_nothing_on_lo_when_conntrack_cannot_be_turned_on(host):
    host.failing = ["nft -f -"]
    status, ran = host.run("hold", "VI_1")
    assert status == 1
    assert not any(command.startswith("ip addr") for command in ran)


def test_hold_fails_when_the_vip_cannot_be_kept_on_lo(host):
    host.tables = ["inet havip_track"]
    host.failing = ["ip addr replace *"]
    assert host.run("hold", "VI_1")[0] == 1


# ---- holding: is the VIP on its interface (keepalived's state now)? -----------------


@pytest.mark.parametrize("vip, added", [(V4, "192.168.100.10/24"), (V6, "fd00:100::10/64")])
def test_holding_is_the_vip_on_its_interface_as_keepalived_adds_it_not_its_copy_on_lo(host, vip, added):
    host.on_lo = [vip["host"]]
    assert host.run("holding", vip["name"]) == (1, ["ip -o addr show dev ens32"])
    host.on_interface = ["192.168.100.99/24", added]
    assert host.run("holding", vip["name"]) == (0, ["ip -o addr show dev ens32"])
    host.on_interface = [added.replace("10/", "100/")]  # another address that begins alike
    assert host.run("holding", vip["name"])[0] == 1


# ---- give: keepalived's BACKUP, FAULT, STOP -------------------------------------


@pytest.mark.parametrize("vip, peers", [(V4, ["192.168.100.14", "192.168.100.15"]),
                                        (V6, ["fd00:100::14", "fd00:100::15"])])
def test_give_loads_the_relay_to_the_other_balancers_before_it_starts_releasing_the_vip_on_lo(host, vip, peers):
    host.tables = ["inet havip_track"]
    host.on_lo = [vip["host"]]
    assert host.run("give", vip["name"]) == (0, [TRACK, "nft -f -", ON_LO, *release_start(host, vip)])
    [ruleset] = host.loaded()
    family, table, hops = vip["family"], f"havip_relay_{vip['name']}", "ip ttl" if vip is V4 else "ip6 hoplimit"
    assert ruleset.startswith(f"table {family} {table}\ndelete table {family} {table}\ntable {family} {table} {{")
    dups = "".join(f' dup to {peer} device "ens32"' for peer in peers)
    assert (f"{family} daddr {vip['address']} tcp flags & syn == 0 ct state new {hops} > 1 counter {hops} set 1{dups}"
            " drop") in ruleset
    assert (f"{family} daddr {vip['address']} tcp flags & (fin | rst) != 0 tcp flags & syn == 0 ct state invalid"
            f" {hops} > 1 counter {hops} set 1{dups} drop") in ruleset


@pytest.mark.parametrize("vip", [V4, V6], ids=["ipv4", "ipv6"])
def test_the_relay_passes_on_every_tcp_packet_to_the_vip_while_the_vip_is_not_local_here_first(host, vip):
    """A new holder's kernel makes an IPv6 VIP local a moment after
    keepalived added it and sent its unsolicited NA: a SYN that came in
    before was dropped (no local route, no forwarding) and the client's
    request timed out (the lab: 6 requests in 84 planned moves).  Such a
    packet goes to the others, the old holder (which still has the VIP)
    answers it; and it is matched before the rules that let a SYN pass."""
    host.tables = ["inet havip_track"]
    host.run("give", vip["name"])
    [ruleset] = host.loaded()
    hops = "ip ttl" if vip is V4 else "ip6 hoplimit"
    dups = "".join(f' dup to {peer} device "ens32"' for peer in
                   (["192.168.100.14", "192.168.100.15"] if vip is V4 else ["fd00:100::14", "fd00:100::15"]))
    rules = [line.strip() for line in ruleset.splitlines() if f"daddr {vip['address']} " in line]
    assert rules[0] == (f"{vip['family']} daddr {vip['address']} fib daddr type != local meta l4proto tcp"
                        f" {hops} > 1 counter {hops} set 1{dups} drop")
    assert len(rules) == 3


@pytest.mark.skipif(not shutil.which("nft") or os.geteuid() != 0, reason="nft -c needs nftables and root")
@pytest.mark.parametrize("vip", [V4, V6], ids=["ipv4", "ipv6"])
def test_the_relay_is_a_ruleset_nft_takes(host, vip):
    host.tables = ["inet havip_track"]
    host.run("give", vip["name"])
    [ruleset] = host.loaded()
    # Checked (-c: nothing loaded) on this host: its lo for the VIP's
    # interface, which nft looks up, and no table to delete first.
    ruleset = ruleset.replace('device "ens32"', 'device "lo"').replace(
        f"delete table {vip['family']} havip_relay_{vip['name']}\n", "")
    checked = subprocess.run([shutil.which("nft"), "-c", "-f", "-"], input=ruleset, capture_output=True, text=True,
                             timeout=30)
    assert (checked.returncode, checked.stderr) == (0, "")


def test_give_turns_conntrack_on_before_the_relay_that_needs_it(host):
    assert host.run("give", "VI_1") == (0, [TRACK, "nft -f -", "nft -f -", ON_LO])
    track, relay = host.loaded()
    assert track.startswith("table inet havip_track\n") and relay.startswith("table ip havip_relay_VI_1\n")


def test_give_of_a_vip_not_kept_on_lo_starts_no_release(host):
    host.tables = ["inet havip_track"]
    host.on_lo = ["192.168.100.10/24", "fd00:100::10/128"]  # another prefix is not the VIP's copy
    assert host.run("give", "VI_1") == (0, [TRACK, "nft -f -", ON_LO])


def test_give_without_a_balancer_to_relay_to_loads_no_relay(shell, tmp_path):
    host = Host(tmp_path, shell, published={})  # the others have no IPv6 address
    host.tables = ["inet havip_track"]
    host.on_lo = [V6["host"]]
    assert host.run("give", "VI_6") == (0, [TRACK, ON_LO, *release_start(host, V6)])
    assert host.loaded() == []


def test_give_fails_and_keeps_the_vip_on_lo_when_its_relay_cannot_be_loaded(host):
    host.tables = ["inet havip_track"]
    host.on_lo = [V4["host"]]
    host.failing = ["nft -f -"]
    assert host.run("give", "VI_1") == (1, [TRACK, "nft -f -"])


def test_give_fails_when_conntrack_cannot_be_turned_on(host):
    host.on_lo = [V4["host"]]
    host.failing = ["nft -f -"]
    assert host.run("give", "VI_1") == (1, [TRACK, "nft -f -"])
    assert host.loaded() == []


def test_give_fails_when_the_release_of_the_vip_on_lo_cannot_be_started(host):
    """Else `sync` would call the VIP in order while nothing takes it off lo."""
    host.tables = ["inet havip_track"]
    host.on_lo = [V4["host"]]
    host.failing = ["systemd-run *"]
    assert host.run("give", "VI_1") == (1, [TRACK, "nft -f -", ON_LO, *release_start(host, V4)])


# ---- release: the VIP kept on lo leaves once its connections are done ------------


def polls(count):
    return [f"ss -Htn state established state syn-recv state fin-wait-1 state fin-wait-2 state close-wait"
            f" state last-ack state closing src {V4['address']}", "sleep 0.1"] * count


def test_release_takes_the_vip_off_lo_after_a_second_without_a_connection(host):
    host.connections = [2, 1, 0]
    assert host.run("release", "VI_1") == (0, [*polls(2 + 10), "ip addr del 192.168.100.10/32 dev lo"])


def test_release_waits_a_whole_quiet_second_again_after_a_connection_came(host):
    host.connections = [0, 0, 0, 0, 0, 3, 0]
    assert host.run("release", "VI_1") == (0, [*polls(6 + 10), "ip addr del 192.168.100.10/32 dev lo"])


def test_release_takes_the_vip_off_lo_after_release_max_even_with_connections_left(host):
    host.connections = [1]
    assert host.run("release", "VI_1") == (0, [*polls(30 * 10), "ip addr del 192.168.100.10/32 dev lo"])


def test_release_of_an_ipv6_vip_watches_its_connections_and_takes_its_128_off_lo(host):
    status, ran = host.run("release", "VI_6")
    assert status == 0
    assert ran[0].endswith("state closing src [fd00:100::10]") and ran[-1] == "ip addr del fd00:100::10/128 dev lo"


def test_release_takes_a_look_at_the_connections_that_failed_for_no_quiet_one(host):
    host.failing = ["ss *"]
    assert host.run("release", "VI_1") == (0, [*polls(30 * 10), "ip addr del 192.168.100.10/32 dev lo"])


@pytest.fixture(params=[(V4, socket.AF_INET, "127.0.0.1"), (V6, socket.AF_INET6, "::1")], ids=["ipv4", "ipv6"])
def connected(request):
    """A VIP, and an address of this host's loopback of its family with a TCP
    connection on it."""
    vip, family, loopback = request.param
    with socket.socket(family) as listener:
        listener.bind((loopback, 0))
        listener.listen()
        with socket.create_connection((loopback, listener.getsockname()[1])), listener.accept()[0]:
            yield vip, loopback


@pytest.mark.skipif(not shutil.which("ss"), reason="no ss (iproute2) here")
def test_release_asks_ss_in_a_form_it_takes_and_that_finds_the_connections(host, connected):
    """The real ss (iproute2), asked as the script asks it for the VIP's
    connections, with this host's loopback in place of the VIP: it must
    take the filter (a bare IPv6 address is refused: what follows its
    last colon is read as a port) and list the connection on it."""
    vip, loopback = connected
    _, ran = host.run("release", vip["name"])
    asked = shlex.split(ran[0].replace(vip["address"], loopback))[1:]
    seen = subprocess.run([shutil.which("ss"), *asked], capture_output=True, text=True, timeout=10)
    assert (seen.returncode, seen.stderr) == (0, "")
    assert len(seen.stdout.splitlines()) >= 2  # both ends of the connection


def test_release_leaves_the_vip_on_lo_when_this_balancer_took_it_back_meanwhile(host):
    host.recorded = {"VI_1": "MASTER"}
    assert host.run("release", "VI_1") == (0, polls(10))


# ---- check, sync, apply: state.apply havip ---------------------------------------


def in_order(host):
    """svr1 holds VI_1 and has given VI_6 up: all as the VRRP states want."""
    host.recorded = {"VI_1": "MASTER", "VI_6": "BACKUP"}
    host.tables = ["inet havip_track", "ip6 havip_relay_VI_6"]
    host.on_lo = [V4["host"]]


READ_ONLY = ("nft list ", "ip -o addr show ", "systemctl -q is-active ")


def test_check_finds_the_vips_in_order_and_changes_nothing(host):
    in_order(host)
    status, ran = host.run("check")
    assert status == 0
    assert ran and all(command.startswith(READ_ONLY) for command in ran)


def test_check_finds_a_vip_still_on_lo_in_order_while_its_release_runs(host):
    in_order(host)
    host.on_lo.append(V6["host"])
    host.active = ["havip-release-VI_6.service"]
    assert host.run("check")[0] == 0


@pytest.mark.parametrize("disorder", [
    pytest.param(lambda host: host.tables.remove("inet havip_track"), id="conntrack-off"),
    pytest.param(lambda host: host.on_lo.clear(), id="holder-without-its-vip-on-lo"),
    pytest.param(lambda host: host.tables.remove("ip6 havip_relay_VI_6"), id="given-up-without-relay"),
    pytest.param(lambda host: host.on_lo.append(V6["host"]), id="given-up-still-on-lo-without-release"),
])
def test_check_fails_on_each_vip_out_of_order(host, disorder):
    in_order(host)
    disorder(host)
    status, ran = host.run("check")
    assert status == 1
    assert all(command.startswith(READ_ONLY) for command in ran)


def test_sync_puts_only_the_vips_out_of_order_in_order(host):
    in_order(host)
    host.tables.remove("ip6 havip_relay_VI_6")
    status, ran = host.run("sync")
    assert status == 0
    assert [command for command in ran if not command.startswith(READ_ONLY)] == ["nft -f -"]
    [ruleset] = host.loaded()
    assert ruleset.startswith("table ip6 havip_relay_VI_6\n")


def test_sync_fails_when_a_vip_cannot_be_put_in_order(host):
    """state.apply havip must not report the handover in order when it is not."""
    in_order(host)
    host.tables.remove("ip6 havip_relay_VI_6")
    host.failing = ["nft -f -"]
    assert host.run("sync")[0] == 1


def test_apply_reloads_conntrack_then_every_vip_then_drops_the_relays_of_vips_gone(host):
    in_order(host)
    host.tables += ["ip havip_relay_VI_1", "ip havip_relay_VI_9", "inet filter"]
    status, ran = host.run("apply")
    assert status == 0
    assert ran == [
        "nft -f -",  # conntrack's table, whatever it was: the VIPs it names may have changed
        "systemctl stop havip-release-VI_1.service", TRACK, "ip addr replace 192.168.100.10/32 dev lo",
        TRACK, "nft -f -", ON_LO,
        "nft list tables", "nft delete table ip havip_relay_VI_9"]  # not another's table
    track, relay = host.loaded()
    assert track.startswith("table inet havip_track\n") and relay.startswith("table ip6 havip_relay_VI_6\n")


def test_apply_gives_up_a_vip_whose_state_is_not_recorded_yet(host):
    host.tables = ["inet havip_track"]
    status, ran = host.run("apply")
    assert status == 0
    assert "ip addr replace 192.168.100.10/32 dev lo" not in ran
    assert [ruleset.split("\n")[0] for ruleset in host.loaded()] == [
        "table inet havip_track", "table ip havip_relay_VI_1", "table ip6 havip_relay_VI_6"]


def test_apply_fails_and_changes_no_vip_when_conntrack_cannot_be_turned_on(host):
    in_order(host)
    host.failing = ["nft -f -"]
    assert host.run("apply") == (1, ["nft -f -"])


def test_apply_fails_when_a_vip_cannot_be_put_in_order(host):
    in_order(host)
    host.failing = ["ip addr replace *"]
    assert host.run("apply")[0] == 1
    assert host.loaded()[-1].startswith("table ip6 havip_relay_VI_6\n")  # the other VIP was still given up


# ---- clean: havip.clean -----------------------------------------------------------


def test_clean_removes_the_releases_relays_vips_on_lo_stale_relays_and_conntrack_last(host):
    in_order(host)
    host.tables += ["ip havip_relay_VI_9", "inet filter"]
    status, ran = host.run("clean")
    assert status == 0
    assert [command for command in ran if not command.startswith(READ_ONLY)] == [
        "systemctl stop havip-release-VI_1.service", "ip addr del 192.168.100.10/32 dev lo",
        "systemctl stop havip-release-VI_6.service", "nft delete table ip6 havip_relay_VI_6",
        "nft delete table ip havip_relay_VI_9", "nft delete table inet havip_track"]


def test_clean_fails_when_a_relay_cannot_be_removed(host):
    in_order(host)
    host.failing = ["nft delete table ip6 *"]
    status, ran = host.run("clean")
    assert status == 1
    assert "nft delete table inet havip_track" in ran  # the rest was still removed


# ---- what it refuses ---------------------------------------------------------------


def test_an_unknown_vip_is_refused_and_nothing_runs(host):
    assert host.run("give", "VI_9") == (1, [])
    assert "havip-handover: unknown VIP VI_9" in host.stderr


def test_an_unknown_action_is_refused_with_the_usage(host):
    assert host.run("move", "VI_1") == (2, [])
    assert "usage:" in host.stderr
