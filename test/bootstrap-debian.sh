#!/bin/sh
# Installs the Debian packages havip's tests need on a fresh Debian 12 machine
# (run as root): the daemons the formula deploys (their binaries validate
# rendered configs; the lab installs them again inside each host, offline,
# from apt's cache), the namespace tooling, systemd-nspawn (systemd-container:
# every lab host boots systemd; it pulls the matching systemd update), and
# Python's venv, and shellcheck (the scripts keepalived runs are checked with it);
# promtool from Debian's prometheus package, without installing it; and
# Debian 13's root file system (mmdebstrap), whose daemons check every
# rendered config too and which lab hosts of that release boot.
set -eu

DAEMONS="nginx nginx-common haproxy keepalived"
TOOLS="iproute2 nftables curl procps util-linux python3-venv systemd-container shellcheck mmdebstrap"
ARCHIVES=/var/cache/apt/archives

missing() {
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || echo "$pkg"
    done
}

export DEBIAN_FRONTEND=noninteractive
need=$(missing $DAEMONS $TOOLS)
if [ -n "$need" ] || [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v lock)" ]; then
    apt-get update -q
fi
if [ -n "$need" ]; then
    # Installing must not start the daemons in this (the machine's own)
    # namespace: a policy-rc.d of our own, removed again afterwards.
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=yes
    fi
    apt-get install -y -q --no-install-recommends $need || { [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d; exit 1; }
    [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
fi

# The lab's hosts install the daemons from apt's cache: make sure their
# .deb files are there (Docker-style images delete them after installing).
cd "$ARCHIVES"
for pkg in $DAEMONS; do
    version=$(dpkg-query -W -f='${Version}' "$pkg")
    arch=$(dpkg-query -W -f='${Architecture}' "$pkg")
    file="${pkg}_$(echo "$version" | sed 's/:/%3a/')_${arch}.deb"
    [ -s "$file" ] || apt-get download -q "$pkg=$version"
done
# A host's `pkg.installed` installs Recommends too (keepalived's ipvsadm):
# those not installed here must be in the cache as well.
recommended=$(apt-cache depends --no-depends --no-pre-depends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances $DAEMONS | awk '$1 == "Recommends:" {print $2}' | sort -u)
absent=$(missing $recommended)
[ -z "$absent" ] || apt-get install -y -qq --download-only --no-install-recommends $absent
# Installed only inside lab hosts, never here: the node exporter (balancers
# with metrics:port; havip installs it without Recommends), Prometheus
# (the lab's client scrapes the balancers) and ping (a balancer's
# keepalived:track_link check), with what they depend on.
LAB_ONLY="prometheus-node-exporter prometheus iputils-ping"
apt-get install -y -qq --download-only --no-install-recommends $LAB_ONLY

# promtool, for the fast tier's tests of the alerting rules
# (test/alerts/test_alerts.py): taken out of that prometheus .deb, never
# installed (no Prometheus service on this machine); again when apt has
# another version.
PROMTOOL=/var/cache/havip/promtool
version=$(apt-cache policy prometheus | awk '$1 == "Candidate:" {print $2}')
if ! "$PROMTOOL" --version 2>/dev/null | grep -qF "revision: $version)"; then
    mkdir -p "${PROMTOOL%/*}"
    deb="prometheus_$(echo "$version" | sed 's/:/%3a/')_$(dpkg --print-architecture).deb"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -O ./usr/bin/promtool > "$PROMTOOL.new"
    chmod 755 "$PROMTOOL.new"
    "$PROMTOOL.new" --version > /dev/null
    mv -f "$PROMTOOL.new" "$PROMTOOL"
fi

# Debian 13 "trixie": one root file system from Debian's own packages, the
# daemons the formula installs (havip/parameters: haproxy, keepalived,
# nginx; curl and nftables for keepalived's checks and the handover),
# what a lab host boots with (systemd as PID 1, D-Bus, iproute2, procps,
# python3) and openssl (the lab's client checks the certificates it gets).
# apt's lists and .debs stay in it, with those of what a lab host installs
# besides (ping, the node exporter, the client's Prometheus, and the
# Recommends of what the formula installs with them: the daemons', ping's
# linux-sysctl-defaults): a host installs from them offline.  Built into a temporary
# directory and renamed, so an interrupted build never counts as done;
# built again when the package lists change.  test/daemons.py chroots
# into it, test/lab/lab.py boots it.
TRIXIE=/var/cache/havip/trixie
TRIXIE_PKGS="systemd systemd-sysv dbus iproute2 nftables procps python3 curl openssl haproxy keepalived nginx"
TRIXIE_DEBS="iputils-ping prometheus-node-exporter prometheus"
TRIXIE_RECOMMENDING="haproxy keepalived nginx iputils-ping"
TRIXIE_KEY="3 $TRIXIE_PKGS / $TRIXIE_DEBS / $TRIXIE_RECOMMENDING"
# Run by mmdebstrap with the new root as "$1".
TRIXIE_HOOK='set -e; recommended=$(chroot "$1" apt-cache depends --no-depends --no-pre-depends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances $TRIXIE_RECOMMENDING \
    | sed -n "s/^ *Recommends: //p" | sort -u); \
    chroot "$1" apt-get install -y -qq --download-only --no-install-recommends $TRIXIE_DEBS $recommended'
if [ ! -d "$TRIXIE/root/usr" ] || [ "$(cat "$TRIXIE/root.key" 2>/dev/null)" != "$TRIXIE_KEY" ]; then
    mkdir -p "$TRIXIE"
    rm -rf "$TRIXIE/root.new"
    TRIXIE_DEBS="$TRIXIE_DEBS" TRIXIE_RECOMMENDING="$TRIXIE_RECOMMENDING" mmdebstrap --quiet --variant=minbase --include="$(echo $TRIXIE_PKGS | tr ' ' ,)" \
        --skip=cleanup/apt/lists --skip=cleanup/apt/cache --customize-hook="$TRIXIE_HOOK" \
        trixie "$TRIXIE/root.new" \
        "deb http://deb.debian.org/debian trixie main" \
        "deb http://deb.debian.org/debian trixie-updates main" \
        "deb http://deb.debian.org/debian-security trixie-security main"
    rm -f "$TRIXIE/root.key"
    rm -rf "$TRIXIE/root"
    mv "$TRIXIE/root.new" "$TRIXIE/root"
    echo "$TRIXIE_KEY" > "$TRIXIE/root.key"
fi
