"""
havip: highly available load balancing (nginx backends, HAProxy balancers,
keepalived VIPs).

The formula's ``post-map.jinja`` calls :py:func:`validate` on the merged
configuration before any state runs; operators call :py:func:`status` to see
who holds which VIP.

This module is the command surface: the work is done by the helpers in the
formula's ``_utils/havip_*.py``, which ``saltutil.sync_all`` brings here.
"""

import json
import os
import time

from salt.exceptions import CommandExecutionError

try:
    import havip_cluster
    import havip_facts
    import havip_haproxy
    import havip_health
    import havip_host
    import havip_http
    import havip_mine
    import havip_pillar
    import havip_probe
    import havip_relay
    import havip_timing
    import havip_tofs
    import havip_transition
except ImportError as missing:
    HELPERS_MISSING = str(missing)
else:
    HELPERS_MISSING = None

__virtualname__ = "havip"


def __virtual__():
    if __grains__.get("kernel") != "Linux":
        return (False, "havip: only Linux hosts run keepalived VIPs")
    if HELPERS_MISSING:
        return (False, f"havip: its helpers (_utils/havip_*.py) are not here ({HELPERS_MISSING}):"
                       " run saltutil.sync_all")
    return __virtualname__


def validate(config, minion_id=None):
    """
    Check a merged havip configuration (defaults, OS family, pillar) against
    the pillar contract (``_utils/havip_contract.py``, every key in
    docs/pillar.md) and this minion's platform, and return it - without its
    secrets - with the derived data the states use.  Any mistake raises an
    error whose message names the pillar key, before any state has changed
    anything.  A string from the Salt mine (a backend's address, a
    balancer's interface addresses) is checked as the pillar is.

    The returned dict is ``config`` without ``stats:password``,
    ``vips:<name>:auth_pass``, ``frontend:tls:certificate`` and the
    services' certificates, plus:

    - ``nodes``: every node normalised (``name``, ``roles``, ``address``,
      ``priority`` for balancers, ``page`` for backends - its name unless
      set -, ``discovered``).  With ``mine`` set, a backend may omit
      ``address``: it is taken from the Salt mine (``havip_address``), or
      from this minion's interfaces for itself; a balancer refuses a backend
      that has not published one yet, other minions leave it None.
    - ``vips``: every VIP normalised (``address`` without prefix, ``cidr``,
      ``family``, ``interface``, ``virtual_router_id``, ``unicast``,
      ``authenticated``), with ``priorities`` (every balancer's priority for
      it), ``order`` (the balancers from the most to the least preferred
      holder), ``track_backends_weight`` (one more than the priorities'
      spread, negative), ``nft_family`` (``ip``, ``ip6``) and, on a
      balancer, ``relay_to`` (where the handover relays)
    - ``frontend:tls``: ``enabled``, and the certificate's ``serial`` and
      ``not_after``
    - ``services`` / ``pools``: HAProxy's frontends and backends, the one
      model every part reads (``_utils/havip_services.py``): the pillar's
      ``services`` and ``pools``, or today's ``frontend`` and ``backend`` as
      the service ``havip`` and the pool ``havip_backends``
    - ``certificate_files``: the services' certificate files havip may have
      written, those the model names, and where (stale ones are removed)
    - ``vip_families``: the IP versions (4, 6) of the VIPs
    - ``backends`` / ``balancers``: the nodes with that role, sorted by name
    - ``node`` / ``roles``: ``minion_id``'s node and roles (empty if it is
      not a node)
    - ``mine_function`` / ``mine_args`` / ``relay_function``: what nodes
      publish in the Salt mine
    - ``arp_sysctls``, ``handover``: what the handover needs
    - ``standby``: keepalived's standby file, its ``weight`` and the levels
      ``havip.standby`` writes (``in_service``, ``lowest``, ``fault``)
    - ``checks``: the ``address`` where keepalived's checks ask HAProxy
      (127.0.0.1) and the ``backends_answer_timeout`` of its check of
      ``stats:backends_uri``
    - ``facts_file`` / ``facts_state``: where the formula writes this
      configuration, and its state id
    - ``listen``: on a balancer, the addresses its ``stats`` listener
      (stats:bind or its own address, and 127.0.0.1) and its ``metrics``
      (HAProxy's exporter, the node exporter) listen on
    - ``firewalld``: the ``ports`` this node opens to everyone, its
      ``rich_rules`` (admin ports to firewall:admin_sources, VRRP) and what
      earlier releases opened that it ``closed``
    - ``tofs:sources``: {state id: the ``source`` list of its file.managed},
      where this minion's grains (``tofs:files_switch``) look for each
      template before the formula's own (docs/tofs.md)

    CLI Example:

    .. code-block:: bash

        salt-call havip.validate '{"nodes": {...}, "vips": {...}, ...}' minion_id=lb1
    """
    if isinstance(config, str):
        config = json.loads(config)
    havip_pillar.check_platform(__grains__, {package: _installed(package) for package in havip_pillar.MINIMUM_VERSIONS})
    # network.ip_addrs and mine.get are looked up only if validation needs them.
    validated = havip_pillar.validate(
        config, minion_id,
        ip_addrs=lambda **kwargs: __salt__["network.ip_addrs"](**kwargs),  # noqa: PLW0108
        mine_get=lambda tgt, fun: __salt__["mine.get"](tgt, fun),  # noqa: PLW0108
        interfaces=list(__grains__.get("ip_interfaces", {})) or None)
    validated["tofs"] = {**validated["tofs"], "sources": havip_tofs.sources(validated["tofs"], __grains__)}
    return validated


