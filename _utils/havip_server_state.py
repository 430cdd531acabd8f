"""
HAProxy's server state file as havip keeps it
(``lookup:haproxy:server_state_file``): the servers taken out of rotation
(``havip.drain``, or into maintenance) in the format of the runtime API's
``show servers state`` (version 1), which HAProxy loads at every start and
reload (``server-state-file``, ``load-server-state-from-file global``), so
that a drain lasts until ``havip.ready``, across restarts and reloads.

HAProxy applies a line to the server of the same backend and server names
(it skips those it does not have), and takes the line's port over its
config's: only the servers of the deployed model, at the address and port
it gives them, are kept.  Every field is checked and the lines are built
again from them: what lands in the file has the form havip built.

Pure helpers but :py:func:`write` (also havip_rerun's, for its record).
"""

import ipaddress
import os
import re
import tempfile

VERSION = "1"
# The fields a line must have (HAProxy 2.6 and 3.0 name 25, these first).
REQUIRED = ("be_id", "be_name", "srv_id", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state")
PORT = "srv_port"
# srv_admin_state's bits an operator sets: forced maintenance, forced drain
# (HAProxy's SRV_ADMF_FMAINT and SRV_ADMF_FDRAIN).
FORCED_MAINT, FORCED_DRAIN = 0x01, 0x08
FIELD_NAME = re.compile(r"[a-z][a-z_]{0,39}")
# A field's value: a number, a name, an address, or "-".
FIELD = re.compile(r"[A-Za-z0-9_.:-]{1,255}")
# The file as the formula creates it: no server out of rotation.
EMPTY = f"{VERSION}\n"


def parse(text):
    """(the field names, [{field: value}] per server) of ``show servers
    state``'s answer or of the file; the names are None for the file as
    the formula creates it (its version line alone).  Raises ValueError
    saying what is wrong."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].strip() != VERSION:
        raise ValueError(f"is not of version {VERSION} (it starts {lines[0][:40] if lines else ''!r})")
    if len(lines) == 1:
        return None, []
    header = lines[1].split()
    names = header[1:]
    if header[:1] != ["#"] or not all(FIELD_NAME.fullmatch(name) for name in names) \
            or not set(REQUIRED + (PORT,)) <= set(names) or len(set(names)) != len(names):
        raise ValueError("has no header line naming its fields")
    rows = []
    for number, line in enumerate(lines[2:], 3):
        values = line.split()
        if len(values) != len(names) or not all(FIELD.fullmatch(value) for value in values):
            raise ValueError(f"line {number} is not a server's state")
        rows.append(dict(zip(names, values, strict=True)))
    return names, rows


def forced(row):
    """The bits of the row's srv_admin_state an operator set (0: in rotation)."""
    value = row["srv_admin_state"]
    return int(value) & (FORCED_MAINT | FORCED_DRAIN) if value.isdigit() else 0


def _same_address(shown, address):
    try:
        return ipaddress.ip_address(shown) == ipaddress.ip_address(address)
    except ValueError:
        return False


def out_of_rotation(rows, pools):
    """The rows of servers out of rotation that a pool of ``pools`` (the
    deployed model) has, at its address and port; their srv_admin_state
    only the operator's bits."""
    servers = {(pool["name"], server["name"]): server for pool in pools for server in pool["servers"]}
    kept = []
    for row in rows:
        server = servers.get((row["be_name"], row["srv_name"]))
        if forced(row) and server and _same_address(row["srv_addr"], server["address"]) \
                and row[PORT] == str(server["port"]):
            kept.append({**row, "srv_admin_state": str(forced(row))})
    return kept


def render(names, rows):
    """The file's text: the version, the header, a line per row."""
    if names is None:
        return EMPTY
    return "".join([f"{VERSION}\n# {' '.join(names)}\n", *(" ".join(row[name] for name in names) + "\n"
                                                          for row in rows)])


def shown(rows):
    """``pool/server`` of each row."""
    return [f"{row['be_name']}/{row['srv_name']}" for row in rows]


def write(path, text):
    """``text`` to ``path`` at once (a file beside it, renamed over it;
    removed if that fails): owned by the caller (root; the master's user
    for havip_rerun's record), mode 0600."""
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".havip-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
