"""
Unit tests of ``_utils/havip_haproxy.py``: HAProxy's statistics and
runtime API as havip reads them (drain and ready over a fake runtime API:
test/unit/test_module.py).
"""

import havip_haproxy
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


def test_servers_are_the_havip_backend_servers_only():
    assert havip_haproxy.servers(STATS_CSV) == {"nginx1": "UP", "nginx2": "DOWN 1/2"}
    assert havip_haproxy.any_up(havip_haproxy.servers(STATS_CSV))
    assert not havip_haproxy.any_up({"nginx2": "DOWN 1/2"})


def test_stats_socket_is_the_path_of_the_stats_socket_line():
    facts = {"haproxy": {"global": ["daemon", "stats socket /run/haproxy/admin.sock mode 660 level admin"]}}
    assert havip_haproxy.stats_socket(facts) == "/run/haproxy/admin.sock"
    assert havip_haproxy.stats_socket({"haproxy": {"global": ["stats timeout 30s"]}}) is None


def test_status_names_a_missing_stats_socket_line():
    report = havip_haproxy.status({"haproxy": {"global": []}}, running=True, config_valid=False)
    assert report == {"running": True, "config_valid": False, "backends": None,
                      "error": "no `stats socket` line in havip:haproxy:global"}


def test_sessions_of_a_server_with_an_empty_scur_are_none(monkeypatch):
    monkeypatch.setattr(havip_haproxy, "runtime_api", lambda path, command: STATS_CSV)
    assert havip_haproxy.sessions("/sock", "nginx1") == 2
    assert havip_haproxy.sessions("/sock", "nginx2") == 0
    with pytest.raises(CommandExecutionError, match="HAProxy has no server nginx9 in havip_backends"):
        havip_haproxy.sessions("/sock", "nginx9")
