"""A leader whose grandchild left both its group (``setsid``) and its tree (its parent exited).

Usage: ``graceful_escapee.py FILE``. The grandchild writes ``term`` to FILE when it gets SIGTERM,
then exits: it only does so if the cancel reached it with SIGTERM before any SIGKILL. The
leader takes LEADER_GRACE_S to act on its own SIGTERM, so the grandchild has that long.
``escaped <pid>`` and then ``ready`` are printed once the tree stands.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

LIFETIME_S = 60.0  # only a signal ends these processes
LEADER_GRACE_S = 0.3  # how long the leader takes to exit after its SIGTERM (under the test grace)


def _grandchild(report: int, target: Path) -> None:
    os.setsid()

    def on_term(signum: int, frame: object) -> None:
        target.write_text("term")
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    os.write(report, f"escaped {os.getpid()}\n".encode())
    os.close(report)
    time.sleep(LIFETIME_S)
    os._exit(0)


def main() -> None:
    target = Path(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda signum, frame: (time.sleep(LEADER_GRACE_S), os._exit(0)))
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        if os.fork() == 0:
            _grandchild(write_end, target)
        os._exit(0)  # the grandchild is reparented: no longer in the leader's tree
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end) as reports:
        sys.stdout.write(reports.readline())
    print("ready", flush=True)
    time.sleep(LIFETIME_S)


if __name__ == "__main__":
    main()
