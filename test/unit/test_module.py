"""
Unit tests of the havip execution module (``_modules/havip.py``) with
fake Salt dunders, over its real helpers.

No daemon runs: the deployed facts file, the pid files, keepalived's state
files and the standby file live in tmp_path; `cmd.run_all`, HAProxy's
runtime API and HTTP are fakes.  What ``havip.status`` reads of the
handover (a VIP kept on lo, the relay tables, conntrack's table) and
``havip.inject``'s link_down (``ip``, ``systemd-run``, ``systemctl``) run on
a fake host, ``havip.drain``/``havip.ready`` on a fake runtime API.
"""

import json
import os
import pathlib
import re
import signal
import stat
import subprocess
import urllib.error

import havip_facts
import havip_haproxy
import havip_host
import havip_http
import havip_probe
import havip_relay
import havip_transition
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from salt.exceptions import CommandExecutionError

from test.unit.utils import test_havip_server_state as server_state
from test.unit.utils.test_havip_services import two_services

VIP = "192.168.100.10"
SVR1 = "192.168.100.13"
SVR2 = "192.168.100.14"
STATS_CSV = (
    "# pxname,svname,status\n"
    "havip_backends,FRONTEND,OPEN\n"
    "havip_backends,nginx1,UP\n"
    "havip_backends,nginx2,DOWN\n"
    "havip_backends,BACKEND,UP\n"
    "stats,FRONTEND,OPEN\n"
)
ALL_DOWN_CSV = (
    "# pxname,svname,status\n"
    "havip_backends,nginx1,DOWN\n"
    "havip_backends,nginx2,DOWN\n"
    "havip_backends,BACKEND,DOWN\n"
)
PEER_HEALTH_URL = "http://192.168.100.14:1080/havip-backends"
NO_SOCKET = "no `stats socket <path> ... level admin` line in havip:haproxy:global or global_extra"


def _no_network(*args, **kwargs):
    raise AssertionError(f"unexpected network access {args} {kwargs}")


@pytest.fixture
def havip(surface, tmp_path, monkeypatch):
    module = surface("module")
    module.__grains__ = {"kernel": "Linux", "id": "svr1", "os_family": "Debian", "os": "Debian", "osmajorrelease": 12}
    # A Debian 12 minion with no daemon installed yet.
    module.__salt__ = {"pkg.version": lambda name: "", "mine.get": lambda tgt, fun: {}}
    module.__context__ = {}
    module.__pillar__ = {}
    # Never the real /etc/havip/havip.json or /run/havip, never a real socket or URL.
    monkeypatch.setattr(havip_facts, "FACTS_FILE", str(tmp_path / "nothing-deployed.json"))
    monkeypatch.setattr(havip_facts, "LINK_RESTORE_DIR", str(tmp_path / "run-havip"))
    monkeypatch.setattr(havip_haproxy, "runtime_api", _no_network)
    monkeypatch.setattr(havip_http, "get", _no_network)
    return module


def ip_addr_json(*addresses, lo=()):
    """`ip -j addr show`: ``addresses`` on ens32 (IPv6 ones starting with
    fe80 are link-local), ``lo`` besides 127.0.0.1 on lo."""
    def info(address, prefixlen):
        return {"family": "inet6" if ":" in address else "inet", "local": address, "prefixlen": prefixlen,
                "scope": "link" if address.startswith("fe80") else "global"}
    return json.dumps([
        {"ifname": "lo", "addr_info": [info("127.0.0.1", 8) | {"scope": "host"}]
         + [info(a, 128 if ":" in a else 32) for a in lo]},
        {"ifname": "ens32", "addr_info": [info(a, 64 if ":" in a else 24) for a in addresses]},
    ])


def done(stdout="", retcode=0, stderr=""):
    return {"retcode": retcode, "stdout": stdout, "stderr": stderr, "pid": 4242}


class FakeHost:
    """What `cmd.run_all` and `service.stop` do on the fake minion."""

    def __init__(self):
        self.calls = []
        # Successive addresses of ens32 in `ip -j addr show`; the last one repeats.
        self.addresses = [[SVR1, VIP]]
        self.lo = set()              # VIPs the handover keeps on lo
        self.nft_tables = {}         # (family, table) -> `nft -j list table` answer
        self.ip_retcode = 0
        self.haproxy_config_valid = True
        self.routes = []
        self.batches = []            # the contents of every `ip -force -batch` file run
        self.batch_retcode = 0
        self.systemd_run_retcode = 0
        self.service_retcode = 0
        self.stopped = []

    @property
    def salt(self):
        return {"cmd.run_all": self.run_all, "service.stop": self.service_stop}

    def run_all(self, cmd, python_shell=True, ignore_retcode=False):
        assert python_shell is False, cmd
        self.calls.append(list(cmd))
        if cmd == ["ip", "-j", "addr", "show"]:
            if self.ip_retcode:
                return done(retcode=self.ip_retcode, stderr="boom")
            current = self.addresses.pop(0) if len(self.addresses) > 1 else self.addresses[0]
            return done(ip_addr_json(*current, lo=sorted(self.lo)))
        if cmd[:4] == ["nft", "-j", "list", "table"]:
            table = self.nft_tables.get((cmd[4], cmd[5]))
            return done(json.dumps(table)) if table else done(retcode=1, stderr="No such file or directory")
        if cmd[:4] == ["haproxy", "-c", "-q", "-f"]:
            return done(retcode=0 if self.haproxy_config_valid else 1, stderr="[ALERT] bad")
        if cmd[:5] == ["ip", "-j", "route", "show", "dev"]:
            return done(json.dumps(self.routes))
        if cmd[:3] == ["ip", "link", "set"] or cmd[:2] == ["systemctl", "stop"]:
            return done()
        if cmd[:3] == ["ip", "-force", "-batch"]:
            with open(cmd[3], encoding="ascii") as handle:
                self.batches.append(handle.read())
            return done(retcode=self.batch_retcode, stderr="RTNETLINK answers: Network is unreachable"
                        if self.batch_retcode else "")
        if cmd[0] == "systemd-run":
            return done(retcode=self.systemd_run_retcode, stderr="Failed to start transient timer unit:"
                        " Unit havip-link-restore-ens32.timer already exists." if self.systemd_run_retcode else "")
        raise AssertionError(f"unexpected command {cmd}")

    def service_stop(self, name):
        self.stopped.append(name)
        return self.service_retcode == 0

    def commands(self, *prefix):
        return [cmd for cmd in self.calls if cmd[:len(prefix)] == list(prefix)]


class Rig:
    """One minion with havip deployed in tmp_path and every outside effect faked."""

    def __init__(self, havip, tmp_path, monkeypatch, dead_pid, config, minion, edit=None):
        self.havip, self.dead_pid = havip, dead_pid
        if edit:
            edit(config)
        facts = havip.validate(config, minion)
        run = tmp_path / "run"
        (run / "vrrp").mkdir(parents=True, exist_ok=True)
        lookup = facts["lookup"]
        lookup["haproxy"]["pidfile"] = str(run / "haproxy.pid")
        lookup["haproxy"]["config"] = str(run / "haproxy.cfg")
        lookup["keepalived"]["pidfiles"] = [str(run / "keepalived.pid"), str(run / "vrrp.pid")]
        lookup["keepalived"]["state_dir"] = str(run / "vrrp")
        lookup["keepalived"]["standby_file"] = str(run / "standby")
        lookup["haproxy"]["server_state_file"] = str(run / "server-state")
        lookup["nginx"]["pidfile"] = str(run / "nginx.pid")
        self.facts, self.lookup = facts, lookup
        self.facts_file = tmp_path / "havip.json"
        self.facts_file.write_text(json.dumps(facts))
        monkeypatch.setattr(havip_facts, "FACTS_FILE", str(self.facts_file))
        havip.__grains__["id"] = minion
        # The commands the module looks for are there (nft).
        monkeypatch.setattr(havip_relay.shutil, "which", lambda name: f"/usr/sbin/{name}")

        self.host = FakeHost()
        havip.__salt__ = self.host.salt
        self.stats = STATS_CSV          # the runtime API's answer (or an exception)
        self.api_calls = []
        monkeypatch.setattr(havip_haproxy, "runtime_api", self.runtime_api)
        self.http = {}                  # url -> (status, body) or exception
        self.http_calls = []
        monkeypatch.setattr(havip_http, "get", self.get)

    def runtime_api(self, path, command, timeout=2.0):
        self.api_calls.append((path, command))
        if isinstance(self.stats, Exception):
            raise self.stats
        return self.stats

    def get(self, url, timeout=2.0, auth=None):
        self.http_calls.append((url, auth))
        answer = self.http.get(url, OSError("connection refused"))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def pidfile(self, path, alive=True):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"{os.getpid() if alive else self.dead_pid}\n")

    def haproxy(self, alive=True):
        self.pidfile(self.lookup["haproxy"]["pidfile"], alive)

    def keepalived(self, alive=True):
        for path in self.lookup["keepalived"]["pidfiles"]:
            self.pidfile(path, alive)

    def nginx(self, alive=True):
        self.pidfile(self.lookup["nginx"]["pidfile"], alive)

    def vrrp(self, text, name="VI_1", mtime=1_700_000_000):
        path = os.path.join(self.lookup["keepalived"]["state_dir"], name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.utime(path, (mtime, mtime))

    def set_standby(self, value):
        with open(self.lookup["keepalived"]["standby_file"], "w", encoding="utf-8") as handle:
            handle.write(f"{value}\n")

    def standby_value(self):
        with open(self.lookup["keepalived"]["standby_file"], encoding="utf-8") as handle:
            return handle.read().strip()


@pytest.fixture
def deploy(havip, tmp_path, monkeypatch, dead_pid, merged_seed):
    """Factory: a Rig for the given minion id (and an optional config edit)."""
    def make(minion, edit=None):
        return Rig(havip, tmp_path, monkeypatch, dead_pid, merged_seed(), minion, edit)
    return make


def in_service(rig, vrrp):
    """A balancer's Rig with HAProxy and keepalived running, in ``vrrp``
    (its state file), not on standby, with conntrack on for the handover
    (and a MASTER keeping its VIP on lo too)."""
    rig.haproxy()
    rig.keepalived()
    rig.vrrp(vrrp)
    rig.set_standby(0)
    rig.host.nft_tables[("inet", "havip_track")] = TRACK_TABLE
    if vrrp.startswith("MASTER"):
        rig.host.lo.add(VIP)
    return rig


@pytest.fixture
def lb(deploy):
    """svr1, the preferred balancer, healthy: MASTER holding the VIP."""
    return in_service(deploy("svr1"), "MASTER 150\n")


@pytest.fixture
def backend(deploy):
    """nginx1, a healthy backend."""
    rig = deploy("nginx1")
    rig.nginx()
    rig.http["http://192.168.100.11:80/"] = (200, "nginx1\n")
    return rig


def peer_serves(rig):
    rig.http[PEER_HEALTH_URL] = (200, "")


TRACK_TABLE = {"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
                            {"table": {"family": "inet", "name": "havip_track", "handle": 3}}]}