def _installed(package):
    """The installed version of ``package``, '' if it is not (or no package
    manager can say)."""
    if "pkg.version" not in __salt__:
        return ""
    try:
        return __salt__["pkg.version"](package)
    except CommandExecutionError:
        return ""


def relay_addresses():
    """
    This balancer's own addresses by interface, where the other balancers'
    handovers relay a VIP's packets: what havip/mine.sls publishes in the
    Salt mine as ``havip_relay_addresses`` (also the pillar's
    ``mine_functions`` may list it: README, "Pillar").  The grains
    ``ip4_interfaces`` and ``ip6_interfaces`` in their shape, without
    ``lo`` (where the handover keeps a VIP), loopback addresses and the VIPs
    of this minion's havip pillar, each list sorted: the same whichever
    balancer holds the VIPs.

    CLI Example:

    .. code-block:: bash

        salt 'lb*' havip.relay_addresses
    """
    vips = havip_probe.cluster_addresses(__pillar__.get("havip") or {}, groups=("vips",))
    return havip_mine.own_addresses(__grains__, vips)


# ---- what is deployed and running on this minion -------------------------


def _facts():
    """The validated configuration the formula deployed here."""
    try:
        with open(havip_facts.FACTS_FILE, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise CommandExecutionError(
            f"havip: nothing is deployed on this minion ({havip_facts.FACTS_FILE} is missing);"
            " run state.apply havip first"
        ) from None


def _balancer_facts(function):
    facts = _facts()
    if "balancer" not in facts["roles"]:
        raise CommandExecutionError(f"havip.{function}: {__grains__['id']} is not a balancer")
    return facts


def _run(cmd, **kwargs):
    return __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True, **kwargs)


def config():
    """
    The havip configuration deployed on this minion by the last
    ``state.apply havip`` (defaults, OS family and pillar merged and
    validated), without its secrets: the states never had them.

    CLI Example:

    .. code-block:: bash

        salt '*' havip.config
    """
    return _facts()


def _balancer_status(facts):
    """The balancer part of :py:func:`status`."""
    lookup = facts["lookup"]
    keepalived = havip_host.running(lookup["keepalived"]["pidfiles"])
    config_valid = _run(["haproxy", "-c", "-q", "-f", lookup["haproxy"]["config"]])["retcode"] == 0
    return {
        "vips": havip_host.vips(facts, havip_host.addresses(_run), keepalived),
        "standby": havip_host.standby_value(lookup) != havip_facts.IN_SERVICE,
        "keepalived": {"running": keepalived},
        "haproxy": havip_haproxy.status(facts, havip_host.running([lookup["haproxy"]["pidfile"]]), config_valid),
        "relay": havip_relay.relays(_run, facts["vips"]),
        "tracking": havip_relay.tracking(_run),
    }


