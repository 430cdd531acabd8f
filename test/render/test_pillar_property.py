"""
Fast tier, property-based (hypothesis): generated pillars against the
pillar contract and the daemons' own checks.

- Every valid generated pillar renders configs that `haproxy -c`,
  `keepalived -t` and `nginx -t` of Debian 12 and of Debian 13 accept
  (test/daemons.py), and scripts that pass `sh -n` and `shellcheck`.
- A dangerous character (newline, quote, `;`, `$`, backtick, `#`, space)
  put into any string field is refused naming that field, unless the
  contract says the field escapes it where it is written - then the render
  still passes the daemons' checks.
- An IPv6 zone (`%` and any text: Python's ipaddress takes it and gives it
  back whole) on any address of the pillar, or on an address a backend or a
  balancer publishes in the Salt mine, is refused naming the key.

The templates are rendered by Salt's own Jinja renderer, in process, with
the context the states give them (`havip`, the validated configuration) and
the pillar for the secrets they read themselves.  pytest's summary says how
many pillars were tried (test/render/conftest.py).
"""

import copy
import subprocess

import havip_contract as contract
import havip_pillar as pillar_lib
import havip_values
import pytest
import yaml
from havip_facts import MINE_FUNCTION, RELAY_FUNCTION
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test import daemons
from test.certs import pem
from test.formula import merged, render

CERTIFICATE = pem()
DANGEROUS = "\n'\";$`# "
INTERFACES = ("eth0", "ens32", "bond0.100")


# ---- generated pillars ---------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9_-]{0,8}[a-z0-9]", fullmatch=True)
paths = st.from_regex(r"/[a-z0-9._~-]{1,10}(?:/[a-z0-9._~-]{1,8}){0,2}", fullmatch=True)
words = st.from_regex(r"[A-Za-z0-9._()-]{1,8}", fullmatch=True)
passwords = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=8, max_size=24)


@st.composite
def pillars(draw, families=(4, 6)):
    """A valid havip pillar, with both IP families (of ``families``), both
    modes and both VRRP versions."""
    count = draw(st.integers(3, 6))
    hosts = draw(st.lists(names, min_size=count, max_size=count, unique=True))
    balancer_count = draw(st.integers(2, min(3, count - 1)))
    balancers, backends = hosts[:balancer_count], hosts[balancer_count:]
    family = draw(st.sampled_from(families))
    version = 2 if family == 4 and draw(st.booleans()) else 3
    base = "192.168.7." if family == 4 else "fd00:7::"
    priorities = draw(st.lists(st.integers(1, 254), min_size=balancer_count, max_size=balancer_count,
                               unique=True))
    nodes = {name: {"roles": ["balancer"], "address": f"{base}{i + 1}", "priority": priorities[i]}
             for i, name in enumerate(balancers)}
    nodes.update({name: {"roles": ["backend"], "address": f"{base}{i + 50}"} for i, name in enumerate(backends)})
    if draw(st.booleans()):
        nodes[balancers[0]]["roles"] = ["backend", "balancer"]
    vip_names = draw(st.lists(st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True), min_size=1, max_size=3,
                              unique=True))
    vips = {}
    for i, name in enumerate(vip_names):
        vips[name] = {"address": f"{base}{i + 100}/{24 if family == 4 else 64}",
                      "interface": draw(st.sampled_from(INTERFACES)), "virtual_router_id": i + 1,
                      "unicast": draw(st.booleans())}
        if version == 2 and draw(st.booleans()):
            vips[name]["auth_pass"] = draw(st.from_regex(r"[A-Za-z0-9._~+=@%^*,:/-]{1,8}", fullmatch=True))
    mode = draw(st.sampled_from(["tcp", "http"]))
    stats_paths = draw(st.lists(paths, min_size=3, max_size=3, unique=True))
    havip = {
        "nodes": nodes,
        "vips": vips,
        "frontend": {"port": 9090, "mode": mode},
        "backend": {"port": 8080, "balance": draw(st.sampled_from(
            [b for b in contract.BALANCE if mode == "http" or b != "uri"])),
            "http_check": {"path": draw(paths)}},
        "stats": {"password": draw(passwords.filter(lambda p: p.lower() not in pillar_lib.PLACEHOLDERS)),
                  "user": draw(st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True)),
                  "realm": " ".join(draw(st.lists(words, min_size=1, max_size=3))),
                  "refresh": draw(st.from_regex(r"[1-9][0-9]{0,2}(?:ms|s|m)?", fullmatch=True)),
                  "uri": stats_paths[0], "monitor_uri": stats_paths[1], "backends_uri": stats_paths[2]},
        "keepalived": {"vrrp_version": version,
                       "advert_int": draw(st.integers(1, 5)) if version == 2 else draw(st.integers(1, 4095)) / 100},
        "haproxy": {"defaults_extra": draw(st.lists(st.sampled_from(
            ["timeout connect 2s", "option dontlog-normal", "timeout queue 5s"]), max_size=2))},
    }
    if family == 6 or draw(st.booleans()):
        havip["mine"] = {"interface": draw(st.sampled_from(INTERFACES))}
    if draw(st.booleans()):
        havip["frontend"]["tls"] = {"certificate": CERTIFICATE, "redirect": mode == "http" and draw(st.booleans())}
    if draw(st.booleans()):
        havip["metrics"] = {"port": 9101}
    havip["keepalived"]["garp_master_refresh"] = draw(st.integers(0, 60))
    return havip


