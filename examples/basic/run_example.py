"""A task list: each task in a fresh Claude process. Needs the Claude Code CLI."""

from __future__ import annotations

import sys
import tempfile

from cc_executor import cc_execute_task_list

TASKS = [
    "Task 1: Create fib.py with a function fib(n) returning the n-th Fibonacci number.",
    "Task 2: Read fib.py and add test_fib.py with three pytest tests for fib.",
    "Task 3: Run `python -m pytest -q test_fib.py` and report the summary line.",
]


def main() -> None:
    workdir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="cc-basic-")
    print(f"working in {workdir}")
    results = cc_execute_task_list(
        TASKS,
        cwd=workdir,
        timeout_per_task=300,
        permission_mode="acceptEdits",
        allowed_tools=["Read", "Write", "Edit", "Bash"],
    )
    for index, result in enumerate(results, 1):
        print(f"--- task {index}: {result.state} (session {result.session_id})")
        print(result.text or result.error)


if __name__ == "__main__":
    main()
