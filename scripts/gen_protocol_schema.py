"""Regenerate the JSON Schema appendix of docs/protocol.md from the protocol models.

Usage: python scripts/gen_protocol_schema.py [--check]
(--check exits 1 when the appendix is stale instead of rewriting it.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cc_executor.protocol.schema import render_schema_markdown

BEGIN = "<!-- BEGIN GENERATED SCHEMA -->"
END = "<!-- END GENERATED SCHEMA -->"
DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the appendix is stale")
    args = parser.parse_args()
    text = DOC.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, found, tail = rest.partition(END)
    if not found:
        sys.stderr.write(f"{DOC}: markers {BEGIN} / {END} not found\n")
        return 2
    updated = f"{head}{BEGIN}\n{render_schema_markdown()}{END}{tail}"
    if args.check:
        if updated != text:
            sys.stderr.write(f"{DOC}: schema appendix is stale; run {sys.argv[0]}\n")
            return 1
        return 0
    DOC.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
