"""Medium: concurrent Claude Code tasks, a live event stream, and a JSON answer.

1. Three independent prompts run at the same time (``acc_execute`` + ``asyncio.gather``), each in
   its own Claude process.
2. One more prompt is streamed: every event (init, assistant text, tool calls, result) is printed
   as it happens.
3. One prompt asks for JSON (``json_mode=True``); the answer arrives parsed.

Runs in-process by default, or on a daemon with ``--server``. Needs the Claude Code CLI (see
examples/README.md).

    python examples/medium/concurrent_tasks.py
    python examples/medium/concurrent_tasks.py --server ws://127.0.0.1:8003/ws/mcp
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from cc_executor.api import TaskResult, acc_execute
from cc_executor.logging import configure_logging

QUESTIONS = [
    "Name a prime above 100. Answer with the number only.",
    "Name a sorting algorithm. Answer with its name only.",
    "Name a Linux signal. Answer with its name only.",
]
STREAMED = "Count from 1 to 3, one number per line."
JSON_PROMPT = 'Give the three primary colours as {"colours": [...]}.'


async def run(server: str | None, timeout: float) -> int:  # noqa: ASYNC109 - the tasks' limit
    started = time.monotonic()
    answers = await asyncio.gather(
        *(acc_execute(q, timeout=timeout, server_url=server) for q in QUESTIONS)
    )
    print(f"{len(answers)} tasks at once in {time.monotonic() - started:.1f}s:")
    for question, answer in zip(QUESTIONS, answers, strict=True):
        print(f"  {question.split('.')[0]} -> {answer.text} [{answer.state}]")
    sessions = {answer.session_id for answer in answers}
    print(f"  separate Claude sessions: {len(sessions)}")

    print("streamed:")
    stream = await acc_execute(STREAMED, stream=True, timeout=timeout, server_url=server)
    async for item in stream:
        if isinstance(item, TaskResult):
            print(f"  result: {item.text!r} (${item.cost_usd or 0:.4f})")
        else:
            print(f"  event: {item.summary()}")

    data = await acc_execute(JSON_PROMPT, json_mode=True, timeout=timeout, server_url=server)
    print(f"json: colours = {data['colours']}")

    results = [*answers, stream.result, data]
    return 0 if all(r is not None and r.success for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per task")
    parser.add_argument(
        "--server", help="daemon URL, e.g. ws://127.0.0.1:8003/ws/mcp (default: in-process)"
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="cc-executor's own log on stderr (e.g. INFO, DEBUG)"
    )
    args = parser.parse_args(argv)
    configure_logging(args.log_level, "human")
    return asyncio.run(run(args.server, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
