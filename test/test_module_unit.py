"""
Fast tier: the havip execution module with mocked Salt dunders.

No daemon runs: the deployed facts file, the pid files, keepalived's state
files and the standby file live in tmp_path; `cmd.run_all`, HAProxy's
runtime API and HTTP are fakes.
"""

import copy
import importlib.util
import json
import os
import signal
import subprocess
import time

import pytest
import yaml
from salt.exceptions import CommandExecutionError

from test.saltcall import REPO, seed_pillar

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
PEER_STATS_URL = "http://192.168.100.14:1080/status;csv"


def load_module():
    spec = importlib.util.spec_from_file_location("havip_module", REPO / "_modules" / "havip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _no_network(*args, **kwargs):
    raise AssertionError(f"unexpected network access {args} {kwargs}")


@pytest.fixture
def havip(tmp_path, monkeypatch):
    module = load_module()
    module.__grains__ = {"kernel": "Linux", "id": "svr1"}
    module.__salt__ = {}
    module.__context__ = {}
    # Never the real /etc/havip/havip.json, never a real socket or URL.
    monkeypatch.setattr(module, "FACTS_FILE", str(tmp_path / "nothing-deployed.json"))
    module._runtime_api = _no_network
    module._get = _no_network
    return module


@pytest.fixture(scope="session")
def dead_pid():
    """The pid of a process that has exited and was reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def merge(base, over):
    """Recursive dict merge (lists replace), like slsutil.merge in map.jinja."""
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merged_seed():
    """The seed pillar merged over the defaults the way map.jinja does."""
    defaults = yaml.safe_load((REPO / "havip" / "parameters" / "defaults.yaml").read_text())["havip"]
    return merge(defaults, seed_pillar()["havip"])


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
        self.lo = set()              # what `ip addr replace/del ... dev lo` left there
        self.nft_scripts = []        # every script `nft -f -` was given
        self.nft_retcode = 0
        self.nft_tables = {}         # family -> `nft -j list table` answer of the relay table
        self.ip_retcode = 0
        self.haproxy_config_valid = True
        self.routes = []
        self.service_retcode = 0
        self.stopped = []

    @property
    def salt(self):
        return {"cmd.run_all": self.run_all, "service.stop": self.service_stop}

    def run_all(self, cmd, python_shell=True, ignore_retcode=False, stdin=None):
        assert python_shell is False, cmd
        self.calls.append(list(cmd))
        if cmd == ["ip", "-j", "addr", "show"]:
            if self.ip_retcode:
                return done(retcode=self.ip_retcode, stderr="boom")
            current = self.addresses.pop(0) if len(self.addresses) > 1 else self.addresses[0]
            return done(ip_addr_json(*current, lo=sorted(self.lo)))
        if cmd[:3] in (["ip", "addr", "replace"], ["ip", "addr", "del"]) and cmd[4:] == ["dev", "lo"]:
            (self.lo.add if cmd[2] == "replace" else self.lo.discard)(cmd[3].split("/")[0])
            return done()
        if cmd == ["nft", "-f", "-"]:
            self.nft_scripts.append(stdin)
            return done(retcode=self.nft_retcode, stderr="Error: syntax error" if self.nft_retcode else "")
        if cmd[:4] == ["nft", "-j", "list", "table"]:
            table = self.nft_tables.get(cmd[4])
            return done(json.dumps(table)) if table else done(retcode=1, stderr="No such file or directory")
        if cmd[:4] == ["haproxy", "-c", "-q", "-f"]:
            return done(retcode=0 if self.haproxy_config_valid else 1, stderr="[ALERT] bad")
        if cmd[:5] == ["ip", "-j", "route", "show", "dev"]:
            return done(json.dumps(self.routes))
        if cmd[:3] in (["ip", "link", "set"], ["ip", "route", "replace"]):
            return done()
        raise AssertionError(f"unexpected command {cmd}")

    def service_stop(self, name):
        self.stopped.append(name)
        return self.service_retcode == 0

    def commands(self, *prefix):
        return [cmd for cmd in self.calls if cmd[:len(prefix)] == list(prefix)]


class Rig:
    """One minion with havip deployed in tmp_path and every outside effect faked."""

    def __init__(self, havip, tmp_path, monkeypatch, dead_pid, minion, edit=None):
        self.havip, self.dead_pid = havip, dead_pid
        config = merged_seed()
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
        lookup["nginx"]["pidfile"] = str(run / "nginx.pid")
        self.facts, self.lookup = facts, lookup
        self.facts_file = tmp_path / "havip.json"
        self.facts_file.write_text(json.dumps(facts))
        monkeypatch.setattr(havip, "FACTS_FILE", str(self.facts_file))
        havip.__grains__["id"] = minion
        # The commands the module looks for are there (nft).
        monkeypatch.setattr(havip.shutil, "which", lambda name: f"/usr/sbin/{name}")

        self.host = FakeHost()
        havip.__salt__ = self.host.salt
        self.stats = STATS_CSV          # the runtime API's answer (or an exception)
        self.api_calls = []
        havip._runtime_api = self.runtime_api
        self.http = {}                  # url -> (status, body) or exception
        self.http_calls = []
        havip._get = self.get

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
def deploy(havip, tmp_path, monkeypatch, dead_pid):
    """Factory: a Rig for the given minion id (and an optional config edit)."""
    def make(minion, edit=None):
        return Rig(havip, tmp_path, monkeypatch, dead_pid, minion, edit)
    return make


def in_service(rig, vrrp):
    """A balancer's Rig with HAProxy and keepalived running, in ``vrrp``
    (its state file), not on standby."""
    rig.haproxy()
    rig.keepalived()
    rig.vrrp(vrrp)
    rig.set_standby(0)
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


def peer_serves(rig, csv=STATS_CSV):
    rig.http[PEER_STATS_URL] = (200, csv)


# ---- __virtual__ and validate -----------------------------------------------


def test_virtual_refuses_non_linux_with_a_reason(havip):
    havip.__grains__ = {"kernel": "Windows"}
    assert havip.__virtual__()[0] is False
    havip.__grains__ = {"kernel": "Linux"}
    assert havip.__virtual__() == "havip"


def test_validate_derives_roles_backends_and_balancers(havip):
    config = havip.validate(merged_seed(), "svr1")
    assert config["roles"] == ["balancer"]
    assert config["node"]["priority"] == 150
    assert [n["name"] for n in config["backends"]] == ["nginx1", "nginx2"]
    assert [n["name"] for n in config["balancers"]] == ["svr1", "svr2"]
    assert config["vips"]["VI_1"]["address"] == "192.168.100.10"
    assert config["vips"]["VI_1"]["cidr"] == "192.168.100.10/24"


def test_validate_ranks_the_balancers_of_each_vip_by_its_own_priorities(havip):
    config = merged_seed()
    config["nodes"]["svr3"] = {"roles": ["balancer"], "address": "192.168.100.15"}  # priority 100
    config["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32",
                              "virtual_router_id": 52, "priorities": {"svr2": 200}}
    vips = havip.validate(config, "svr1")["vips"]
    assert vips["VI_1"]["priorities"] == {"svr1": 150, "svr2": 100, "svr3": 100}
    # Equal priorities: the higher address wins, as in VRRP.
    assert vips["VI_1"]["order"] == ["svr1", "svr3", "svr2"]
    assert vips["VI_2"]["priorities"] == {"svr1": 150, "svr2": 200, "svr3": 100}
    assert vips["VI_2"]["order"] == ["svr2", "svr1", "svr3"]
    assert vips["VI_2"]["unicast"] is False


def seed_with_nginx2_in_the_mine(mine):
    """The seed with nginx2's address left to the Salt mine; ``mine`` is
    what mine.get answers per minion."""
    havip_mine_calls = []

    def mine_get(tgt, fun):
        havip_mine_calls.append((tgt, fun))
        return {tgt: mine[tgt]} if tgt in mine else {}
    config = merged_seed()
    config["mine"] = {"network": "192.168.100.0/24", "interface": None}
    del config["nodes"]["nginx2"]["address"]
    return config, mine_get, havip_mine_calls


def test_validate_takes_a_backends_address_from_the_salt_mine(havip):
    config, mine_get, calls = seed_with_nginx2_in_the_mine({"nginx2": ["192.168.100.12"]})
    havip.__salt__ = {"mine.get": mine_get}
    nodes = havip.validate(config, "svr1")["nodes"]
    assert nodes["nginx2"]["address"] == "192.168.100.12"
    assert nodes["nginx2"]["discovered"] is True and nodes["nginx1"]["discovered"] is False
    assert calls == [("nginx2", "havip_address")]


def test_validate_on_the_backend_itself_takes_its_address_from_its_interfaces(havip):
    config, mine_get, calls = seed_with_nginx2_in_the_mine({})
    asked = []
    havip.__salt__ = {"mine.get": mine_get,
                      "network.ip_addrs": lambda **kw: asked.append(kw) or ["192.168.100.12"]}
    config = havip.validate(config, "nginx2")
    assert config["node"]["address"] == "192.168.100.12"
    assert asked == [{"cidr": "192.168.100.0/24"}] and calls == []
    assert config["mine_args"] == {"cidr": "192.168.100.0/24"}


def test_a_balancer_refuses_a_backend_that_has_not_published_its_address(havip):
    config, mine_get, _ = seed_with_nginx2_in_the_mine({})
    havip.__salt__ = {"mine.get": mine_get}
    with pytest.raises(CommandExecutionError, match="havip:nodes:nginx2:address: is not in the Salt mine yet"
                                                    r" \(havip_address\): apply havip on nginx2 first"):
        havip.validate(config, "svr1")
    # Another backend does not need it.
    assert havip.validate(config, "nginx1")["nodes"]["nginx2"]["address"] is None


def test_a_balancer_always_needs_its_address_in_the_pillar(havip):
    config, mine_get, _ = seed_with_nginx2_in_the_mine({})
    del config["nodes"]["svr2"]["address"]
    havip.__salt__ = {"mine.get": mine_get}
    with pytest.raises(CommandExecutionError, match="havip:nodes:svr2:address: is required$"):
        havip.validate(config, "svr1")


def test_validate_gives_an_unlisted_minion_no_roles(havip):
    assert havip.validate(merged_seed(), "elsewhere")["roles"] == []


def test_validate_accepts_json_from_the_command_line(havip):
    assert havip.validate(json.dumps(merged_seed()), "nginx1")["roles"] == ["backend"]


def test_validate_errors_are_command_execution_errors(havip):
    config = merged_seed()
    config["nodes"]["svr1"]["priority"] = 300
    with pytest.raises(CommandExecutionError, match="havip:nodes:svr1:priority"):
        havip.validate(config, "svr1")


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
    with pytest.raises(CommandExecutionError, match="run state.apply havip first"):
        havip.config()


# ---- status -----------------------------------------------------------------


def test_status_raises_when_the_facts_file_is_missing(havip):
    with pytest.raises(CommandExecutionError, match="nothing is deployed on this minion"):
        havip.status()


def test_status_of_a_master_balancer_holding_the_vip(havip, lb):
    assert havip.status() == {
        "roles": ["balancer"],
        "vips": {"VI_1": {"address": VIP, "interface": "ens32", "held": True, "lingering": False,
                          "state": "MASTER", "since": 1_700_000_000, "priority": 150}},
        "standby": False,
        "keepalived": {"running": True},
        "haproxy": {"running": True, "config_valid": True,
                    "backends": {"nginx1": "UP", "nginx2": "DOWN"}},
        "relay": {},
    }
    assert lb.api_calls == [("/run/haproxy/admin.sock", "show stat")]
    assert lb.host.commands("haproxy") == [["haproxy", "-c", "-q", "-f", lb.lookup["haproxy"]["config"]]]


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
    assert vip["since"] is None


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


def test_status_reports_a_missing_stats_socket_line(havip, deploy):
    def no_socket(config):
        config["haproxy"]["global"] = ["daemon"]
    rig = deploy("svr1", no_socket)
    rig.haproxy()
    rig.keepalived()
    assert havip.status()["haproxy"]["error"] == "no `stats socket` line in havip:haproxy:global"
    assert rig.api_calls == []


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
    assert "svr2: its stats page http://192.168.100.14:1080/status;csv did not answer" in str(error.value)
    assert lb.standby_value() == "0"
    assert lb.http_calls == [(PEER_STATS_URL, ("admin", "change-me"))]


def test_standby_refuses_when_the_peer_has_no_backend_up(havip, lb):
    peer_serves(lb, ALL_DOWN_CSV)
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
    assert 0 <= result["seconds"] < 2
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
    with pytest.raises(CommandExecutionError, match="no balancer took over VI_1 within 0.2 s; standby undone"):
        havip.standby(timeout=0.2)
    assert lb.standby_value() == "0"


def test_standby_when_already_on_standby_changes_nothing(havip, lb):
    lb.set_standby(1)
    assert havip.standby() == {"standby": True, "changed": False, "moved": [], "seconds": 0.0}
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
    with pytest.raises(CommandExecutionError, match="in service again, but VI_1 did not come back within 0.2 s"):
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
    assert havip.resume() == {"standby": False, "changed": False, "moved": [], "seconds": 0.0}
    assert lb.standby_value() == "0"


@pytest.mark.parametrize("call", [
    lambda havip: havip.standby(),
    lambda havip: havip.resume(),
    lambda havip: havip.inject("kill_haproxy"),
], ids=["standby", "resume", "inject"])
def test_balancer_functions_refuse_on_a_backend(havip, backend, call):
    with pytest.raises(CommandExecutionError, match="nginx1 is not a balancer"):
        call(havip)


# ---- measure / probe --------------------------------------------------------


def requests_every(period, answers):
    """[sent, body] of requests sent every ``period`` s from 0."""
    return [[index * period, body] for index, body in enumerate(answers)]


def test_summarize_counts_failures_and_the_longest_outage_of_a_recovered_run(havip):
    requests = requests_every(0.25, ["nginx1", "nginx2", None, None, None, "nginx1", "nginx2", "nginx1"])
    report = havip.summarize("http://vip:9090/", 1000.0, 2.0, requests)
    assert report == {
        "url": "http://vip:9090/",
        "started": 1000.0,
        "seconds": 2.0,
        "total": 8,
        "failed": 3,
        "first_failure": 0.5,
        "last_failure": 1.0,
        # from the first failed request (.5 s) to the next answered one (1.25 s)
        "longest_outage": 0.75,
        "recovered": True,
        "backends": {"nginx1": 3, "nginx2": 2},
    }


def test_summarize_reports_an_outage_lasting_to_the_end_as_not_recovered(havip):
    requests = requests_every(0.25, [None, "nginx1", None, None, "nginx2", None])
    report = havip.summarize("http://vip/", 1000.0, 1.5, requests)
    assert (report["total"], report["failed"]) == (6, 4)
    assert (report["first_failure"], report["last_failure"]) == (0.0, 1.25)
    # outages: 0 -> .25 (.25 s); .5 -> 1.0 (.5 s); 1.25 -> the end at 1.5 (.25 s)
    assert report["longest_outage"] == 0.5
    assert report["recovered"] is False
    assert report["backends"] == {"nginx1": 1, "nginx2": 1}


def test_summarize_without_failures_and_with_a_timeline(havip):
    report = havip.summarize("http://vip/", 1000.0, 1.0, requests_every(0.25, ["a"] * 4), timeline=True)
    assert (report["failed"], report["first_failure"], report["last_failure"]) == (0, None, None)
    assert report["longest_outage"] == 0.0
    assert report["recovered"] is True
    assert report["backends"] == {"a": 4}
    assert report["timeline"] == [[0.0, 1], [0.25, 1], [0.5, 1], [0.75, 1]]


def test_measure_keeps_its_schedule_while_requests_hang(havip, monkeypatch):
    """A lost request (it waits its whole timeout) does not delay the next."""
    def fetch(url, timeout):
        if fetch.calls.append(url) or len(fetch.calls) == 2:
            time.sleep(timeout)
            return None
        return "nginx1"
    fetch.calls = []
    monkeypatch.setattr(havip, "_fetch_body", fetch)
    report = havip.measure("http://vip/", 0.5, 20, 0.3)
    assert (report["total"], report["failed"]) == (10, 1)
    assert report["first_failure"] == report["last_failure"]
    assert report["first_failure"] < 0.1  # the 2nd request, sent at 0.05 s
    assert report["longest_outage"] < 0.1  # until the 3rd, sent on time


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
    monkeypatch.setattr(havip, "measure", lambda *args, stop: seen.append((*args, stop)) or {"ok": True})
    assert havip.probe(seconds=5, rate=10) == {"ok": True}
    assert seen == [("http://192.168.100.10:9090/", 5.0, 10.0, 0.2, None)]


# ---- inject -----------------------------------------------------------------


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_inject_kill_haproxy_sends_sigkill_to_the_pids_in_the_pid_file(havip, lb, sleeper):
    with open(lb.lookup["haproxy"]["pidfile"], "w", encoding="utf-8") as handle:
        handle.write(f"{sleeper.pid}\n")
    result = havip.inject("kill_haproxy")
    assert result["failure"] == "kill_haproxy"
    assert sleeper.wait(timeout=5) == -signal.SIGKILL


def test_inject_kill_keepalived_sends_sigkill_to_its_processes(havip, lb, sleeper):
    lb.pidfile(lb.lookup["keepalived"]["pidfiles"][0], alive=False)
    with open(lb.lookup["keepalived"]["pidfiles"][1], "w", encoding="utf-8") as handle:
        handle.write(f"{sleeper.pid}\n")
    havip.inject("kill_keepalived")
    assert sleeper.wait(timeout=5) == -signal.SIGKILL


def test_inject_kill_haproxy_raises_when_haproxy_is_not_running(havip, lb):
    lb.haproxy(alive=False)
    with pytest.raises(CommandExecutionError, match="HAProxy is not running here"):
        havip.inject("kill_haproxy")


def test_inject_an_unknown_failure_names_the_known_ones(havip, lb):
    with pytest.raises(CommandExecutionError) as error:
        havip.inject("unplug_power")
    assert "unknown failure 'unplug_power'" in str(error.value)
    assert "known: kill_haproxy, stop_haproxy, kill_keepalived, link_down" in str(error.value)


def test_inject_link_down_takes_the_link_down_then_up_and_restores_gateway_routes(havip, lb):
    lb.host.routes = [
        {"dst": "10.99.0.0/16", "gateway": "192.168.100.1", "dev": "ens32", "protocol": "static"},
        {"dst": "192.168.100.0/24", "dev": "ens32", "protocol": "kernel", "scope": "link"},
    ]
    assert havip.inject("link_down", duration=0.01)["failure"] == "link_down"
    assert lb.host.calls == [
        ["ip", "-j", "route", "show", "dev", "ens32"],
        ["ip", "link", "set", "dev", "ens32", "down"],
        ["ip", "link", "set", "dev", "ens32", "up"],
        ["ip", "route", "replace", "10.99.0.0/16", "via", "192.168.100.1", "dev", "ens32"],
    ]


def test_inject_link_down_keeps_a_route_metric(havip, lb):
    lb.host.routes = [{"dst": "default", "gateway": "192.168.100.1", "dev": "ens32", "metric": 100}]
    havip.inject("link_down", duration=0.01)
    assert lb.host.calls[-1] == [
        "ip", "route", "replace", "default", "via", "192.168.100.1", "dev", "ens32", "metric", "100"]


@pytest.mark.parametrize("duration", [0, -1, 601, "5"])
def test_inject_link_down_rejects_a_bad_duration(havip, lb, duration):
    with pytest.raises(CommandExecutionError, match="duration must be 0-600 s"):
        havip.inject("link_down", duration=duration)
    assert lb.host.commands("ip", "link") == []


def test_inject_stop_haproxy_raises_when_the_service_module_fails(havip, lb):
    lb.host.service_retcode = 1
    with pytest.raises(CommandExecutionError, match="service.stop haproxy failed"):
        havip.inject("stop_haproxy")


def test_inject_stop_haproxy_uses_salts_service_module(havip, lb):
    havip.inject("stop_haproxy")
    assert lb.host.stopped == ["haproxy"]
    assert lb.host.calls == []
