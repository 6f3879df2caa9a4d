"""Print ``tick <n>`` every INTERVAL seconds, COUNT times, then exit 0.

Usage: ``ticker.py INTERVAL COUNT``.
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    interval, count = float(sys.argv[1]), int(sys.argv[2])
    for n in range(count):
        print(f"tick {n}", flush=True)
        time.sleep(interval)


if __name__ == "__main__":
    main()
