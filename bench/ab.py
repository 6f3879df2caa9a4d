"""Head-to-head A/B: the daemon of another source tree against this one, in the same rounds.

Starts two daemons (``--before-src`` first on ``PYTHONPATH`` for one of them) and interleaves
direct / before / after in every round, in a random order, so machine noise hits all three
alike. Both daemons are alive throughout, so every ``/proc`` scan sees twice the processes (cancel
is slower here than in ``bench.py``).

    cp -r src /tmp/before-src    # before changing anything
    python bench/ab.py --before-src /tmp/before-src/src tp20 --rounds 15
    cp -r src /tmp/after-src     # optional: keep editing while the A/B runs on a snapshot
    python bench/ab.py --before-src /tmp/before-src/src --after-src /tmp/after-src/src cancel

Run it once with the same tree on both sides first (A/A): on these machines that differed by
0.14 ms on ``first_byte`` and 2 ms on ``tp20`` (docs/benchmarks.md, round 9), so a smaller
difference between two trees is noise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import bench
import httpx
import psutil

Timed = Callable[[], Awaitable[float]]
# 2 MB of 76-column lines, as bench.py's throughput_lines reads them.
LINES = Path(tempfile.mkdtemp(prefix="cc-executor-ab-")) / "lines.txt"
LINES.write_text(("x" * 75 + "\n") * (2_000_000 // 76))


METRICS = ("concurrent", "cancel", "tp20", "first_byte", "lines")


class Relay(bench.Daemon):
    """``bench/minimal_relay.py`` in place of a daemon: the floor of the stack (no token)."""

    def __init__(self) -> None:
        self.port = bench.free_port()
        self.token = ""
        relay = Path(__file__).with_name("minimal_relay.py")
        self.proc = subprocess.Popen(
            [sys.executable, str(relay), str(self.port)],
            cwd=relay.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + bench.START_TIMEOUT_S
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).is_success:
                    return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise RuntimeError("relay did not start")
            time.sleep(0.05)


def _pick(metric: str, *runs: Timed) -> Timed:
    """The run named ``metric`` among ``runs`` (given in the order of :data:`METRICS`)."""
    return dict(zip(METRICS, runs, strict=True))[metric]


def _direct(metric: str) -> Timed:
    async def concurrent() -> float:
        t0 = time.perf_counter()
        procs = await asyncio.gather(
            *(
                asyncio.create_subprocess_exec("sleep", "1", stdout=bench.PIPE, stderr=bench.PIPE)
                for _ in range(200)
            )
        )
        await asyncio.gather(*(p.communicate() for p in procs))
        return time.perf_counter() - t0

    async def cancel() -> float:
        proc = await asyncio.create_subprocess_exec(
            *bench.TREE, stdout=bench.PIPE, stderr=bench.PIPE, start_new_session=True
        )
        members = await bench._tree_up(proc.pid)
        t0 = time.perf_counter()
        os.killpg(proc.pid, signal.SIGTERM)
        for p in members:
            with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                if os.getpgid(p.pid) != proc.pid:
                    p.terminate()
        await proc.communicate()
        await bench._until_gone(members)
        return time.perf_counter() - t0

    async def tp20() -> float:
        t0 = time.perf_counter()
        await bench.direct_run(bench.zero_argv(20_000_000))
        return time.perf_counter() - t0

    async def first_byte() -> float:
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "echo", "hi", stdout=bench.PIPE, stderr=bench.PIPE
        )
        assert proc.stdout is not None
        await proc.stdout.read(1)
        elapsed = time.perf_counter() - t0
        await proc.communicate()
        return elapsed

    async def lines() -> float:
        t0 = time.perf_counter()
        await bench.direct_run(["cat", str(LINES)])
        return time.perf_counter() - t0

    return _pick(metric, concurrent, cancel, tp20, first_byte, lines)


def _daemon(metric: str, s: bench.Session) -> Timed:
    async def concurrent() -> float:
        t0 = time.perf_counter()
        started = await asyncio.gather(*(s.execute(["sleep", "1"]) for _ in range(200)))
        await asyncio.gather(*(s.drain(r["execution_id"]) for r in started))
        return time.perf_counter() - t0

    async def cancel() -> float:
        started = await s.execute(bench.TREE)
        eid = started["execution_id"]
        members = await bench._tree_up(started["pid"])
        t0 = time.perf_counter()
        await s.call("control", {"type": "CANCEL", "execution_id": eid})
        await s.drain(eid)
        await bench._until_gone(members)
        return time.perf_counter() - t0

    async def tp20() -> float:
        t0 = time.perf_counter()
        await s.run(bench.zero_argv(20_000_000))
        return time.perf_counter() - t0

    async def first_byte() -> float:
        t0 = time.perf_counter()
        eid = (await s.execute(["echo", "hi"]))["execution_id"]
        await s.first_output(eid)
        elapsed = time.perf_counter() - t0
        await s.drain(eid)
        return elapsed

    async def lines() -> float:
        t0 = time.perf_counter()
        await s.run(["cat", str(LINES)])
        return time.perf_counter() - t0

    return _pick(metric, concurrent, cancel, tp20, first_byte, lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("metric", choices=METRICS)
    parser.add_argument(
        "--before-src",
        required=True,
        help="the other tree's src/ directory, or 'relay' for bench/minimal_relay.py",
    )
    parser.add_argument(
        "--after-src",
        default=None,
        help="a snapshot of this tree's src/ (default: the installed package, i.e. this tree)",
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0, help="of the rounds' random order")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = (
            Relay()
            if args.before_src == "relay"
            else bench.Daemon(Path(tmp) / "b", extra_env={"PYTHONPATH": args.before_src})
        )
        try:
            after = bench.Daemon(
                Path(tmp) / "a",
                extra_env={"PYTHONPATH": args.after_src} if args.after_src else None,
            )
        except BaseException:
            before.stop()  # or it outlives the run, serving nobody and skewing the next one
            raise
        try:
            sb, sa = await before.connect(), await after.connect()
            order = [
                ("direct", _direct(args.metric)),
                ("before", _daemon(args.metric, sb)),
                ("after", _daemon(args.metric, sa)),
            ]
            times: dict[str, list[float]] = {name: [] for name, _ in order}
            for _ in range(2):  # warm all three
                for _, run in order:
                    await run()
            # Each round in a fresh random order: with a fixed alternation (A B C, C B A) the
            # side that ends one round also starts the next, back to back, and an A/A of two
            # identical trees differed by up to 10 % on tp20 (docs/benchmarks.md, round 11).
            rng = random.Random(args.seed)
            for _ in range(args.rounds):
                for name, run in rng.sample(order, len(order)):
                    times[name].append(await run())
            med = {name: statistics.median(values) for name, values in times.items()}

            def ratio(name: str) -> float:
                if args.metric in ("tp20", "lines"):
                    return med["direct"] / med[name]
                return med[name] / med["direct"]

            print(
                f"{args.metric}: direct {med['direct'] * 1e3:.2f} ms"
                f"  before {med['before'] * 1e3:.2f} ms ({ratio('before'):.2f}x)"
                f"  after {med['after'] * 1e3:.2f} ms ({ratio('after'):.2f}x)"
                f"  rounds {args.rounds}",
                flush=True,
            )
            await sb.close()
            await sa.close()
        finally:
            after.stop()
            before.stop()


if __name__ == "__main__":
    asyncio.run(main())
