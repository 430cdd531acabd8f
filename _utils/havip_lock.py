"""
The runner's lock: one failover test, rolling deploy, standby or resume at
a time on a master.  An exclusive ``flock`` on a file that says who holds
it (a JSON line: function, args, pid, started); the kernel releases it when
the holder's process ends, however it ends.

Pure helpers: the lock file's path comes in as an argument (no Salt
dunders).
"""

import contextlib
import datetime
import fcntl
import json
import os
import time


class Busy(Exception):
    """Another run holds the lock; the message says which, since when."""


def holder(text):
    """Who holds the lock, from its file's ``text``: "havip.deploy is
    running since 2026-12-01 10:00:00 (pid 4242)"."""
    try:
        held = json.loads(text)
        since = datetime.datetime.fromtimestamp(held["started"]).isoformat(sep=" ", timespec="seconds")
        return f"{held['function']} is running since {since} (pid {held['pid']})"
    except (ValueError, TypeError, KeyError, OverflowError, OSError):
        return "another havip run is running (it is starting)"


@contextlib.contextmanager
def exclusive(path, function, args):
    """Hold the lock at ``path`` for ``function`` (called with ``args``, a
    dict) while the block runs; raises :py:class:`Busy` at once, changing
    nothing, while another run holds it."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise Busy(holder(handle.read())) from None
        handle.truncate(0)
        handle.write(json.dumps({"function": function, "args": args, "pid": os.getpid(),
                                 "started": time.time()}) + "\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
