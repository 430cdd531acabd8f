"""
havip, cluster-wide: who holds each VIP, is every node healthy, a live
failover test that measures and fails loudly, planned switchovers, and a
rolling deploy that loses no request.  Used by ``salt-run`` and by the
orchestrate files ``havip.failover_test`` and ``havip.deploy``.

The cluster and its configuration come from the pillar the master
compiles for the minions matching ``tgt`` (default every minion; one
minion of the cluster is enough) and for the cluster's nodes, merged over
the formula's parameters and validated as map.jinja does, without
secrets: a master with several clusters targets one, and is refused when
the target spans more, or when the nodes' pillars disagree.  What minions
answer (``havip.status``, ``havip.check``) is believed about themselves
only, never about their cluster, and only once it has the shape the
module gives.  The reports are plain data
(``--out=json``); ``comment`` says what they mean, and a failing one has
``retcode: 1`` (``salt-run``'s exit status).  One failover test, deploy,
standby or resume runs at a time on a master (a lock in its cachedir).

This runner is the command surface: the work is done by the helpers in the
formula's ``_utils/havip_*.py``, which ``salt-run saltutil.sync_all`` brings
to the master.
"""

import contextlib
import os
import time

import salt.client
import salt.utils.event

try:
    import havip_appdeploy
    import havip_deploy
    import havip_facts
    import havip_failover
    import havip_health
    import havip_lock
    import havip_master
    import havip_options
    import havip_rollout
    import havip_transition
except ImportError as missing:
    NOT_SYNCED = (False, f"havip: its helpers (_utils/havip_*.py) are not on the master ({missing}):"
                         " run salt-run saltutil.sync_all")
else:
    NOT_SYNCED = None

__virtualname__ = "havip"


def __virtual__():
    return NOT_SYNCED or __virtualname__


@contextlib.contextmanager
def _connect():
    """The minions, through one LocalClient for this run (or this thread: a
    LocalClient listens for its own returns), closed at the end."""
    with salt.client.get_local_client(__opts__["conf_file"]) as client:
        yield havip_master.Minions(client, __opts__)


def _fail(report, reason):
    """``report`` as a failure: ``salt-run`` exits with its ``retcode``, an
    orchestrate step fails by the context's."""
    __context__["retcode"] = 1
    report.update(result=False, comment=reason, retcode=1)
    return report


def _run(helper, report, *args):
    """``helper.run`` (havip_failover's or havip_deploy's) on the minions,
    filling in ``report``: passed, or failed, its comment saying why."""
    with _connect() as minions:
        passed, comment = helper.run(minions, _connect, report, *args)
    if not passed:
        return _fail(report, comment)
    report.update(result=True, comment=comment)
    return report


def _exclusive(function, report, args, run):
    """``run()`` (it returns the report) while this run holds the master's
    runner lock; refused, running nothing, when one of ``args`` (its
    options) is not what it accepts, or while another run holds it."""
    if problem := havip_options.invalid_option(function, args):
        return _fail(report, problem)
    path = os.path.join(__opts__["cachedir"], havip_facts.RUNNER_LOCK)
    try:
        with havip_lock.exclusive(path, f"havip.{function}", args):
            return run()
    except havip_lock.Busy as busy:
        return _fail(report, f"havip.{function} refused: {busy}")


def status(tgt="*", tgt_type="glob"):
    """
    The cluster at a glance: the holders of every VIP, the preferred holder,
    every node's health verdict, each service's frontend status
    (``services``: {service: {balancer: status}}) and each pool's servers'
    (``pools``: {pool: {server: {balancer: status}}}) in every balancer's
    HAProxy (None where not known), and the problems.  Exits non-zero (and
    an orchestrate step using it fails) on any problem: a VIP with no holder
    or two ("split brain"), a VIP away from its preferred holder while
    preemption is on, an unhealthy or silent node, no healthy balancer left
    to take over, a pool with no server UP on a balancer in service, a
    server UP on one balancer and DOWN on another (DRAIN and MAINT are
    neither), or an answer that is not what ``havip.check`` gives or names
    a pool, server or service the pillar does not have.  Each node is asked
    once (``havip.check with_status=True``, read-only): the call goes to the
    minions matching ``tgt`` first, and they work while the master compiles
    their pillars; only the cluster's nodes' answers are read, and its nodes
    that ``tgt`` does not match are asked after.  The cluster is the
    pillar's as the master compiles it now (a change not applied yet shows).
    Refused when the minions matching ``tgt`` belong to several havip
    clusters, or the pillars of its nodes disagree (their answers unread).
    Takes no lock.

    CLI Example:

    .. code-block:: bash

        salt-run havip.status
        salt-run havip.status tgt='lb*'
    """
    if problem := havip_options.invalid_option("status", {"tgt": tgt, "tgt_type": tgt_type}):
        return _fail({}, problem)
    with _connect() as minions:
        published = havip_master.publish_survey(minions, tgt, tgt_type)
        try:
            config = minions.config(tgt, tgt_type)
        except ValueError as exc:
            return _fail({}, str(exc))
        survey = havip_master.survey(minions, config, published)
    report = havip_health.cluster_view(config, survey)
    if survey["problems"]:
        return _fail(report, "; ".join(survey["problems"]))
    report.update(result=True, comment="every VIP has exactly one holder, the preferred one;"
                  " every node is healthy")
    return report


