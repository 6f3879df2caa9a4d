"""A command hook for the hook tests: reads the JSON context on stdin, answers by mode.

Usage: ``hook_program.py MODE [ARG]``.

* ``record OUT``: writes ``{"context": <stdin JSON>, "env": <environment>, "cwd": <cwd>}`` to
  OUT, prints
  ``recorded <event>``, exits 0.
* ``block MESSAGE``: prints ``{"proceed": false, "message": MESSAGE}``, exits 0.
* ``fail CODE``: prints ``something broke`` on stderr, exits CODE (without reading stdin).
* ``hang PIDFILE``: forks a child (same process group), writes ``<leader pid> <child pid>`` to
  PIDFILE (atomically), then both sleep; only a kill ends them.
"""

from __future__ import annotations

import json
import os
import sys
import time

LIFETIME_S = 60.0  # far longer than any test's hook timeout


def main() -> int:
    mode, arg = sys.argv[1], sys.argv[2]
    if mode == "fail":
        sys.stderr.write("something broke\n")
        return int(arg)
    context = json.loads(sys.stdin.read())
    if mode == "record":
        with open(arg, "w", encoding="utf-8") as out:
            json.dump({"context": context, "env": dict(os.environ), "cwd": os.getcwd()}, out)
        sys.stdout.write(f"recorded {context['event']}\n")
        return 0
    if mode == "block":
        sys.stdout.write(json.dumps({"proceed": False, "message": arg}) + "\n")
        return 0
    if mode == "hang":
        child = os.fork()
        if child == 0:
            time.sleep(LIFETIME_S)
            os._exit(0)
        partial = arg + ".partial"
        with open(partial, "w", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {child}")
        os.replace(partial, arg)
        time.sleep(LIFETIME_S)
        return 0
    sys.stderr.write(f"unknown mode {mode}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