def balancer_of(havip):
    return sorted(n for n, node in havip["nodes"].items() if "balancer" in node["roles"])[0]


def validated(havip, minion_id=None):
    return pillar_lib.validate(merged(havip), minion_id or balancer_of(havip), interfaces=list(INTERFACES))


# ---- rendering and the daemons' checks ----------------------------------------------


def run(*argv, netns=None):
    argv = (["ip", "netns", "exec", netns] if netns else []) + [str(a) for a in argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def rendered(havip, root):
    """Every file the formula templates for a balancer that is also a
    backend, rendered into ``root``: {template: path}."""
    havip = copy.deepcopy(havip)
    first = balancer_of(havip)
    havip["nodes"][first]["roles"] = ["backend", "balancer"]
    lookup = havip.setdefault("lookup", {})
    lookup.setdefault("keepalived", {}).update(
        check_script=str(root / "check"), notify_script=str(root / "notify"), standby_file=str(root / "standby"),
        handover_script=str(root / "handover"), link_check_script=str(root / "link"),
        link_fault_file=str(root / "link-fault"),
        state_dir=str(root / "vrrp"), events_dir=str(root / "events"))
    lookup.setdefault("haproxy", {})["certificate"] = str(root / "havip.pem")
    lookup["metrics"] = {"textfile_dir": str(root / "metrics")}
    (root / "havip.pem").write_text(havip["frontend"].get("tls", {}).get("certificate") or "")
    config = validated(havip, first)
    files = {}
    for template, target in (("haproxy.cfg.jinja", "haproxy.cfg"), ("keepalived.conf.jinja", "keepalived.conf"),
                             ("nginx-site.conf.jinja", "site.conf"), ("check-haproxy.sh.jinja", "check"),
                             ("notify.sh.jinja", "notify"), ("handover.sh.jinja", "handover"),
                             ("check-link.sh.jinja", "link")):
        files[template] = root / target
        files[template].write_text(render(template, config, havip))
    for script in ("check", "notify", "link"):
        (root / script).chmod(0o755)
    (root / "standby").write_text("0\n")
    (root / "nginx.conf").write_text(f"pid {root}/nginx.pid;\nevents {{}}\nhttp {{ include {root}/site.conf; }}\n")
    return files


def daemon_problems(root, netns):
    """What the daemons' own checks (of every release) and the shell's say
    of the files in ``root``."""
    problems = {}
    for daemon, config in (("haproxy", "haproxy.cfg"), ("keepalived", "keepalived.conf"), ("nginx", "nginx.conf")):
        for release, said in daemons.refusals(daemon, root / config, netns=netns).items():
            problems[f"{daemon} ({release})"] = said
    checks = {
        "sh -n check": run("sh", "-n", root / "check"),
        "sh -n notify": run("sh", "-n", root / "notify"),
        "sh -n handover": run("sh", "-n", root / "handover"),
        "sh -n link": run("sh", "-n", root / "link"),
        "shellcheck": run("shellcheck", "-s", "sh", root / "check", root / "notify", root / "handover", root / "link"),
    }
    problems.update({name: (p.stdout + p.stderr)[-800:] for name, p in checks.items() if p.returncode})
    return problems


@pytest.fixture
def checked_in(netns_with, tmp_path):
    netns = netns_with(*INTERFACES)
    counter = iter(range(10**6))

    def check(havip):
        root = tmp_path / str(next(counter))
        root.mkdir()
        rendered(havip, root)
        return daemon_problems(root, netns), root
    return check


SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@SETTINGS
@given(havip=pillars())
def test_every_valid_pillar_renders_configs_and_scripts_the_daemons_accept(checked_in, pillars_tried, havip):
    problems, _ = checked_in(havip)
    pillars_tried["valid"] += 1
    assert not problems, (problems, yaml.safe_dump(havip))


# ---- mutations ------------------------------------------------------------------


def string_fields(havip):
    """(key path, getter, setter) of every string field of a pillar, names
    (node and VIP ids) included."""
    fields = []

    def visit(tree, prefix):
        for name in list(tree):
            value = tree[name]
            key = f"{prefix}{name}"
            if prefix in ("nodes:", "vips:"):
                fields.append((key, ("rename", tree, name)))
            if isinstance(value, dict):
                visit(value, key + ":")
            elif isinstance(value, str) and key != "frontend:tls:certificate":
                fields.append((key, ("set", tree, name)))
            elif isinstance(value, list) and value and isinstance(value[0], str):
                fields.append((key, ("line", value, 0)))
    visit(havip, "")
    return fields


def contract_key(path):
    """The Key of the contract that a concrete key path falls under."""
    spec, parts = contract.SPEC, path.split(":")
    for part in parts:
        spec = spec.spec if isinstance(spec, havip_values.Each) else spec[part]
    return spec.name if isinstance(spec, havip_values.Each) else spec


@st.composite
def mutations(draw):
    havip = draw(pillars())
    fields = string_fields(havip)
    key, (how, tree, name) = draw(st.sampled_from(fields))
    # Raw HAProxy lines are HAProxy's syntax: only a line break is foreign there.
    char = "\n" if how == "line" else draw(st.sampled_from(DANGEROUS))
    if how == "rename":
        at = draw(st.integers(1, len(name)))
        tree[name[:at] + char + name[at:]] = tree.pop(name)
        key = key[:len(key) - len(name)] + name[:at] + char + name[at:]
        escaped = ""
    elif how == "line":
        tree[name] += char + "listen injected"
        escaped = ""
    else:
        value = tree[name]
        at = draw(st.integers(0, len(value)))
        tree[name] = value[:at] + char + value[at:]
        spec = contract_key(key)
        escaped = DANGEROUS if spec.as_is else spec.escaped
    return havip, key, char, escaped


@settings(SETTINGS, max_examples=300)
@given(mutation=mutations())
def test_a_dangerous_character_in_any_string_field_is_refused_naming_it_or_escaped(checked_in, pillars_tried,
                                                                                   mutation):
    havip, key, char, escaped = mutation
    pillars_tried["mutated"] += 1
    if char not in escaped:
        with pytest.raises(havip_values.Invalid) as refused:
            validated(havip)
        assert refused.value.key == key, (refused.value.key, key, repr(char))
        return
    problems, _ = checked_in(havip)
    assert not problems, (key, repr(char), problems)


# ---- addresses with an IPv6 zone -------------------------------------------------

# What a compromised minion publishes after an IPv6 address's '%' (into the
# other balancers' handover script; into haproxy.cfg's server line), and
# the characters of such payloads, and characters no daemon takes.
PAYLOADS = ("x'; touch \"$(printf '\\057tmp\\057pwned')\"; : '",
            "lo]:80 init-addr none\nglobal\n    stats socket ipv4@0.0.0.0:9999 level admin\n#")
ZONE_CHARACTERS = "abclo019_.-" + "'\";$()`# \n\t]:[@\\" + "\u0085\u009b\u2028\u00e9\uff11"
zones = st.one_of(st.sampled_from(PAYLOADS), st.text(st.sampled_from(ZONE_CHARACTERS), min_size=1, max_size=40))


def zoned(address, zone):
    """``address`` (its /prefix, if any, kept last) with ``zone`` after a '%'."""
    ip, slash, prefix = address.partition("/")
    return f"{ip}%{zone}{slash}{prefix}"


@st.composite
def zoned_pillars(draw):
    """An IPv6 pillar with a zone on one of its addresses, and that key."""
    havip = draw(pillars(families=(6,)))
    zone = draw(zones)
    keys = [f"nodes:{name}:address" for name in havip["nodes"]] + [f"vips:{name}:address" for name in havip["vips"]]
    key = draw(st.sampled_from(keys + ["frontend:bind", "mine:network"]))
    if key == "frontend:bind":
        vip = next(iter(havip["vips"].values()))["address"].partition("/")[0]
        havip["frontend"]["bind"] = [zoned(vip, zone)]
    elif key == "mine:network":
        havip["mine"] = {"network": zoned("fd00:7::/64", zone)}
    else:
        section, name, _ = key.split(":")
        havip[section][name]["address"] = zoned(havip[section][name]["address"], zone)
    return havip, key


@settings(SETTINGS, max_examples=150)
@given(case=zoned_pillars())
def test_a_zone_on_any_address_of_the_pillar_is_refused_naming_its_key(pillars_tried, case):
    havip, key = case
    pillars_tried["zoned"] += 1
    with pytest.raises(havip_values.Invalid) as refused:
        validated(havip)
    assert refused.value.key == key, (refused.value.key, key)


@st.composite
def zoned_mines(draw):
    """An IPv6 pillar with a backend that takes its address from the mine,
    the Salt mine as a balancer reads it, with a zone on an address a
    backend (havip_address) or another balancer (havip_relay_addresses, in
    the grains' shape havip.relay_addresses gives) published; and the key the refusal names."""
    havip = draw(pillars(families=(6,)))
    nodes = havip["nodes"]
    balancers = sorted(name for name, node in nodes.items() if "balancer" in node["roles"])
    backends = sorted(name for name, node in nodes.items() if "balancer" not in node["roles"])
    mine = {(name, RELAY_FUNCTION): {
        "ip4_interfaces": {interface: [] for interface in INTERFACES},
        "ip6_interfaces": {interface: [nodes[name]["address"]] for interface in INTERFACES}} for name in balancers}
    mine.update({(name, MINE_FUNCTION): [nodes[name].pop("address")] for name in backends})
    zone = draw(zones)
    if draw(st.booleans()):
        name = draw(st.sampled_from(backends))
        addresses = mine[(name, MINE_FUNCTION)]
        key = f"nodes:{name}:address (from the mine)"
    else:
        name = draw(st.sampled_from(balancers[1:]))
        grain = mine[(name, RELAY_FUNCTION)][draw(st.sampled_from(["ip4_interfaces", "ip6_interfaces"]))]
        addresses = grain[draw(st.sampled_from(INTERFACES))]
        key = f"nodes:{name}:address (from the mine, {RELAY_FUNCTION})"
    addresses.insert(draw(st.integers(0, len(addresses))), zoned(addresses[0] if addresses else "fd00:7::99", zone))
    return havip, mine, balancers[0], key


@settings(SETTINGS, max_examples=150)
@given(case=zoned_mines())
def test_a_zone_on_any_address_published_in_the_mine_is_refused_naming_its_key(pillars_tried, case):
    havip, mine, balancer, key = case
    pillars_tried["zoned"] += 1
    with pytest.raises(havip_values.Invalid) as refused:
        pillar_lib.validate(merged(havip), balancer, interfaces=list(INTERFACES),
                            mine_get=lambda name, function: {name: mine[(name, function)]} if (name, function) in mine
                            else {})
    assert refused.value.key == key, (refused.value.key, key)
    assert "\n" not in str(refused.value)