def relay_table(vip, address, peers, family="ip"):
    """`nft -j list table <family> havip_relay_<vip>` as havip-handover loads
    it (nft 1.0.6): two rules, each dup'ing to every peer."""
    def rule(handle, flags):
        return {"rule": {"family": family, "table": f"havip_relay_{vip}", "chain": "prerouting", "handle": handle,
                         "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": family, "field": "daddr"}},
                                             "right": address}},
                                  {"match": {"op": "in", "left": {"payload": {"protocol": "tcp", "field": "flags"}},
                                             "right": flags}},
                                  {"mangle": {"key": {"payload": {"protocol": family, "field": "ttl"}}, "value": 1}},
                                  *({"dup": {"addr": peer, "dev": "ens32"}} for peer in peers),
                                  {"drop": None}]}}
    return {"nftables": [
        {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"table": {"family": family, "name": f"havip_relay_{vip}", "handle": 1}},
        {"chain": {"family": family, "table": f"havip_relay_{vip}", "name": "prerouting", "handle": 1}},
        rule(2, "ack"), rule(3, ["fin", "rst"])]}


# ---- __virtual__ and validate (the pillar's checks: test_havip_pillar.py) ----


def test_virtual_refuses_non_linux_with_a_reason(havip):
    havip.__grains__ = {"kernel": "Windows"}
    assert havip.__virtual__()[0] is False
    havip.__grains__ = {"kernel": "Linux"}
    assert havip.__virtual__() == "havip"


@pytest.fixture
def seed_with_nginx2_in_the_mine(merged_seed):
    """Factory: the seed with nginx2's address left to the Salt mine;
    ``mine`` is what mine.get answers per minion."""
    return lambda mine: with_nginx2_in_the_mine(merged_seed(), mine)


def with_nginx2_in_the_mine(config, mine):
    havip_mine_calls = []

    def mine_get(tgt, fun):
        havip_mine_calls.append((tgt, fun))
        return {tgt: mine[tgt]} if tgt in mine else {}
    config["mine"] = {"network": "192.168.100.0/24", "interface": None}
    del config["nodes"]["nginx2"]["address"]
    return config, mine_get, havip_mine_calls


def test_validate_takes_a_backends_address_from_the_salt_mine(havip, seed_with_nginx2_in_the_mine):
    config, mine_get, calls = seed_with_nginx2_in_the_mine({"nginx2": ["192.168.100.12"]})
    havip.__salt__.update({"mine.get": mine_get})
    nodes = havip.validate(config, "svr1")["nodes"]
    assert nodes["nginx2"]["address"] == "192.168.100.12"
    assert nodes["nginx2"]["discovered"] is True and nodes["nginx1"]["discovered"] is False
    # ... and svr2's interface addresses for the handover's relay.
    assert calls == [("nginx2", "havip_address"), ("svr2", "havip_relay_addresses")]


def test_validate_on_the_backend_itself_takes_its_address_from_its_interfaces(havip, seed_with_nginx2_in_the_mine):
    config, mine_get, calls = seed_with_nginx2_in_the_mine({})
    asked = []
    havip.__salt__.update({"mine.get": mine_get,
                           "network.ip_addrs": lambda **kw: asked.append(kw) or ["192.168.100.12"]})
    config = havip.validate(config, "nginx2")
    assert config["node"]["address"] == "192.168.100.12"
    assert asked == [{"cidr": "192.168.100.0/24"}] and calls == []
    assert config["mine_args"] == {"cidr": "192.168.100.0/24"}


def test_a_balancer_refuses_a_backend_that_has_not_published_its_address(havip, seed_with_nginx2_in_the_mine):
    config, mine_get, _ = seed_with_nginx2_in_the_mine({})
    havip.__salt__.update({"mine.get": mine_get})
    with pytest.raises(CommandExecutionError, match="havip:nodes:nginx2:address: is not in the Salt mine yet"
                                                    r" \(havip_address\): apply havip on nginx2 first"):
        havip.validate(config, "svr1")
    # Another backend does not need it.
    assert havip.validate(config, "nginx1")["nodes"]["nginx2"]["address"] is None


def test_a_balancer_always_needs_its_address_in_the_pillar(havip, seed_with_nginx2_in_the_mine):
    config, mine_get, _ = seed_with_nginx2_in_the_mine({})
    del config["nodes"]["svr2"]["address"]
    havip.__salt__.update({"mine.get": mine_get})
    with pytest.raises(CommandExecutionError, match=r"havip:nodes:svr2:address: is required$"):
        havip.validate(config, "svr1")


def test_validate_accepts_json_from_the_command_line(havip, merged_seed):
    assert havip.validate(json.dumps(merged_seed()), "nginx1")["roles"] == ["backend"]


# ---- config -----------------------------------------------------------------


def test_config_hides_the_stats_password_and_vrrp_auth_pass(havip, deploy):
    def with_auth_pass(config):
        config["keepalived"].update(vrrp_version=2, advert_int=1)  # VRRPv3 has no auth
        config["vips"]["VI_1"]["auth_pass"] = "s3cret"
    deploy("svr1", with_auth_pass)
    shown = havip.config()
    assert "password" not in shown["stats"]
    assert shown["stats"]["user"] == "admin"
    assert "auth_pass" not in shown["vips"]["VI_1"]
    assert shown["vips"]["VI_1"]["address"] == VIP
    assert "change-me" not in json.dumps(shown)
    assert "s3cret" not in json.dumps(shown)


def test_config_raises_when_nothing_is_deployed(havip):
    with pytest.raises(CommandExecutionError, match=r"run state.apply havip first"):
        havip.config()


# ---- status -----------------------------------------------------------------


def test_status_raises_when_the_facts_file_is_missing(havip):
    with pytest.raises(CommandExecutionError, match="nothing is deployed on this minion"):
        havip.status()


def test_status_of_a_master_balancer_holding_the_vip(havip, lb):
    report = havip.status()
    # Every pool's servers and every service (test_status_of_several_pools_and_services).
    assert (list(report["haproxy"].pop("pools")), list(report["haproxy"].pop("services"))) == (["havip_backends"],
                                                                                                ["havip"])
    assert report == {
        "roles": ["balancer"],
        "vips": {"VI_1": {"address": VIP, "interface": "ens32", "held": True, "lingering": False,
                          "state": "MASTER", "since_s": 1_700_000_000, "priority": 150}},
        "standby": False,
        "keepalived": {"running": True},
        "haproxy": {"running": True, "config_valid": True,
                    "backends": {"nginx1": "UP", "nginx2": "DOWN"}},
        "relay": {},
        "tracking": True,
    }
    assert lb.api_calls == [("/run/haproxy/admin.sock", "show stat")]
    assert lb.host.commands("haproxy") == [["haproxy", "-c", "-q", "-f", lb.lookup["haproxy"]["config"]]]


