"""
A VRRP transition a beacon event reported, as ``salt-run
havip.log_transition`` checks it before the master logs and announces it:
its fields, its time against the master's clock, the claimed minion's own
answer (``havip.status``) confirming it, and a rate limit per minion.

An event on the master's bus does not say which minion sent it (a beacon
event's tag and data are both written by the minion), and neither does a
job return on it: any minion sees every job published (they share the
publish key) and can fire ``salt/job/<jid>/ret/<another id>`` itself.  So
the transition is believed only when the minion it names confirms it with
a proof only that minion can make: the runner seals a fresh nonce to the
public key the master accepted for it, and the answer's VIP states carry an
HMAC keyed by that nonce.

The clock, the minion's answer and the master's options come in as
arguments (no Salt dunders).
"""

import base64
import fcntl
import hashlib
import hmac
import json
import math
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from havip_facts import TRANSITION_LOG, TRANSITION_LOG_OPTION, VRRP_STATES
from havip_values import is_name
from salt.exceptions import CommandExecutionError

# How far a transition's time may be from the master's clock (seconds).
CLOCK_SKEW = 300
# The notify script records the state, hands the VIP over, then takes the
# time it queues: the state file's mtime precedes ``at`` by the handover.
HANDOVER_SLACK = 10
# At most this many transitions accepted per minion per minute.
RATE_LIMIT = 60
RATE_WINDOW = 60
# The transitions counted, in the master's cachedir.
COUNTED = "havip/transitions.json"
# How a nonce is sealed to a minion's RSA key.
SEAL = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def problem(minion, vip, state, previous, at, now):
    """Why the transition is refused as it came (the field named), or None."""
    for key, value, valid in (("minion", minion, is_name), ("vip", vip, is_name), ("state", state, _is_state),
                              ("previous", previous, _is_state)):
        if not valid(value):
            return f"{key} {value!r} refused"
    if not (isinstance(at, (int, float)) and not isinstance(at, bool) and math.isfinite(at)):
        return f"at {at!r} refused: not a finite number of seconds since the epoch"
    if abs(at - now) > CLOCK_SKEW:
        return f"at {at!r} refused: more than {CLOCK_SKEW} s from the master's clock ({now:.3f})"
    return None


def _is_state(value):
    return isinstance(value, str) and value in VRRP_STATES


def challenge(public_pem):
    """(nonce, sealed): a fresh nonce, and it sealed (base64 text) to a
    minion's public key (PEM, the key the master accepted for it): only the
    holder of the minion's private key can open it."""
    nonce = os.urandom(32)
    sealed = serialization.load_pem_public_key(public_pem).encrypt(nonce, SEAL)
    return nonce, base64.b64encode(sealed).decode("ascii")


def unseal(private_pem, sealed, password=None):
    """The nonce ``sealed`` holds, opened with the minion's private key (PEM,
    ``password`` if it is encrypted); ValueError if it cannot be."""
    key = serialization.load_pem_private_key(private_pem, password.encode() if password else None)
    if not isinstance(sealed, str):
        raise ValueError("not base64 text")
    return key.decrypt(base64.b64decode(sealed, validate=True), SEAL)


def prove(pki_dir, key_pass, sealed, vips):
    """havip.status's ``proof`` of ``vips`` for the challenge ``sealed``,
    opened with the minion's private key (``minion.pem`` in its ``pki_dir``,
    encrypted with ``key_pass`` if it is)."""
    try:
        with open(os.path.join(pki_dir, "minion.pem"), "rb") as handle:
            nonce = unseal(handle.read(), sealed, key_pass)
    except (OSError, ValueError, TypeError) as error:
        raise CommandExecutionError(f"havip.status: challenge refused: {error}") from None
    return proof(nonce, vips)


