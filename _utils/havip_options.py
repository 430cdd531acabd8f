"""
The runner's options: what each accepts, and why a value or an unknown
keyword (an orchestrate file passes a whole pillar section) is refused,
before anything runs.

Pure helpers (no Salt dunders).
"""

import inspect
import re

import havip_contract
import havip_facts
import havip_values

# The target types of Salt's minion matcher (CkMinions) a tgt_type may name.
TARGET_TYPES = ("glob", "pcre", "list", "grain", "grain_pcre", "pillar", "pillar_pcre", "pillar_exact", "compound",
                "compound_pillar_exact", "ipcidr", "range", "nodegroup")
# An SLS name as state.apply takes it: words of letters, digits, _ and -
# joined by single dots (no path, no leading dot, never `..`).
SLS = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}(?:\.[A-Za-z0-9_][A-Za-z0-9_-]{0,63}){0,15}"
# The formula's own states: salt-run havip.deploy without ``state`` deploys them.
FORMULA_SLS = re.compile(r"havip(?:\..*)?")
# An option that means nothing without another: {option: (the other, why)}.
NEEDS = {"pools": ("state", "the SLS to apply on the pools' servers")}


def _is_number(value, low, high):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def is_app_sls(value):
    """An SLS name (``SLS``) that is not the formula's own."""
    return havip_values.matches(SLS)(value) and not FORMULA_SLS.fullmatch(value)


def _option_checks():
    """Every option of the runner's functions: (its check, what it accepts)."""
    return {
        "name": (havip_values.is_name, "a balancer's minion id (letters, digits and _ . -)"),
        "client": (lambda value: value is None or havip_values.is_name(value),
                   "a minion id (letters, digits and _ . -)"),
        "vip": (lambda value: value is None or havip_values.is_name(value),
                "a VIP's name (letters, digits and _ . -)"),
        "failure": (lambda value: isinstance(value, str) and value in havip_facts.FAILURES,
                    f"one of {', '.join(havip_facts.FAILURES)}"),
        "rate": (lambda value: _is_number(value, 0.1, 1000), "a number of requests per second from 0.1 to 1000"),
        "max_failed": (lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                       "a whole number from 0 up"),
        "tgt": (lambda value: (isinstance(value, str) and value != "")
                or (isinstance(value, list) and value != [] and all(isinstance(item, str) for item in value)),
                "a Salt target (a string, or a list of minion ids)"),
        "tgt_type": (lambda value: isinstance(value, str) and value in TARGET_TYPES,
                     f"one of {', '.join(TARGET_TYPES)}"),
        "state": (lambda value: value is None or is_app_sls(value),
                  "an SLS name (words of letters, digits, _ and - joined by single dots) that is not the formula's"
                  " own (havip, havip.*: salt-run havip.deploy without state deploys those)"),
        "pools": (lambda value: value is None or (isinstance(value, list) and value != []
                                                  and all(havip_values.matches(havip_values.SERVICE_NAME)(item)
                                                          for item in value)),
                  "a list of pool names (names of havip:pools, at least one)"),
    }


def invalid_option(function, values):
    """Why one of ``values`` ({option: value}) of runner ``function`` is
    refused, or None: a value it does not accept, or an option given
    without the one it needs (``NEEDS``)."""
    checks = _option_checks()
    for key, value in values.items():
        valid, accepts = checks[key]
        if not valid(value):
            return f"{function}:{key}: must be {accepts}, got {value!r}"
    for key, (other, why) in NEEDS.items():
        if values.get(key) is not None and values.get(other) is None:
            return f"{function}:{key}: needs {function}:{other} ({why})"
    return None


def unknown_options(function, options):
    """Why ``options`` (the keyword arguments ``function`` does not take,
    e.g. from an orchestrate file's pillar) are refused, or None.  Salt's
    own ``__pub_*`` keywords are not options."""
    given = [name for name in options if not str(name).startswith("__")]
    known = [name for name, parameter in inspect.signature(function).parameters.items()
             if parameter.kind is parameter.POSITIONAL_OR_KEYWORD]
    found = havip_contract.unknown_key(given, known)
    return f"{function.__name__}:{found[0]}: {found[1]}" if found else None


def deploy_pools(config, pools):
    """The pools a deploy of the operator's application rolls through:
    ``pools`` (the runner's option), or every pool of the model that has a
    server that is a node when None.  Refused (ValueError naming the
    option) when one is not a pool of the model or has no such server, or
    when there is none to roll through."""
    nodes = {pool["name"]: [server for server in pool["servers"] if server["node"]] for pool in config["pools"]}
    if pools is None:
        chosen = [name for name, servers in nodes.items() if servers]
        if not chosen:
            raise ValueError("deploy:state: no pool has a server that is a node (every server is given by address):"
                             " nothing to deploy")
        return chosen
    for name in pools:
        if name not in nodes:
            raise ValueError(f"deploy:pools: {name} is not a pool (pools: {', '.join(sorted(nodes))})")
        if not nodes[name]:
            raise ValueError(f"deploy:pools: {name} has no server that is a node (every one is given by address):"
                             " nothing to deploy there")
    return list(dict.fromkeys(pools))