@pytest.fixture
def minion_key(havip, tmp_path):
    """This minion's key pair: its private key in its pki_dir (as
    salt-minion keeps it), the public key the master accepted (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "minion.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    havip.__opts__ = {"pki_dir": str(tmp_path / "pki")}
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_status_asked_with_a_challenge_proves_its_vips_with_the_sealed_nonce(havip, lb, minion_key):
    nonce, sealed = havip_transition.challenge(minion_key)
    report = havip.status(challenge=sealed)
    assert report["proof"] == havip_transition.proof(nonce, report["vips"])
    assert havip_transition.unconfirmed(report, "VI_1", "MASTER", 1_700_000_000, nonce) is None


@pytest.mark.parametrize("sealed", ["not base64", "QUJD", 7])
def test_status_refuses_a_challenge_its_key_does_not_open(havip, lb, minion_key, sealed):
    with pytest.raises(CommandExecutionError, match=r"^havip.status: challenge refused: "):
        havip.status(challenge=sealed)


def test_status_of_a_backup_balancer_not_holding_the_vip(havip, lb):
    lb.host.addresses = [[SVR1]]
    lb.vrrp("BACKUP 150\n")
    vip = havip.status()["vips"]["VI_1"]
    assert vip["held"] is False
    assert vip["state"] == "BACKUP"


def test_status_says_stopped_when_keepalived_is_dead_whatever_its_state_file(havip, lb):
    lb.keepalived(alive=False)
    report = havip.status()
    assert report["vips"]["VI_1"]["state"] == "STOPPED"
    assert report["keepalived"] == {"running": False}


def test_status_says_unknown_without_a_state_file(havip, lb):
    os.remove(os.path.join(lb.lookup["keepalived"]["state_dir"], "VI_1"))
    vip = havip.status()["vips"]["VI_1"]
    assert vip["state"] == "UNKNOWN"
    assert vip["since_s"] is None


def test_status_reads_the_standby_flag_from_the_standby_file(havip, lb):
    lb.set_standby(1)
    assert havip.status()["standby"] is True
    lb.set_standby(0)
    assert havip.status()["standby"] is False
    os.remove(lb.lookup["keepalived"]["standby_file"])
    assert havip.status()["standby"] is False


def test_status_rejects_garbage_in_the_standby_file(havip, lb):
    lb.set_standby("yes")
    with pytest.raises(CommandExecutionError, match="must hold 0, 1 or 2"):
        havip.status()


def test_status_reports_haproxy_dead_and_its_config_invalid(havip, lb):
    lb.haproxy(alive=False)
    lb.host.haproxy_config_valid = False
    haproxy = havip.status()["haproxy"]
    assert haproxy["running"] is False
    assert haproxy["config_valid"] is False


def test_status_reports_a_runtime_api_error(havip, lb):
    lb.stats = ConnectionRefusedError("[Errno 111] Connection refused")
    haproxy = havip.status()["haproxy"]
    assert haproxy["backends"] is None
    assert haproxy["error"] == (
        "HAProxy's runtime API (/run/haproxy/admin.sock) did not answer: [Errno 111] Connection refused")


def without_stats_socket(rig):
    """The facts of a formula that did not yet insist on the stats socket."""
    rig.facts["haproxy"]["global"] = ["daemon"]
    rig.facts_file.write_text(json.dumps(rig.facts))


def test_status_reports_a_missing_stats_socket_line(havip, deploy):
    rig = deploy("svr1")
    without_stats_socket(rig)
    rig.haproxy()
    rig.keepalived()
    assert havip.status()["haproxy"]["error"] == NO_SOCKET
    assert rig.api_calls == []


def socket_in_global_extra(config):
    """The pillar's stats socket line in haproxy:global_extra, not global."""
    socket = [line for line in config["haproxy"]["global"] if line.startswith("stats socket")]
    config["haproxy"]["global"] = [line for line in config["haproxy"]["global"] if line not in socket]
    config["haproxy"]["global_extra"] = socket


def test_status_asks_the_stats_socket_of_global_extra(havip, deploy):
    rig = deploy("svr1", socket_in_global_extra)
    rig.haproxy()
    rig.keepalived()
    haproxy = havip.status()["haproxy"]
    assert "error" not in haproxy and haproxy["backends"]
    assert rig.api_calls == [("/run/haproxy/admin.sock", "show stat")]


def test_status_raises_when_ip_fails(havip, lb):
    lb.host.ip_retcode = 1
    with pytest.raises(CommandExecutionError, match="'ip -j addr show' failed: boom"):
        havip.status()


def test_status_of_a_backend_with_nginx_running_and_answering(havip, backend):
    assert havip.status() == {
        "roles": ["backend"],
        "vips": {},
        "nginx": {"running": True, "answering": True, "url": "http://192.168.100.11:80/"},
    }
    assert backend.host.calls == []  # a backend has no VIP to look for


def test_status_of_a_backend_with_nginx_dead_and_silent(havip, backend):
    backend.nginx(alive=False)
    backend.http.clear()
    assert havip.status()["nginx"] == {
        "running": False, "answering": False, "url": "http://192.168.100.11:80/"}


def test_status_of_a_backend_answering_an_error_status_is_not_answering(havip, backend):
    backend.http["http://192.168.100.11:80/"] = (503, "busy")
    assert havip.status()["nginx"]["answering"] is False


# ---- check ------------------------------------------------------------------


def test_check_of_a_healthy_balancer(havip, lb):
    assert havip.check() == {"healthy": True, "reasons": [], "standby": False}
    assert havip.__context__.get("retcode") != 1


def test_check_of_a_healthy_backend(havip, backend):
    assert havip.check() == {"healthy": True, "reasons": [], "standby": False}
    assert havip.__context__.get("retcode") != 1


def _keepalived_dead(rig):
    rig.keepalived(alive=False)


def _haproxy_dead(rig):
    rig.haproxy(alive=False)
    rig.stats = ConnectionRefusedError("refused")


def _haproxy_config_invalid(rig):
    rig.host.haproxy_config_valid = False


def _no_backend_up(rig):
    rig.stats = ALL_DOWN_CSV


def _runtime_api_silent(rig):
    rig.stats = TimeoutError("timed out")


def _fault(rig):
    rig.vrrp("FAULT 150\n")


@pytest.mark.parametrize("breakage, reason", [
    (_keepalived_dead, "keepalived is not running"),
    (_haproxy_dead, "HAProxy is not running"),
    (_haproxy_config_invalid, "HAProxy's configuration does not pass `haproxy -c`"),
    (_no_backend_up, "no backend server is UP in HAProxy (nginx1 DOWN, nginx2 DOWN)"),
    (_runtime_api_silent, "HAProxy's runtime API (/run/haproxy/admin.sock) did not answer: timed out"),
    (_fault, "VRRP instance VI_1 is in FAULT"),
], ids=["keepalived-dead", "haproxy-dead", "config-invalid", "no-backend-up", "api-silent", "fault"])
def test_check_of_an_unhealthy_balancer_names_the_problem_and_sets_retcode(havip, lb, breakage, reason):
    breakage(lb)
    verdict = havip.check()
    assert verdict["healthy"] is False
    assert reason in verdict["reasons"]
    assert havip.__context__["retcode"] == 1


def test_check_with_status_gives_the_status_it_judged_beside_its_verdict(havip, lb):
    """One call for the runner's survey: the verdict and the very status
    it was judged on (the all-DOWN servers it names)."""
    lb.stats = ALL_DOWN_CSV
    answer = havip.check(with_status=True)
    assert {key: answer[key] for key in ("healthy", "reasons", "standby")} == havip.check()
    assert "no backend server is UP in HAProxy (nginx1 DOWN, nginx2 DOWN)" in answer["reasons"]
    assert answer["status"] == havip.status()
    assert answer["status"]["haproxy"]["backends"] == {"nginx1": "DOWN", "nginx2": "DOWN"}
    assert havip.__context__["retcode"] == 1


def test_check_tolerates_fault_while_on_standby(havip, lb):
    lb.vrrp("FAULT 150\n")
    lb.set_standby(2)
    assert havip.check() == {"healthy": True, "reasons": [], "standby": True}
    assert "retcode" not in havip.__context__


def test_check_of_a_backend_whose_nginx_does_not_answer(havip, backend):
    backend.http["http://192.168.100.11:80/"] = OSError("timed out")
    verdict = havip.check()
    assert verdict == {"healthy": False, "standby": False,
                       "reasons": ["nginx does not answer 200 on http://192.168.100.11:80/"]}
    assert havip.__context__["retcode"] == 1


def test_check_of_a_backend_whose_nginx_is_dead(havip, backend):
    backend.nginx(alive=False)
    verdict = havip.check()
    assert verdict["reasons"] == ["nginx is not running"]
    assert havip.__context__["retcode"] == 1


def test_check_raises_when_nothing_is_deployed(havip):
    with pytest.raises(CommandExecutionError, match="nothing is deployed"):
        havip.check()


# ---- standby / resume -------------------------------------------------------


