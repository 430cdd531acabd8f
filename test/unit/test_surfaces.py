"""
Unit tests of what the command surfaces (``_modules/havip.py``,
``_runners/havip.py``) offer: every public function documented with a
``CLI Example``, nothing public that is not a command, and a
``__virtual__`` that says how to bring missing helpers.
"""

import inspect
import sys

import pytest

MODULE_COMMANDS = ["check", "config", "drain", "inject", "probe", "ready", "relay_addresses", "resume",
                   "save_server_state", "standby", "status", "validate"]
RUNNER_COMMANDS = ["deploy", "failover_test", "log_transition", "resume", "standby", "status"]


def public_functions(surface):
    return {name: value for name, value in vars(surface).items()
            if inspect.isfunction(value) and not name.startswith("_") and value.__module__ == surface.__name__}


@pytest.mark.parametrize("kind, commands", [("module", MODULE_COMMANDS), ("runner", RUNNER_COMMANDS)])
def test_every_public_function_is_a_command_with_a_cli_example(surface, kind, commands):
    functions = public_functions(surface(kind))
    assert sorted(functions) == commands
    assert [name for name, function in functions.items()
            if "CLI Example:" not in (function.__doc__ or "")] == []


@pytest.mark.parametrize("kind, advice", [("module", "run saltutil.sync_all"),
                                          ("runner", "run salt-run saltutil.sync_all")])
def test_without_its_helpers_a_surface_is_not_loaded_and_says_how_to_sync_them(
        surface, monkeypatch, kind, advice):
    monkeypatch.setitem(sys.modules, "havip_facts", None)  # `import havip_facts` fails
    loaded = surface(kind)
    loaded.__grains__ = {"kernel": "Linux"}
    available, reason = loaded.__virtual__()
    assert available is False
    assert "_utils/havip_*.py" in reason and reason.endswith(advice)
