"""Quickstart: one Claude Code task with the Python task API.

The prompt runs in a fresh Claude Code process, on a supervisor inside this Python process (no
daemon needed) or, with ``--server``, on a running cc-executor daemon. Needs the Claude Code CLI
and a login or ``ANTHROPIC_API_KEY`` (see examples/README.md).

    python examples/quickstart/quickstart.py
    python examples/quickstart/quickstart.py --prompt "Name a prime above 100."
    python examples/quickstart/quickstart.py --server ws://127.0.0.1:8003/ws/mcp
"""

from __future__ import annotations

import argparse
import sys

from cc_executor import cc_execute
from cc_executor.logging import configure_logging

DEFAULT_PROMPT = "What is 2+2? Answer in one short sentence."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="what to ask Claude")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds before the run is killed"
    )
    parser.add_argument(
        "--server", help="daemon URL, e.g. ws://127.0.0.1:8003/ws/mcp (default: in-process)"
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="cc-executor's own log on stderr (e.g. INFO, DEBUG)"
    )
    args = parser.parse_args(argv)
    configure_logging(args.log_level, "human")

    result = cc_execute(args.prompt, timeout=args.timeout, server_url=args.server)

    print(f"answer: {result.text}")
    print(f"state: {result.state}")
    print(f"cost: ${result.cost_usd or 0:.4f}")
    print(f"session: {result.session_id}")
    # Every prompt asks Claude to end with a fresh UUID; finding it proves the answer is new.
    print(f"receipt UUID echoed: {result.uuid_found} ({result.receipt_path})")
    if not result.success:
        print(f"error: {result.error}", file=sys.stderr)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