def test_standby_refuses_when_no_peer_serves_and_leaves_the_standby_file(havip, lb):
    with pytest.raises(CommandExecutionError, match="no other healthy balancer") as error:
        havip.standby()
    assert "svr2: its HAProxy did not answer http://192.168.100.14:1080/havip-backends" in str(error.value)
    assert lb.standby_value() == "0"
    # No credentials: the stats password may change under a rolling deploy.
    assert lb.http_calls == [(PEER_HEALTH_URL, None)]


def test_standby_refuses_when_the_peer_has_no_backend_up(havip, lb):
    lb.http[PEER_HEALTH_URL] = urllib.error.HTTPError(PEER_HEALTH_URL, 503, "Service Unavailable", {}, None)
    with pytest.raises(CommandExecutionError, match="svr2: its HAProxy has no backend server UP"):
        havip.standby()
    assert lb.standby_value() == "0"


def test_standby_lowers_the_priority_and_returns_once_the_vip_left(havip, lb):
    peer_serves(lb)
    lb.host.addresses = [[SVR1, VIP], [SVR1, VIP], [SVR1]]
    result = havip.standby()
    assert lb.standby_value() == "1"
    assert result["standby"] is True
    assert result["changed"] is True
    assert result["moved"] == ["VI_1"]
    assert 0 <= result["took_s"] < 2
    assert len(lb.host.commands("ip", "-j", "addr", "show")) == 3


def test_standby_without_preemption_writes_2_for_fault(havip, deploy):
    def no_preempt(config):
        config["keepalived"]["preempt"] = False
    rig = deploy("svr1", no_preempt)
    rig.set_standby(0)
    peer_serves(rig)
    rig.host.addresses = [[SVR1, VIP], [SVR1]]
    assert havip.standby()["moved"] == ["VI_1"]
    assert rig.standby_value() == "2"


def test_standby_is_undone_when_the_vip_never_leaves(havip, lb):
    peer_serves(lb)
    lb.host.addresses = [[SVR1, VIP]]
    with pytest.raises(CommandExecutionError, match=r"no balancer took over VI_1 within 0.2 s; standby undone"):
        havip.standby(timeout=0.2)
    assert lb.standby_value() == "0"


def test_standby_when_already_on_standby_changes_nothing(havip, lb):
    lb.set_standby(1)
    assert havip.standby() == {"standby": True, "changed": False, "moved": [], "took_s": 0.0}
    assert lb.standby_value() == "1"
    assert lb.http_calls == []


def test_resume_writes_0_and_waits_for_the_preferred_vip_to_come_back(havip, lb):
    lb.set_standby(1)
    lb.host.addresses = [[SVR1], [SVR1], [SVR1, VIP]]
    result = havip.resume()
    assert lb.standby_value() == "0"
    assert result["standby"] is False
    assert result["changed"] is True
    assert result["moved"] == ["VI_1"]
    assert len(lb.host.commands("ip", "-j", "addr", "show")) == 3


def test_resume_raises_when_the_preferred_vip_does_not_come_back(havip, lb):
    lb.set_standby(1)
    lb.host.addresses = [[SVR1]]
    with pytest.raises(CommandExecutionError, match=r"in service again, but VI_1 did not come back within 0.2 s"):
        havip.resume(timeout=0.2)
    assert lb.standby_value() == "0"


def test_resume_on_a_lower_priority_balancer_does_not_wait_for_the_vip(havip, deploy):
    rig = deploy("svr2")
    rig.set_standby(1)
    result = havip.resume()
    assert result["moved"] == []
    assert result["changed"] is True
    assert rig.standby_value() == "0"


def test_resume_waits_only_for_the_vips_this_balancer_is_preferred_for(havip, deploy):
    def second_vip_prefers_svr2(config):
        config["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32",
                                  "virtual_router_id": 52, "priorities": {"svr2": 200}}
    rig = deploy("svr2", second_vip_prefers_svr2)
    rig.set_standby(1)
    rig.host.addresses = [[SVR2], [SVR2, "192.168.100.20"]]
    result = havip.resume()
    assert result["moved"] == ["VI_2"]
    assert rig.standby_value() == "0"


def test_resume_when_not_on_standby_changes_nothing(havip, lb):
    assert havip.resume() == {"standby": False, "changed": False, "moved": [], "took_s": 0.0}
    assert lb.standby_value() == "0"


@pytest.mark.parametrize("call", [
    lambda havip: havip.standby(),
    lambda havip: havip.resume(),
    lambda havip: havip.inject("kill_haproxy"),
], ids=["standby", "resume", "inject"])
def test_balancer_functions_refuse_on_a_backend(havip, backend, call):
    with pytest.raises(CommandExecutionError, match="nginx1 is not a balancer"):
        call(havip)


@pytest.mark.parametrize("kwargs, name", [
    ({"seconds": 0}, "seconds"),
    ({"seconds": 3601}, "seconds"),
    ({"seconds": "10"}, "seconds"),
    ({"rate": 0}, "rate"),
    ({"rate": 5000}, "rate"),
    ({"timeout": 0}, "timeout"),
])
def test_probe_rejects_bad_arguments(havip, kwargs, name):
    with pytest.raises(CommandExecutionError, match=f"havip.probe: {name} must be from"):
        havip.probe(url="http://vip/", **kwargs)


def test_probe_defaults_to_the_frontend_on_the_first_vip(havip, lb, monkeypatch):
    seen = []
    monkeypatch.setattr(havip_probe, "measure",
                        lambda *args, stop, cafile: seen.append((*args, stop, cafile)) or {"ok": True})
    assert havip.probe(seconds=5, rate=10) == {"ok": True}
    assert seen == [("http://192.168.100.10:9090/", 5.0, 10.0, 0.2, None, None)]


# ---- inject -----------------------------------------------------------------


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_inject_kill_haproxy_sends_sigkill_to_the_pids_in_the_pid_file(havip, lb, sleeper):
    peer_serves(lb)
    with open(lb.lookup["haproxy"]["pidfile"], "w", encoding="utf-8") as handle:
        handle.write(f"{sleeper.pid}\n")
    result = havip.inject("kill_haproxy", confirm=True)
    assert result["failure"] == "kill_haproxy"
    assert sleeper.wait(timeout=5) == -signal.SIGKILL


def test_inject_kill_keepalived_sends_sigkill_to_its_processes(havip, lb, sleeper):
    peer_serves(lb)
    lb.pidfile(lb.lookup["keepalived"]["pidfiles"][0], alive=False)
    with open(lb.lookup["keepalived"]["pidfiles"][1], "w", encoding="utf-8") as handle:
        handle.write(f"{sleeper.pid}\n")
    havip.inject("kill_keepalived", confirm=True)
    assert sleeper.wait(timeout=5) == -signal.SIGKILL


def test_inject_kill_haproxy_raises_when_haproxy_is_not_running(havip, lb):
    peer_serves(lb)
    lb.haproxy(alive=False)
    with pytest.raises(CommandExecutionError, match="HAProxy is not running here"):
        havip.inject("kill_haproxy", confirm=True)


def test_inject_an_unknown_failure_names_the_known_ones(havip, lb):
    with pytest.raises(CommandExecutionError) as error:
        havip.inject("unplug_power", confirm=True)
    assert "unknown failure 'unplug_power'" in str(error.value)
    assert "known: kill_haproxy, stop_haproxy, kill_keepalived, link_down" in str(error.value)


@pytest.mark.parametrize("failure", havip_facts.FAILURES)
@pytest.mark.parametrize("confirm", [False, "yes", 1])
def test_inject_refuses_without_confirm_true_and_says_how_to_confirm(havip, lb, sleeper, failure, confirm):
    peer_serves(lb)
    lb.pidfile(lb.lookup["haproxy"]["pidfile"])
    with pytest.raises(CommandExecutionError, match=(
            rf"^havip.inject: refused, {failure} breaks svr1 on purpose: confirm with confirm=True"
            rf" \(salt svr1 havip.inject {failure} confirm=True\)$")):
        havip.inject(failure, duration=1, confirm=confirm)
    assert lb.host.calls == [] and lb.host.stopped == [] and lb.http_calls == []


@pytest.mark.parametrize("failure", havip_facts.FAILURES)
def test_inject_refuses_when_no_other_balancer_serves(havip, lb, failure):
    with pytest.raises(CommandExecutionError, match=(
            r"^havip.inject: refused, no other healthy balancer could take over the VIPs \(svr2: its HAProxy"
            r" did not answer http://192.168.100.14:1080/havip-backends")):
        havip.inject(failure, duration=1, confirm=True)
    assert lb.host.calls == [] and lb.host.stopped == []
    assert lb.http_calls == [(PEER_HEALTH_URL, None)]  # without credentials


RESTORE_UNIT = "havip-link-restore-ens32"


