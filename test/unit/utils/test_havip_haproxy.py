"""
Unit tests of ``_utils/havip_haproxy.py``: HAProxy's statistics and
runtime API as havip reads them (drain and ready over a fake runtime API:
test/unit/test_module.py).
"""

import havip_haproxy
import havip_servers
import pytest
from salt.exceptions import CommandExecutionError

STATS_CSV = (
    "# pxname,svname,status,scur\n"
    "havip_backends,FRONTEND,OPEN,3\n"
    "havip_backends,nginx1,UP,2\n"
    "havip_backends,nginx2,DOWN 1/2,\n"
    "havip_backends,BACKEND,UP,2\n"
    "stats,FRONTEND,OPEN,1\n"
)


def test_a_pools_servers_are_its_rows_but_its_frontend_and_backend():
    servers = havip_servers.pool_servers(havip_servers.stat_rows(STATS_CSV), "havip_backends")
    assert {name: row["status"] for name, row in servers.items()} == {"nginx1": "UP", "nginx2": "DOWN 1/2"}
    assert havip_haproxy.any_up({"nginx1": "UP", "nginx2": "DOWN 1/2"})
    assert not havip_haproxy.any_up({"nginx2": "DOWN 1/2"})


def socket_of(global_lines, global_extra=()):
    return havip_haproxy.stats_socket({"global": list(global_lines), "global_extra": list(global_extra)})


def test_stats_socket_is_the_path_of_the_stats_socket_line_at_level_admin():
    assert socket_of(["daemon", "stats socket /run/haproxy/admin.sock mode 660 level admin"]) == \
        "/run/haproxy/admin.sock"
    assert socket_of(["stats socket unix@/run/a.sock level admin"]) == "/run/a.sock"
    assert socket_of(["stats timeout 30s"]) is None
    assert socket_of(["stats socket /run/operator.sock level operator"]) is None
    assert socket_of(["stats socket ipv4@127.0.0.1:9999 level admin"]) is None
    assert socket_of(["stats socket /run/x.sock mode 600 admin"]) is None
    assert socket_of(["stats socket /run/o.sock level operator # level admin"]) is None


def test_stats_socket_is_read_as_haproxy_reads_the_lines_global_then_global_extra():
    assert socket_of(["daemon"], ["stats socket /run/extra.sock level admin"]) == "/run/extra.sock"
    assert socket_of(["stats socket /run/user.sock level user"],
                     ["stats socket /run/admin.sock level admin"]) == "/run/admin.sock"
    assert socket_of(["stats socket /run/first.sock level admin"],
                     ["stats socket /run/second.sock level admin"]) == "/run/first.sock"


def test_status_names_a_missing_stats_socket_line():
    report = havip_haproxy.status({"haproxy": {"global": [], "global_extra": []}}, running=True,
                                  config_valid=False)
    assert report == {"running": True, "config_valid": False, "backends": None,
                      "error": "no `stats socket <path> ... level admin` line in havip:haproxy:global"
                               " or global_extra"}


def test_sessions_of_a_server_with_an_empty_scur_are_none(monkeypatch):
    monkeypatch.setattr(havip_haproxy, "runtime_api", lambda path, command: STATS_CSV)
    assert havip_haproxy.sessions("/sock", "havip_backends", "nginx1") == 2
    assert havip_haproxy.sessions("/sock", "havip_backends", "nginx2") == 0
    with pytest.raises(CommandExecutionError, match="HAProxy has no server nginx9 in havip_backends"):
        havip_haproxy.sessions("/sock", "havip_backends", "nginx9")
