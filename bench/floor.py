"""What the stack and the machine allow, next to what cc-executor does: the floor of the targets.

Starts ``bench/minimal_relay.py`` (FastAPI + uvicorn and one WebSocket route, nothing else) and
a cc-executor daemon, then measures on both:

* idle RSS after start-up, and the RSS of a fresh interpreter that only imports the stack;
* the round trip of a request that does next to nothing (``hook_status``), back to back and
  after the connection was idle for about as long as ``bench.py``'s cancel waits before it asks
  (a few milliseconds): the difference is what waking an idle daemon costs on this machine,
  paid by every request that follows a pause.

The ratio targets of ``bench.py`` for the first byte, throughput, concurrency and cancel are
compared with the relay head to head by ``python bench/ab.py --before-src relay METRIC``.

    python bench/floor.py --rounds 200
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ab
import bench

STACK = "fastapi, uvicorn, pydantic_settings, loguru, psutil, sqlite3, orjson, tenacity, websockets"
IDLE_GAP_S = 0.005  # about what bench.py's cancel spends finding the tree before it cancels


def import_rss(modules: str) -> float:
    """MB of a fresh interpreter after ``import modules``."""
    code = f"import {modules}\nprint(int(open('/proc/self/statm').read().split()[1]))"
    pages = int(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout
    )
    return pages * 4096 / 2**20


async def round_trips(s: bench.Session, rounds: int, gap_s: float) -> float:
    times = []
    for _ in range(rounds):
        if gap_s:
            await asyncio.sleep(gap_s)
        t0 = time.perf_counter()
        await s.call("hook_status", {})
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    web = import_rss("fastapi, uvicorn, pydantic_settings")
    print(f"imports of the stack alone: {import_rss(STACK):.1f} MB (the web part: {web:.1f} MB)")
    with tempfile.TemporaryDirectory() as tmp:
        relay, daemon = ab.Relay(), bench.Daemon(Path(tmp) / "d")
        try:
            await asyncio.sleep(0.5)
            mb = relay.rss() / 2**20, daemon.rss() / 2**20
            print(f"idle RSS: relay {mb[0]:.1f} MB, daemon {mb[1]:.1f} MB")
            for name, d in (("relay", relay), ("daemon", daemon)):
                s = await d.connect()
                await round_trips(s, 20, 0)  # warm
                warm = await round_trips(s, args.rounds, 0)
                idle = await round_trips(s, args.rounds, IDLE_GAP_S)
                await s.close()
                print(
                    f"{name:>6}: no-op round trip {warm * 1e3:.3f} ms back to back, "
                    f"{idle * 1e3:.3f} ms after {IDLE_GAP_S * 1e3:.0f} ms idle"
                )
        finally:
            relay.stop()
            daemon.stop()


if __name__ == "__main__":
    asyncio.run(main())
