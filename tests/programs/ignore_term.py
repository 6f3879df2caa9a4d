"""Ignore SIGTERM, print ``ready``, then sleep: only SIGKILL ends it."""

from __future__ import annotations

import signal
import time

LIFETIME_S = 60.0  # far longer than any test


def main() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    time.sleep(LIFETIME_S)


if __name__ == "__main__":
    main()