# ---- failover test ------------------------------------------------------------


def failover_test(failure="kill_haproxy", client=None, vip=None, rate=100, tgt="*", tgt_type="glob",
                  **options):
    """
    A live failover test.  Checks the cluster (as :py:func:`status`), that
    the pillar renders on every balancer without changing
    ``keepalived:vrrp_version`` (the restore applies it: as the deploy's
    pre-check) and that ``client`` (default: the first node that is not a
    balancer) can probe every service (1 s at ``rate`` requests/s), then
    probes them all at once while it breaks the VIP's holder
    (``failure``: kill_haproxy, stop_haproxy, kill_keepalived, link_down;
    ``havip.inject`` with ``confirm=True``, the pre-check having found
    another healthy balancer in service), waits - bounded by budgets
    computed from the keepalived timers - for the VIP on another balancer
    and for traffic to resume, then restores the holder with ``state.apply
    havip`` and waits for the cluster to be as before.  The restore runs
    whatever happens after the injection (its answer lost, an error, an
    interruption); when its apply fails, the comment says what the failure
    left on the holder.  Reports the figures, in seconds where their key
    ends in ``_s`` (``vip_moved_after_s``, ``client_visible_outage_s``,
    ``failed_requests`` of ``requests``, ``restored_after_s``, the budgets
    ``move_budget_s`` and ``restore_budget_s``), and ``leftovers``: balancers
    on standby and backend servers out of rotation that the pre-check found
    (a failed deploy step leaves them).  Exits non-zero with the reason if
    any step fails, or the traffic of any target did not resume in time
    (the reason names its service, pool, URL and host).

    The targets: for each service on each of its VIPs, a request per pool
    the service reaches, at ``rate`` requests/s each - its pool by ``/``
    (the URL's address as the host), each route's pool by the route's host
    (``probe.<domain>`` for a wildcard) and path_prefix - on the service's
    plain port (a TLS port is not probed: there is no CA to verify it
    with; a service that redirects to TLS is not probed at all).
    ``services`` reports each: its ``targets`` (``vip``, ``pool``,
    ``probe``: ``url``, ``host``, ``client``, ``rate``; and their figures),
    its worst outage and its requests (``client_visible_outage_s``,
    ``failed_requests``, ``requests``), and why a part of it is
    ``not_probed``.  The report's own figures are those of every target
    (today's single frontend: its own), ``probe`` the first target on the
    VIP.

    ``tgt``/``tgt_type``: the minions of the cluster to test (refused when
    they belong to several clusters).  Any other keyword, or an option's
    value of another type or range, is refused before anything runs (the
    orchestrate file passes its whole ``failover_test`` pillar).  Refused
    while another failover test, deploy, standby or resume runs on this
    master.

    CLI Example:

    .. code-block:: bash

        salt-run havip.failover_test
        salt-run havip.failover_test failure=link_down client=client1 tgt='lb*'
    """
    report = {"failure": failure}
    if problem := havip_options.unknown_options(failover_test, options):
        return _fail(report, problem)
    return _exclusive("failover_test", report, {"failure": failure, "client": client, "vip": vip, "rate": rate,
                                                "tgt": tgt, "tgt_type": tgt_type},
                      lambda: _run(havip_failover, report, client, vip, rate, tgt, tgt_type))


# ---- planned switchover -------------------------------------------------------


def _switch(verb, name, tgt, tgt_type):
    """``havip.<verb>`` (standby, or resume) on balancer ``name``, as a
    report: :py:func:`standby` and :py:func:`resume`."""
    report = {"balancer": name}

    def run():
        with _connect() as minions:
            try:
                config = minions.config(tgt, tgt_type)
            except ValueError as exc:
                return _fail(report, str(exc))
            balancers = [node["name"] for node in config["balancers"]]
            if name not in balancers:
                return _fail(report, f"{name!r} is not a balancer (balancers: {', '.join(balancers)})")
            problem, answers = havip_master.run_step(minions, havip_rollout.move_step(config, name, f"havip.{verb}"))
        if problem:
            return _fail(report, f"{verb} {name} FAILED: {problem}")
        answer = answers[name]
        report.update(moved=answer["moved"], took_s=answer["took_s"], result=True,
                      comment=havip_rollout.move_done(verb, name, answer))
        return report
    return _exclusive(verb, report, {"name": name, "tgt": tgt, "tgt_type": tgt_type}, run)


