"""
Several services behind one VIP pair (issue 23): the haproxy.cfg of a
pillar with ``services`` and ``pools``, rendered from havip_services' model
(a frontend per service, its routes as ACLs; a backend per pool, its
servers' options and checks), and accepted by ``haproxy -c``; each
service's certificates written from the pillar, never shown; the firewall
opens every service's ports.  Generated services and pools (hypothesis):
every one passes ``haproxy -c``; a dangerous character in any of their
strings is refused naming its key.
"""

import copy
import pathlib
import re

import havip_values
import pytest
import yaml
from havip_contract_services import RESERVED
from hypothesis import assume, given
from hypothesis import strategies as st

from test import certs, daemons
from test.formula import render, validated
from test.render.test_formula_render import render_config
from test.render.test_pillar_property import DANGEROUS, SETTINGS
from test.saltcall import DEBIAN_GRAINS, REDHAT_GRAINS, TEST_PASSWORD
from test.unit.utils.test_havip_services import SEED, two_services

CERTIFICATES = [certs.pem(), certs.pem()]
REPO = pathlib.Path(__file__).resolve().parents[2]


def pillar(tmp_path):
    """The issue's two services, ``shop`` with TLS (two certificates, its
    files under ``tmp_path``) on two VIPs, ``db`` on the first."""
    havip = copy.deepcopy(SEED)
    two_services(havip)
    havip["vips"]["VI_2"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 52}
    havip["services"]["shop"]["tls"] = {"port": 443, "certificates": CERTIFICATES, "redirect": True}
    havip["services"]["db"]["vips"] = ["VI_1"]
    havip["pools"]["sql"]["check"] = {"on_error": "mark-down"}
    havip["lookup"] = {"haproxy": {"certificate": str(tmp_path / "havip.pem")}}
    return havip


def haproxy_cfg(tmp_path):
    havip = pillar(tmp_path)
    config = validated(havip, "svr1", interfaces=["lo", "ens32"])
    for certificate, pem in zip(config["services"][1]["tls"]["certificates"], CERTIFICATES, strict=True):
        with open(certificate["file"], "w") as out:
            out.write(pem)
    return render("haproxy.cfg.jinja", config, havip)


def section(text, header):
    """The lines of ``header``'s section of haproxy.cfg."""
    match = re.search(rf"^{re.escape(header)}\n((?:    .*\n)*)", text, re.M)
    assert match, header
    return [line.strip() for line in match[1].splitlines()]


def test_two_services_render_a_config_haproxy_accepts(tmp_path):
    text = haproxy_cfg(tmp_path)
    (tmp_path / "haproxy.cfg").write_text(text)
    assert not daemons.refusals("haproxy", tmp_path / "haproxy.cfg")


def test_each_service_is_a_frontend_on_its_vips_with_its_routes_in_order(tmp_path):
    text = haproxy_cfg(tmp_path)
    crt = f"crt {tmp_path}/havip-shop-1.pem crt {tmp_path}/havip-shop-2.pem"
    assert section(text, "frontend shop") == [
        "mode http",
        "bind 192.168.100.10:80", f"bind 192.168.100.10:443 ssl {crt} ssl-min-ver TLSv1.2 alpn h2,http/1.1",
        "bind [fd00:100::10]:80", f"bind [fd00:100::10]:443 ssl {crt} ssl-min-ver TLSv1.2 alpn h2,http/1.1",
        "option httplog",
        "http-request redirect scheme https code 301 unless { ssl_fc }",
        "use_backend api if { req.hdr(host),field(1,:) -i api.example.com }",
        "use_backend static if { req.hdr(host),field(1,:) -m end -i .static.example.com } { path_beg /static }",
        "use_backend api if { path_beg /v2 }",
        "default_backend web"]
    assert section(text, "frontend db") == ["mode tcp", "bind 192.168.100.10:5432", "option tcplog",
                                            "default_backend sql"]
    assert "frontend havip\n" not in text