def test_inject_link_down_schedules_its_restore_before_the_link_goes_down(havip, lb):
    peer_serves(lb)
    lb.host.routes = [
        {"dst": "10.99.0.0/16", "gateway": "192.168.100.1", "dev": "ens32", "protocol": "static"},
        {"dst": "default", "gateway": "192.168.100.1", "dev": "ens32", "metric": 100},
        {"dst": "192.168.100.0/24", "dev": "ens32", "protocol": "kernel", "scope": "link"},
    ]
    assert havip.inject("link_down", duration=0.01, confirm=True)["failure"] == "link_down"
    batch = os.path.join(havip_facts.LINK_RESTORE_DIR, "link-restore-ens32.batch")
    assert lb.host.calls == [
        ["ip", "-j", "route", "show", "dev", "ens32"],
        ["systemd-run", "--on-active=2010ms", f"--unit={RESTORE_UNIT}", "--collect", "ip", "-force", "-batch", batch],
        ["ip", "link", "set", "dev", "ens32", "down"],
        ["ip", "-force", "-batch", batch],
        ["systemctl", "stop", f"{RESTORE_UNIT}.timer"],
    ]
    assert lb.host.batches == ["link set dev ens32 up\n"
                               "route replace 10.99.0.0/16 via 192.168.100.1 dev ens32\n"
                               "route replace default via 192.168.100.1 dev ens32 metric 100\n"]
    assert stat.S_IMODE(os.stat(batch).st_mode) == 0o600


class JobKilled(BaseException):
    """The salt job's process ends (SIGKILL, a minion restart)."""


def test_inject_link_down_is_restored_by_its_timer_when_the_job_is_killed(havip, lb, monkeypatch, fake_time):
    """The timer is set up before the link goes down; a job killed while it
    is down never stops it."""
    class Killed(fake_time):
        def sleep(self, seconds):
            raise JobKilled()
    peer_serves(lb)
    monkeypatch.setattr(havip_host, "time", Killed())
    with pytest.raises(JobKilled):
        havip.inject("link_down", duration=5, confirm=True)
    assert [cmd[:2] for cmd in lb.host.calls] == [["ip", "-j"], ["systemd-run", "--on-active=7000ms"], ["ip", "link"]]


@pytest.mark.parametrize("route", [
    {"dst": "10.99.0.0/16 via 6.6.6.6", "gateway": "192.168.100.1"},
    {"dst": "10.99.0.0/16", "gateway": "192.168.100.1; reboot"},
    {"dst": "10.99.0.0/16", "gateway": "192.168.100.1", "metric": "100\nlink set dev lo down"},
    {"dst": "10.99.0.0/16", "gateway": "192.168.100.1", "metric": -1},
    {"gateway": "192.168.100.1"},
], ids=["dst", "gateway", "metric-text", "metric-negative", "no-dst"])
def test_inject_link_down_refuses_a_route_it_could_not_rebuild_before_anything(havip, lb, route):
    peer_serves(lb)
    lb.host.routes = [route]
    with pytest.raises(CommandExecutionError, match=r"^havip.inject: refused, a route through ens32 that the"
                                                    r" restore could not rebuild"):
        havip.inject("link_down", duration=1, confirm=True)
    assert lb.host.calls == [["ip", "-j", "route", "show", "dev", "ens32"]]


def test_inject_link_down_refuses_when_its_restore_cannot_be_scheduled(havip, lb):
    peer_serves(lb)
    lb.host.systemd_run_retcode = 1
    with pytest.raises(CommandExecutionError, match=r"^havip.inject: refused, the restore of ens32 could not be"
                                                    r" scheduled \(systemd-run: Failed to start transient timer"):
        havip.inject("link_down", duration=1, confirm=True)
    assert lb.host.commands("ip", "link") == []


def test_inject_link_down_leaves_the_timer_to_try_again_when_its_restore_fails(havip, lb):
    peer_serves(lb)
    lb.host.batch_retcode = 1
    with pytest.raises(CommandExecutionError, match=r"^havip.inject: restoring ens32 \(RTNETLINK answers: Network"
                                                    r" is unreachable\) failed; its systemd timer tries again 2 s"
                                                    r" later$"):
        havip.inject("link_down", duration=0.01, confirm=True)
    assert lb.host.commands("systemctl") == []


# The pillar's check of an interface name (the kernel's), "." and ".." too.
@pytest.mark.parametrize("interface", ["ens32 up; x", ".", "..", "a" * 16])
def test_inject_link_down_refuses_an_interface_name_its_restore_cannot_carry(havip, deploy, interface):
    rig = in_service(deploy("svr1"), "MASTER 150\n")
    peer_serves(rig)
    rig.facts["vips"]["VI_1"]["interface"] = interface
    rig.facts_file.write_text(json.dumps(rig.facts))
    with pytest.raises(CommandExecutionError, match=rf"refused, '{re.escape(interface)}' is not an interface name"):
        havip.inject("link_down", duration=1, confirm=True)
    assert rig.host.calls == []


@pytest.mark.parametrize("duration", [0, -1, 121, "5", True])
def test_inject_link_down_rejects_a_bad_duration(havip, lb, duration):
    with pytest.raises(CommandExecutionError, match=r"duration must be above 0 and at most 120 s"):
        havip.inject("link_down", duration=duration, confirm=True)
    assert lb.host.calls == []


def test_inject_stop_haproxy_raises_when_the_service_module_fails(havip, lb):
    peer_serves(lb)
    lb.host.service_retcode = 1
    with pytest.raises(CommandExecutionError, match=r"service.stop haproxy failed"):
        havip.inject("stop_haproxy", confirm=True)


def test_inject_stop_haproxy_uses_salts_service_module(havip, lb):
    peer_serves(lb)
    havip.inject("stop_haproxy", confirm=True)
    assert lb.host.stopped == ["haproxy"]
    assert lb.host.calls == []


# ---- rolling deploys: havip.drain / havip.ready ----------------------------------

SOCKET = "/run/haproxy/admin.sock"
DRAIN = "set server havip_backends/nginx1 state drain"
READY = "set server havip_backends/nginx1 state ready"
SAVE = "show servers state"
# `show servers state` of an HAProxy with no server out of rotation.
NO_SERVER_OUT = server_state.state(server_state.line("nginx1"), server_state.line("nginx2", address="192.168.100.12"))


def stat_csv(**servers):
    """`show stat` CSV with the havip backend servers as name=(status, scur)."""
    rows = [f"havip_backends,{name},{scur},{status}" for name, (status, scur) in servers.items()]
    return "\n".join(["# pxname,svname,scur,status", "havip_backends,FRONTEND,0,OPEN", *rows,
                      "havip_backends,BACKEND,0,UP", "stats,FRONTEND,0,OPEN"]) + "\n"


class RuntimeApi:
    """HAProxy's runtime API: `show stat` answers the next of ``stats`` (the
    last one repeats), `show servers state` ``servers_state``, `set server`
    answers ``answer`` (empty: done); with ``error`` every command raises
    it."""

    def __init__(self, *stats, answer="\n", error=None, servers_state=NO_SERVER_OUT):
        self.stats = list(stats)
        self.answer = answer
        self.error = error
        self.servers_state = servers_state
        self.calls = []

    def __call__(self, path, command, timeout=2.0):
        self.calls.append((path, command))
        if self.error:
            raise self.error
        if command == "show stat":
            return self.stats.pop(0) if len(self.stats) > 1 else self.stats[0]
        if command == "show servers state":
            return self.servers_state
        return self.answer

    def commands(self):
        assert {path for path, _ in self.calls} <= {SOCKET}
        return [command for _, command in self.calls]


@pytest.fixture
def api(havip, monkeypatch):
    """Factory: installs a RuntimeApi as the module's runtime API (after the
    Rig has put its own)."""
    def install(*stats, **kwargs):
        fake = RuntimeApi(*stats, **kwargs)
        monkeypatch.setattr(havip_haproxy, "runtime_api", fake)
        return fake
    return install


# ---- havip.drain / havip.ready --------------------------------------------------


def test_drain_sets_the_server_to_drain_and_returns_once_its_sessions_ended(havip, lb, api):
    fake = api(stat_csv(nginx1=("UP", 3), nginx2=("UP", 1)),
               stat_csv(nginx1=("DRAIN", 2), nginx2=("UP", 2)),
               stat_csv(nginx1=("DRAIN", 0), nginx2=("UP", 3)))
    result = havip.drain("nginx1")
    assert fake.commands() == ["show stat", DRAIN, SAVE, "show stat", "show stat"]
    assert result["server"] == "nginx1" and result["state"] == "drain"
    assert 0.1 <= result["took_s"] < 2  # one poll while 2 sessions were left


def test_drain_refuses_when_no_other_server_is_up_and_changes_nothing(havip, lb, api):
    fake = api(stat_csv(nginx1=("UP", 5), nginx2=("DOWN", 0)))
    refused = (r"^havip.drain: refused, no other backend server is UP here \(nginx2 DOWN\);"
               r" draining nginx1 would leave none to answer$")
    with pytest.raises(CommandExecutionError, match=refused):
        havip.drain("nginx1")
    assert fake.commands() == ["show stat"]