def standby(name, tgt="*", tgt_type="glob"):
    """
    Planned maintenance on balancer ``name``: ``havip.standby`` there - its
    VIPs move to the other balancers and stay away, across re-applies and
    restarts, until :py:func:`resume`.  Like every move, it is a handover
    (keepalived's notify script): ``name`` serves the connections it has
    until they end, the new holder relaying their packets to it, so none is
    lost.  Refused while another failover test, deploy, standby or resume
    runs on this master.

    Reports ``balancer``, ``moved`` (the VIPs), ``took_s`` (seconds); exits non-zero
    when the move fails, the comment says why.

    CLI Example:

    .. code-block:: bash

        salt-run havip.standby svr1
    """
    return _switch("standby", name, tgt, tgt_type)


def resume(name, tgt="*", tgt_type="glob"):
    """
    End :py:func:`standby` of balancer ``name``: ``havip.resume`` there.
    With preemption on it takes back the VIPs it is preferred for, a
    handover as every move is.  Reports as :py:func:`standby`.

    CLI Example:

    .. code-block:: bash

        salt-run havip.resume svr1
    """
    return _switch("resume", name, tgt, tgt_type)


# ---- rolling deploy -----------------------------------------------------------


def deploy(client=None, rate=100, max_failed=0, tgt="*", tgt_type="glob", state=None, pools=None, **options):
    """
    A rolling deploy of the havip pillar as it is now: ``state.apply havip``
    on one node at a time, each taken out of service first, checked after
    and put back, while ``client`` (default: the first node that is not a
    balancer) probes every service on each of its VIPs (an HTTP GET of
    ``/`` on its port; today's pair: the frontend on every VIP) at
    ``rate`` requests/s.

    1. pre-check, as :py:func:`status`; and the new pillar must render on
       every balancer and keep its ``keepalived:vrrp_version`` (read with
       ``state.show_sls havip.facts``).  VRRPv2 and v3 peers do not talk
       to each other: rolled one balancer at a time, each half would hold
       the VIPs.  A version change is refused, nothing deployed: apply it
       to every balancer at once (``salt -L 'svr1,svr2' state.apply
       havip``, accepting a short split), then deploy.  The cluster is
       the pillar's as it is now: a node or VIP it adds fails the
       pre-check until applied on its own;
    2. the nodes that are not balancers, by name: drained on every
       balancer in every pool that holds it (``havip.drain <pool>/<server>``;
       today's pair: ``havip.drain <node>``), applied, checked
       (``havip.check``), readied on every balancer in those pools
       (``havip.ready``);
    3. the balancers holding no VIP, then those holding VIPs (as the
       pre-check found them); whether one holds a VIP is read again when
       its turn comes (a failover may have moved them meanwhile).  One
       holding a VIP: ``havip.standby`` (its VIPs move away, a handover as
       every move is), applied, checked, ``havip.resume``; one holding
       none: applied, checked;
    4. every node healthy and each VIP on its preferred holder; every probe
       request answered.

    A node that is backend and balancer goes with the balancers, drained
    first and readied last.

    The first failing step stops the rollout: the nodes after it are left
    untouched, a backend whose apply or check failed stays drained, a
    balancer stays on standby; the comment says which step failed, why, and
    what is left so.  Any failure (a failed probe request too) makes
    ``salt-run`` exit 1; ``max_failed`` failed requests per service and VIP
    are tolerated (default 0).  Returns every step with its duration.

    Run again (the cause fixed), the deploy picks up where it stopped: the
    nodes whose servers a failed run of it left drained, and that a
    balancer's HAProxy still shows DRAIN, go first (``completed_first``,
    named in the comment): drained again, applied, checked, readied, then
    the others in their order, so that no more servers are out than in any
    turn.  Which drains are the deploy's is recorded on the master (its
    cachedir): a server drained by hand, or by the other kind of deploy (or
    another state's), is not; it is taken in its turn, and ``havip.drain``
    still refuses to drain the last server UP of a pool beside it.  A
    balancer left on standby is not resumed by a rerun (``salt-run
    havip.resume`` ends it, as the comment says).

    With ``state`` (an SLS name, the operator's own: not ``havip`` nor
    ``havip.*``), a rolling deploy of the operator's application instead:
    ``state.apply <state>`` on each server of ``pools`` (a list of the
    model's pool names; default: every pool that has a server that is a
    node) that is a node, one node at a time, by name, each under its own
    probes of every service that sends requests to a pool holding one of
    them (from ``client``, an HTTP GET of ``/`` on its port, on each of its
    VIPs; ``max_failed`` per service, VIP and node):

    1. pre-check, as :py:func:`status` (the pillar is not applied: no VRRP
       version check);
    2. for each node: drained on every balancer in every pool that holds it
       (``havip.drain <pool>/<server>``, today's pair ``havip.drain
       <server>``; chosen or not: a node in two pools serves both),
       applied, readied on every balancer in each of those pools
       (``havip.ready``, which waits until it is UP), and
       the probes that ran meanwhile saw no failed request (beyond
       ``max_failed``).  A node that is a balancer too is not put on
       standby: the operator's state is not havip's;
    3. every node healthy and each VIP on its preferred holder.

    The first failure stops the rollout: the nodes before it are serving,
    those after it untouched, and that node is left drained (drained again
    when its ready or the probes failed); the comment says what failed,
    where it is drained and what is untouched.  Run again with the same
    ``state``, it takes that node first, as above.  Servers given by
    ``address`` are no Salt minions: skipped, and named in the comment and
    in ``skipped``.  Refused before anything runs: ``state`` that is not
    such an SLS name, ``pools`` without ``state``, or naming a pool the
    model does not have or one with no server that is a node.  The report
    has ``state``, ``pools``, ``order``, ``deployed`` (the nodes done),
    ``skipped``, every step with its duration and the probes' requests.

    ``tgt``/``tgt_type``: the minions of the cluster to deploy (refused
    when they belong to several clusters).  Any other keyword (naming the
    nearest known one), or an option's value of another type or range, is
    refused before anything runs (the orchestrate file passes its whole
    ``deploy`` pillar).  Refused while another failover test, deploy,
    standby or resume runs on this master.  The probes' stop files on the
    client are removed once the probes have ended.

    CLI Example:

    .. code-block:: bash

        salt-run havip.deploy
        salt-run havip.deploy client=client1 tgt='lb*'
        salt-run havip.deploy state=shop.app pools='[api]'
        salt-run havip.deploy state=shop.app client=client1
    """
    report = {}
    if problem := havip_options.unknown_options(deploy, options):
        return _fail(report, problem)
    values = {"client": client, "rate": rate, "max_failed": max_failed, "tgt": tgt, "tgt_type": tgt_type}
    record = os.path.join(__opts__["cachedir"], havip_facts.DEPLOY_RECORD)
    if state is None and pools is None:
        return _exclusive("deploy", report, values,
                          lambda: _run(havip_deploy, report, record, client, rate, max_failed, tgt, tgt_type))
    return _exclusive("deploy", report, {**values, "state": state, "pools": pools},
                      lambda: _run(havip_appdeploy, report, record, state, pools, client, rate, max_failed, tgt,
                                   tgt_type))


