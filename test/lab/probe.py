"""
A client's view of the VIP, for lab tests that probe without Salt: the same
measuring loop as ``havip.probe`` (``_utils/havip_probe.py``), run inside a
lab host:

    python3 -m test.lab.probe URL --seconds 10 --rate 100 [--timeout 0.2] [--timeline] [--answers] [--until-eof]

Prints "probe started" on stderr, then one JSON object on stdout when done
(after ``--seconds``, or with ``--until-eof`` as soon as its stdin closes).
"""

import argparse
import json
import pathlib
import sys
import threading

# The formula's helpers import each other by their plain names.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "_utils"))
import havip_probe


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--timeout", type=float, default=0.2)
    parser.add_argument("--timeline", action="store_true", help="also every request's time and outcome")
    parser.add_argument("--answers", action="store_true", help="also every request's answer (null: failed)")
    parser.add_argument("--cafile", help="verify an https URL against this CA certificate")
    parser.add_argument("--until-eof", action="store_true", help="stop early when stdin closes")
    args = parser.parse_args(argv)
    closed = threading.Event()
    if args.until_eof:
        threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    print("probe started", file=sys.stderr, flush=True)
    report = havip_probe.measure(args.url, args.seconds, args.rate, args.timeout, timeline=args.timeline,
                                 stop=closed.is_set, cafile=args.cafile, answers=args.answers)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