def test_each_pool_is_a_backend_with_its_servers_options_and_checks(tmp_path):
    text = haproxy_cfg(tmp_path)
    api = section(text, "backend api")
    assert api[:3] == ["mode http", "balance leastconn", "option httpchk GET /"]
    assert "http-request disable-l7-retry unless { method GET HEAD OPTIONS }" in api
    assert api[-4:] == ["default-server check inter 500ms fall 2 rise 2",
                        "server app1 192.168.100.21:8080 weight 10 maxconn 200",
                        "server app2 192.168.100.22:8080", "server legacy [fd00::9]:8081 backup"]
    web = section(text, "backend web")
    assert web[2:4] == ["option httpchk", "http-check send meth GET uri /healthz hdr Host www.example.com"]
    assert web[-2:] == ["server nginx1 192.168.100.11:80", "server nginx2 192.168.100.12:80"]
    sql = section(text, "backend sql")
    assert sql == ["mode tcp", "balance roundrobin", "default-server check inter 1s fall 2 rise 2",
                   "default-server observe layer4 error-limit 1 on-error mark-down", "server app1 192.168.100.21:5432"]
    # keepalived:track_backends: a server UP in every pool.
    assert ("http-request return status 200 if { path /havip-backends } { nbsrv(api) ge 1 } { nbsrv(sql) ge 1 }"
            " { nbsrv(static) ge 1 } { nbsrv(web) ge 1 }") in text


def test_the_firewall_opens_every_services_ports_once(tmp_path):
    havip = pillar(tmp_path)
    havip["services"]["db"]["port"] = 443
    havip["services"]["db"]["vips"] = ["VI_1"]
    havip["services"]["shop"]["vips"] = ["VI_2"]
    config = validated(havip, "svr1", interfaces=["lo", "ens32"])
    assert config["firewalld"]["ports"] == ["443/tcp", "80/tcp"]


def test_each_services_certificate_is_written_from_the_pillar_before_the_config_never_shown(salt_call, tmp_path):
    havip = pillar(tmp_path)
    minion = salt_call("svr1", DEBIAN_GRAINS)
    states = minion.show_sls({"havip": havip})
    for number in (1, 2):
        state = states[f"havip-haproxy-certificate-file-shop-{number}"]
        assert (state["name"], state["contents_pillar"], state["show_changes"], state["mode"]) == (
            str(tmp_path / f"havip-shop-{number}.pem"), f"havip:services:shop:tls:certificates:{number - 1}",
            False, "0600")
        required = states["havip-haproxy-config-file"]["require"]
        assert {"file": f"havip-haproxy-certificate-file-shop-{number}"} in required
    assert states["havip-haproxy-certificate-file"]["fun"] == "file.absent"  # today's frontend's
    rendered = repr(states)
    assert "BEGIN" not in rendered and CERTIFICATES[0] not in rendered
    # The PEM read from a list in the pillar, then the config checked by
    # haproxy -c against the written certificates.
    for state_id, target in (("havip-haproxy-certificate-file-shop-1", tmp_path / "havip-shop-1.pem"),
                             ("havip-haproxy-certificate-file-shop-2", tmp_path / "havip-shop-2.pem"),
                             ("havip-haproxy-config-file", tmp_path / "haproxy.cfg")):
        result, _ = render_config(minion, states, state_id, target, {"havip": havip})
        assert result["result"] is True, (state_id, result)
    assert (tmp_path / "havip-shop-2.pem").read_text() == CERTIFICATES[1]


def test_clean_removes_each_services_certificate(salt_call, tmp_path):
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls({"havip": pillar(tmp_path)}, sls="havip.clean")
    assert states["havip-haproxy-config-clean"]["names"][1:] == [
        str(tmp_path / "havip.pem"), str(tmp_path / "havip-shop-1.pem"), str(tmp_path / "havip-shop-2.pem"),
        "/var/lib/havip/haproxy-server-state"]


