"""
Unit tests of ``_utils/havip_services.py`` (with the contract's services
and pools, ``_utils/havip_contract_services.py``): the one model of
services and pools that ``havip.validate`` derives, from the pillar's
``services``/``pools`` or from today's ``frontend``/``backend``, and every
refusal across their keys, naming the key.
"""

import copy

import havip_facts
import havip_values
import pytest
import yaml

from test.certs import certificate, key_pem, new_key
from test.formula import REPO, both, delete_key, second_vip, set_key
from test.unit.utils.test_havip_pillar import SEED, validate

KEY = new_key()
PEM = certificate(KEY) + key_pem(KEY)


def two_services(havip):
    """The seed with two app nodes and the issue's services: ``shop`` (http,
    routes to api and static, the rest to web) and ``db`` (tcp)."""
    havip["nodes"]["app1"] = {"roles": ["app"], "address": "192.168.100.21"}
    havip["nodes"]["app2"] = {"roles": ["app"], "address": "192.168.100.22"}
    havip["services"] = {
        "shop": {"port": 80, "mode": "http", "routes": [
            {"host": "API.example.com", "pool": "api"},
            {"host": "*.static.example.com", "path_prefix": "/static", "pool": "static"},
            {"path_prefix": "/v2", "pool": "api"},
        ], "pool": "web"},
        "db": {"port": 5432, "pool": "sql"},
    }
    havip["pools"] = {
        "web": {"http_check": {"path": "/healthz", "host": "www.example.com"},
                "servers": {"nginx1": {"node": "nginx1"}, "nginx2": {"node": "nginx2"}}},
        "api": {"port": 8080, "balance": "leastconn", "check": {"inter": "500ms"},
                "servers": {"app1": {"node": "app1", "weight": 10, "maxconn": 200},
                            "app2": {"node": "app2"},
                            "legacy": {"address": "FD00:0::9", "port": 8081, "backup": True}}},
        "static": {"servers": {"nginx1": {"node": "nginx1"}}},
        "sql": {"port": 5432, "servers": {"app1": {"node": "app1"}}},
    }


def shop():
    havip = copy.deepcopy(SEED)
    two_services(havip)
    return havip


def service(config, name):
    return next(s for s in config["services"] if s["name"] == name)


def pool(config, name):
    return next(p for p in config["pools"] if p["name"] == name)


# ---- the model -------------------------------------------------------------------


def test_todays_pair_is_one_service_and_one_pool_of_the_model():
    config = validate(SEED)
    assert config["services"] == [{
        "name": "havip", "port": 9090, "mode": "tcp", "vips": ["VI_1"], "binds": ["192.168.100.10"],
        "ports": {"frontend:port": 9090}, "tls": {"enabled": False, "port": 443, "redirect": False, "certificates": []},
        "routes": [], "pool": havip_facts.HAPROXY_BACKEND}]
    assert config["pools"] == [{
        "name": havip_facts.HAPROXY_BACKEND, "mode": "tcp", "balance": "roundrobin",
        "check": {"inter": "1s", "fall": 2, "rise": 2, "on_error": None}, "http_check": None,
        "servers": [{"name": name, "node": name, "address": address, "port": 80, "options": []}
                    for name, address in (("nginx1", "192.168.100.11"), ("nginx2", "192.168.100.12"))]}]


def test_todays_tls_is_the_services_and_frontend_bind_its_binds():
    havip = copy.deepcopy(SEED)
    havip["frontend"] = {"mode": "http", "bind": ["192.168.100.10"],
                         "tls": {"certificate": PEM, "redirect": True}}
    config = validate(havip)
    tls = config["services"][0]["tls"]
    assert (tls["enabled"], tls["port"], tls["redirect"]) == (True, 443, True)
    [certificate] = tls["certificates"]
    assert (certificate["file"], certificate["pillar"]) == ("/etc/haproxy/havip.pem", "havip:frontend:tls:certificate")
    assert config["frontend"]["tls"]["serial"] == certificate["serial"]
    assert config["services"][0]["ports"] == {"frontend:port": 9090, "frontend:tls:port": 443}
    assert config["pools"][0]["http_check"] == {"path": "/", "expect_status": 200, "host": None}


