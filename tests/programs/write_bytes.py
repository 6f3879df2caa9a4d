"""Write exact bytes to stdout, then exit 0 (for output fidelity tests).

Usage: ``write_bytes.py SPEC...`` where each SPEC is ``hex:<hex digits>`` (those bytes) or
``repeat:<byte value>:<count>`` (one byte repeated).
"""

from __future__ import annotations

import sys


def main() -> None:
    out = sys.stdout.buffer
    for spec in sys.argv[1:]:
        kind, _, rest = spec.partition(":")
        if kind == "hex":
            out.write(bytes.fromhex(rest))
        elif kind == "repeat":
            value, _, count = rest.partition(":")
            out.write(bytes([int(value)]) * int(count))
        else:
            raise SystemExit(f"bad spec {spec!r}")
    out.flush()


if __name__ == "__main__":
    main()