def test_a_certificate_the_services_no_longer_name_is_removed_and_nothing_else(salt_call, tmp_path):
    """shop had three certificates and a service gone had one: their files
    are havip's own, the rest of the directory is not."""
    minion = salt_call("svr1", DEBIAN_GRAINS)
    state = minion.show_sls({"havip": pillar(tmp_path)})["havip-haproxy-stale-certificates"]
    assert (state["fun"], state["name"], state["require"]) == ("file.tidied", str(tmp_path),
                                                               [{"file": "havip-haproxy-config-file"}])
    (tmp_path / "sub").mkdir()
    kept = ["havip-shop-1.pem", "havip-shop-2.pem", "havip.pem", "operator.pem", "havip-shop-3.pem.bak",
            "havip-Shop-3.pem", "havip-shop-03.pem", "sub/havip-old-1.pem", "my-havip-old-1.pem"]
    stale = ["havip-shop-3.pem", "havip-old-1.pem", "havip-a-b_c-12.pem"]
    for name in kept + stale:
        (tmp_path / name).write_text("x")
    args = {key: value for key, value in state.items() if key not in ("fun", "require")}
    for test in (True, False):
        _, ret = minion.run("state.single", "file.tidied", test=test, **args)
        (result,) = ret.values()
        assert sorted(result["changes"]["removed"]) == sorted(str(tmp_path / name) for name in stale), result
    assert sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*.pem*")) == sorted(kept)
    _, ret = minion.run("state.single", "file.tidied", **args)
    assert next(iter(ret.values()))["changes"] == {}
    # On a balancer whose certificate directory is not there yet (test=True
    # before HAProxy's package): nothing to do, no failure.
    _, ret = minion.run("state.single", "file.tidied", test=True, **{**args, "name": str(tmp_path / "none"),
                        "onlyif": [{"fun": "file.directory_exists", "path": str(tmp_path / "none")}]})
    assert next(iter(ret.values()))["result"] is True


@pytest.mark.parametrize("grains", [DEBIAN_GRAINS, REDHAT_GRAINS], ids=["Debian", "RedHat"])
def test_an_app_node_gets_nothing_installed_nor_its_firewall_started(salt_call, tmp_path, grains):
    # firewalld started on an app node would close the operator's own service.
    states = salt_call("app1", grains).show_sls({"havip": pillar(tmp_path)})
    assert sorted(states) == ["havip-facts-file"], sorted(states)


# ---- generated services and pools (hypothesis) -------------------------------------------

pool_names = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True).filter(lambda name: name not in RESERVED)
hosts = st.from_regex(r"(?:\*\.)?[a-z0-9]{1,8}(?:\.[a-z0-9]{1,8}){0,2}", fullmatch=True)
prefixes = st.from_regex(r"/[A-Za-z0-9._~-]{0,10}(?:/[A-Za-z0-9._~-]{1,8}){0,2}", fullmatch=True)
NODES = ("nginx1", "nginx2", "app1", "app2")


@st.composite
def servers(draw):
    server = draw(st.sampled_from([{"node": draw(st.sampled_from(NODES))},
                                   {"address": f"10.0.{draw(st.integers(0, 255))}.{draw(st.integers(1, 254))}"},
                                   {"address": f"fd00:9::{draw(st.integers(1, 0xffff)):x}"}]))
    for key, values in (("port", st.integers(1, 65535)), ("weight", st.integers(0, 256)),
                        ("maxconn", st.integers(1, 100000)), ("backup", st.booleans())):
        if draw(st.booleans()):
            server[key] = draw(values)
    return server


@st.composite
def services_pillars(draw):
    """The seed with two app nodes and 1-3 pools, each the default pool of
    a service of its mode; an http service routes to any http pool."""
    havip = copy.deepcopy(SEED)
    havip["nodes"].update(app1={"roles": ["app"], "address": "192.168.100.21"},
                          app2={"roles": ["app"], "address": "192.168.100.22"})
    names = draw(st.lists(pool_names, min_size=1, max_size=3, unique=True))
    ports = draw(st.lists(st.integers(2000, 60000), min_size=len(names), max_size=len(names), unique=True))
    modes = {name: draw(st.sampled_from(("tcp", "http"))) for name in names}
    http_pools = [name for name in names if modes[name] == "http"]
    havip["pools"], havip["services"] = {}, {}
    for name, port in zip(names, ports, strict=True):
        pool = {"servers": draw(st.dictionaries(pool_names, servers(), min_size=1, max_size=3))}
        if draw(st.booleans()):
            pool["balance"] = draw(st.sampled_from(("roundrobin", "leastconn", "source", "first")))
        if modes[name] == "http" and draw(st.booleans()):
            pool["http_check"] = {"path": draw(prefixes), "host": draw(hosts.filter(lambda h: "*" not in h))}
        havip["pools"][name] = pool
        service = {"port": port, "mode": modes[name], "pool": name}
        if modes[name] == "http":
            service["routes"] = [{**({"host": draw(hosts)} if draw(st.booleans()) else {}),
                                  "path_prefix": draw(prefixes), "pool": draw(st.sampled_from(http_pools))}
                                 for _ in range(draw(st.integers(0, 3)))]
        havip["services"][name] = service
    return havip