def test_services_and_pools_are_derived_canonical_with_their_defaults():
    config = validate(shop())
    assert [s["name"] for s in config["services"]] == ["db", "shop"]
    web = service(config, "shop")
    assert (web["mode"], web["binds"], web["pool"], web["ports"]) == (
        "http", ["192.168.100.10"], "web", {"services:shop:port": 80})
    assert web["routes"] == [
        {"host": "api.example.com", "wildcard": False, "path_prefix": None, "pool": "api"},
        {"host": "static.example.com", "wildcard": True, "path_prefix": "/static", "pool": "static"},
        {"host": None, "wildcard": False, "path_prefix": "/v2", "pool": "api"}]
    assert service(config, "db")["mode"] == "tcp"
    assert [p["name"] for p in config["pools"]] == ["api", "sql", "static", "web"]
    api = pool(config, "api")
    assert (api["mode"], api["balance"]) == ("http", "leastconn")
    assert api["check"] == {"inter": "500ms", "fall": 2, "rise": 2, "on_error": None}
    assert api["servers"] == [
        {"name": "app1", "node": "app1", "address": "192.168.100.21", "port": 8080,
         "options": ["weight 10", "maxconn 200"]},
        {"name": "app2", "node": "app2", "address": "192.168.100.22", "port": 8080, "options": []},
        {"name": "legacy", "node": None, "address": "fd00::9", "port": 8081, "options": ["backup"]}]
    assert pool(config, "web")["http_check"] == {"path": "/healthz", "expect_status": 200, "host": "www.example.com"}
    assert pool(config, "sql")["http_check"] is None
    assert pool(config, "web")["servers"][0]["port"] == 80


def test_a_service_listens_on_its_own_vips_and_takes_its_tls_certificates_in_order():
    havip = shop()
    second_vip()(havip)
    havip["services"]["db"]["vips"] = ["VI_2"]
    havip["services"]["shop"]["tls"] = {"port": 8443, "certificates": [PEM, PEM], "redirect": True}
    config = validate(havip)
    assert service(config, "db")["binds"] == ["192.168.100.9"]
    assert service(config, "shop")["binds"] == ["192.168.100.10", "192.168.100.9"]
    tls = service(config, "shop")["tls"]
    assert [(c["file"], c["pillar"]) for c in tls["certificates"]] == [
        ("/etc/haproxy/havip-shop-1.pem", "havip:services:shop:tls:certificates:0"),
        ("/etc/haproxy/havip-shop-2.pem", "havip:services:shop:tls:certificates:1")]
    assert (tls["port"], tls["redirect"]) == (8443, True)
    assert PEM not in repr(config) and "BEGIN" not in repr(config)


def test_an_app_node_installs_nothing_and_may_take_its_address_from_the_mine():
    havip = shop()
    del havip["nodes"]["app2"]["address"]
    havip["mine"] = {"network": "192.168.100.0/24"}
    config = validate(havip, mine_get=lambda name, function: {name: ["192.168.100.22"]}
                      if function == havip_facts.MINE_FUNCTION else {})
    assert pool(config, "api")["servers"][1]["address"] == "192.168.100.22"
    assert validate(havip, "app1", mine_get=lambda name, function: {})["roles"] == ["app"]


def test_a_balancer_waits_for_a_servers_address_in_the_mine():
    havip = shop()
    del havip["nodes"]["app2"]["address"]
    havip["mine"] = {"network": "192.168.100.0/24"}
    with pytest.raises(havip_values.Invalid, match="is not in the Salt mine yet") as refused:
        validate(havip, mine_get=lambda name, function: {})
    assert refused.value.key == "nodes:app2:address"


def test_a_servers_address_from_the_mine_stays_untrusted():
    havip = shop()
    del havip["nodes"]["app2"]["address"]
    havip["mine"] = {"network": "192.168.100.0/24"}
    with pytest.raises(havip_values.Invalid) as refused:
        validate(havip, mine_get=lambda name, function: {name: ["192.168.100.22\nserver x 1.2.3.4:80"]})
    assert refused.value.key == "nodes:app2:address (from the mine)"


# ---- every refusal, its key named ---------------------------------------------------


def edit_services(*edits):
    def edit(havip):
        two_services(havip)
        for one in edits:
            one(havip)
    return edit


