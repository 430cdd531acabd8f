"""
The daemons' own checks of a rendered config - ``haproxy -c``,
``keepalived -t``, ``nginx -t`` - by the daemons of every Debian release
havip is exercised on: the machine's own (Debian 12, bookworm) and Debian
13's (trixie), from the root file system test/bootstrap-debian.sh builds,
by chroot.

A check of trixie runs in a mount namespace of its own: a throwaway
overlay on that root (nothing is ever written into it), with its own
``/proc`` and ``/dev``, and the directories the config names (its own,
the certificates', the scripts') bind-mounted at their own paths, so the
daemon reads the very files the test wrote.  keepalived's check runs in
the caller's network namespace (it insists that a VRRP interface exists).

HAProxy's server state file the config names (``server-state-file``) is
there as the formula's state creates it (its version line; or the text a
test gives): the check then runs in such an overlay for Debian 12 too (of
the machine's own root), the file written into the overlay only.

A warning counts as a refusal (HAProxy's deprecations included): the
checks' output is read, not only their exit status, and every line
besides a daemon's "valid" or "ok" is a refusal.  A missing trixie root
fails the test that needed it, saying how to build it.
"""

import os
import pathlib
import re
import subprocess

import pytest

from test.lab.lab import RELEASE_ROOTS

RELEASES = tuple(RELEASE_ROOTS)
TRIXIE_ROOT = RELEASE_ROOTS["trixie"]

# What each daemon's check says of a config it accepts without a warning.
ACCEPTED = {"haproxy": {"Configuration file is valid"}, "keepalived": set(),
            "nginx": {"nginx: the configuration file {config} syntax is ok",
                      "nginx: configuration file {config} test is successful"}}

# Runs in `unshare --mount --propagation private`: "$1" the release's root,
# "$2" the scratch mount point, then the directories to show, "--", the
# command; $HAVIP_FILE (if set) is written into the overlay with the text
# $HAVIP_FILE_TEXT.
CHROOT_SCRIPT = r"""
root=$1 m=$2; shift 2
mount -t tmpfs tmpfs "$m"
mkdir "$m/upper" "$m/work" "$m/root"
mount -t overlay overlay -o "lowerdir=$root,upperdir=$m/upper,workdir=$m/work" "$m/root"
mount -t proc proc "$m/root/proc"
mount --rbind /dev "$m/root/dev"
while [ "$1" != -- ]; do
    mkdir -p "$m/root$1"
    mount --bind "$1" "$m/root$1"
    shift
done
shift
if [ -n "${HAVIP_FILE:-}" ]; then
    mkdir -p "$m/root${HAVIP_FILE%/*}"
    printf '%s' "$HAVIP_FILE_TEXT" > "$m/root$HAVIP_FILE"
fi
exec chroot "$m/root" "$@"
"""
# What the formula's state puts in HAProxy's server state file at first.
SERVER_STATE = "1\n"


def command(daemon, config):
    """The argv of ``daemon``'s check of ``config``."""
    return {"haproxy": ["haproxy", "-c", "-f", str(config)],
            "keepalived": ["keepalived", "-t", "-f", str(config)],
            "nginx": ["nginx", "-t", "-c", str(config)]}[daemon]


def in_trixie(argv, shown):
    """``argv`` run by chroot in the trixie root, ``shown`` directories at
    their own paths."""
    if not (TRIXIE_ROOT / "usr").is_dir():
        pytest.fail(f"Debian 13's root file system {TRIXIE_ROOT} is missing: every rendered config is checked"
                    " by trixie's daemons too; build it with `sh test/bootstrap-debian.sh` (root, Debian 12)",
                    pytrace=False)
    return in_root(TRIXIE_ROOT, argv, shown)


def in_root(root, argv, shown):
    """``argv`` run by chroot in an overlay of ``root``, ``shown``
    directories at their own paths."""
    # Where the overlay is mounted, in the check's own mount namespace:
    # nothing shows outside it.
    scratch = TRIXIE_ROOT.parent / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-ec", CHROOT_SCRIPT, "sh",
            str(root), str(scratch), *sorted(set(shown)), "--", *argv]


def server_state_file(daemon, config):
    """The server state file an HAProxy config names, or None."""
    if daemon != "haproxy":
        return None
    found = re.search(r"^\s*server-state-file\s+(/\S+)\s*$", config.read_text(), re.M)
    return found[1] if found else None


def refusal(daemon, config, release, netns=None, shown=(), server_state=SERVER_STATE):
    """What ``release``'s ``daemon`` says against ``config`` (its output),
    or None when it accepts it without a warning.  ``shown``: directories
    the config names besides its own (trixie's chroot sees only these);
    ``server_state``: the text of the server state file it names."""
    config = pathlib.Path(config)
    argv = command(daemon, config)
    state_file = server_state_file(daemon, config)
    shown = [str(config.parent), *map(str, shown)]
    if release == "trixie":
        argv = in_trixie(argv, shown)
    elif state_file:
        argv = in_root("/", argv, shown)
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    files = {"HAVIP_FILE": state_file, "HAVIP_FILE_TEXT": server_state} if state_file else {}
    check = subprocess.run(argv, capture_output=True, text=True, timeout=60, env={**os.environ, **files})
    said = [line for line in (check.stdout + check.stderr).splitlines() if line.strip()]
    accepted = {line.format(config=config) for line in ACCEPTED[daemon]}
    if check.returncode or set(said) - accepted:
        return f"exit {check.returncode}: " + "\n".join(said)[-800:]
    return None


def refusals(daemon, config, netns=None, shown=(), server_state=SERVER_STATE):
    """{release: what its ``daemon`` says} of every release that refuses
    ``config`` or warns; empty when every one accepts it."""
    found = {release: refusal(daemon, config, release, netns, shown, server_state) for release in RELEASES}
    return {release: said for release, said in found.items() if said is not None}


def nginx_main(site_file):
    """A minimal main config beside ``site_file`` that includes it (nginx -t
    cannot test a lone server file; the formula's check_cmd does the same)."""
    site_file = pathlib.Path(site_file)
    main = site_file.with_name(site_file.name + ".main")
    main.write_text(f"pid {site_file.parent}/nginx.pid;\nevents {{}}\nhttp {{ include {site_file}; }}\n")
    return main
