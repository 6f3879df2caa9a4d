"""Basic: a sequential task list, each task in a fresh Claude Code process.

Three dependent tasks run one after another in one working directory: task 2 reads what task 1
wrote, task 3 runs what task 2 wrote. Each task starts with a fresh context (a new Claude
process and session), so the files, not the conversation, carry the work forward. A failure
stops the list (``on_failure="stop"``): the tasks after it are ``skipped``. Needs the Claude
Code CLI (see examples/README.md).

    python examples/basic/run_example.py                    # in a new temporary folder
    python examples/basic/run_example.py --workdir ./demo
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from cc_executor import cc_execute_task_list
from cc_executor.logging import configure_logging

TASKS = [
    "Task 1: Create fib.py with a function fib(n) returning the n-th Fibonacci number "
    "(fib(0) == 0, fib(1) == 1).",
    "Task 2: Read fib.py and add test_fib.py with three pytest tests for fib.",
    "Task 3: Run `python -m pytest -q test_fib.py` and answer with pytest's summary line only.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where the tasks work (default: a temp dir)")
    parser.add_argument("--timeout-per-task", type=float, default=300.0, help="seconds per task")
    parser.add_argument(
        "--server", help="daemon URL, e.g. ws://127.0.0.1:8003/ws/mcp (default: in-process)"
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="cc-executor's own log on stderr (e.g. INFO, DEBUG)"
    )
    args = parser.parse_args(argv)
    configure_logging(args.log_level, "human")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cc-basic-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"working in {workdir.resolve()}")

    results = cc_execute_task_list(
        TASKS,
        cwd=str(workdir.resolve()),
        timeout_per_task=args.timeout_per_task,
        on_failure="stop",
        server_url=args.server,
        # Let Claude edit files in the working directory and run commands without asking:
        # nobody is there to answer a permission prompt.
        permission_mode="acceptEdits",
        allowed_tools=["Read", "Write", "Edit", "Bash"],
    )

    for index, result in enumerate(results, 1):
        print(f"--- task {index}: {result.state} (session {result.session_id})")
        print(result.text or result.error)
    files = sorted(p.name for p in workdir.iterdir() if p.suffix == ".py")
    print(f"files: {', '.join(files) or 'none'}")
    return 0 if all(r.success for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
