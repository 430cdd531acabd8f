"""
Unit tests of ``_utils/havip_servers.py``: a server named ``pool/server``
or by its bare name, every refusal of a name, and HAProxy's ``show stat``
read per pool and per service (the drain and ready over a fake runtime
API: test/unit/test_module.py).
"""

import pathlib

import havip_servers
import pytest

# HAProxy 2.6.12's (Debian 12) `show stat` answer, as captured, for two
# frontends (web, tcpsvc) and two backends: web (nginx1 drained, app1 UP)
# and api (app1 in maintenance, legacy DOWN).  Only the sessions (scur) of
# web's frontend, backend and app1 were set to 3.
SHOW_STAT = (pathlib.Path(__file__).parent / "haproxy-2.6-show-stat.csv").read_text()


def model(**pools):
    """The model's pools (havip_services): {pool: [server names]}."""
    return [{"name": name, "servers": [{"name": server} for server in servers]} for name, servers in pools.items()]


TODAY = model(havip_backends=["nginx1", "nginx2"])
SHOP = model(web=["nginx1", "app1"], api=["app1", "app2"], static=["nginx1"])


# ---- a server's name -----------------------------------------------------------------


@pytest.mark.parametrize("pools, reference, found", [
    (SHOP, "web/app1", ("web", "app1")),
    (SHOP, "api/app1", ("api", "app1")),
    (SHOP, "app2", ("api", "app2")),
    (TODAY, "nginx1", ("havip_backends", "nginx1")),
    (TODAY, "havip_backends/nginx2", ("havip_backends", "nginx2")),
])
def test_a_server_is_named_pool_slash_server_or_by_a_name_one_pool_alone_holds(pools, reference, found):
    assert havip_servers.resolve(pools, reference) == found


@pytest.mark.parametrize("pools, reference, message", [
    (SHOP, "shop/app1", "unknown pool 'shop' in 'shop/app1' (pools: api, static, web)"),
    (SHOP, "static/app1", "unknown server 'app1' in pool static (its servers: nginx1)"),
    (SHOP, "web/", "unknown server '' in pool web (its servers: app1, nginx1)"),
    (SHOP, "/app1", "unknown pool '' in '/app1' (pools: api, static, web)"),
    (SHOP, "web/app1/x", "unknown server 'app1/x' in pool web (its servers: app1, nginx1)"),
    (SHOP, "app9", "unknown backend server 'app9' (known: api/app1, api/app2, static/nginx1, web/app1,"
                   " web/nginx1)"),
    (SHOP, "app1", "server 'app1' is in the pools api and web: name one of them (api/app1 or web/app1)"),
    (SHOP, "nginx1", "server 'nginx1' is in the pools static and web: name one of them (static/nginx1 or"
                     " web/nginx1)"),
    (TODAY, "nginx9", "unknown backend server 'nginx9' (known: nginx1, nginx2)"),
    (TODAY, "", "unknown backend server '' (known: nginx1, nginx2)"),
    (TODAY, 1, "a server is named pool/server or by its name, not 1"),
    (TODAY, None, "a server is named pool/server or by its name, not None"),
    ([], "nginx1", "unknown backend server 'nginx1' (known: none)"),
])
def test_a_name_that_names_no_server_or_several_is_refused_saying_why(pools, reference, message):
    with pytest.raises(ValueError) as refused:
        havip_servers.resolve(pools, reference)
    assert str(refused.value) == message


def test_names_are_pool_slash_server_and_bare_in_todays_pair_only():
    assert havip_servers.name(["web", "api"], "web", "app1") == "web/app1"
    assert havip_servers.name(["web"], "web", "app1") == "web/app1"
    assert havip_servers.name(["havip_backends"], "havip_backends", "nginx1") == "nginx1"
    assert havip_servers.name(["havip_backends", "api"], "havip_backends", "nginx1") == "havip_backends/nginx1"
    assert havip_servers.split("web/app1") == ("web", "app1")
    assert havip_servers.split("nginx1") == ("havip_backends", "nginx1")


def test_the_pools_of_the_names_havip_gives_resolve_as_the_models():
    assert havip_servers.pools_named(["web/app1", "api/app1", "web/nginx1"]) == model(
        api=["app1"], web=["app1", "nginx1"])
    assert havip_servers.pools_named({"nginx1": "UP", "nginx2": "DOWN"}) == TODAY
    assert havip_servers.resolve(havip_servers.pools_named(["web/app1", "api/app2"]), "app2") == ("api", "app2")


# ---- show stat ----------------------------------------------------------------------


def test_every_pools_servers_are_read_with_their_status_weight_and_sessions():
    rows = havip_servers.stat_rows(SHOW_STAT)
    view = havip_servers.pools_view(rows, model(web=["app1", "nginx1"], api=["app1", "legacy"]))
    assert view == {
        "web": {"app1": {"status": "UP", "weight": 1, "sessions": 3},
                "nginx1": {"status": "DRAIN", "weight": 10, "sessions": 0}},
        "api": {"app1": {"status": "MAINT", "weight": 1, "sessions": 0},
                "legacy": {"status": "DOWN", "weight": 1, "sessions": 0}},
    }
    assert havip_servers.backends(view) == {"web/app1": "UP", "web/nginx1": "DRAIN", "api/app1": "MAINT",
                                            "api/legacy": "DOWN"}


def test_every_services_frontend_is_read_with_its_status_and_sessions():
    rows = havip_servers.stat_rows(SHOW_STAT)
    assert havip_servers.services_view(rows, [{"name": "web"}, {"name": "tcpsvc"}]) == {
        "web": {"status": "OPEN", "sessions": 3}, "tcpsvc": {"status": "OPEN", "sessions": 0}}


def test_a_pool_service_or_server_haproxy_does_not_show_is_there_with_none():
    rows = havip_servers.stat_rows(SHOW_STAT)
    view = havip_servers.pools_view(rows, model(web=["app1", "app2"], sql=["db1"]))
    unknown = {"status": None, "weight": None, "sessions": None}
    assert view == {"web": {"app1": {"status": "UP", "weight": 1, "sessions": 3}, "app2": unknown,
                            "nginx1": {"status": "DRAIN", "weight": 10, "sessions": 0}},
                    "sql": {"db1": unknown}}
    assert havip_servers.backends(view) == {"web/app1": "UP", "web/nginx1": "DRAIN"}
    assert havip_servers.services_view(rows, [{"name": "shop"}]) == {"shop": {"status": None, "sessions": None}}


def test_todays_pair_shows_its_servers_by_their_bare_names():
    stats = SHOW_STAT.replace("\nweb,", "\nhavip_backends,")
    view = havip_servers.pools_view(havip_servers.stat_rows(stats), model(havip_backends=["nginx1", "app1"]))
    assert havip_servers.backends(view) == {"nginx1": "DRAIN", "app1": "UP"}


def test_transitional_statuses_are_haproxys_own_words():
    stats = "# pxname,svname,scur,status,weight\nweb,app1,0,UP 1/2,1\nweb,nginx1,0,DOWN 1/3,1\nweb,x,0,NOLB,1\n"
    view = havip_servers.pools_view(havip_servers.stat_rows(stats), model(web=["app1", "nginx1", "x"]))
    assert havip_servers.backends(view) == {"web/app1": "UP 1/2", "web/nginx1": "DOWN 1/3", "web/x": "NOLB"}
