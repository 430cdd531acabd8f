"""
The facts of a havip cluster that the execution module, the runner, the
beacon, the pillar validation, the templates and the tests share, each
defined here once: where the formula puts things, the names it gives them,
keepalived's weights and the standby levels, the failures a test may
inject and the limits of a wait.  The templates and states get them from
``havip_pillar.validate`` (its derived keys), never as literals of their own.

Constants only (and the check of a failure's name): how long things take is
havip_timing's, what a cluster is havip_cluster's.
"""

# Written by the formula (havip/facts.sls, the state FACTS_STATE): the
# validated configuration.  The rolling deploy reads the dataset of that
# state from each minion's ``state.show_sls havip.facts``.
FACTS_FILE = "/etc/havip/havip.json"
FACTS_STATE = "havip-facts-file"
# The HAProxy backend section that holds the havip backend servers.
HAPROXY_BACKEND = "havip_backends"
# The Salt mine entry where a backend publishes its addresses (havip/mine.sls).
MINE_FUNCTION = "havip_address"
# ... and where a balancer publishes its interfaces' addresses, for the
# other balancers' handover relays.
RELAY_FUNCTION = "havip_relay_addresses"
# What keeps a balancer from announcing the VIPs it keeps on lo (the formula
# sets them).
ARP_SYSCTLS = {"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.all.arp_announce": 2}
# The handover (havip/files/handover.sh.jinja): the holder keeps each VIP
# also on this device, where it stays for the connections in flight when the
# VIP leaves; a balancer that gave a VIP up relays through the nftables table
# RELAY_TABLE_PREFIX + <VIP name> (of the VIP's nftables family,
# NFT_FAMILIES[its IP version]); table inet TRACK_TABLE keeps conntrack on.
LINGER_DEVICE = "lo"
RELAY_TABLE_PREFIX = "havip_relay_"
TRACK_TABLE = "havip_track"
# keepalived:track_link's check counts the VRRP adverts for the cluster's
# VIPs that other hosts send in table inet LINK_TABLE (counter "adverts").
LINK_TABLE = "havip_link"
NFT_FAMILIES = {4: "ip", 6: "ip6"}
# Seconds a VIP may stay on LINGER_DEVICE after its VRRP state changed,
# beyond the handover's release_max, before havip.check calls it stuck.
RELEASE_GRACE = 5

# The VRRP states keepalived's notify script reports (and UNKNOWN, the
# previous state of a VIP's first transition): what the havip beacon sends
# and the runner's havip.log_transition accepts.  The beacon keeps a copy
# (Salt's beacon loader does not put _utils on its path); a unit test keeps
# the two equal.
VRRP_STATES = frozenset({"MASTER", "BACKUP", "FAULT", "STOP", "DELETED", "UNKNOWN"})

# keepalived's weights (track_script, track_file) lie within -253..253.
MAX_WEIGHT = 253
# What havip.standby writes to keepalived's standby file (track_file
# havip_standby, weight STANDBY_WEIGHT): keepalived adds the level times the
# weight to every priority.  IN_SERVICE adds nothing; STANDBY_LOWEST drops
# every priority (at most 254) to 1, so that a peer takes the VIPs over by
# preemption while this balancer still answers; STANDBY_FAULT goes beyond
# -254, which puts the instances in FAULT: peers take over even without
# preemption.
STANDBY_WEIGHT = -MAX_WEIGHT
IN_SERVICE = 0
STANDBY_LOWEST = 1
STANDBY_FAULT = 2
# Where keepalived's checks ask HAProxy's stats listener (which listens
# there beside stats:bind).
CHECK_ADDRESS = "127.0.0.1"
# Seconds HAProxy has to answer stats:backends_uri to keepalived's backends
# check (keepalived:track_backends) when keepalived:check:answer_timeout is
# 0 (the check of stats:monitor_uri is off).
BACKENDS_ANSWER_TIMEOUT = 0.5
# keepalived:track_link's check pings the other balancers and at most
# LINK_NODES other nodes (the first by name, the same from every balancer)
# every LINK_PING_GAP s and fails once every one of them has left LINK_LOST
# pings unanswered when the next one went out: on a healthy LAN a reply
# comes in well under a millisecond, and 30 % loss each way fails it in
# about 0.1 s.  Three: a false failure then needs the other balancers and
# three more nodes silent at once (one backend down, rebooted or being
# deployed is not this link), while a cluster of 16 backends and 2
# balancers sends 4 x 50 = 200 pings/s from each balancer, not 850; and the
# clusters of up to three such nodes ping every node as before.
LINK_PING_GAP = 0.02
LINK_LOST = 2
LINK_NODES = 3
# The run that first sees a loss holds its balancer in FAULT for
# LINK_FAULT_HOLD s (keepalived:lookup:link_fault_file): FAULT sends a
# priority-0 advert, and another balancer takes the VIPs after its skew
# (milliseconds) instead of its master-down timer (3 adverts and the skew,
# about 0.2 s at advert_int 0.05, after a lowered priority).  The hold covers
# that timer too, should the priority-0 advert be lost; the lowered priority
# then keeps the VIPs away while the loss lasts.
LINK_FAULT_HOLD = 0.3

# What havip.inject breaks, and so what the failover test may ask for.
FAILURES = ("kill_haproxy", "stop_haproxy", "kill_keepalived", "link_down")
# What each failure leaves on ``{holder}`` until state.apply havip restores it.
FAILURE_LEFT = {
    "kill_haproxy": "HAProxy was killed on {holder} (its unit restarts it)",
    "stop_haproxy": "HAProxy stays stopped on {holder}",
    "kill_keepalived": "keepalived was killed on {holder} (havip's drop-in of its unit restarts it)",
    "link_down": "the links of {holder} come back by their timers (havip-link-restore-<interface>)",
}
# The longest link_down (seconds).  Its restore is scheduled before the
# link goes down, as a transient systemd timer LINK_RESTORE_LATE s after the
# duration (an `ip -batch` file in LINK_RESTORE_DIR), so the link comes back
# even if the Salt job is killed meanwhile.
LINK_DOWN_MAX = 120
LINK_RESTORE_LATE = 2
LINK_RESTORE_DIR = "/run/havip"

# Seconds a server may take to drain or be UP again, and a VIP's old holder
# to finish its connections: the default of havip.drain and havip.ready,
# what the rolling deploy gives them, and the handover's release_max.
WAIT_DEFAULT = 30
# The longest wait or probe any havip function accepts (seconds).
WAIT_LIMIT = 3600
# One salt round trip to a minion: the runner's polls never wait longer.
CALL_TIMEOUT = 10
# The runner's lock, under the master's cachedir: one failover test,
# deploy, standby or resume at a time.
RUNNER_LOCK = "havip/runner.lock"
# Beside it, where each rolling deploy drained a server and has not readied
# it since (havip_rerun): its rerun after a failure takes those first.
DEPLOY_RECORD = "havip/deploy-drained.json"
# Where salt-run havip.log_transition logs the VRRP transitions minions
# confirmed, unless the master option TRANSITION_LOG_OPTION says otherwise.
TRANSITION_LOG = "/var/log/salt/havip-vrrp.log"
TRANSITION_LOG_OPTION = "havip_vrrp_log"


def unknown_failure(failure):
    """Why ``failure`` is none of FAILURES, or None."""
    if failure in FAILURES:
        return None
    return f"unknown failure {failure!r} (known: {', '.join(FAILURES)})"