def test_drain_raises_when_sessions_outlast_the_timeout_and_the_server_stays_drained(havip, lb, api):
    fake = api(stat_csv(nginx1=("DRAIN", 2), nginx2=("UP", 0)))
    with pytest.raises(CommandExecutionError, match=r"nginx1 still has 2 sessions after 0.3 s;"
                                                    r" it stays drained \(havip.ready nginx1 puts it back\)"):
        havip.drain("nginx1", timeout=0.3)
    assert fake.commands().count(DRAIN) == 1
    assert READY not in fake.commands()


def test_drain_names_haproxys_answer_when_it_refuses_the_command(havip, lb, api):
    api(stat_csv(nginx1=("UP", 0), nginx2=("UP", 0)), answer="Permission denied.\n")
    with pytest.raises(CommandExecutionError, match=rf"HAProxy refused `{DRAIN}`: Permission denied.$"):
        havip.drain("nginx1")


@pytest.mark.parametrize("function", ["drain", "ready"])
def test_drain_and_ready_raise_when_the_runtime_api_does_not_answer(havip, lb, api, function):
    api(error=ConnectionRefusedError("[Errno 111] Connection refused"))
    with pytest.raises(CommandExecutionError, match=r"HAProxy's runtime API \(/run/haproxy/admin.sock\)"
                                                    r" did not answer: \[Errno 111\] Connection refused"):
        getattr(havip, function)("nginx1")


@pytest.mark.parametrize("function", ["drain", "ready"])
def test_drain_and_ready_refuse_an_unknown_server_without_asking_haproxy(havip, lb, api, function):
    fake = api(stat_csv(nginx1=("UP", 0), nginx2=("UP", 0)))
    with pytest.raises(CommandExecutionError, match=rf"^havip.{function}: unknown backend server 'nginx9'"
                                                    r" \(known: nginx1, nginx2\)$"):
        getattr(havip, function)("nginx9")
    assert fake.calls == []


@pytest.mark.parametrize("function", ["drain", "ready"])
def test_drain_and_ready_refuse_on_a_backend(havip, backend, function):
    with pytest.raises(CommandExecutionError, match="nginx1 is not a balancer"):
        getattr(havip, function)("nginx2")


@pytest.mark.parametrize("function", ["drain", "ready"])
@pytest.mark.parametrize("timeout", [0, -1, 3601, "30", True])
def test_drain_and_ready_reject_a_bad_timeout(havip, lb, api, function, timeout):
    fake = api(stat_csv(nginx1=("UP", 0), nginx2=("UP", 0)))
    with pytest.raises(CommandExecutionError, match=rf"havip.{function}: timeout must be above 0 and at most"):
        getattr(havip, function)("nginx1", timeout=timeout)
    assert fake.calls == []


def test_drain_without_a_stats_socket_line_names_the_pillar_key(havip, deploy):
    without_stats_socket(deploy("svr1"))
    with pytest.raises(CommandExecutionError, match=re.escape("havip.drain: " + NO_SOCKET)):
        havip.drain("nginx1")


def test_drain_uses_the_stats_socket_of_global_extra(havip, deploy, api):
    in_service(deploy("svr1", socket_in_global_extra), "MASTER 150\n")
    fake = api(stat_csv(nginx1=("UP", 0), nginx2=("UP", 1)))
    assert havip.drain("nginx1")["state"] == "drain"
    assert DRAIN in fake.commands()


def test_ready_sets_the_server_ready_and_returns_once_haproxy_sees_it_up(havip, lb, api):
    fake = api(stat_csv(nginx1=("DOWN 1/2", 0), nginx2=("UP", 0)),
               stat_csv(nginx1=("UP", 0), nginx2=("UP", 0)))
    result = havip.ready("nginx1")
    # In rotation (DOWN, not DRAIN): no fresh checks asked for.
    assert fake.commands() == ["show stat", READY, SAVE, "show stat"]
    assert result["server"] == "nginx1" and result["state"] == "ready"


@pytest.mark.parametrize("out", ["DRAIN", "MAINT"])
def test_ready_of_a_server_out_of_rotation_waits_for_fresh_health_checks(havip, lb, api, out):
    """A deploy restarted it while drained: the UP its checks saw before
    says nothing of the new process, which may not listen yet; marked down
    first, it is UP again only after ``rise`` fresh checks pass (the app
    deploy's lab test lost a request per service without it)."""
    fake = api(stat_csv(nginx1=(out, 0), nginx2=("UP", 0)), stat_csv(nginx1=("DOWN 1/2", 0), nginx2=("UP", 0)),
               stat_csv(nginx1=("UP", 0), nginx2=("UP", 0)))
    havip.ready("nginx1")
    assert fake.commands() == ["show stat", "set server havip_backends/nginx1 health down", READY, SAVE,
                               "show stat", "show stat"]


def test_a_drain_is_saved_in_the_server_state_file_that_haproxy_loads_at_every_start(havip, lb, api):
    """Chaos seed 4445: a kill -9 of HAProxy's master (systemd restarts it)
    or any restart or reload brought a drained server back UP."""
    api(stat_csv(nginx1=("UP", 0), nginx2=("UP", 0)),
        servers_state=server_state.state(server_state.line("nginx1", admin=8),
                                         server_state.line("nginx2", address="192.168.100.12")))
    havip.drain("nginx1")
    saved = pathlib.Path(lb.lookup["haproxy"]["server_state_file"])
    assert saved.read_text() == server_state.HEADER + server_state.line("nginx1", admin=8)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def test_ready_saves_the_server_state_file_without_the_server(havip, lb, api):
    saved = pathlib.Path(lb.lookup["haproxy"]["server_state_file"])
    saved.write_text(server_state.HEADER + server_state.line("nginx1", admin=8))
    api(stat_csv(nginx1=("DRAIN", 0), nginx2=("UP", 0)), stat_csv(nginx1=("UP", 0), nginx2=("UP", 0)),
        servers_state=server_state.state(server_state.line("nginx1"),
                                         server_state.line("nginx2", address="192.168.100.12")))
    havip.ready("nginx1")
    assert saved.read_text() == server_state.HEADER


def test_a_drain_that_cannot_be_saved_says_that_a_restart_would_not_keep_it(havip, lb, api):
    api(stat_csv(nginx1=("UP", 0), nginx2=("UP", 0)), servers_state="2\n")
    with pytest.raises(CommandExecutionError, match=r"^havip.drain: nginx1 is drained in HAProxy, but a restart or"
                                                    r" reload would not keep it: HAProxy's `show servers state` is"
                                                    r" not of version 1 \(it starts '2'\);"
                                                    r" .*/server-state not saved$"):
        havip.drain("nginx1")


def test_save_server_state_without_haproxy_keeps_what_the_deployed_model_still_has(havip, lb, api):
    """A config change while HAProxy is stopped: the file's own servers,
    those gone or moved to another port left out."""
    saved = pathlib.Path(lb.lookup["haproxy"]["server_state_file"])
    saved.write_text(server_state.HEADER + server_state.line("nginx1", admin=8, port=8080)
                     + server_state.line("nginx2", admin=8, address="192.168.100.12"))
    api(error=ConnectionRefusedError("[Errno 111] Connection refused"))
    result = havip.save_server_state()
    assert result == {"file": str(saved), "out_of_rotation": ["havip_backends/nginx2"]}
    assert saved.read_text() == server_state.HEADER + server_state.line("nginx2", admin=8, address="192.168.100.12")


def test_save_server_state_refuses_on_a_backend(havip, backend):
    with pytest.raises(CommandExecutionError, match="nginx1 is not a balancer"):
        havip.save_server_state()


def test_ready_raises_naming_the_status_when_the_server_does_not_come_up(havip, lb, api):
    api(stat_csv(nginx1=("DOWN", 0), nginx2=("UP", 0)))
    with pytest.raises(CommandExecutionError, match=r"^havip.ready: nginx1 is in rotation again but not UP"
                                                    r" after 0.3 s \(DOWN\): its health checks fail$"):
        havip.ready("nginx1", timeout=0.3)


# ---- several services and pools (test/unit/utils/test_havip_services.py's two_services) ----------


def shop_csv(**pools):
    """`show stat` CSV of the two services' model: its frontends shop (5
    sessions) and db, and each pool's servers as pool={server: (status,
    scur)} (the weight is 10 with 2 sessions and more, else 1)."""
    rows = [f"{pool},{name},{scur},{status},{10 if scur > 1 else 1}"
            for pool, servers in pools.items() for name, (status, scur) in servers.items()]
    return "\n".join(["# pxname,svname,scur,status,weight", "shop,FRONTEND,5,OPEN,", "db,FRONTEND,0,OPEN,", *rows,
                      *(f"{pool},BACKEND,0,UP,1" for pool in pools)]) + "\n"


@pytest.fixture
def shop(deploy):
    """svr1 in service with the two services: shop (pools web, api,
    static) and db (pool sql)."""
    return in_service(deploy("svr1", two_services), "MASTER 150\n")


