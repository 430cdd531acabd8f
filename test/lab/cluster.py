"""
A havip cluster in the namespace lab: one real salt-master (root namespace,
reached through the lab's gateway) and one real salt-minion inside every lab
host, all started with pytest-salt-factories; the pillar is a topology's.
"""

import concurrent.futures
import contextlib
import copy
import dataclasses
import functools
import hashlib
import ipaddress
import json
import os
import pathlib
import re
import sys
import sysconfig
import time
import urllib.parse

import attr
import havip_http
import yaml
from saltfactories.daemons.minion import SaltMinion

from test.lab.lab import RELEASE, Lab
from test.saltcall import formula_root

REPO = pathlib.Path(__file__).resolve().parents[2]
# The lab's IPv4 network (make demo HAVIP_LAB_NETWORK=10.77.0.0/24; at most a
# /24): the machine itself gets its first address, where the salt-master
# listens, and lab host N gets address N of it.
NETWORK = ipaddress.ip_network(os.environ.get("HAVIP_LAB_NETWORK", "192.168.100.0/24"))
if NETWORK.version != 4 or NETWORK.prefixlen > 24:
    raise ValueError(f"HAVIP_LAB_NETWORK must be an IPv4 network of at least 256 addresses, got {NETWORK}")


def at(number):
    """Address ``number`` of the lab network."""
    return str(NETWORK.network_address + number)


GATEWAY = at(1)
# The Debian paths the formula uses (its defaults' lookup), not restated here.
LOOKUP = yaml.safe_load((REPO / "havip" / "parameters" / "defaults.yaml").read_text())["havip"]["lookup"]
HAPROXY_PIDFILE = LOOKUP["haproxy"]["pidfile"]
KEEPALIVED_PIDFILES = tuple(LOOKUP["keepalived"]["pidfiles"])
VRRP_STATE = LOOKUP["keepalived"]["state_dir"] + "/VI_1"
CONFIG_FILES = (LOOKUP["haproxy"]["config"], LOOKUP["keepalived"]["config"],
                LOOKUP["nginx"]["site_file"], LOOKUP["keepalived"]["check_script"],
                LOOKUP["keepalived"]["handover_script"])
# Where keepalived's notify script keeps its state and queues its events
# (their common parent), and where HAProxy's log goes (Debian's rsyslog rule:
# /var/log/haproxy.log; the journal under systemd): the campaign fills them.
NOTIFY_AND_LOG_DIRS = (os.path.commonpath([LOOKUP["keepalived"]["state_dir"], LOOKUP["keepalived"]["events_dir"]]),
                       "/var/log")
# The machine's cpu controller (cgroup v1), where the campaign starves a host.
CPU_CGROUPS = pathlib.Path("/sys/fs/cgroup/cpu")
# Run in a host: "$1" the tmpfs's name, "$2" its size, the rest the
# directories to fill.  The tmpfs is made aside (a copy of what fits of the
# directory, a file filling the rest), then bind-mounted over the directory.
FILL_UP_SOURCE = "havip-chaos-full"
FILL_UP = r"""
set -e
source=$1 size=$2; shift 2
for dir; do
    aside=$(mktemp -d)
    mount -t tmpfs -o "size=$size,mode=$(stat -c %a "$dir")" "$source" "$aside"
    cp -a "$dir/." "$aside/" 2>/dev/null || true
    dd if=/dev/zero of="$aside/.havip-chaos-fill" bs=1k 2>/dev/null || true
    mount --bind "$aside" "$dir"
    umount "$aside"
    rmdir "$aside"
done
"""


@dataclasses.dataclass
class Topology:
    """Lab hosts (name -> address) and the havip pillar deployed on them;
    ``releases``: name -> Debian release of a host that runs another one
    than the lab's (RELEASE)."""
    name: str
    hosts: dict
    client: str
    pillar: dict
    releases: dict = dataclasses.field(default_factory=dict)

    @property
    def nodes(self):
        return self.pillar["havip"]["nodes"]

    def with_role(self, role):
        return sorted(n for n, node in self.nodes.items() if role in node["roles"])

    @property
    def preferred_balancer(self):
        return max(self.with_role("balancer"), key=lambda n: self.nodes[n].get("priority", 100))

    @property
    def standby_balancers(self):
        return [b for b in self.with_role("balancer") if b != self.preferred_balancer]

    @property
    def vip(self):
        """The address of the first VIP."""
        return self.vip_address(next(iter(self.pillar["havip"]["vips"])))

    def vip_address(self, name):
        return self.pillar["havip"]["vips"][name]["address"].split("/")[0]

    @property
    def frontend_url(self):
        return self.url_of(self.vip)

    def url_of(self, address):
        port = self.pillar["havip"].get("frontend", {}).get("port", 9090)
        return havip_http.http_url(address, port)

    def stats_url(self, address):
        """The stats page at ``address`` (a balancer's own, by default)."""
        stats = self.pillar["havip"].get("stats", {})
        return havip_http.http_url(address, stats.get("port", 1080), stats.get("uri", "/status"))