@SETTINGS
@given(havip=services_pillars())
def test_every_generated_services_pillar_renders_a_config_haproxy_accepts(tmp_path_factory, pillars_tried, havip):
    pillars_tried["valid"] += 1
    config = validated(havip, "svr1", interfaces=["lo", "ens32"])
    root = tmp_path_factory.mktemp("services")
    (root / "haproxy.cfg").write_text(render("haproxy.cfg.jinja", config, havip))
    assert not daemons.refusals("haproxy", root / "haproxy.cfg")


def string_fields(havip):
    """(key, tree, name) of every string of the services and pools, and of
    their names."""
    fields = []

    def visit(tree, prefix):
        for name in list(tree) if isinstance(tree, dict) else range(len(tree)):
            value, key = tree[name], f"{prefix}{name}"
            if prefix in ("services:", "pools:") or prefix.endswith(":servers:"):
                fields.append((key, tree, name, "rename"))
            if isinstance(value, (dict, list)):
                visit(value, key + ":")
            elif isinstance(value, str):
                fields.append((key, tree, name, "set"))
    visit({"services": havip["services"], "pools": havip["pools"]}, "")
    return fields


# The kinds of string a services pillar holds: names (of services, pools,
# servers), and the values of these keys.
KINDS = ("<name>", "mode", "vips", "host", "path_prefix", "pool", "balance", "path", "node", "address")


@st.composite
def mutations(draw, kind):
    """A generated services pillar with a dangerous character in one of its
    strings of ``kind``; (pillar, the key of that string)."""
    havip = draw(services_pillars())
    if kind == "vips":
        havip["services"][next(iter(havip["services"]))]["vips"] = ["VI_1"]
    fields = [field for field in string_fields(havip)
              if ("<name>" if field[3] == "rename" else str(field[2])) == kind
              or (kind == "vips" and ":vips:" in field[0])]
    assume(fields)
    key, tree, name, how = draw(st.sampled_from(fields))
    char = draw(st.sampled_from(DANGEROUS))
    if how == "rename":
        at = draw(st.integers(1, len(name)))
        tree[name[:at] + char + name[at:]] = tree.pop(name)
        key = key[:len(key) - len(name)] + name[:at] + char + name[at:]
    else:
        at = draw(st.integers(0, len(tree[name])))
        tree[name] = tree[name][:at] + char + tree[name][at:]
        # A list's item is refused as its list.
        key = key.rsplit(":", 1)[0] if isinstance(name, int) and ":routes:" not in key else key
    return havip, key


@pytest.mark.parametrize("kind", KINDS)
def test_a_dangerous_character_in_any_services_or_pools_string_is_refused_naming_it(pillars_tried, kind):
    @SETTINGS
    @given(mutation=mutations(kind))
    def check(mutation):
        havip, key = mutation
        pillars_tried["mutated"] += 1
        with pytest.raises(havip_values.Invalid) as refused:
            validated(havip, "svr1", interfaces=["lo", "ens32"])
        assert refused.value.key == key, (str(refused.value), key)
    check()


def readme_services_pillar():
    """The README's two-service example (section "Your own services"), its
    certificate placeholders given real PEMs."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"### Your own services\n.*?```yaml\n(.*?)```", text, re.S)[1]
    block = block.replace("<shop PEM>", "shop-pem").replace("<api PEM>", "api-pem")
    havip = yaml.safe_load(block)["havip"]
    havip["services"]["shop"]["tls"]["certificates"] = CERTIFICATES
    havip["stats"] = {"password": TEST_PASSWORD}
    return havip


def test_the_readmes_two_service_example_renders_a_config_haproxy_accepts(tmp_path):
    havip = readme_services_pillar()
    havip["lookup"] = {"haproxy": {"certificate": str(tmp_path / "havip.pem")}}
    config = validated(havip, "lb1", interfaces=["lo", "eth0"])
    assert [s["name"] for s in config["services"]] == ["db", "shop"]
    assert [p["name"] for p in config["pools"]] == ["api", "db", "pages"]
    for certificate, pem in zip(config["services"][1]["tls"]["certificates"], CERTIFICATES, strict=True):
        pathlib.Path(certificate["file"]).write_text(pem)
    (tmp_path / "haproxy.cfg").write_text(render("haproxy.cfg.jinja", config, havip))
    assert not daemons.refusals("haproxy", tmp_path / "haproxy.cfg")
