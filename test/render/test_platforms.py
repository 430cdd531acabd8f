"""
Fast tier: the platforms of test/platforms.py.  The platform check passes
each with its own packages' versions, and each minimum is what the oldest
supported release ships; the Debian releases' versions are those of their
packages.  Ubuntu 24.04, RHEL 9 and RHEL 10 render the whole stack through
a real salt-call with their grains: every config passes its state's check
and the daemons of Debian 12 and 13 (test/daemons.py).  On each,
HAProxy's runtime API socket is where the platform's haproxy package lets
HAProxy make it, keepalived's scripts where its SELinux policy lets them
act.
"""

import pathlib
import subprocess

import havip_facts
import havip_haproxy
import havip_pillar
import pytest
import yaml
from salt.exceptions import CommandExecutionError

from test.platforms import PLATFORMS, RENDERED, major_minor
from test.render.test_formula_render import CONFIG_STATES, install_keepalived_scripts, lab_pillar, render_config
from test.saltcall import REPO, grains_of, seed_pillar


@pytest.mark.parametrize("name", PLATFORMS)
def test_the_platform_check_passes_every_platform_with_its_own_packages(name):
    platform = PLATFORMS[name]
    havip_pillar.check_platform(platform.grains, platform.versions)


def release_of(platform):
    """The platform check's name of ``platform`` (grain os, else os_family)
    and its major release."""
    grains = platform.grains
    name = grains["os"] if grains["os"] in havip_pillar.MINIMUM_RELEASES else grains["os_family"]
    return name, grains["osmajorrelease"]


def test_each_minimum_is_what_the_oldest_supported_releases_ship():
    oldest = [platform for platform in PLATFORMS.values()
              if release_of(platform) in havip_pillar.MINIMUM_RELEASES.items()]
    assert sorted(release_of(platform) for platform in oldest) == sorted(havip_pillar.MINIMUM_RELEASES.items())
    for package, minimum in havip_pillar.MINIMUM_VERSIONS.items():
        assert min(major_minor(platform.versions[package]) for platform in oldest) == minimum, package


@pytest.mark.parametrize("name", [name for name, platform in PLATFORMS.items()
                                  if release_of(platform) in havip_pillar.MINIMUM_RELEASES.items()])
def test_the_release_before_the_oldest_supported_one_is_refused(name):
    grains = dict(PLATFORMS[name].grains)
    grains["osmajorrelease"] -= 1
    grains["osrelease"] = str(grains["osmajorrelease"])
    with pytest.raises(CommandExecutionError, match=rf"havip: {grains['os']} {grains['osrelease']} is not supported"):
        havip_pillar.check_platform(grains, {})


@pytest.mark.parametrize("name", [name for name, platform in PLATFORMS.items() if platform.root])
def test_a_debian_releases_versions_are_those_of_its_packages(name):
    """Major and minor (systemd's major: its minor is a point release): a
    point release of Debian's is not a new fact."""
    platform = PLATFORMS[name]
    assert platform.checked
    for package, version in platform.versions.items():
        installed = subprocess.run(
            ["dpkg-query", f"--admindir={platform.root}/var/lib/dpkg", "-W", "-f=${Version}", package],
            capture_output=True, text=True, check=True).stdout
        parts = 1 if package == "systemd" else 2
        assert major_minor(installed)[:parts] == major_minor(version)[:parts], (package, installed)


def haproxy_of(states):
    """The validated ``haproxy`` key the balancer's haproxy.cfg renders."""
    return states["havip-haproxy-config-file"]["context"]["havip"]["haproxy"]


SCRIPTS = ("check", "link-check", "notify", "handover")


@pytest.mark.parametrize("name", PLATFORMS)
def test_haproxys_socket_and_keepalived_scripts_are_where_the_platform_lets_them_work(salt_call, name):
    """On Red Hat's packages /run/haproxy does not exist: HAProxy would fail
    to start, unable to make its runtime API socket there (haproxy -c makes
    none, so no check before the start tells).  Red Hat's SELinux policy
    confines the scripts keepalived runs but those in its own directory:
    from /etc/keepalived the check could not ask HAProxy, the handover not
    move an address."""
    platform = PLATFORMS[name]
    states = salt_call("svr1", grains_of(name)).show_sls(seed_pillar())
    socket = havip_haproxy.stats_socket(haproxy_of(states))
    assert str(pathlib.PurePosixPath(socket).parent) in platform.haproxy_dirs
    # What the module asks is that socket (it reads the same facts).
    assert havip_haproxy.stats_socket(states[havip_facts.FACTS_STATE]["dataset"]["haproxy"]) == socket
    scripts = [states[f"havip-keepalived-{script}-script-file"] for script in SCRIPTS]
    assert {str(pathlib.PurePosixPath(state["name"]).parent) for state in scripts} == {platform.keepalived_scripts}
    assert all(state["makedirs"] is True for state in scripts)


def test_the_redhat_familys_haproxy_global_is_the_defaults_with_its_socket_moved():
    def global_of(path):
        return yaml.safe_load((REPO / "havip" / "parameters" / path).read_text())["havip"]["haproxy"]["global"]
    defaults, redhat = global_of("defaults.yaml"), global_of("os_family/RedHat.yaml")
    at = next(index for index, line in enumerate(defaults) if line.startswith("stats socket "))
    assert redhat[:at] + redhat[at + 1:] == defaults[:at] + defaults[at + 1:]
    assert redhat[at].split()[:2] == ["stats", "socket"]
    assert redhat[at].split()[3:] == defaults[at].split()[3:]  # its mode and level


@pytest.mark.parametrize("name", RENDERED)
def test_the_whole_stack_renders_and_passes_the_daemons_checks(salt_call, netns_with, tmp_path, name):
    """A node with both roles, in http mode, with metrics: haproxy.cfg,
    keepalived.conf (its scripts) and nginx's site pass their states'
    checks and the daemons of Debian 12 and 13, which speak for the
    platform's syntax where their versions are on either side of its own
    (docs/testing.md says which)."""
    pillar = lab_pillar("http", tmp_path)
    pillar["havip"]["nodes"]["svr1"]["roles"] = ["backend", "balancer"]
    pillar["havip"]["backend"] = {"port": 8080}
    pillar["havip"]["metrics"] = {"port": 9101}
    minion = salt_call("svr1", grains_of(name), netns=netns_with("hvtvip0"))
    states = minion.show_sls(pillar)
    install_keepalived_scripts(minion, states, tmp_path, pillar)
    for state_id, filename in CONFIG_STATES.items():
        result, _ = render_config(minion, states, state_id, tmp_path / filename, pillar)
        assert result["result"] is True, (state_id, result)

    for service in ("nginx", "haproxy", "keepalived", "metrics"):
        running = states[f"havip-{service}-service-running"]
        assert running["fun"] == "service.running" and running["enable"] is True, service
    dropin = states["havip-keepalived-dropin-file"]
    assert dropin["name"] == "/etc/systemd/system/keepalived.service.d/havip.conf"
    assert "After=haproxy.service" in dropin["contents"]
    redhat = PLATFORMS[name].grains["os_family"] == "RedHat"
    zone = states.get("havip-firewall-zone", {})
    assert (zone.get("fun") == "firewalld.present") == redhat
    if redhat:
        assert sorted(zone["ports"]) == ["8080/tcp", "9090/tcp"]
        assert states["havip-nginx-repo-pkgs"]["pkgs"] == ["epel-release"]