UP2 = {"web": {"nginx1": ("UP", 0), "nginx2": ("UP", 1)}, "api": {"app1": ("UP", 0), "app2": ("UP", 3)},
       "static": {"nginx1": ("UP", 0)}, "sql": {"app1": ("UP", 0)}}


def test_standby_with_services_refuses_when_the_peer_has_a_pool_with_no_server_up(havip, shop):
    shop.http[PEER_HEALTH_URL] = urllib.error.HTTPError(PEER_HEALTH_URL, 503, "Service Unavailable", {}, None)
    with pytest.raises(CommandExecutionError, match="svr2: its HAProxy has a pool with no server UP"):
        havip.standby()
    assert shop.standby_value() == "0"


def test_status_of_several_pools_and_services(havip, shop):
    shop.stats = shop_csv(web={"nginx1": ("UP", 2), "nginx2": ("DRAIN", 0)},
                          api={"app1": ("UP 1/2", 0), "app2": ("MAINT", 0), "legacy": ("DOWN", 0)},
                          static={"nginx1": ("DOWN 1/2", 0)})
    haproxy = havip.status()["haproxy"]
    assert haproxy["backends"] == {"web/nginx1": "UP", "web/nginx2": "DRAIN", "api/app1": "UP 1/2",
                                   "api/app2": "MAINT", "api/legacy": "DOWN", "static/nginx1": "DOWN 1/2"}
    assert haproxy["pools"]["web"] == {"nginx1": {"status": "UP", "weight": 10, "sessions": 2},
                                       "nginx2": {"status": "DRAIN", "weight": 1, "sessions": 0}}
    assert haproxy["pools"]["sql"] == {"app1": {"status": None, "weight": None, "sessions": None}}
    assert sorted(haproxy["pools"]) == ["api", "sql", "static", "web"]
    assert haproxy["services"] == {"db": {"status": "OPEN", "sessions": 0}, "shop": {"status": "OPEN", "sessions": 5}}
    verdict = havip.check()
    assert verdict["reasons"] == ["no server is UP in pool sql (none)",
                                  "no server is UP in pool static (nginx1 DOWN 1/2)"]
    assert havip.__context__["retcode"] == 1


@pytest.mark.parametrize("reference", ["api/app2", "app2"])
def test_drain_of_a_pools_server_sets_it_to_drain_in_its_pool(havip, shop, api, reference):
    fake = api(shop_csv(**UP2), shop_csv(**{**UP2, "api": {"app1": ("UP", 0), "app2": ("DRAIN", 0)}}))
    result = havip.drain(reference)
    assert fake.commands() == ["show stat", "set server api/app2 state drain", SAVE, "show stat"]
    assert {key: result[key] for key in ("server", "pool", "state")} == {"server": reference, "pool": "api",
                                                                        "state": "drain"}


def test_drain_refuses_when_no_other_server_of_its_pool_is_up_whatever_the_other_pools(havip, shop, api):
    fake = api(shop_csv(**{**UP2, "web": {"nginx1": ("UP", 0), "nginx2": ("DOWN", 0)}}))
    with pytest.raises(CommandExecutionError, match=r"^havip.drain: refused, no other server of pool web is UP here"
                                                    r" \(nginx2 DOWN\); draining web/nginx1 would leave none to"
                                                    r" answer$"):
        havip.drain("web/nginx1")
    assert fake.commands() == ["show stat"]
    # The only server of static is nginx1 too, but another server of web is UP.
    fake = api(shop_csv(**UP2))
    assert havip.drain("web/nginx1")["pool"] == "web"
    assert "set server web/nginx1 state drain" in fake.commands()


def test_drain_waits_for_the_sessions_of_the_server_in_its_pool_and_names_it(havip, shop, api):
    api(shop_csv(**{**UP2, "api": {"app1": ("UP", 0), "app2": ("DRAIN", 2)}, "sql": {"app1": ("UP", 0)}}))
    with pytest.raises(CommandExecutionError, match=r"^havip.drain: api/app2 still has 2 sessions after 0.3 s; it"
                                                    r" stays drained \(havip.ready api/app2 puts it back\)$"):
        havip.drain("app2", timeout=0.3)


def test_ready_of_a_pools_server_waits_until_it_is_up_in_its_pool(havip, shop, api):
    fake = api(shop_csv(**{**UP2, "sql": {"app1": ("DOWN 1/2", 0)}}), shop_csv(**UP2))
    result = havip.ready("sql/app1")
    assert fake.commands() == ["show stat", "set server sql/app1 state ready", SAVE, "show stat"]
    assert (result["server"], result["pool"], result["state"]) == ("sql/app1", "sql", "ready")
    api(shop_csv(**{**UP2, "sql": {"app1": ("DOWN", 0)}}))
    with pytest.raises(CommandExecutionError, match=r"^havip.ready: sql/app1 is in rotation again but not UP after"
                                                    r" 0.3 s \(DOWN\): its health checks fail$"):
        havip.ready("sql/app1", timeout=0.3)


@pytest.mark.parametrize("function", ["drain", "ready"])
@pytest.mark.parametrize("reference, refusal", [
    ("nginx1", "server 'nginx1' is in the pools static and web: name one of them (static/nginx1 or web/nginx1)"),
    ("shop/app1", "unknown pool 'shop' in 'shop/app1' (pools: api, sql, static, web)"),
    ("sql/app2", "unknown server 'app2' in pool sql (its servers: app1)"),
    ("sql/app1 state maint\nset server web/nginx1", "unknown server 'app1 state maint\\nset server web/nginx1' in"
                                                    " pool sql (its servers: app1)"),
    ("app9", "unknown backend server 'app9' (known: api/app1, api/app2, api/legacy, sql/app1, static/nginx1,"
             " web/nginx1, web/nginx2)"),
])
def test_drain_and_ready_refuse_a_name_of_no_server_or_of_several_without_asking_haproxy(
        havip, shop, api, function, reference, refusal):
    fake = api(shop_csv(**UP2))
    with pytest.raises(CommandExecutionError, match=f"^{re.escape(f'havip.{function}: {refusal}')}$"):
        getattr(havip, function)(reference)
    assert fake.calls == []


def test_probe_ends_early_once_its_stop_file_exists(havip, tmp_path, monkeypatch):
    stop_file = tmp_path / "stop"

    def fetch(url, timeout, cafile):
        fetch.calls += 1
        if fetch.calls == 3:
            stop_file.touch()
        return "nginx1"
    fetch.calls = 0
    monkeypatch.setattr(havip_probe, "fetch_body", fetch)
    report = havip.probe(url="http://vip/", seconds=60, rate=50, stop_file=str(stop_file))
    assert 3 <= report["total"] <= 10 and report["failed"] == 0
    assert report["duration_s"] < 5


# ---- the handover, as status and check see it ----------------------------------

VIP6 = "fd00::10"


@pytest.fixture
def svr2(deploy):
    """svr2, the backup: in service, not holding the VIP, relaying to svr1."""
    rig = in_service(deploy("svr2"), "BACKUP 100\n")
    rig.host.addresses = [[SVR2]]
    rig.host.nft_tables[("ip", "havip_relay_VI_1")] = relay_table("VI_1", VIP, [SVR1])
    return rig


@pytest.fixture
def clock(havip, monkeypatch, fake_time):
    """The module's clock: 1_700_000_000 + ``now`` s, the time of the VRRP
    state change in the Rig's state files."""
    clock = fake_time()
    monkeypatch.setattr(havip, "time", clock)
    return clock


def test_status_reads_each_vips_relay_table_and_conntracks_table(havip, svr2):
    report = havip.status()
    assert (report["relay"], report["tracking"]) == ({"VI_1": [SVR1]}, True)
    assert svr2.host.commands("nft") == [["nft", "-j", "list", "table", "ip", "havip_relay_VI_1"],
                                         ["nft", "-j", "list", "table", "inet", "havip_track"]]
    assert havip.check() == {"healthy": True, "reasons": [], "standby": False}


def test_status_names_every_peer_a_vip_is_relayed_to_once(havip, deploy):
    rig = in_service(deploy("svr2", with_vip6), "BACKUP 100\n")
    rig.host.addresses = [[SVR2]]
    rig.host.nft_tables[("ip6", "havip_relay_VI_6")] = relay_table("VI_6", VIP6, ["fd00::13", "fd00::15"], "ip6")
    assert havip.status()["relay"] == {"VI_6": ["fd00::13", "fd00::15"]}
    assert ["nft", "-j", "list", "table", "ip6", "havip_relay_VI_6"] in rig.host.commands("nft")


def test_the_holder_keeps_its_vip_on_lo_too_and_that_is_not_lingering(havip, lb):
    assert lb.host.lo == {VIP}
    vip = havip.status()["vips"]["VI_1"]
    assert (vip["held"], vip["lingering"]) == (True, False)


def test_a_vip_kept_on_lo_after_it_left_is_lingering_and_fine_while_its_handover_may_last(havip, svr2, clock):
    svr2.host.lo = {VIP}
    clock.now = 35  # release_max 30 s + 5 s after the VRRP state changed
    vip = havip.status()["vips"]["VI_1"]
    assert (vip["held"], vip["lingering"]) == (False, True)
    assert havip.check()["healthy"] is True


