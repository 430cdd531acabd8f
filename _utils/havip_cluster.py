"""
A havip cluster as a whole: which configurations make one cluster (the
runner's target may reach several), whether its nodes agree on it, its
frontend's URL, the minion that probes it and the preferred holders of
its VIPs.

Pure helpers: they take the validated configurations (havip_pillar) as
arguments (no Salt dunders).
"""

from havip_http import http_url

# What an OS family's parameters set (havip/parameters/os_family/*.yaml):
# the nodes of one cluster may differ there, nowhere else.
HOST_KEYS = ("lookup", "firewall", "selinux")


def frontend_url(config, vip=None):
    """The URL of the frontend on ``vip`` (default: the first VIP)."""
    vip = vip or sorted(config["vips"])[0]
    return http_url(config["vips"][vip]["address"], config["frontend"]["port"])


def cluster_identity(config):
    """What tells a havip cluster from another: its node names and its VIPs
    (name, address, virtual router id)."""
    return (tuple(sorted(config["nodes"])),
            tuple(sorted((name, vip["address"], vip["virtual_router_id"]) for name, vip in config["vips"].items())))


def clusters(configs):
    """The configurations grouped by cluster: [[config, ...], ...].  Those of
    one identity are one cluster; so are identities that share a node (a
    minion has one havip pillar: they are one cluster before and after a
    change that not every node has applied yet)."""
    groups = []
    for identity in sorted({cluster_identity(config) for config in configs}):
        joined = [group for group in groups if set(identity[0]) & group["nodes"]]
        merged = {"identities": {identity}, "nodes": set(identity[0])}
        for group in joined:
            merged["identities"] |= group["identities"]
            merged["nodes"] |= group["nodes"]
            groups.remove(group)
        groups.append(merged)
    return [[config for config in configs if cluster_identity(config) in group["identities"]] for group in groups]


def cluster_config(configs, tgt):
    """The configuration of the one cluster of the minions matching ``tgt``,
    from ``configs`` ({minion: its configuration as the master derives it
    from the pillar it compiles for that minion; None without havip
    nodes}).  Refused when they belong to several clusters (a master may
    serve several: a test of one must not break another)."""
    found = clusters([config for _, config in sorted(configs.items()) if config])
    if not found:
        raise ValueError(f"no minion matching {tgt!r} has a havip pillar on this master"
                         " (salt-run pillar.show_pillar <minion> shows what it compiles)")
    if len(found) > 1:
        names = [sorted({name for config in group for name in config["nodes"]}) for group in found]
        shown = ["{" + ", ".join(group) + "}" for group in names]
        raise ValueError(
            f"the minions matching {tgt!r} belong to {len(found)} havip clusters: {', '.join(shown[:-1])}"
            f" and {shown[-1]}; target one with tgt (e.g. tgt='{','.join(names[0])}' tgt_type=list)")
    return found[0][0]


def disagreement(config, configs):
    """Why the pillars of the cluster's nodes do not make one cluster, or
    None: ``configs`` ({minion: its configuration as the master derives
    it, None without havip nodes}) must hold, for every node of ``config``,
    the same configuration (but for HOST_KEYS)."""
    def shared(other):
        return {key: value for key, value in other.items() if key not in HOST_KEYS}
    for name in sorted(config["nodes"]):
        other = configs.get(name)
        if other is None:
            return f"{name} is a node of the cluster but the master compiles no havip pillar for it"
        differing = sorted(key for key in set(shared(config)) | set(shared(other))
                           if config.get(key) != other.get(key))
        if differing:
            return (f"the master compiles another havip pillar for {name} (havip:{differing[0]} differs):"
                    " every node of a cluster needs the same one")
    return None


def probing_client(config, client, pillar_key):
    """The minion that probes: ``client``, else the first node that is not
    a balancer (``pillar_key`` names where to set one)."""
    if client:
        return client
    others = [name for name, node in sorted(config["nodes"].items()) if "balancer" not in node["roles"]]
    if not others:
        raise ValueError("every node is a balancer: name the probing minion"
                         f" (pillar {pillar_key})")
    return others[0]


def preferred_vips(config, name):
    """The VIPs balancer ``name`` should hold when every balancer is in
    service (it comes first in their ``order``)."""
    return sorted(vip for vip, entry in config["vips"].items() if entry["order"][0] == name)


def preferred_holders(config, usable):
    """{vip: the balancer that should hold it}: the most preferred (the VIP's
    ``order``, as keepalived ranks priorities) among ``usable``."""
    return {name: next((b for b in vip["order"] if b in usable), None)
            for name, vip in sorted(config["vips"].items())}
