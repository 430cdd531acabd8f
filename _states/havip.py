"""
havip states: a pool's server out of the balancers' rotation and back
(``havip.drained`` / ``havip.serving``), a balancer on standby and back in
service (``havip.standby`` / ``havip.in_service``), for an operator's own
orchestrations and deploy states.

Each reads what runs first (``havip.status``) and changes nothing when it
is already so; with ``test=True`` it says what it would change and changes
nothing.  The work is the execution module's (``havip.drain``,
``havip.ready``, ``havip.standby``, ``havip.resume``): its refusals (no
other server of the pool UP, no other balancer serving) fail the state with
their message, and nothing is changed.

.. code-block:: yaml

    # An orchestrate file (salt-run state.orchestrate maintenance.nginx1):
    # nginx1 out of rotation on every balancer, updated, back in rotation.
    nginx1-drained:
      salt.state:
        - tgt: svr1,svr2
        - tgt_type: list
        - sls: maintenance.drain-nginx1
    nginx1-updated:
      salt.state:
        - tgt: nginx1
        - sls: my-app
        - require:
          - salt: nginx1-drained
    nginx1-serving:
      salt.state:
        - tgt: svr1,svr2
        - tgt_type: list
        - sls: maintenance.serve-nginx1
        - require:
          - salt: nginx1-updated

    # maintenance/drain-nginx1.sls (serve-nginx1.sls: havip.serving)
    nginx1:
      havip.drained:
        - timeout: 60
"""

from salt.exceptions import CommandExecutionError

try:
    import havip_servers
except ImportError:
    havip_servers = None

__virtualname__ = "havip"


def __virtual__():
    if "havip.status" not in __salt__ or havip_servers is None:
        return (False, "havip: the havip execution module is not loaded (_modules/havip.py): run"
                       " saltutil.sync_all")
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _server_status(ret, status, server):
    """(name, status): the name havip gives server ``server`` (``pool/server``
    or a bare name one pool alone holds; bare in today's pair) and
    HAProxy's status of it on this balancer (UP, DRAIN, MAINT, DOWN ...),
    or None with ``ret`` failed saying why it cannot be known."""
    if "haproxy" not in status:
        ret.update(result=False, comment=f"{__grains__['id']} is not a balancer: it has no backend servers")
        return None
    backends = status["haproxy"]["backends"]
    if backends is None:
        ret.update(result=False, comment=f"HAProxy's runtime API did not answer: {status['haproxy'].get('error')}")
        return None
    pools = havip_servers.pools_named(backends)
    try:
        pool, name = havip_servers.resolve(pools, server)
    except ValueError as error:
        ret.update(result=False, comment=str(error))
        return None
    shown = havip_servers.name([each["name"] for each in pools], pool, name)
    return shown, backends[shown]


def _call(ret, function, *args, **kwargs):
    """``havip.<function>``'s report, or None with ``ret`` failed by its error."""
    try:
        return __salt__[f"havip.{function}"](*args, **kwargs)
    except CommandExecutionError as error:
        ret.update(result=False, comment=str(error))
        return None


def _timeout(timeout):
    return {} if timeout is None else {"timeout": timeout}


def _changed(ret, key, before, after):
    """``ret``'s changes: ``key`` from ``before`` to ``after``, if it moved."""
    if after is not None and after != before:
        ret["changes"][key] = {"old": before, "new": after}


def _server_now(name):
    """HAProxy's status of server ``name`` read again, None if it cannot
    be."""
    scratch = _ret(name)
    status = _call(scratch, "status")
    found = None if status is None else _server_status(scratch, status, name)
    return None if found is None else found[1]


def _server_state(name, timeout, wanted):
    """``havip.drained`` (``wanted`` "drain") or ``havip.serving`` ("ready")."""
    ret = _ret(name)
    status = _call(ret, "status")
    found = None if status is None else _server_status(ret, status, name)
    if found is None:
        return ret
    shown, before = found
    there = before.startswith(("DRAIN", "MAINT")) if wanted == "drain" else before.startswith("UP")
    what = "out of rotation (drained)" if wanted == "drain" else "in rotation and UP"
    if there:
        ret["comment"] = f"backend server {shown} is already {what} here ({before})"
        return ret
    if __opts__["test"]:
        ret.update(result=None, comment=f"backend server {shown} would be {what} here (now {before})",
                   changes={"status": {"old": before, "new": "DRAIN" if wanted == "drain" else "UP"}})
        return ret
    report = _call(ret, wanted, shown, **_timeout(timeout))
    if report is not None:
        ret.update(comment=f"backend server {shown} is {what} here", changes={"report": report})
    # What HAProxy shows now, also after a failure (a drain that timed out
    # leaves the server drained).
    _changed(ret, "status", before, _server_now(shown))
    return ret