def test_a_vip_still_kept_on_lo_after_its_handover_should_have_ended_is_a_problem(havip, svr2, clock):
    svr2.host.lo = {VIP}
    clock.now = 40.2
    assert havip.check()["reasons"] == [
        "VIP VI_1 is still kept on lo 40 s after it left (its handover did not end: state.apply havip ends it)"]
    assert havip.__context__["retcode"] == 1


def test_a_vip_kept_on_lo_without_a_recorded_vrrp_state_is_a_problem(havip, svr2):
    svr2.host.lo = {VIP}
    os.remove(os.path.join(svr2.lookup["keepalived"]["state_dir"], "VI_1"))
    assert havip.check()["reasons"] == [
        "VIP VI_1 is still kept on lo after it left (its handover did not end: state.apply havip ends it)"]


def test_a_vip_not_held_here_without_a_relay_to_its_peers_is_a_problem(havip, svr2):
    del svr2.host.nft_tables[("ip", "havip_relay_VI_1")]
    assert havip.status()["relay"] == {}
    assert havip.check()["reasons"] == ["no handover relay for VIP VI_1 here: state.apply havip sets it up"]


def test_a_balancer_without_peers_needs_no_relay(havip, deploy):
    def svr1_alone(config):
        del config["nodes"]["svr2"]
    rig = in_service(deploy("svr1", svr1_alone), "BACKUP 150\n")
    rig.host.addresses = [[SVR1]]
    assert rig.facts["vips"]["VI_1"]["relay_to"] == []
    assert havip.check() == {"healthy": True, "reasons": [], "standby": False}


def test_conntrack_not_kept_on_for_the_handover_is_a_problem(havip, lb):
    del lb.host.nft_tables[("inet", "havip_track")]
    assert havip.status()["tracking"] is False
    assert havip.check()["reasons"] == [
        "conntrack is not kept on for the handover here (no table inet havip_track): state.apply havip sets it up"]


def test_status_without_nft_shows_no_relay_nor_tracking_and_runs_no_nft(havip, svr2, monkeypatch):
    monkeypatch.setattr(havip_relay.shutil, "which", lambda name: None)
    report = havip.status()
    assert (report["relay"], report["tracking"]) == ({}, False)
    assert svr2.host.commands("nft") == []


def test_standby_waits_for_the_vip_to_leave_its_interface_whatever_lo_keeps(havip, lb):
    peer_serves(lb)
    lb.host.addresses = [[SVR1, VIP], [SVR1]]
    assert lb.host.lo == {VIP}
    assert havip.standby(timeout=2)["moved"] == ["VI_1"]


def with_vip6(config):
    config["vips"]["VI_6"] = {"address": f"{VIP6}/64", "interface": "ens32", "virtual_router_id": 53}


# ---- probe: what it requests, what it reads -----------------------------------


@pytest.mark.parametrize("url", ["file:///etc/shadow", "FILE:///etc/shadow", "ftp://192.168.100.10/",
                                 "gopher://vip/", "http://user:pw@vip/", "http://[fe80::1%25ens32]/", "http://vip:0/",
                                 "http://vip:65536/", "http://vip/\nHost: evil", "http://vip/ x", "http://-vip/",
                                 "http://999.1.1.1/", "//vip/", "vip", "", ["http://vip/"], 42])
def test_probe_requests_only_an_http_or_https_url(havip, monkeypatch, url):
    """Before, havip.probe url=file:///etc/shadow returned the file's
    contents as the answering backend (the minion runs as root)."""
    monkeypatch.setattr(havip_probe, "measure", _no_network)
    with pytest.raises(CommandExecutionError, match=r"^havip.probe: url .* refused: not an http or https URL$"):
        havip.probe(url=url)


@pytest.mark.parametrize("url, requested", [("http://vip", "http://vip/"), ("https://Client.Example:8443/a?b=1",
                                                                         "https://client.example:8443/a?b=1"),
                                            ("http://[FD00::0010]:9090/", "http://[fd00::10]:9090/")])
def test_probe_requests_the_url_it_rebuilt(havip, monkeypatch, url, requested):
    seen = []
    monkeypatch.setattr(havip_probe, "measure", lambda url, *args, **kwargs: seen.append(url) or {"ok": True})
    assert havip.probe(url=url) == {"ok": True} and seen == [requested]


@pytest.mark.parametrize("url", ["http://192.168.100.10:9090/", "https://192.168.100.10/", "http://192.168.100.11/"])
def test_a_deployed_minion_probes_its_vips_and_nodes(havip, lb, monkeypatch, url):
    monkeypatch.setattr(havip_probe, "measure", lambda url, *args, **kwargs: {"url": url})
    assert havip.probe(url=url) == {"url": url}


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://vip/",
                                 "http://127.0.0.1:1080/"])
def test_a_deployed_minion_probes_nothing_else(havip, lb, monkeypatch, url):
    monkeypatch.setattr(havip_probe, "measure", _no_network)
    with pytest.raises(CommandExecutionError, match="refused: its host is none of this cluster's VIPs and nodes"):
        havip.probe(url=url)


PILLAR_CLUSTER = {"vips": {"VI_1": {"address": "192.168.100.10/24"}, "VI_X": {"address": ["not", "one"]}},
                  "nodes": {"svr1": {"address": "192.168.100.13"}, "nginx1": {}, "odd": "x"}}


def test_relay_addresses_are_this_balancers_own_from_its_grains_without_the_pillars_vips(havip):
    havip.__pillar__ = {"havip": PILLAR_CLUSTER}
    havip.__grains__.update(ip4_interfaces={"lo": ["127.0.0.1", "192.168.100.10"],
                                            "ens32": ["192.168.100.13", "192.168.100.10"]},
                            ip6_interfaces={"lo": ["::1"], "ens32": ["fe80::1"]})
    assert havip.relay_addresses() == {"ip4_interfaces": {"ens32": ["192.168.100.13"]},
                                       "ip6_interfaces": {"ens32": ["fe80::1"]}}


@pytest.mark.parametrize("url", ["http://192.168.100.10:9090/", "http://192.168.100.13/"])
def test_a_minion_with_the_havip_pillar_probes_its_vips_and_nodes(havip, monkeypatch, url):
    """The client: not deployed, but its pillar says which cluster it is of."""
    havip.__pillar__ = {"havip": PILLAR_CLUSTER}
    monkeypatch.setattr(havip_probe, "measure", lambda url, *args, **kwargs: {"url": url})
    assert havip.probe(url=url) == {"url": url}


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://vip/"])
def test_a_minion_with_the_havip_pillar_probes_nothing_else(havip, monkeypatch, url):
    havip.__pillar__ = {"havip": PILLAR_CLUSTER}
    monkeypatch.setattr(havip_probe, "measure", _no_network)
    with pytest.raises(CommandExecutionError, match="refused: its host is none of this cluster's VIPs and nodes"):
        havip.probe(url=url)


@pytest.mark.parametrize("key, value", [
    ("cafile", "/etc/../etc/shadow"), ("cafile", "ca.pem"), ("cafile", "/etc/ssl/ca pem"),
    ("cafile", "/etc/ssl/ca.pem\n"), ("cafile", 7),
    ("stop_file", "/tmp/a;b"), ("stop_file", "relative"), ("stop_file", "/tmp/x/.."), ("stop_file", ""),
])
def test_probe_refuses_a_cafile_or_stop_file_that_is_no_safe_absolute_path(havip, monkeypatch, key, value):
    monkeypatch.setattr(havip_probe, "measure", _no_network)
    with pytest.raises(CommandExecutionError, match=f"^havip.probe: {key} .* refused: not an absolute path"):
        havip.probe(url="http://vip/", **{key: value})


@pytest.mark.parametrize("host", ["*.example.com", "api example.com", "-api.example.com", "api-.example.com",
                                  "api.example.com\n", "api.example.com:80", "api_v2.example.com", "a" * 64 + ".com",
                                  "api..example.com", "", 7, ["api.example.com"]])
def test_probe_refuses_a_host_that_is_no_host_name(havip, monkeypatch, host):
    monkeypatch.setattr(havip_probe, "measure", _no_network)
    with pytest.raises(CommandExecutionError, match=r"^havip.probe: host .* refused: not a host name \(RFC 1123"):
        havip.probe(url="http://vip/", host=host)


def test_probe_asks_for_the_host_it_is_given_in_lower_case(havip, monkeypatch):
    seen = []
    monkeypatch.setattr(havip_probe, "measure", lambda *args, **kwargs: seen.append(kwargs) or {"ok": True})
    assert havip.probe(url="http://vip/v2", host="API.Example.com", seconds=5) == {"ok": True}
    assert havip.probe(url="http://vip/", seconds=5) == {"ok": True}
    assert [kwargs.get("host") for kwargs in seen] == ["api.example.com", None]
