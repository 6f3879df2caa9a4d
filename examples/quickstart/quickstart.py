"""One task with the Python API. Needs the Claude Code CLI (see examples/README.md)."""

from __future__ import annotations

from cc_executor import cc_execute


def main() -> None:
    result = cc_execute("What is 2+2? Answer in one short sentence.", timeout=120)
    print(result.text)
    print(f"state={result.state} cost=${result.cost_usd} receipt UUID echoed={result.uuid_found}")
    print(f"receipt: {result.receipt_path}")


if __name__ == "__main__":
    main()
