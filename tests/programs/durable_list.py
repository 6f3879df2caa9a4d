"""Runs a durable task list through the Python API (embedded), for a test to kill mid-list.

``durable_list.py STATE_DIR LIST_ID WORK_DIR``: three shell tasks, each appending a line to its
own count file in WORK_DIR (their side effects). Task 1 prints ``ready`` and blocks unless
``WORK_DIR/release`` exists; when this program sees that output it writes ``ready`` on its own
stdout, so the test knows task 0 is done and task 1 is running. The test then SIGKILLs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cc_executor import cc_execute_task_list
from cc_executor.api import TaskEvent
from cc_executor.config import Settings
from cc_executor.protocol.names import Notification

BLOCK_S = 600  # task 1 blocks this long; the test kills the program well before


def tasks(work: Path) -> list[dict[str, str]]:
    """The list the test also reasons about (index = count file)."""
    return [
        {"command": f"echo zero >> {work}/count0; echo zero"},
        {
            "command": f"echo one >> {work}/count1; "
            f"if [ -e {work}/release ]; then echo one; exit 0; fi; "
            f"echo ready; exec sleep {BLOCK_S}"
        },
        {"command": f"echo two >> {work}/count2; echo two"},
    ]


def main() -> None:
    state_dir, list_id, work = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

    def progress(event: TaskEvent) -> None:
        if event.method == Notification.PROCESS_OUTPUT and "ready" in event.text("data"):
            sys.stdout.write("ready\n")
            sys.stdout.flush()

    cc_execute_task_list(
        tasks(work),
        durable=True,
        list_id=list_id,
        settings=Settings(state_dir=state_dir),
        progress_callback=progress,
    )


if __name__ == "__main__":
    main()