def _topology(name, nodes, vip, vrid, client="client", from_mine=(), **havip):
    """A topology of one VIP; the nodes ``from_mine`` (backends) publish
    their address in the Salt mine instead of having it in the pillar, as
    the pillar's mine_functions say (in the mine before any apply)."""
    hosts = {n: spec["address"] for n, spec in nodes.items()}
    hosts[client] = at(20)
    pillar = {"havip": {
        "nodes": {n: {k: v for k, v in spec.items() if not (n in from_mine and k == "address")}
                  for n, spec in nodes.items()},
        "vips": {"VI_1": {"address": f"{vip}/{NETWORK.prefixlen}", "interface": "eth0", "virtual_router_id": vrid}},
        "stats": {"password": "lab-only-" + name},
        **havip,
    }}
    if from_mine:
        pillar["havip"]["mine"] = {"network": str(NETWORK)}
        pillar["mine_functions"] = {"havip_address": [{"mine_function": "network.ip_addrs"}, {"cidr": str(NETWORK)}]}
    return Topology(name, hosts, client, pillar)


SEED = _topology(
    "seed",
    {
        "nginx1": {"roles": ["backend"], "address": at(11)},
        "nginx2": {"roles": ["backend"], "address": at(12)},
        "svr1": {"roles": ["balancer"], "address": at(13), "priority": 150},
        "svr2": {"roles": ["balancer"], "address": at(14), "priority": 100},
    },
    vip=at(10), vrid=51, frontend={"port": 9090, "mode": "tcp"},
)


def with_backends(topology, count):
    """``topology`` with ``count`` backends of its own instead of its
    backends, each a host: web1 at .100, web2 at .101, ... (the scale
    bench's clusters); its balancers, VIP and client stay."""
    pillar = copy.deepcopy(topology.pillar)
    nodes = pillar["havip"]["nodes"]
    backend = nodes[topology.with_role("backend")[0]]
    for name in topology.with_role("backend"):
        del nodes[name]
    for number in range(1, count + 1):
        nodes[f"web{number}"] = {**backend, "address": at(99 + number)}
    hosts = {name: node["address"] for name, node in nodes.items()}
    hosts[topology.client] = topology.hosts[topology.client]
    return Topology(f"{topology.name}-{count}", hosts, topology.client, pillar)


# A host that hears no VRRP advert (IPv4 and IPv6): its own nftables table
# drops them.
VRRP_CUT_TABLE = "havip_lab_cut"
VRRP_CUT = f"""table inet {VRRP_CUT_TABLE} {{
    chain input {{ type filter hook input priority -300; meta l4proto vrrp drop; }}
}}
"""


# 30 % of what a host sends and receives on its link dropped (a gray
# failure; this kernel has no netem): its own nftables table.
LOSS_TABLE = "havip_lab_loss"
LOSS = f"""table inet {LOSS_TABLE} {{
    chain input {{ type filter hook input priority -300; iifname "eth0" numgen random mod 100 < 30 drop; }}
    chain output {{ type filter hook output priority -300; oifname "eth0" numgen random mod 100 < 30 drop; }}
}}
"""