BAD = {
    # the contract's values
    "service name with a capital": (lambda h: h["services"].update(Shop=h["services"].pop("shop")), "services:Shop"),
    "service named as the stats listener": (lambda h: h["services"].update(stats=h["services"].pop("db")),
                                            "services:stats"),
    "pool name too long": (lambda h: h["pools"].update({"p" * 33: {"servers": {}}}), "pools:" + "p" * 33),
    "service without port": (delete_key("services:db:port"), "services:db:port"),
    "service without pool": (delete_key("services:db:pool"), "services:db:pool"),
    "service mode udp": (set_key("services:db:mode", "udp"), "services:db:mode"),
    "service vips not a list": (set_key("services:db:vips", "VI_1"), "services:db:vips"),
    "service vips empty": (set_key("services:db:vips", []), "services:db:vips"),
    "tls without certificates": (set_key("services:shop:tls", {"port": 443}), "services:shop:tls:certificates"),
    "routes not a list": (set_key("services:shop:routes", {"host": "a.example"}), "services:shop:routes"),
    "route typo": (set_key("services:shop:routes", [{"hots": "a.example", "pool": "api"}]),
                   "services:shop:routes:0:hots"),
    "route without pool": (set_key("services:shop:routes", [{"host": "a.example"}]),
                           "services:shop:routes:0:pool"),
    "host with an underscore": (set_key("services:shop:routes", [{"host": "a_b.example", "pool": "api"}]),
                                "services:shop:routes:0:host"),
    "host with a port": (set_key("services:shop:routes", [{"host": "a.example:80", "pool": "api"}]),
                         "services:shop:routes:0:host"),
    "host label ending with -": (set_key("services:shop:routes", [{"host": "a-.example", "pool": "api"}]),
                                 "services:shop:routes:0:host"),
    "host label of 64": (set_key("services:shop:routes", [{"host": "a" * 64 + ".example", "pool": "api"}]),
                         "services:shop:routes:0:host"),
    "host longer than 253": (set_key("services:shop:routes", [{"host": ".".join(["a" * 63] * 4), "pool": "api"}]),
                             "services:shop:routes:0:host"),
    "host with a wildcard inside": (set_key("services:shop:routes", [{"host": "a.*.example", "pool": "api"}]),
                                    "services:shop:routes:0:host"),
    "host with a space": (set_key("services:shop:routes", [{"host": "a.example }", "pool": "api"}]),
                          "services:shop:routes:0:host"),
    "host with a newline": (set_key("services:shop:routes", [{"host": "a.example\n", "pool": "api"}]),
                            "services:shop:routes:0:host"),
    "path prefix without a slash": (set_key("services:shop:routes", [{"path_prefix": "v2", "pool": "api"}]),
                                    "services:shop:routes:0:path_prefix"),
    "path prefix with a space": (set_key("services:shop:routes", [{"path_prefix": "/a b", "pool": "api"}]),
                                 "services:shop:routes:0:path_prefix"),
    "path prefix with a brace": (set_key("services:shop:routes", [{"path_prefix": "/a}", "pool": "api"}]),
                                 "services:shop:routes:0:path_prefix"),
    "path prefix with a query": (set_key("services:shop:routes", [{"path_prefix": "/a?b", "pool": "api"}]),
                                 "services:shop:routes:0:path_prefix"),
    "weight 257": (set_key("pools:api:servers:app2:weight", 257), "pools:api:servers:app2:weight"),
    "weight -1": (set_key("pools:api:servers:app2:weight", -1), "pools:api:servers:app2:weight"),
    "maxconn 0": (set_key("pools:api:servers:app2:maxconn", 0), "pools:api:servers:app2:maxconn"),
    "backup not a switch": (set_key("pools:api:servers:app2:backup", "yes"), "pools:api:servers:app2:backup"),
    "server address a hostname": (set_key("pools:api:servers:legacy:address", "legacy.example"),
                                  "pools:api:servers:legacy:address"),
    "server address with a zone": (set_key("pools:api:servers:legacy:address", "fe80::1%eth0"),
                                   "pools:api:servers:legacy:address"),
    "server name with a space": (set_key("pools:api:servers:a b", {"address": "10.0.0.1"}), "pools:api:servers:a b"),
    "pool without servers key": (delete_key("pools:sql:servers"), "pools:sql:servers"),
    "pool balance unknown": (set_key("pools:api:balance", "hash"), "pools:api:balance"),
    "pool check inter not a time": (set_key("pools:api:check:inter", "1 s"), "pools:api:check:inter"),
    "http check host a wildcard": (set_key("pools:web:http_check:host", "*.example.com"), "pools:web:http_check:host"),
    "http check path with a space": (set_key("pools:web:http_check:path", "/ HTTP/1.0"), "pools:web:http_check:path"),
    "role unknown": (set_key("nodes:app1:roles", ["application"]), "nodes:app1:roles"),
    # across keys
    "service naming an unknown pool": (set_key("services:db:pool", "nosuch"), "services:db:pool"),
    "route naming an unknown pool": (set_key("services:shop:routes", [{"host": "a.example", "pool": "nosuch"}]),
                                     "services:shop:routes:0:pool"),
    "pool no service uses": (set_key("pools:spare", {"servers": {"app1": {"node": "app1"}}}), "pools:spare"),
    "pools without services": (lambda h: h.pop("services"), "pools:api"),
    "service naming an unknown VIP": (set_key("services:db:vips", ["VI_9"]), "services:db:vips"),
    "two services on one VIP and port": (set_key("services:db:port", 80), "services:shop:port"),
    "a service's TLS port another's port": (
        set_key("services:shop:tls", {"port": 5432, "certificates": [PEM]}), "services:shop:tls:port"),
    "a service's TLS port its own port": (
        set_key("services:shop:tls", {"port": 80, "certificates": [PEM]}), "services:shop:tls:port"),
    "a service on the stats port": (set_key("services:db:port", 1080), "stats:port"),
    "a service on the metrics port": (both(set_key("metrics:port", 9101), set_key("services:db:port", 9101)),
                                      "metrics:port"),
    "a service on the node exporter's port": (both(set_key("metrics:port", 9101), set_key("services:db:port", 9100)),
                                              "lookup:metrics:node_exporter_port"),
    "server with node and address": (set_key("pools:sql:servers:app1:address", "10.0.0.1"), "pools:sql:servers:app1"),
    "server with neither node nor address": (set_key("pools:sql:servers:app1", {"port": 1}), "pools:sql:servers:app1"),
    "server node unknown": (set_key("pools:sql:servers:app1:node", "app9"), "pools:sql:servers:app1:node"),
    "server node a balancer": (set_key("pools:sql:servers:app1:node", "svr1"), "pools:sql:servers:app1:node"),
    "pool without servers": (set_key("pools:sql:servers", {}), "pools:sql:servers"),
    "routes on a tcp service": (set_key("services:db:routes", [{"path_prefix": "/", "pool": "sql"}]),
                                "services:db:routes"),
    "a route matching everything": (set_key("services:shop:routes", [{"pool": "api"}]), "services:shop:routes:0"),
    "http_check on a tcp pool": (set_key("pools:sql:http_check", {"path": "/"}), "pools:sql:http_check"),
    "balance uri on a tcp pool": (set_key("pools:sql:balance", "uri"), "pools:sql:balance"),
    "a pool of a tcp and an http service": (set_key("services:raw", {"port": 81, "pool": "web"}), "pools:web"),
    "redirect on a tcp service": (set_key("services:db:tls", {"certificates": [PEM], "redirect": True}),
                                  "services:db:tls:redirect"),
    "today's bind beside services": (set_key("frontend:bind", ["192.168.100.10"]), "frontend:bind"),
    "today's certificate beside services": (set_key("frontend:tls:certificate", PEM), "frontend:tls:certificate"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_service_or_pool_is_refused_naming_the_key(case):
    edit, key = BAD[case]
    havip = copy.deepcopy(SEED)
    edit_services(edit)(havip)
    with pytest.raises(havip_values.Invalid) as refused:
        validate(havip)
    assert refused.value.key == key, str(refused.value)
    assert f"havip pillar: havip:{key}: " in str(refused.value)


def test_two_services_on_one_port_of_distinct_vips_pass():
    havip = shop()
    second_vip()(havip)
    havip["services"]["shop"]["vips"] = ["VI_1"]
    havip["services"]["db"].update(port=80, vips=["VI_2"])
    assert service(validate(havip), "db")["binds"] == ["192.168.100.9"]


def test_pillar_examples_commented_services_and_pools_pass():
    lines = (REPO / "pillar.example").read_text().splitlines()
    start = lines.index("  # services:                   # several frontends instead of frontend/backend")
    end = lines.index("  # keepalived:")
    block = yaml.safe_load("\n".join(line.replace("  # ", "  ", 1) for line in lines[start:end]))
    havip = copy.deepcopy(SEED)
    havip.update(block)
    config = validate(havip)
    assert [s["name"] for s in config["services"]] == ["db", "web"]
    assert [p["name"] for p in config["pools"]] == ["api", "db", "web"]


@pytest.mark.parametrize("mode, certificate, problem", [
    ("tcp", None, "needs frontend:mode http"),
    ("tcp", PEM, "needs frontend:mode http"),
    ("http", None, "needs frontend:tls:certificate"),
])
def test_todays_redirect_is_refused_as_before_services(mode, certificate, problem):
    havip = copy.deepcopy(SEED)
    havip["frontend"] = {"mode": mode, "tls": {"certificate": certificate, "redirect": True}}
    with pytest.raises(havip_values.Invalid, match=problem) as refused:
        validate(havip)
    assert refused.value.key == "frontend:tls:redirect"
