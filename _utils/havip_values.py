"""
What a value of the havip pillar accepts, and the table's building blocks:
``Key`` (one key: its doc, what it accepts, its test), ``Each`` (a
mapping by name) and ``Items`` (a list of mappings), the tests of values
(full matches of the characters a daemon accepts: names, interfaces,
paths, host names, HAProxy lines) and the one parser of IP addresses
(``parse_address``), and ``Invalid``, the refusal that names its key.
The table itself, every key under ``havip:``, is havip_contract.
"""

import dataclasses
import ipaddress
import re

from salt.exceptions import CommandExecutionError


class Invalid(CommandExecutionError):
    """A pillar value the formula refuses; the message names its key."""

    def __init__(self, key, problem):
        super().__init__(f"havip pillar: havip:{key}: {problem}")
        self.key = key


# ---- what each key accepts -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Key:
    """One pillar key: ``doc`` what it means, ``accepts`` what is accepted
    (the reference and the error messages say it), ``test`` the check of a
    value, ``escaped`` characters accepted because they are escaped where
    the value is written, ``as_is`` written as it is given (the operator's
    own syntax: HAProxy lines, the page's HTML; only ``test`` checks it),
    ``secret`` never shown (not in a refusal either: ``secret=True`` is the
    one list of secret keys), ``required`` when the key
    must be given (ALWAYS: ``walk`` refuses its absence; otherwise the
    checks across keys do)."""

    doc: str
    accepts: str
    test: object
    escaped: str = ""
    as_is: bool = False
    secret: bool = False
    nullable: bool = False
    required: str = ""
    # The default of a key inside a named entry (defaults.yaml cannot hold
    # those); the code takes it from here.
    default: object = None

    def check(self, value, key):
        if value is None and self.nullable:
            return
        if not self.test(value):
            got = f"{kind_of(value)} (secret: not shown)" if self.secret else repr(value)
            raise Invalid(key, f"must be {self.accepts}, got {got}")


@dataclasses.dataclass(frozen=True)
class Each:
    """A mapping whose keys are names (``name`` accepts them) and whose
    values all follow ``spec``."""

    doc: str
    name: Key
    spec: object
    required: str = ""
    placeholder: str = "<name>"


@dataclasses.dataclass(frozen=True)
class Items:
    """A list whose items all follow ``spec`` (a mapping of keys), each
    named by its index (``routes:0:host``)."""

    doc: str
    spec: object
    required: str = ""
    placeholder: str = "<n>"


ALWAYS = "yes"
_KINDS = ((bool, "true or false"), (str, "a string"), ((int, float), "a number"), (list, "a list"),
          (dict, "a mapping"))


def kind_of(value):
    """What ``value`` is, in an error message that must not show it."""
    if value is None:
        return "null"
    return next((name for types, name in _KINDS if isinstance(value, types)), type(value).__name__)


def matches(pattern):
    compiled = re.compile(pattern)
    return lambda value: isinstance(value, str) and compiled.fullmatch(value) is not None


def in_range(low, high):
    return lambda value: not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def is_switch(value):
    return isinstance(value, bool)


# An IP address as havip takes it: ASCII hex digits, ':' and '.', then an
# optional /prefix length.  No IPv6 zone (``fe80::1%eth0``): Python's
# ipaddress takes any text after the '%' (quotes, newlines, ``$(...)``),
# str() gives it back whole, and the address is still ``in`` its network.
# (Salt's ip6_interfaces grain lists link-local addresses without a zone.)
_ADDRESS = re.compile(r"[0-9A-Fa-f:.]+(?:/[0-9]{1,3})?")


def parse_address(value, kind=ipaddress.ip_address):
    """``value`` parsed by ``kind`` (ipaddress's ``ip_address``,
    ``ip_interface`` or ``ip_network``): every address havip takes, from
    the pillar, the mine or grains, goes through here, and what lands in a
    config or a script is the canonical text of the result (``str()``),
    never the input.  ValueError unless ``value`` is a string of an
    address's characters (no zone, ASCII only) that ``kind`` accepts."""
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise ValueError(f"not an IP address without a zone: {value!a}")
    return kind(value)


