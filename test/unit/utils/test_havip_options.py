"""
Unit tests of ``_utils/havip_options.py``: the runner's options checked
before anything runs (through the runner: test/unit/test_runner.py).
"""

import havip_options
import pytest


@pytest.mark.parametrize("values, problem", [
    ({"rate": 100, "tgt": "lb*", "tgt_type": "glob"}, None),
    ({"rate": True}, "deploy:rate: must be a number of requests per second from 0.1 to 1000, got True"),
    ({"max_failed": 1.5}, "deploy:max_failed: must be a whole number from 0 up, got 1.5"),
    ({"tgt": []}, "deploy:tgt: must be a Salt target (a string, or a list of minion ids), got []"),
    ({"client": "a b"}, "deploy:client: must be a minion id (letters, digits and _ . -), got 'a b'"),
])
def test_an_option_is_checked_against_what_it_accepts(values, problem):
    assert havip_options.invalid_option("deploy", values) == problem


def test_an_unknown_keyword_is_named_with_the_nearest_known_one_and_salts_own_are_not_options():
    def command(client=None, rate=100, **options):
        """A runner function."""
    assert havip_options.unknown_options(command, {"__pub_fun": "x"}) is None
    assert havip_options.unknown_options(command, {"rte": 5}) == (
        "command:rte: unknown key (did you mean rate? known: client, rate)")
