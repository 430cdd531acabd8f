"""
The runner's options: what each accepts, and why a value or an unknown
keyword (an orchestrate file passes a whole pillar section) is refused,
before anything runs.

Pure helpers (no Salt dunders).
"""

import inspect

import havip_contract
import havip_facts
import havip_values

# The target types of Salt's minion matcher (CkMinions) a tgt_type may name.
TARGET_TYPES = ("glob", "pcre", "list", "grain", "grain_pcre", "pillar", "pillar_pcre", "pillar_exact", "compound",
                "compound_pillar_exact", "ipcidr", "range", "nodegroup")


def _is_number(value, low, high):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


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
    }


def invalid_option(function, values):
    """Why one of ``values`` ({option: value}) of runner ``function`` is
    refused, or None."""
    checks = _option_checks()
    for key, value in values.items():
        valid, accepts = checks[key]
        if not valid(value):
            return f"{function}:{key}: must be {accepts}, got {value!r}"
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
