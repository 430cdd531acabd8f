"""
Unit tests of ``_utils/havip_lock.py``: the runner's lock (the runner
refusing a second run: test/unit/test_runner.py).
"""

import json
import os

import havip_lock
import pytest


def test_a_second_holder_is_refused_naming_the_first_until_it_is_done(tmp_path):
    lock = tmp_path / "havip" / "runner.lock"
    path = str(lock)
    with havip_lock.exclusive(path, "havip.failover_test", {"failure": "link_down"}):
        held = json.loads(lock.read_text(encoding="utf-8"))
        assert (held["function"], held["args"], held["pid"]) == ("havip.failover_test", {"failure": "link_down"},
                                                                 os.getpid())
        with pytest.raises(havip_lock.Busy, match=rf"^havip.failover_test is running since \d{{4}}-\d\d-\d\d"
                                                  rf" \d\d:\d\d:\d\d \(pid {os.getpid()}\)$"):
            with havip_lock.exclusive(path, "havip.deploy", {}):
                pytest.fail("two runs at once")
    with havip_lock.exclusive(path, "havip.deploy", {}):
        assert json.loads(lock.read_text(encoding="utf-8"))["function"] == "havip.deploy"
    assert lock.read_text(encoding="utf-8") == ""


def test_the_lock_is_released_when_the_run_fails(tmp_path):
    path = str(tmp_path / "runner.lock")
    with pytest.raises(RuntimeError), havip_lock.exclusive(path, "havip.deploy", {}):
        raise RuntimeError("a step blew up")
    with havip_lock.exclusive(path, "havip.standby", {"name": "svr1"}):
        pass


def test_a_holder_not_written_yet_is_still_named_a_run():
    assert havip_lock.holder("") == "another havip run is running (it is starting)"
