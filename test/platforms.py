"""
The platforms havip supports, as data in one place: what Salt's grains say
of each, the versions of the packages havip meets there, and where each
figure came from.  The tests take them from here (the platform check and
its minimums, the renders of each platform, the Debian releases' daemons)
and state none of their own.

``checked``: the figures were read here from the distribution's own
packages (Debian 12: this machine's; Debian 13: the trixie root that
test/bootstrap-debian.sh builds; a test compares them) or from its own
package indexes (Ubuntu's, read with apt on the day ``source`` says).  Not
checked: no mirror of the distribution answered here; ``source`` says where
the figures come from.
"""

from dataclasses import dataclass, field
from pathlib import Path

from test.lab.lab import RELEASE_ROOTS


@dataclass(frozen=True)
class Platform:
    """A distribution release as havip meets it."""

    name: str
    # The grains Salt reports there (os_family picks parameters/os_family/).
    grains: dict
    # {package: its version as the package manager states it}
    versions: dict
    source: str
    checked: bool
    # Where its own dpkg can be asked (the Debian releases the tests run).
    root: Path | None = None
    # The directories the distribution's haproxy package makes, where
    # HAProxy may put its runtime API's socket.
    haproxy_dirs: tuple = field(default=("/run/haproxy", "/var/lib/haproxy"))
    # Where keepalived's scripts can do what havip's do (ask HAProxy, change
    # addresses, nftables, files under /run): anywhere root's without SELinux.
    keepalived_scripts: str = "/etc/keepalived"


def _grains(os_family, os, release):
    major = int(release.split(".")[0])
    return {"os_family": os_family, "os": os, "osmajorrelease": major, "osrelease": release}


# Red Hat's haproxy package makes /var/lib/haproxy (its home, the chroot,
# where its own haproxy.cfg puts the stats socket) and no /run/haproxy
# (Debian's makes that one by tmpfiles.d).
REDHAT_HAPROXY_DIRS = ("/var/lib/haproxy",)
# Red Hat's SELinux policy confines keepalived (keepalived_t) and the scripts
# it runs, but those in /usr/libexec/keepalived
# (keepalived_unconfined_script_exec_t).
REDHAT_KEEPALIVED_SCRIPTS = "/usr/libexec/keepalived"

# Ubuntu's own indexes, read with apt (`apt-cache madison`): the newest of
# the release, its -updates and -security pockets (main).  Their Release
# files could not be authenticated here (no Ubuntu archive key on this
# machine); apt checked each index against its Release file's hashes.
UBUNTU_SOURCE = "Ubuntu's {release}, {release}-updates and {release}-security indexes, read with apt on 2026-12-06"

PLATFORMS = {platform.name: platform for platform in (
    Platform("debian-12", _grains("Debian", "Debian", "12"),
             {"haproxy": "2.6.12-1+deb12u4", "keepalived": "1:2.2.7-1+b2", "nginx": "1.22.1-9+deb12u12",
              "systemd": "252.39-1~deb12u2", "python3": "3.11.2-1+b1"},
             "this machine's packages (dpkg)", True, root=RELEASE_ROOTS["bookworm"]),
    Platform("debian-13", _grains("Debian", "Debian", "13"),
             {"haproxy": "3.0.11-1+deb13u5", "keepalived": "1:2.3.3-1", "nginx": "1.26.3-3+deb13u12",
              "systemd": "257.13-1~deb13u1", "python3": "3.13.5-1"},
             "the trixie root's packages (dpkg)", True, root=RELEASE_ROOTS["trixie"]),
    Platform("ubuntu-22.04", _grains("Debian", "Ubuntu", "22.04"),
             {"haproxy": "2.4.30-0ubuntu0.22.04.4", "keepalived": "1:2.2.4-0.2build1",
              "nginx": "1.18.0-6ubuntu14.24", "systemd": "249.11-0ubuntu3.23", "python3": "3.10.6-1~22.04.1"},
             UBUNTU_SOURCE.format(release="jammy"), True),
    Platform("ubuntu-24.04", _grains("Debian", "Ubuntu", "24.04"),
             {"haproxy": "2.8.30-0ubuntu0.24.04.2", "keepalived": "1:2.2.8-1build2",
              "nginx": "1.24.0-2ubuntu7.21", "systemd": "255.4-1ubuntu8.19", "python3": "3.12.3-0ubuntu2.1"},
             UBUNTU_SOURCE.format(release="noble"), True),
    Platform("rhel-9", _grains("RedHat", "RedHat", "9.6"),
             {"haproxy": "2.4.22", "keepalived": "2.2.8", "nginx": "1.20.1", "systemd": "252",
              "python3": "3.9"},
             "Red Hat's knowledge base 6996272 (RHEL 9: HAProxy 2.4); the rest from Red Hat's release notes"
             " (AppStream, nginx's default stream), from memory: no RHEL, CentOS Stream, AlmaLinux or Rocky"
             " mirror answered here",
             False, haproxy_dirs=REDHAT_HAPROXY_DIRS, keepalived_scripts=REDHAT_KEEPALIVED_SCRIPTS),
    Platform("rhel-10", _grains("RedHat", "RedHat", "10.0"),
             {"haproxy": "3.0.5", "keepalived": "2.2.8", "nginx": "1.26.3", "systemd": "257",
              "python3": "3.12"},
             "Red Hat's knowledge base 6996272 (RHEL 10: HAProxy 3.0), herr-ober's release notes (its AlmaLinux"
             " 10.3 tests start at HAProxy 3.0.5), sclorg's nginx 1.26 image of CentOS Stream 10; keepalived,"
             " systemd and Python from Red Hat's release notes, from memory: no mirror answered here",
             False, haproxy_dirs=REDHAT_HAPROXY_DIRS, keepalived_scripts=REDHAT_KEEPALIVED_SCRIPTS),
)}

# The platforms the render tests take beyond Debian 12 (the other render
# tests' own): those havip is not exercised on in the lab.
RENDERED = ("ubuntu-24.04", "rhel-9", "rhel-10")


def major_minor(version):
    """(2, 6) of '2.6.12-1+deb12u4', (2, 2) of '1:2.2.7-1' (an epoch
    first), (252,) of '252'."""
    numbers = version.split(":")[-1].split("-")[0].split(".")
    return tuple(int(number) for number in numbers[:2])