def proof(nonce, vips):
    """The proof of the VIPs' ``state`` and ``since_s`` in ``vips`` ({vip:
    entry}): an HMAC-SHA256 keyed by ``nonce`` (hex)."""
    claims = {vip: [entry.get("state"), entry.get("since_s")] if isinstance(entry, dict) else None
              for vip, entry in vips.items()}
    return hmac.new(nonce, json.dumps(claims, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def _proven(answer, nonce):
    """Does the ``answer`` carry the proof of its VIPs made with ``nonce``?"""
    try:
        return hmac.compare_digest(str(answer.get("proof")).encode(), proof(nonce, answer["vips"]).encode())
    except (TypeError, ValueError):
        return False


def unconfirmed(answer, vip, state, at, nonce):
    """Why the minion's ``havip.status`` ``answer`` (asked with the sealed
    ``nonce``) does not confirm that ``vip`` went to ``state`` at ``at``, or
    None when it does: its proof is the one only the minion could make, that
    VIP's recorded state is ``state`` (STOPPED for a STOP: keepalived no
    longer runs) and its time is the transition's."""
    if not isinstance(answer, dict) or not isinstance(answer.get("vips"), dict):
        return "it did not answer havip.status"
    if not _proven(answer, nonce):
        return "its answer is not proven by the key the master accepted for it"
    entry = answer["vips"].get(vip)
    if not isinstance(entry, dict):
        return f"it has no VIP {vip}"
    expected = ("STOP", "STOPPED") if state == "STOP" else (state,)
    if entry.get("state") not in expected:
        return f"its {vip} is {entry.get('state')!r}, not {state}"
    since = entry.get("since_s")
    if not (isinstance(since, (int, float)) and not isinstance(since, bool) and math.isfinite(since)
            and since - 1 <= at <= since + HANDOVER_SLACK):
        return f"its {vip} has been {state} since {since!r}, not since {at!r}"
    return None


def admit(path, minion, now, limit=RATE_LIMIT, window=RATE_WINDOW):
    """Count one accepted transition of ``minion`` at ``now`` in the file at
    ``path`` ({minion: [times]}, under an exclusive lock) and return True;
    return False, counting nothing, when ``limit`` were accepted in the last
    ``window`` seconds."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        try:
            counted = json.loads(handle.read() or "{}")
        except ValueError:
            counted = {}
        recent = {name: [t for t in times if now - window < t <= now]
                  for name, times in counted.items() if isinstance(times, list)}
        if len(recent.get(minion, [])) >= limit:
            return False
        recent[minion] = [*recent.get(minion, []), now]
        handle.seek(0)
        handle.truncate()
        json.dump({name: times for name, times in recent.items() if times}, handle)
        return True


def accepted_key(pki_dir, minion):
    """The public key (PEM) the master accepted for ``minion`` (a checked
    name), in the master's ``pki_dir``."""
    with open(os.path.join(pki_dir, "minions", minion), "rb") as handle:
        return handle.read()


def refusal(opts, ask, minion, vip, state, previous, at, now):
    """Why the transition is refused, or None once ``minion`` confirmed it:
    its fields (``problem``), a key the master accepted for it, the rate
    limit, then its answer (``ask(sealed)``: its ``havip.status`` asked
    with the sealed nonce) checked by ``unconfirmed``.  ``opts``: the
    master's options (its pki_dir and cachedir), ``now`` its clock."""
    if reason := problem(minion, vip, state, previous, at, now):
        return reason
    try:
        nonce, sealed = challenge(accepted_key(opts["pki_dir"], minion))
    except (OSError, ValueError) as error:
        return f"{minion} refused: no key accepted for it ({error})"
    if not admit(os.path.join(opts["cachedir"], COUNTED), minion, now):
        return f"{minion} refused: more than {RATE_LIMIT} transitions in {RATE_WINDOW} s"
    if reason := unconfirmed(ask(sealed), vip, state, at, nonce):
        return f"{minion} does not confirm {vip} {state} at {at}: {reason}"
    return None


def log(opts, minion, vip, state, previous, at):
    """Append the confirmed transition's line ``<at> <minion> <vip>
    <previous> -> <state>`` to the file the master option
    ``TRANSITION_LOG_OPTION`` of ``opts`` names (default
    ``TRANSITION_LOG``); (that file's path, the line)."""
    line = f"{at} {minion} {vip} {previous} -> {state}"
    path = opts.get(TRANSITION_LOG_OPTION, TRANSITION_LOG)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return path, line
