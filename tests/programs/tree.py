"""Build a small process tree for supervisor tests and report it on stdout.

Usage: ``tree.py MODE [--ignore-term]``. Every process it starts sleeps (so only a kill ends it)
and is reported as ``<role> <pid>``; ``ready`` is printed once the whole tree exists.

* ``group``: two children in the leader's process group; the leader sleeps.
* ``setsid``: a child forks a grandchild that calls ``setsid()`` (leaves the group); leader sleeps.
* ``setsid-exit``: as ``setsid``, but the leader exits 0 right after ``ready``.
* ``background``: a child in the group keeps stdout open; the leader exits 0 after ``ready``.

With ``--ignore-term`` every process of the tree ignores SIGTERM (only SIGKILL ends it).
With ``--tick`` the leader prints ``tick`` every TICK_S seconds instead of sleeping silently.
"""

from __future__ import annotations

import os
import signal
import sys
import time

LIFETIME_S = 60.0  # far longer than any test: only a kill ends these processes
TICK_S = 0.05  # output often enough that a test sees it flow again after RESUME


def _sleep_forever() -> None:
    time.sleep(LIFETIME_S)
    os._exit(0)


def _fork_sleeper() -> int:
    pid = os.fork()
    if pid == 0:
        _sleep_forever()
    return pid


def _fork_escaped_grandchild() -> int:
    """A child forks a grandchild that calls setsid(); the grandchild's pid comes back on a pipe."""
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(read_end)
        if os.fork() == 0:
            os.setsid()
            os.write(write_end, f"{os.getpid()}\n".encode())
            os.close(write_end)
            _sleep_forever()
        os.close(write_end)
        _sleep_forever()
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        return int(pipe.readline())


def main() -> None:
    mode = sys.argv[1]
    if "--ignore-term" in sys.argv[2:]:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by every fork below
    print(f"leader {os.getpid()}", flush=True)
    if mode == "group":
        for _ in range(2):
            print(f"child {_fork_sleeper()}", flush=True)
    elif mode in ("setsid", "setsid-exit"):
        print(f"escaped {_fork_escaped_grandchild()}", flush=True)
    elif mode == "background":
        print(f"child {_fork_sleeper()}", flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("ready", flush=True)
    if mode in ("setsid-exit", "background"):
        return
    if "--tick" in sys.argv[2:]:
        for _ in range(int(LIFETIME_S / TICK_S)):
            time.sleep(TICK_S)
            print("tick", flush=True)
        return
    time.sleep(LIFETIME_S)


if __name__ == "__main__":
    main()