def _nginx_status(facts):
    url = havip_http.http_url(facts["node"]["address"], facts["backend"]["port"])
    return {
        "running": havip_host.running([facts["lookup"]["nginx"]["pidfile"]]),
        "answering": havip_http.http_ok(url),
        "url": url,
    }


def status(challenge=None):
    """
    What this minion runs for havip, and how it is doing.

    - ``roles``: this minion's roles
    - ``vips`` (balancers): for every VIP ``address``, ``interface``,
      ``held`` (the address is on its interface now), ``state`` (keepalived's
      MASTER/BACKUP/FAULT as its notify script recorded it; STOPPED when
      keepalived does not run), ``since_s`` (time of that change, seconds
      since the epoch), ``priority`` and ``lingering`` (kept on ``lo`` and
      no longer on its interface: the handover of a VIP that left, serving
      the connections it had here until they end)
    - ``standby`` (balancers): True between ``havip.standby`` and
      ``havip.resume``
    - ``keepalived`` (balancers): ``running``
    - ``haproxy`` (balancers): ``running``, ``config_valid`` (``haproxy -c``)
      and from the runtime API (if it fails: ``error``, ``backends`` None):
      ``pools``, {pool: {server: ``status``, ``weight``, ``sessions``}} of
      every pool (``status`` in HAProxy's words: UP, DOWN, DRAIN, MAINT,
      ``UP 1/2``, ...; None for a server HAProxy does not show);
      ``services``, {service: its frontend's ``status`` (OPEN, STOP, ...)
      and ``sessions``}; ``backends``, {server: status}, each server by the
      name ``havip.drain`` takes (``pool/server``; bare in a pillar without
      services)
    - ``relay`` (balancers): {VIP: [peer addresses]} of the VIPs whose
      packets of connections this balancer has not seen begin are relayed
      to the other balancers (nftables table ``havip_relay_<VIP>``, loaded
      when it gave the VIP up)
    - ``tracking`` (balancers): conntrack is kept on for the handover
      (table ``inet havip_track``)
    - ``nginx`` (backends): ``running``, ``answering`` (HTTP 200 on the
      backend port) and the ``url`` asked
    - ``proof``, asked with ``challenge`` (a nonce the master sealed to
      this minion's key: ``salt-run havip.log_transition`` asks so): an
      HMAC of the VIPs' ``state`` and ``since_s`` keyed by that nonce, which
      only the holder of this minion's private key can open

    CLI Example:

    .. code-block:: bash

        salt -C 'I@havip:nodes:*' havip.status
        salt svr1 havip.status
    """
    report = _status(_facts())
    if challenge is not None:
        report["proof"] = havip_transition.prove(__opts__["pki_dir"], __opts__.get("key_pass"), challenge,
                                                 report["vips"])
    return report


def _status(facts):
    report = {"roles": facts["roles"], "vips": {}}
    if "balancer" in facts["roles"]:
        report.update(_balancer_status(facts))
    if "backend" in facts["roles"]:
        report["nginx"] = _nginx_status(facts)
    return report


def check(with_status=False):
    """
    Health verdict of this minion: ``{"healthy": True/False, "reasons":
    [...], "standby": ...}``; ``with_status=True`` adds ``status``, the
    :py:func:`status` it judged (``salt-run havip.status`` asks every node
    so, once).  An unhealthy minion also sets the job's return code to 1,
    so the `salt` command and an orchestrate ``salt.function`` step fail.

    A balancer is healthy when keepalived and HAProxy run, HAProxy's
    configuration is valid, its runtime API answers with a server UP in
    every pool, no VRRP instance is in FAULT (unless it is on standby), and
    the handover is in place: conntrack kept on, a relay for each VIP it
    does not hold (when there are peers to relay to), and no VIP kept on
    ``lo`` longer than the handover's ``release_max`` + 5 s after its VRRP
    state changed.  ``state.apply havip`` sets the handover right.
    A backend is healthy when nginx runs and answers 200.

    CLI Example:

    .. code-block:: bash

        salt '*' havip.check
        salt '*' havip.check with_status=True
    """
    facts = _facts()
    report = _status(facts)
    verdict = havip_health.node_verdict(report, facts, time.time())
    if verdict["reasons"]:
        __context__["retcode"] = 1
    return {**verdict, "status": report} if with_status else verdict


# ---- planned switchover -----------------------------------------------------