def drained(name, timeout=None):
    """
    Server ``name`` is out of this balancer's rotation: HAProxy sends it no
    new connection and it has no session left (``havip.drain``).  ``name``
    is ``pool/server`` (``web/app1``), or a server's name that one pool
    alone holds (in a pillar without services: a backend node's name).
    Already so when HAProxy shows it DRAIN or MAINT.  Fails, changing
    nothing, when no other server of its pool is UP here; fails when
    sessions remain after ``timeout`` seconds (default 30: the server then
    stays drained).  A drain lasts until ``havip.serving``, across
    HAProxy's restarts and reloads (``havip.save_server_state``).

    Run it on the balancers (every one, so that no balancer sends the
    server traffic):

    .. code-block:: yaml

        nginx1:
          havip.drained:
            - timeout: 60
    """
    return _server_state(name, timeout, "drain")


def serving(name, timeout=None):
    """
    Server ``name`` (as ``havip.drained`` takes it) is in this balancer's
    rotation and UP (its health checks pass): ``havip.ready`` after a
    drain.  Already so when HAProxy shows it UP.  Fails when it is not UP
    within ``timeout`` seconds (default 30); it is in rotation all the
    same.

    .. code-block:: yaml

        nginx1:
          havip.serving:
            - timeout: 60
    """
    return _server_state(name, timeout, "ready")


def _balancer_state(name, timeout, standby):
    """``havip.standby`` (``standby`` True) or ``havip.in_service``."""
    ret = _ret(name)
    status = _call(ret, "status")
    if status is None:
        return ret
    if "standby" not in status:
        ret.update(result=False, comment=f"{__grains__['id']} is not a balancer")
        return ret
    what = "on standby" if standby else "in service"
    if status["standby"] == standby:
        ret["comment"] = f"{__grains__['id']} is already {what}"
        return ret
    if __opts__["test"]:
        held = sorted(vip for vip, state in status["vips"].items() if state["held"])
        moving = f"; the VIPs it holds would move: {', '.join(held)}" if standby and held else ""
        ret.update(result=None, comment=f"{__grains__['id']} would be {what}{moving}",
                   changes={"standby": {"old": status["standby"], "new": standby}})
        return ret
    report = _call(ret, "standby" if standby else "resume", **_timeout(timeout))
    if report is not None:
        ret.update(comment=f"{__grains__['id']} is {what}", changes={"report": report})
    # Read again, also after a failure (a resume whose VIPs did not come
    # back in time is in service all the same).
    _changed(ret, "standby", status["standby"], (_call(_ret(name), "status") or {}).get("standby"))
    return ret


def standby(name, timeout=None):
    """
    This balancer is on standby: every VIP it held is on another balancer,
    and stays away - across re-applies, reboots and keepalived restarts -
    until ``havip.in_service`` (``havip.standby``; ``name`` is only the
    state's name).  Each VIP moves by a handover: the connections it has
    go on here until they end.  Fails, changing nothing, when no other
    balancer's HAProxy serves; fails when no balancer took the VIPs within
    ``timeout`` seconds (default: 4 adverts + preempt_delay + 2 s: the
    standby is then undone).

    .. code-block:: yaml

        maintenance:
          havip.standby:
            - timeout: 20
    """
    return _balancer_state(name, timeout, True)


def in_service(name, timeout=None):
    """
    This balancer is in service (not on standby): ``havip.resume`` after a
    standby.  With preemption on it takes back the VIPs it is preferred
    for, and the state fails if they are not back within ``timeout``
    seconds (it is in service all the same).

    .. code-block:: yaml

        maintenance-over:
          havip.in_service: []
    """
    return _balancer_state(name, timeout, False)