def canonical_address(value):
    """The canonical text of the IP address ``value`` (``fd00:0::0:1``:
    ``fd00::1``), as ``parse_address`` accepts it."""
    return str(parse_address(value))


def _parses(kind):
    """A test: does ``parse_address`` accept the value as a ``kind``?"""
    def test(value):
        try:
            parse_address(value, kind)
        except ValueError:
            return False
        return True
    return test


is_address = _parses(ipaddress.ip_address)
is_interface_address = _parses(ipaddress.ip_interface)
is_network = _parses(ipaddress.ip_network)


# What a string in the SLS can carry: Salt's tojson escapes every non-ASCII
# character as \uXXXX, a character above U+FFFF as a surrogate pair, which
# YAML refuses.
_SLS_TEXT = re.compile("[^\ud800-\udfff\U00010000-\U0010ffff]*")


def is_page(value):
    return isinstance(value, str) and value.strip() != "" and _SLS_TEXT.fullmatch(value) is not None


def list_of(test):
    return lambda value: isinstance(value, list) and all(test(item) for item in value)


def is_seconds(value):
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value >= 0


def whole(doc, low, high, **kwargs):
    return Key(doc, f"a whole number from {low} to {high}", in_range(low, high), **kwargs)


def listen_addresses(doc):
    return Key(doc, "a list of IP addresses (no IPv6 zone)", list_of(is_address))


def switch(doc):
    return Key(doc, "true or false", is_switch)


def one_of(doc, choices, nullable=False):
    return Key(doc, "one of " + ", ".join(map(str, choices)) + (" or null" if nullable else ""),
               lambda value: any(type(value) is type(c) and value == c for c in choices), nullable=nullable)


def text(doc, pattern, accepts, **kwargs):
    return Key(doc, accepts, matches(pattern), **kwargs)


# Characters allowed in each kind of string (full match).
NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
PATH = r"/[A-Za-z0-9._~/-]{0,254}"
FILE = r"(?:/[A-Za-z0-9_][A-Za-z0-9._-]*)+"
INTERFACE = r"(?!\.{1,2}$)[A-Za-z0-9_.-]{1,15}"
PACKAGE = r"[a-z0-9][a-z0-9+.-]{0,127}"
UNIT = r"[A-Za-z0-9_][A-Za-z0-9@._-]{0,127}"
PORT = whole("", 1, 65535)

# A path below the file server's root (salt://...), one segment or more,
# none starting with a dot: never `..`.
SALT_PATH = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}(?:/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}){0,15}"
# A grain's name, ``a:b`` for a nested key (as grains.get takes it).
GRAIN = r"[A-Za-z0-9_]{1,64}(?::[A-Za-z0-9_]{1,64}){0,7}"

# A service's or a pool's name: it names HAProxy's frontend or backend.
SERVICE_NAME = r"[a-z][a-z0-9_-]{0,31}"
# A host name (RFC 1123): labels of letters, digits and -, none starting or
# ending with -, at most 253 characters; a route's may start with `*.`.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST = rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*"


def is_host(value):
    return matches(HOST)(value) and len(value.removeprefix("*.")) <= 253


# A minion id, a VIP's name: what the contract's names accept.
is_name = matches(NAME)
# An interface name: what the kernel accepts (at most 15 characters, not
# . or ..), less anything but letters, digits and _ . -
is_interface = matches(INTERFACE)

URL_PATH = "a path: '/' then letters, digits and . _ ~ / -"


def port(doc):
    return whole(doc, 1, 65535)


def path(doc):
    return text(doc, PATH, URL_PATH)


def file(doc):
    return text(doc, FILE, "an absolute file path of letters, digits and . _ -")


def files(doc):
    return Key(doc, "a list of absolute file paths", list_of(matches(FILE)))


def packages(doc):
    return Key(doc, "a list of package names", list_of(matches(PACKAGE)))


def unit(doc):
    return text(doc, UNIT, "a service name (letters, digits and @ . _ -)")


def haproxy_lines(doc):
    return Key(doc, "a list of one-line strings of printable ASCII characters",
               list_of(matches(r"[ -~]+")), as_is=True)