def _held_vips(facts):
    addresses = havip_host.addresses(_run)
    return sorted(name for name, vip in facts["vips"].items() if havip_host.held(vip, addresses))


def _wait_until(predicate, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def standby(timeout=None):
    """
    Planned maintenance on this balancer: move every VIP it holds to another
    balancer and keep them away - across re-applies, reboots and keepalived
    restarts - until :py:func:`resume`.  The move is a handover, as every
    move is (keepalived's notify script runs havip-handover): this balancer
    keeps serving the connections it has on the VIPs, whose packets the new
    holder relays here, until they end.

    Refuses (and changes nothing) when no other balancer's HAProxy serves
    (asked through its ``stats:backends_uri``, without credentials; a
    peer's own standby cannot be seen from here: ``salt-run havip.status``
    sees it).  With preemption on (the default) the priority drops to 1
    and a peer takes over while this node still answers; with ``preempt:
    false`` the instances go to FAULT instead.  Returns once the VIPs have
    left this host's interfaces, with the time it took (``took_s``); if no
    peer took them within ``timeout`` seconds (default: 4 adverts +
    preempt_delay + 2 s) the standby is undone and an error raised.

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.standby
    """
    return _move_vips(True, timeout)


def resume(timeout=None):
    """
    End a :py:func:`standby`: this balancer is in service again.  With
    preemption on it takes back the VIPs it is preferred for (the highest
    priority) - a handover: their holders serve the connections they have
    until those end - and this returns once they are here, with the time
    it took (``took_s``); an error is raised if they are not back within
    ``timeout`` seconds (default: 4 adverts + preempt_delay + 2 s).

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.resume
    """
    return _move_vips(False, timeout)


def _move_vips(standby, timeout):
    """Put this balancer on ``standby`` (True) or back in service (False),
    and wait until the VIPs have moved: :py:func:`standby` and
    :py:func:`resume`."""
    function = "standby" if standby else "resume"
    facts = _balancer_facts(function)
    lookup, keepalived = facts["lookup"], facts["keepalived"]
    if bool(havip_host.standby_value(lookup)) is standby:
        return {"standby": standby, "changed": False, "moved": [], "took_s": 0.0}
    if standby:
        havip_haproxy.require_serving_peer(facts, function)
        moving = _held_vips(facts)
        level = havip_facts.STANDBY_LOWEST if keepalived["preempt"] else havip_facts.STANDBY_FAULT
    else:
        moving = havip_cluster.preferred_vips(facts, facts["node"]["name"]) if keepalived["preempt"] else []
        level = havip_facts.IN_SERVICE

    def moved():
        held = set(_held_vips(facts))
        return not held if standby else set(moving) <= held
    budget = float(timeout or havip_timing.move_budget(keepalived))
    start = time.monotonic()
    havip_host.write_standby(lookup, level)
    if not _wait_until(moved, budget):
        if standby:
            havip_host.write_standby(lookup, havip_facts.IN_SERVICE)
            raise CommandExecutionError(f"havip.standby: no balancer took over {', '.join(moving)} within"
                                        f" {budget:.1f} s; standby undone, this balancer is in service again")
        raise CommandExecutionError(f"havip.resume: in service again, but {', '.join(moving)} did not come back"
                                    f" within {budget:.1f} s")
    return {"standby": standby, "changed": True, "moved": moving, "took_s": round(time.monotonic() - start, 3)}


# ---- rolling deploys: a pool's server out of rotation and back -------------


def drain(server, timeout=None):
    """
    Take ``server`` out of this balancer's rotation: HAProxy's runtime API
    sets it to ``drain`` (no new connections; its health checks go on),
    and this returns once it has no session left (``scur`` 0 in ``show
    stat``), with its ``pool`` and the time it took (``took_s``).
    ``server`` is ``pool/server``, or a server's name that one pool alone
    holds (in a pillar without services: a backend node's name).

    Refuses, changing nothing, when no other server of its pool is UP in
    this HAProxy: nothing would be left to answer.  Raises an error if
    sessions remain after ``timeout`` seconds (default 30); the server then
    stays drained.  The drain lasts until :py:func:`ready`, across
    HAProxy's restarts and reloads (:py:func:`save_server_state`, at once).

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.drain web/app1
        salt 'svr*' havip.drain nginx1 timeout=120
    """
    budget = havip_timing.wait_limit("drain", timeout)
    return havip_haproxy.drain(_balancer_facts("drain"), server, budget, _wait_until)


def ready(server, timeout=None):
    """
    Put ``server`` (as :py:func:`drain` takes it) back into this balancer's
    rotation after :py:func:`drain` (HAProxy's runtime state ``ready``,
    saved at once: :py:func:`save_server_state`) and return once HAProxy
    sees it UP - its health checks pass - with the time it took
    (``took_s``).  A server out of rotation (DRAIN, MAINT) is
    marked down first, so that only fresh health checks put it back (after
    a deploy restarted it, the UP seen before says nothing of the new
    process).  Raises an error if it is not UP within ``timeout`` seconds
    (default 30); it is in rotation all the same, and gets traffic once its
    checks pass.

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.ready web/app1
    """
    budget = havip_timing.wait_limit("ready", timeout)
    return havip_haproxy.ready(_balancer_facts("ready"), server, budget, _wait_until)


def save_server_state():
    """
    Save the servers out of rotation in this balancer's HAProxy (drained,
    or in maintenance) to its server state file
    (``lookup:haproxy:server_state_file``, root only), which HAProxy loads
    at every start and reload: a drain lasts until :py:func:`ready`, also
    after HAProxy crashed and systemd started it again.  Only the servers
    the deployed configuration still has, at the same address and port,
    are kept (HAProxy would take the file's port over its config's).  When
    HAProxy does not answer, the file's own servers are kept that way.

    :py:func:`drain` and :py:func:`ready` save it; so does ``state.apply
    havip`` when HAProxy's config changes, before the reload.  Returns the
    ``file`` and the servers saved (``out_of_rotation``: ``pool/server``).

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.save_server_state
    """
    return havip_haproxy.save_server_state(_balancer_facts("save_server_state"))


# ---- measuring and breaking ---------------------------------------------------


def probe(url=None, seconds=10, rate=100, timeout=0.2, stop_file=None, cafile=None, host=None):
    """
    Request ``url`` from this minion ``rate`` times a second for ``seconds``
    seconds - on a fixed schedule, each request with its own ``timeout`` -
    and report what a client saw: ``started_s`` (seconds since the epoch),
    ``duration_s``, ``total`` and ``failed`` requests,
    ``first_failure_s``/``last_failure_s`` (seconds after the start),
    ``longest_outage_s`` (from the first failed request of a run to the
    next answered one), ``recovered`` (the last request got an answer) and
    ``backends``, how many answers each backend gave (by response body).

    ``url`` defaults to the frontend on the first VIP of the havip
    configuration deployed here.  With ``stop_file`` the probe ends early,
    as soon as that file exists on this minion: a caller that cannot know
    how long it needs the probe (the ``havip.deploy`` runner) starts it for
    long and creates the file when done.  An https ``url`` is verified
    against ``cafile`` (a CA certificate file on this minion; default: the
    system's CAs).  With ``host`` each request asks the URL's address for
    that host (its Host header; an https request's server name, SNI, and
    the name its certificate must have), as a client of a service's route
    would; it follows no redirect then (a redirect is a failed request) and
    uses no proxy.

    Only an http or https URL is requested (a host that is an IP address
    or a host name, an optional port, a path), and on a minion where havip
    is deployed, or that has the havip pillar, only one on its cluster's
    VIPs and nodes; ``host`` is a host name (RFC 1123: labels of letters,
    digits and -); ``stop_file`` and ``cafile`` are absolute paths of
    letters, digits and ``. _ + -`` (for an https ``url``, ``cafile`` one
    that loads as CA certificates).  Anything else is refused, nothing
    requested.

    CLI Example:

    .. code-block:: bash

        salt client havip.probe url=http://192.168.100.10:9090/ seconds=30
        salt client havip.probe url=https://192.168.100.10/ cafile=/etc/ssl/our-ca.pem
        salt client havip.probe url=http://192.168.100.10/v2/ host=api.example.com
    """
    if url is None:
        url = havip_cluster.frontend_url(_facts())
    url = havip_probe.probe_url(url, _probe_scope())
    stop_file, cafile = havip_probe.file_path("stop_file", stop_file), havip_probe.file_path("cafile", cafile)
    seconds, rate, timeout = havip_probe.probe_args(seconds, rate, timeout)
    named = {"host": host} if (host := havip_probe.probe_host(host)) else {}
    stop = (lambda: os.path.exists(stop_file)) if stop_file else None
    return havip_probe.measure(url, seconds, rate, timeout, stop=stop, cafile=cafile, **named)


def _probe_scope():
    """The addresses ``havip.probe`` may request here: its cluster's VIPs
    and nodes, from the configuration deployed here, else from its havip
    pillar; None (any) on a minion that has neither."""
    if os.path.exists(havip_facts.FACTS_FILE):
        return havip_probe.cluster_addresses(_facts())
    pillar = __pillar__.get("havip")
    if isinstance(pillar, dict) and any(isinstance(pillar.get(key), dict) for key in ("vips", "nodes")):
        return havip_probe.cluster_addresses(pillar)
    return None


def _service(facts, name, action):
    """Start/stop a service the way the formula's states do: Salt's service
    module (systemd, the distribution's unit)."""
    service = facts["lookup"]["services"][name]
    if not __salt__[f"service.{action}"](service):
        raise CommandExecutionError(f"havip: service.{action} {service} failed")


def inject(failure="kill_haproxy", duration=5, confirm=False):
    """
    Break this balancer on purpose (for failover tests), and return when:

    - ``kill_haproxy``: every HAProxy process gets SIGKILL
    - ``stop_haproxy``: HAProxy is stopped by its service
    - ``kill_keepalived``: keepalived's processes get SIGKILL (its VIPs stay
      configured here, as after a crash, until systemd starts it again:
      havip's drop-in of its unit, after a peer's master-down interval and
      1 s; it removes them as it starts)
    - ``link_down``: the interfaces of the VIPs go down for ``duration``
      seconds (above 0, at most 120), then up again with their gateway
      routes (this call returns after that; the minion cannot answer
      meanwhile).  The restore is scheduled before the link goes down, as a
      transient systemd timer ``havip-link-restore-<interface>`` firing 2 s
      after the duration: the link comes back even if this job is killed.

    Refuses, breaking nothing, unless ``confirm=True``, and when no other
    balancer's HAProxy serves (each peer's ``stats:backends_uri``, asked
    without credentials).  A peer on standby cannot be seen from here: the
    failover test (``salt-run havip.failover_test``) confirms only after
    its own survey found another healthy balancer in service.

    Returns ``{"failure": ..., "at_s": <seconds since the epoch>}``.  Nothing is
    repaired here: systemd starts a killed HAProxy or keepalived again, and
    ``state.apply havip`` restores the rest (a stopped HAProxy).

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.inject kill_haproxy confirm=True
        salt svr1 havip.inject link_down duration=10 confirm=True
    """
    facts = _balancer_facts("inject")
    lookup = facts["lookup"]
    unknown = havip_facts.unknown_failure(failure)
    if unknown:
        raise CommandExecutionError(f"havip.inject: {unknown}")
    limit = havip_facts.LINK_DOWN_MAX
    if failure == "link_down" and (isinstance(duration, bool) or not isinstance(duration, (int, float))
                                   or not 0 < duration <= limit):
        raise CommandExecutionError(f"havip.inject: duration must be above 0 and at most {limit} s,"
                                    f" got {duration!r}")
    if confirm is not True:
        raise CommandExecutionError(
            f"havip.inject: refused, {failure} breaks {facts['node']['name']} on purpose: confirm with"
            f" confirm=True (salt {facts['node']['name']} havip.inject {failure} confirm=True)")
    havip_haproxy.require_serving_peer(facts, "inject")
    at = time.time()
    if failure == "kill_haproxy":
        havip_host.kill([lookup["haproxy"]["pidfile"]], "HAProxy")
    elif failure == "stop_haproxy":
        _service(facts, "haproxy", "stop")
    elif failure == "kill_keepalived":
        havip_host.kill(lookup["keepalived"]["pidfiles"], "keepalived")
    else:
        havip_host.link_down(_run, sorted({vip["interface"] for vip in facts["vips"].values()}), duration,
                             havip_facts.LINK_RESTORE_DIR, havip_facts.LINK_RESTORE_LATE)
    return {"failure": failure, "at_s": round(at, 3)}
