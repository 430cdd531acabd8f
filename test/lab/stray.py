"""
One TCP ACK of a connection nobody has, sent from the client through a raw
socket, for lab tests of where the handover's relays pass it:

    python3 -m test.lab.stray ADDRESS PORT

Its source port (61999) is outside the client's ephemeral port range, so no
connection of the client's own has it.
"""

import socket
import struct
import sys

SOURCE_PORT = 61999


def checksum(data):
    """The Internet checksum (RFC 1071) of ``data``."""
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ack_segment(source, destination, port):
    """A TCP header with only ACK set, from ``source``:SOURCE_PORT to ``destination``:``port``."""
    header = struct.pack("!HHIIBBHHH", SOURCE_PORT, port, 1, 1, 5 << 4, 0x10, 1024, 0, 0)
    pseudo = socket.inet_aton(source) + socket.inet_aton(destination) + struct.pack(
        "!BBH", 0, socket.IPPROTO_TCP, len(header))
    return header[:16] + struct.pack("!H", checksum(pseudo + header)) + header[18:]


def main(argv=None):
    destination, port = (argv or sys.argv[1:])[:2]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as route:
        route.connect((destination, int(port)))
        source = route.getsockname()[0]
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) as raw:
        raw.sendto(ack_segment(source, destination, int(port)), (destination, 0))


if __name__ == "__main__":
    main()