def _status_answer(minion, sealed):
    """``minion``'s answer to ``havip.status`` asked with the ``sealed``
    nonce (None if it did not answer)."""
    with _connect() as minions:
        return minions.answers([minion], "havip.status", kwarg={"challenge": sealed}).get(minion)


def log_transition(minion, vip, state, previous, at):
    """
    Log one VRRP transition that the havip beacon reported, once the minion
    it names confirms it: one line ``<at> <minion> <vip> <previous> ->
    <state>`` appended to the master option ``havip_vrrp_log`` (default
    ``/var/log/salt/havip-vrrp.log``, created if missing), and a VIP taken
    over (MASTER) announced as the event ``havip/vip/<vip>/holder`` (data
    ``vip``, ``holder``, ``at``).  The example reactor
    (``havip/reactor/vrrp.sls``) calls it for every beacon event.

    An event does not prove its sender (any minion can fire one naming
    another), and neither does a job return on the master's bus (any minion
    sees the jobs published and can fire a return in another's name), so
    what it says is refused, with nothing written or fired, unless:
    ``minion`` and ``vip`` are names and ``state`` and ``previous`` VRRP
    states keepalived reports; ``at`` is a finite number of seconds since
    the epoch within 300 s of the master's clock; the master accepted a key
    for ``minion``; at most 60 transitions of ``minion`` were asked about in
    the last minute (counted in the master's cachedir); and ``minion``
    itself, asked (``havip.status`` with a nonce sealed to that key), has
    that VIP in that state since that time, proven by an HMAC keyed by the
    nonce, which only the holder of its private key can open.

    CLI Example:

    .. code-block:: bash

        salt-run havip.log_transition svr2 VI_1 MASTER BACKUP 1764670000.25
    """
    refused = havip_transition.refusal(__opts__, lambda sealed: _status_answer(minion, sealed), minion, vip, state,
                                       previous, at, time.time())
    if refused:
        return _fail({}, f"havip.log_transition: {refused}")
    path, line = havip_transition.log(__opts__, minion, vip, state, previous, at)
    if state == "MASTER":
        with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=False) as bus:
            bus.fire_event({"vip": vip, "holder": minion, "at": at}, f"havip/vip/{vip}/holder")
    return {"result": True, "comment": f"{path}: {line}"}