def wait_until(read, done, timeout, interval=0.5):
    """``read()`` every ``interval`` s until ``done`` holds for what it
    returned or ``timeout`` s have passed; the last value read (the caller
    asserts on it)."""
    deadline = time.monotonic() + timeout
    while not done(value := read()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


def all_up(seen):
    """Whether every balancer of servers_seen has its servers, each UP."""
    return all(servers and set(servers.values()) == {"UP"} for servers in seen.values())


# A balancer's own interface addresses in the mine before the first apply
# (the handover relays an IPv6 VIP to them: the nodes' addresses are IPv4).
RELAY_MINE_FUNCTIONS = {"havip_relay_addresses": {"mine_function": "havip.relay_addresses"}}

# Active-active: three VIPs on one frontend in http mode, each preferring a
# balancer of its own; VI_B speaks unicast VRRP, VI_6 is IPv6 (VRRPv3).
# test_lab_active.py adds TLS; HAProxy's and the VRRP metrics are on.
ACTIVE = Topology(
    "active",
    {"web1": at(41), "web2": at(42), "lb1": at(43),
     "lb2": at(44), "client": at(20)},
    "client",
    {"havip": {
        "nodes": {
            "web1": {"roles": ["backend"], "address": at(41)},
            "web2": {"roles": ["backend"], "address": at(42)},
            "lb1": {"roles": ["balancer"], "address": at(43), "priority": 150},
            "lb2": {"roles": ["balancer"], "address": at(44), "priority": 100},
        },
        "vips": {
            "VI_A": {"address": f"{at(45)}/{NETWORK.prefixlen}", "interface": "eth0", "virtual_router_id": 71},
            "VI_B": {"address": f"{at(46)}/{NETWORK.prefixlen}", "interface": "eth0", "virtual_router_id": 72,
                     "priorities": {"lb2": 200}, "unicast": True},
            "VI_6": {"address": "fd00:100::45/64", "interface": "eth0", "virtual_router_id": 73},
        },
        "frontend": {"mode": "http"},
        "metrics": {"port": 9101},
        "stats": {"password": "lab-only-active"},
    }, "mine_functions": RELAY_MINE_FUNCTIONS},
)

# http mode, one host both backend and balancer, and the backends web1 and
# web2 from the mine: a fresh cluster deployed by one `state.apply`.
TRIO_HTTP = _topology(
    "trio-http",
    {
        "web1": {"roles": ["backend"], "address": at(31)},
        "web2": {"roles": ["backend"], "address": at(32)},
        "lb1": {"roles": ["backend", "balancer"], "address": at(33), "priority": 200},
        "lb2": {"roles": ["balancer"], "address": at(34), "priority": 120},
    },
    vip=at(30), vrid=61, frontend={"port": 8088, "mode": "http"},
    backend={"port": 8080}, from_mine=("web1", "web2"),
)


# Two services on two VIPs (issue 23): `web` (http; the host
# app.example.com to the pool `app`, the rest to the nginx pages) and the tcp
# service `raw` (pool `raw`), both pools served by two `app` nodes where
# havip installs nothing: test_lab_services.py installs its own app there
# (test/lab/states/labapp, the pillar's app:version) and adds TLS.  nginx2 is
# in the pool `pages` by its address, as a server that is no Salt minion is.
SERVICES = Topology(
    "services",
    {"nginx1": at(11), "nginx2": at(12), "svr1": at(13), "svr2": at(14), "client": at(20),
     "app1": at(21), "app2": at(22)},
    "client",
    {"havip": {
        "nodes": {
            "nginx1": {"roles": ["backend"], "address": at(11)},
            "nginx2": {"roles": ["backend"], "address": at(12)},
            "svr1": {"roles": ["balancer"], "address": at(13), "priority": 150},
            "svr2": {"roles": ["balancer"], "address": at(14), "priority": 100},
            "app1": {"roles": ["app"], "address": at(21)},
            "app2": {"roles": ["app"], "address": at(22)},
        },
        "vips": {
            "VI_1": {"address": f"{at(10)}/{NETWORK.prefixlen}", "interface": "eth0", "virtual_router_id": 51},
            "VI_2": {"address": f"{at(15)}/{NETWORK.prefixlen}", "interface": "eth0", "virtual_router_id": 52},
        },
        "services": {
            "web": {"port": 80, "mode": "http", "routes": [{"host": "app.example.com", "pool": "app"}],
                    "pool": "pages"},
            "raw": {"port": 9000, "pool": "raw"},
        },
        "pools": {
            "pages": {"servers": {"nginx1": {"node": "nginx1"}, "nginx2": {"address": at(12)}}},
            "app": {"port": 8080, "http_check": {"path": "/healthz"},
                    "servers": {"app1": {"node": "app1"}, "app2": {"node": "app2"}}},
            "raw": {"port": 8080, "servers": {"app1": {"node": "app1"}, "app2": {"node": "app2"}}},
        },
        "metrics": {"port": 9101},
        "stats": {"password": "lab-only-services"},
    }, "app": {"version": 1}},
)


def outages(report):
    """The runs of failed requests of a probe's timeline (seconds into the
    probe): [(first, last)]."""
    runs, current = [], None
    for sent, answered in report["timeline"]:
        if not answered:
            current = (current[0], sent) if current else (sent, sent)
        elif current:
            runs.append(current)
            current = None
    return runs + ([current] if current else [])


@attr.s(kw_only=True)
class LabMinion(SaltMinion):
    """A salt-minion started inside a lab host (its namespaces and root),
    by this virtualenv's Python.  On a host of another release than the
    machine's (Debian 12), the interpreter is exec'd by its real path with
    the virtualenv's as its name (argv[0]: Python finds the virtualenv's
    pyvenv.cfg from it): the virtualenv's link to ``python3`` would reach
    that release's own."""

    host = attr.ib(repr=False)

    def cmdline(self, *args):
        python, *rest = super().cmdline(*args)
        if self.host.release == "bookworm":
            return [*self.host.nsenter_prefix(), python, *rest]
        return [*self.host.nsenter_prefix(), "bash", "-c", 'exec -a "$0" "$@"', python, os.path.realpath(python),
                *rest]


def interpreter_binds():
    """What a lab host needs of this Python to run the salt-minion, beyond
    what the machine's own root gives a Debian 12 host: the virtualenv, and
    the interpreter with its standard library (a pyenv-like prefix whole;
    Debian's python3.x as its binary and its library, beside the host's own
    python3)."""
    base = pathlib.Path(sys.base_prefix)
    if base == pathlib.Path("/usr"):
        own = [pathlib.Path(os.path.realpath(sys.executable)), pathlib.Path(sysconfig.get_path("stdlib"))]
    else:
        own = [base.resolve()]
    return [pathlib.Path(sys.prefix).resolve(), *own]


class Cluster:
    """The running lab, master and minions of one topology."""

    def __init__(self, topology, lab, master, minions):
        self.topology = topology
        self.lab = lab
        self.master = master
        self.minions = minions
        self.salt_cli = master.salt_cli(timeout=300)
        self.salt_run_cli = master.salt_run_cli(timeout=300)
        self.pillar_file = pathlib.Path(master.config["pillar_roots"]["base"][0]) / "havip.sls"

    def host(self, name):
        return self.lab.host(name)

    def salt(self, target, function, *args, **kwargs):
        """Run a salt CLI call; returns saltfactories' ProcessResult (.data, .returncode)."""
        return self.salt_cli.run(function, *args, minion_tgt=target, **kwargs)

    def run(self, function, *args, **kwargs):
        """A `salt-run` call on the master; .data is the runner's return."""
        return self.salt_run_cli.run(function, *args, **kwargs)

    def orchestrate(self, name, timeout=300, **pillar):
        """`salt-run state.orchestrate havip.<name>` (failover_test, deploy)
        with the pillar key of that name given.  Returns (ProcessResult,
        {state id: the runner's return of that step})."""
        args = [f"pillar={json.dumps({name: pillar})}"] if pillar else []
        result = self.run("state.orchestrate", f"havip.{name}", *args, _timeout=timeout)
        (states,) = result.data["data"].values()
        return result, {s["__id__"]: s["changes"].get("return") for s in states.values()}

    def apply(self, target="*"):
        """`salt TARGET state.apply havip`; .data is {minion: {state key: result dict}}."""
        return self.salt_cli.run("state.apply", "havip", minion_tgt=target, _timeout=600)

    def set_pillar(self, pillar, refresh=True):
        """The master's pillar file replaced; with ``refresh`` the minions'
        pillars refreshed (without: a minion's next state run compiles it,
        as when a pillar repository changes under a running deploy)."""
        self.pillar_file.write_text(yaml.safe_dump(pillar))
        if refresh:
            self.salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")

    def restore(self):
        """The topology's pillar applied everywhere, no balancer on standby,
        and the first VIP back on the preferred balancer, serving."""
        self.set_pillar(self.topology.pillar)
        for balancer in self.topology.with_role("balancer"):
            self.salt(balancer, "havip.resume")
        assert self.apply().returncode == 0
        preferred = [self.topology.preferred_balancer]
        assert self.wait_for_holders(preferred, timeout=30) == preferred
        # (with no backend seen UP anywhere, the preferred balancer keeps the
        # VIP: it serves once HAProxy's checks of the started ones rise)
        served = wait_until(lambda: self.client_get(self.topology.frontend_url)[0], lambda code: code == 200, 15)
        assert served == 200, served

    def vip_holders(self, vip=None):
        """Balancers whose VIP interface carries the VIP (name; default: the
        first) now, read with `ip addr` (not lo, where the handover keeps it);
        a powered-off host holds nothing."""
        name = vip or next(iter(self.topology.pillar["havip"]["vips"]))
        address = self.topology.vip_address(name)
        interface = self.topology.pillar["havip"]["vips"][name]["interface"]
        return sorted(
            balancer for balancer in self.topology.with_role("balancer")
            if self.host(balancer).pid is not None
            and f" {address}/" in self.host(balancer).run(["ip", "-o", "addr", "show", "dev", interface]).stdout
        )

    def wait_for_holders(self, expected, timeout=20, vip=None):
        return wait_until(lambda: self.vip_holders(vip), lambda holders: holders == expected, timeout, 0.1)

    def servers_seen(self):
        """{balancer: {server: its status}} in each balancer's HAProxy
        (havip.status; {} while its runtime API does not answer)."""
        seen = {}
        for balancer in self.topology.with_role("balancer"):
            status = self.salt(balancer, "havip.status").data
            seen[balancer] = (status["haproxy"]["backends"] if isinstance(status, dict) else None) or {}
        return seen

    def wait_for_servers_up(self, timeout=20):
        """servers_seen once every balancer has every server UP (or at the timeout)."""
        return wait_until(self.servers_seen, all_up, timeout, 1)

    def signal(self, name, signal, *pidfiles):
        """Send ``signal`` (e.g. "KILL", "STOP") to the processes of pid files
        of a host (pids inside its PID namespace); returns the time sent."""
        host = self.host(name)
        pids = host.run(["cat", *pidfiles], check=False).stdout.split()
        assert pids, (name, pidfiles)
        return self.signal_pids(name, signal, pids)

    def signal_pids(self, name, signal, pids):
        """Send ``signal`` to these pids of a host; returns the time sent."""
        sent = time.time()
        self.host(name).run(["kill", f"-{signal}", *map(str, pids)])
        return sent

    def kill_keepalived(self, name):
        """kill -9 of keepalived on a host, a crash: its parent and its VRRP
        child stopped, then killed, so that neither runs a handler in
        between (killed one after the other, the child once left in order
        and removed its VIPs before its own SIGKILL came).  Returns the
        time of the kill."""
        self.signal(name, "STOP", *KEEPALIVED_PIDFILES)
        return self.signal(name, "KILL", *KEEPALIVED_PIDFILES)

    def haproxy_workers(self, name):
        """The pids of HAProxy's workers on a host: the children of the
        master, whose pid is in the pid file (Debian's unit runs HAProxy in
        master-worker mode, -Ws)."""
        host = self.host(name)
        master = host.run(["cat", HAPROXY_PIDFILE]).stdout.split()
        assert len(master) == 1, (name, master)
        workers = host.run(["pgrep", "-P", master[0], "-x", "haproxy"], check=False).stdout.split()
        assert workers, f"HAProxy's master {master[0]} on {name} has no worker"
        return workers

    def kill_haproxy(self, name, process="master"):
        """SIGKILL HAProxy's master (the pid file's process; its worker exits
        with it) or its ``process="worker"``; returns the time sent.  systemd
        starts it again (Debian's unit: Restart=always, after 100 ms)."""
        if process == "master":
            return self.signal(name, "KILL", HAPROXY_PIDFILE)
        return self.signal_pids(name, "KILL", self.haproxy_workers(name))

    def systemctl(self, name, *args, check=True):
        """`systemctl ARGS` on a host; the CompletedProcess."""
        return self.host(name).run(["systemctl", *args], check=check)

    def restarts(self, name, service="haproxy"):
        """How often systemd has restarted a service on a host (NRestarts)."""
        return int(self.systemctl(name, "show", service, "-p", "NRestarts", "--value").stdout)

    def kill_nginx(self, name):
        """SIGKILL every nginx process of a backend host, again until none is
        left (a worker killed before its master may be replaced by a new one
        that would keep the port)."""
        host = self.host(name)
        for _ in range(50):
            pids = host.run(["pidof", "nginx"], check=False).stdout.split()
            if not pids:
                return
            host.run(["kill", "-9", *pids], check=False)
            time.sleep(0.02)
        raise AssertionError(f"nginx on {name} survives SIGKILL")

    def start_nginx(self, name):
        """`systemctl start nginx` after kill_nginx (Debian's nginx unit does
        not restart it by itself)."""
        started = self.systemctl(name, "start", "nginx", check=False)
        assert started.returncode == 0, (name, started.stderr,
                                         self.systemctl(name, "status", "nginx", check=False).stdout)

    def keepalived_gone(self, name):
        """keepalived is stopped on a host: its unit inactive and no process left."""
        host = self.host(name)
        return (self.systemctl(name, "is-active", "keepalived", check=False).stdout.strip() != "active"
                and host.run(["pidof", "keepalived"], check=False).returncode != 0)

    # ---- power ------------------------------------------------------------------

    def _minion(self, name):
        return next(m for m in self.minions if m.id == name)

    def power_off(self, name):
        """Power a host off cleanly (its units stop, keepalived gives its VIPs
        up); its salt-minion ends with it.  Returns the seconds it took."""
        took = self.lab.power_off(name)
        self._minion(name).terminate()
        return took

    def boot(self, name):
        """Boot a host that is off, and start its salt-minion again (the lab
        starts minions from outside, with nsenter: the host's systemd does not
        know them).  Returns the seconds until the minion answers."""
        t0 = time.monotonic()
        self.lab.boot(name)
        self._minion(name).start(start_timeout=90)
        return time.monotonic() - t0

    def reboot(self, name):
        """power_off, then boot; the seconds it took."""
        t0 = time.monotonic()
        self.power_off(name)
        self.boot(name)
        return time.monotonic() - t0

    def cut_vrrp(self, name):
        """Drop every VRRP advert a host receives: it hears no peer (split
        brain once it is a backup)."""
        self.host(name).run(["nft", "-f", "-"], input=VRRP_CUT)

    def uncut_vrrp(self, name):
        """Undo cut_vrrp: the host hears its peers again."""
        self.host(name).run(["nft", "delete", "table", "inet", VRRP_CUT_TABLE])

    def make_lossy(self, name):
        """Drop 30 % of what a host sends and receives on its link."""
        self.host(name).run(["nft", "-f", "-"], input=LOSS)

    def make_sound(self, name):
        """Undo make_lossy."""
        self.host(name).run(["nft", "delete", "table", "inet", LOSS_TABLE])

    def vrrp_state(self, name):
        """(state, time of the change) keepalived's notify script recorded on
        a balancer; both from one open file (the script replaces it by a
        rename: a second read could pair one file's state with the next
        one's time)."""
        read = 'exec 3< "$1" && stat -L -c %.9Y /dev/fd/3 && cat <&3'
        out = self.host(name).run(["sh", "-c", read, "sh", VRRP_STATE], check=False).stdout.split()
        return (out[1] if len(out) > 1 else None), (float(out[0]) if out else None)

    def vrrp_transitions(self, name, since, until=None):
        """keepalived's state changes on a balancer from ``since`` to
        ``until`` (epoch seconds), from its journal ("(VI_1) Entering MASTER
        STATE"): [(time, instance, state)]."""
        journal = self.host(name).run(["journalctl", "-q", "-u", "keepalived", "-o", "json", "--no-pager",
                                       "--since", f"@{int(since)}"], check=False).stdout
        changes = []
        for line in journal.splitlines():
            entry = json.loads(line)
            logged = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
            entered = re.search(r"\((\S+)\) Entering (\w+) STATE", str(entry.get("MESSAGE", "")))
            if entered and since <= logged and (until is None or logged <= until):
                changes.append((logged, *entered.groups()))
        return changes

    def config_digests(self):
        """sha256 of every havip-managed file on every host that has it."""
        digests = {}
        for name in self.topology.nodes:
            for path in CONFIG_FILES:
                result = self.host(name).run(["cat", path], check=False)
                if result.returncode == 0:
                    digests[(name, path)] = hashlib.sha256(result.stdout.encode()).hexdigest()
        return digests

    # ---- the campaign's faults (test_chaos.py) ---------------------------------------

    def orchestrate_in_background(self, name, timeout=900, **pillar):
        """:py:meth:`orchestrate` in a thread of its own; its Future (what
        orchestrate returns, or raises)."""
        pool = concurrent.futures.ThreadPoolExecutor(1)
        try:
            return pool.submit(self.orchestrate, name, timeout, **pillar)
        finally:
            pool.shutdown(wait=False)

    def host_pids(self, name):
        """The pids (as the machine sees them) of every process of a host:
        those in its PID namespace."""
        namespace = os.readlink(f"/proc/{self.host(name).pid}/ns/pid")
        pids = []
        for proc in pathlib.Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and os.readlink(proc / "ns" / "pid") == namespace:
                    pids.append(int(proc.name))
            except OSError:  # ended meanwhile
                continue
        return pids

    def _cpu_group(self, name):
        return CPU_CGROUPS / f"havip-chaos-{self.lab.prefix}-{name}"

    def starve_cpu(self, name, quota_us, period_us=100000):
        """Every process of a host into a cgroup of the machine's cpu
        controller (v1) of its own, allowed ``quota_us`` of CPU time per
        ``period_us`` (its children follow it there), a realtime one the
        same share of the realtime period; the machine's clock untouched.
        Returns {pid: its cpu cgroup before} for feed_cpu."""
        group = self._cpu_group(name)
        group.mkdir(exist_ok=True)
        (group / "cpu.cfs_period_us").write_text(str(period_us))
        (group / "cpu.cfs_quota_us").write_text(str(quota_us))
        rt_period = int((group / "cpu.rt_period_us").read_text())
        (group / "cpu.rt_runtime_us").write_text(str(rt_period * quota_us // period_us))
        before = {}
        for pid in self.host_pids(name):
            try:
                before[pid] = _cpu_cgroup(pid)
                (group / "cgroup.procs").write_text(str(pid))
            except (ProcessLookupError, FileNotFoundError):  # ended meanwhile
                continue
        return before

    def feed_cpu(self, name, before):
        """Undo starve_cpu: each process back in its cgroup of ``before``
        (one started meanwhile: in that of the host's systemd), the cgroup
        removed."""
        group = self._cpu_group(name)
        home = before.get(self.host(name).pid, "/")
        for _ in range(20):
            pids = [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
            if not pids:
                break
            for pid in pids:
                try:
                    (CPU_CGROUPS / before.get(pid, home).lstrip("/") / "cgroup.procs").write_text(str(pid))
                except ProcessLookupError:
                    continue
        group.rmdir()

    def fill_up(self, name, size="64k", dirs=NOTIFY_AND_LOG_DIRS):
        """Full file systems under ``dirs`` of a host, in its mount namespace
        only: over each, a tmpfs of ``size`` with a copy of what fits of the
        directory and a file filling the rest (new files can be made, no
        byte written).  Undone by empty_up."""
        machine = [os.path.ismount(path) for path in dirs]
        self.host(name).run(["sh", "-c", FILL_UP, "sh", FILL_UP_SOURCE, size, *dirs])
        assert [os.path.ismount(path) for path in dirs] == machine, f"a mount over {dirs} reached the machine"

    def empty_up(self, name, dirs=NOTIFY_AND_LOG_DIRS):
        """Undo fill_up: each tmpfs unmounted (lazily: a process may still
        have a file open there)."""
        for path in dirs:
            mounted = self.host(name).run(["findmnt", "-n", "-o", "SOURCE", "--mountpoint", path], check=False)
            if FILL_UP_SOURCE in mounted.stdout.split():
                self.host(name).run(["umount", "--lazy", path])

    def client_get(self, url, user=None, timeout=2, resolve=None, cafile=None):
        """(HTTP status, body) of one request from the client host; status 0 =
        no answer.  ``resolve``: the address the URL's host name stands for
        (its Host header and TLS server name stay the name); ``cafile``: an
        https URL's certificate verified against it."""
        cmd = ["curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", "-m", str(timeout)]
        if user:
            cmd += ["-u", user]
        if resolve:
            parts = urllib.parse.urlsplit(url)
            port = parts.port or {"http": 80, "https": 443}[parts.scheme]
            cmd += ["--resolve", f"{parts.hostname}:{port}:{resolve}"]
        if cafile:
            cmd += ["--cacert", str(cafile)]
        out = self.host(self.topology.client).run(cmd + [url], check=False).stdout
        body, _, code = out.rpartition("\n")
        return int(code or 0), body.strip()

    @contextlib.contextmanager
    def connection(self, url=None, port=0):
        """One HTTP connection from the client (from local ``port``, if
        given) to the frontend on the VIP, open while the block runs; yields
        a function that sends a request on it and returns {"answer": body,
        "port": local port} or {"error": ...} (test/lab/keepalive.py)."""
        proc = self.host(self.topology.client).popen(
            [sys.executable, "-m", "test.lab.keepalive", url or self.topology.frontend_url,
             "--port", str(port)], cwd=str(REPO), stdin=-1, stdout=-1, text=True)

        def request():
            proc.stdin.write("\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())
        try:
            yield request
        finally:
            proc.stdin.close()
            proc.wait(timeout=10)

    def request_the_server_closes(self, port, url=None):
        """One request from the client's local ``port`` that the server
        closes (test/lab/keepalive.py --server-closes): {"answer": body,
        "port": port}; the server's side of it ends in TIME_WAIT."""
        out = self.host(self.topology.client).run(
            [sys.executable, "-m", "test.lab.keepalive", url or self.topology.frontend_url,
             "--port", str(port), "--server-closes"], cwd=str(REPO))
        return json.loads(out.stdout)

    def send_stray_ack(self, url=None):
        """One TCP ACK of a connection nobody has, from the client to the
        frontend's address and port (test/lab/stray.py)."""
        url = urllib.parse.urlsplit(url or self.topology.frontend_url)
        self.host(self.topology.client).run(
            [sys.executable, "-m", "test.lab.stray", url.hostname, str(url.port)], cwd=str(REPO))

    @contextlib.contextmanager
    def probe(self, seconds, rate=100, timeout=0.2, url=None, timeline=False, cafile=None, until_block_ends=False,
              answers=False):
        """Probe the frontend on the VIP from the client while the block runs
        (for ``seconds``; with ``until_block_ends`` no longer than the block);
        the report dict is filled in when the block ends (``answers``: with
        every request's answer, see havip_probe.summarize)."""
        report = {}
        proc = self.host(self.topology.client).popen(
            [sys.executable, "-m", "test.lab.probe", url or self.topology.frontend_url,
             "--seconds", str(seconds), "--rate", str(rate), "--timeout", str(timeout)]
            + (["--timeline"] if timeline else []) + (["--cafile", str(cafile)] if cafile else [])
            + (["--until-eof"] if until_block_ends else []) + (["--answers"] if answers else []),
            cwd=str(REPO), stdin=-1 if until_block_ends else None, stdout=-1, stderr=-1, text=True)
        proc.stderr.readline()  # "probe started"
        try:
            yield report
        finally:
            out, err = proc.communicate(timeout=seconds + 30)  # closes stdin: --until-eof stops
            assert out.strip(), f"the probe printed no report (exit {proc.returncode}): {err[-3000:]}"
            report.update(json.loads(out))


def _cpu_cgroup(pid):
    """The cgroup of ``pid`` in the machine's cpu controller (v1)."""
    lines = pathlib.Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    return next(path for _, controllers, path in (line.split(":", 2) for line in lines)
                if "cpu" in controllers.split(","))


def _all_at_once(calls):
    """Each of ``calls`` in a thread of its own (a minion takes seconds to
    start, waiting for its key and its start event, and about 7 s to stop);
    the first exception once all have ended."""
    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        for done in [pool.submit(call) for call in calls]:
            done.result()


def minion_overrides():
    return {
        "master": GATEWAY,
        "enable_fqdns_grains": False,
        "file_client": "remote",
        "log_level_logfile": "info",
    }


@contextlib.contextmanager
def running_cluster(salt_factories, topology, pillar_dir, master_overrides=None, file_roots=()):
    """Lab up, master and minions started, pillar in place, the formula
    synced and the mine filled (README's steps before the first apply); all
    torn down after.  ``file_roots``: directories of the tests' own states,
    served after the formula's."""
    pillar_dir.mkdir(parents=True, exist_ok=True)
    (pillar_dir / "top.sls").write_text("base:\n  '*':\n    - havip\n")
    (pillar_dir / "havip.sls").write_text(yaml.safe_dump(topology.pillar))
    factories_root = pathlib.Path(salt_factories.root_dir)
    releases = {topology.releases.get(name, RELEASE) for name in topology.hosts}
    binds = [REPO, factories_root] + (interpreter_binds() if releases != {"bookworm"} else [])
    with Lab(topology.hosts, gateway=f"{GATEWAY}/{NETWORK.prefixlen}", binds=binds,
             releases=topology.releases) as lab:
        master = salt_factories.salt_master_daemon(
            f"havip-master-{topology.name}",
            overrides={
                "interface": GATEWAY,
                "file_roots": {"base": [str(formula_root(factories_root / "formula")), *map(str, file_roots)]},
                "pillar_roots": {"base": [str(pillar_dir)]},
                "enable_fqdns_grains": False,
                **(master_overrides or {}),
            },
        )
        with master.started(start_timeout=60):
            minions = [
                master.salt_minion_daemon(name, overrides=minion_overrides(),
                                          factory_class=LabMinion, host=lab.host(name))
                for name in topology.hosts
            ]
            with contextlib.ExitStack() as stack:
                stack.callback(_all_at_once, [minion.terminate for minion in minions])
                _all_at_once([functools.partial(minion.start, start_timeout=90) for minion in minions])
                cluster = Cluster(topology, lab, master, minions)
                # Every minion is on a systemd host: Salt's systemd module drives the units.
                inits = cluster.salt("*", "grains.get", "init")
                assert inits.data == {name: "systemd" for name in topology.hosts}, inits
                synced = cluster.salt("*", "saltutil.sync_all", "refresh=False")
                assert synced.returncode == 0, synced
                # Loaded before the first job that needs them (sync_all's
                # own refresh does not wait for the minion to reload).
                refreshed = cluster.salt("*", "saltutil.refresh_modules", "async=False")
                assert refreshed.returncode == 0, refreshed
                synced = cluster.run("saltutil.sync_all")
                assert synced.returncode == 0, synced
                # The pillar's mine_functions in the mine before any apply.
                mined = cluster.salt("*", "mine.update")
                assert mined.returncode == 0, mined
                yield cluster

