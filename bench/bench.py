"""Benchmark cc-executor against running the same argv with asyncio.create_subprocess_exec.

Starts a real daemon (``python -m cc_executor server start --foreground``) on a free loopback port
with a throw-away state dir, talks to it with a raw ``websockets`` client (so client-library cost
is not hidden), and interleaves direct and daemon runs round by round, so machine noise hits both
alike. Prints one line per metric with the medians and the ratio, plus the target.

    python bench/bench.py            # all metrics
    python bench/bench.py --rounds 5 --only first_byte,throughput_20mb

Not a test: it measures; tests/ check behaviour.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from websockets.asyncio.client import ClientConnection, connect

CHUNK = 64 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Daemon:
    def __init__(self, state_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.state_dir = state_dir
        env = {
            **os.environ,
            "CC_EXECUTOR_PORT": str(self.port),
            "CC_EXECUTOR_STATE_DIR": str(state_dir),
            "CC_EXECUTOR_MAX_EXECUTIONS": "512",
            "CC_EXECUTOR_MAX_EXECUTIONS_PER_CONNECTION": "512",
            "CC_EXECUTOR_LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cc_executor", "server", "start", "--foreground"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("daemon did not start")
            time.sleep(0.05)
        self.token = (state_dir / "token").read_text().strip()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/mcp"

    def rss(self) -> int:
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)

    async def connect(self) -> Session:
        ws = await connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            max_size=None,
            compression=None,
        )
        await ws.recv()  # connected
        return Session(ws)


class Session:
    """A minimal JSON-RPC peer: one request at a time, notifications filtered by execution."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        rid = self.next_id
        await self.ws.send(
            orjson.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}).decode()
        )
        while True:
            msg = orjson.loads(await self.ws.recv())
            if msg.get("id") == rid:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                result: dict[str, Any] = msg["result"]
                return result

    async def run(self, argv: list[str], *, first_byte: bool = False) -> tuple[int, dict[str, Any]]:
        """Run ``argv``; return output bytes seen (or 1 at the first byte) and the completion."""
        eid = (await self.call("execute", {"argv": argv}))["execution_id"]
        total = 0
        while True:
            msg = orjson.loads(await self.ws.recv())
            if msg.get("params", {}).get("execution_id") != eid:
                continue
            method = msg.get("method")
            if method == "process.output":
                total += len(msg["params"]["data"])
                if first_byte:
                    return total, {}
            elif method == "process.completed":
                return total, msg["params"]

    async def close(self) -> None:
        await self.ws.close()


async def direct_run(argv: list[str], *, first_byte: bool = False) -> int:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    total = 0
    if first_byte:
        data = await proc.stdout.read(1)
        await proc.wait()
        return len(data)

    async def drain(stream: asyncio.StreamReader) -> int:
        n = 0
        while chunk := await stream.read(CHUNK):
            n += len(chunk)
        return n

    total, _ = await asyncio.gather(drain(proc.stdout), drain(proc.stderr))
    await proc.wait()
    return total


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


async def interleave(
    rounds: int, direct: Callable[[], Awaitable[Any]], daemon: Callable[[], Awaitable[Any]]
) -> tuple[float, float]:
    d_times: list[float] = []
    x_times: list[float] = []
    for _ in range(rounds):
        d_times.append(await timed(direct))
        x_times.append(await timed(daemon))
    return statistics.median(d_times), statistics.median(x_times)


def report(
    name: str, direct: float, daemon: float, ratio: float, target: str, unit: str = "ms"
) -> None:
    scale = 1000 if unit == "ms" else 1
    print(
        f"{name:<34} direct {direct * scale:9.2f} {unit}   daemon {daemon * scale:9.2f} {unit}"
        f"   ratio {ratio:5.2f}x   target {target}",
        flush=True,
    )


async def bench_first_byte(d: Daemon, rounds: int) -> None:
    s = await d.connect()
    argv = ["echo", "hi"]
    for _ in range(3):  # warm both paths
        await direct_run(argv, first_byte=True)
        await s.run(argv)
    direct, daemon = await interleave(
        rounds * 4,
        lambda: direct_run(argv, first_byte=True),
        lambda: s.run(argv, first_byte=True),
    )
    # drain what the first-byte runs left behind (completion notifications)
    await s.close()
    report("first byte of `echo hi`", direct, daemon, daemon / direct, "<= 1.5x")


async def bench_throughput(d: Daemon, rounds: int, name: str, argv: list[str], target: str) -> None:
    s = await d.connect()
    direct, daemon = await interleave(rounds, lambda: direct_run(argv), lambda: s.run(argv))
    await s.close()
    report(name, direct, daemon, direct / daemon, target)


async def bench_concurrent_sleep(d: Daemon, rounds: int, n: int = 200) -> None:
    s = await d.connect()

    async def direct() -> None:
        procs = [await asyncio.create_subprocess_exec("sleep", "1") for _ in range(n)]
        await asyncio.gather(*(p.wait() for p in procs))

    async def daemon() -> None:
        for _ in range(n):
            await s.call("execute", {"argv": ["sleep", "1"]})
        done = 0
        while done < n:
            msg = orjson.loads(await s.ws.recv())
            if msg.get("method") == "process.completed":
                done += 1

    direct_t, daemon_t = await interleave(max(1, rounds // 3), direct, daemon)
    await s.close()
    report(f"{n} concurrent `sleep 1` wall", direct_t, daemon_t, daemon_t / direct_t, "<= 1.1x")


TREE = ["sh", "-c", "sleep 100 & sleep 100 & (sleep 100 &) ; wait"]


async def bench_cancel(d: Daemon, rounds: int) -> None:
    s = await d.connect()
    leaked = 0

    def tree_gone(pids: list[int]) -> bool:
        return not any(
            psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids
        )

    async def direct() -> None:
        proc = await asyncio.create_subprocess_exec(*TREE, start_new_session=True)
        while len(psutil.Process(proc.pid).children(recursive=True)) < 2:
            await asyncio.sleep(0.001)
        pids = [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
        t0 = time.perf_counter()
        os.killpg(proc.pid, signal.SIGTERM)
        await proc.wait()
        while not tree_gone(pids):
            await asyncio.sleep(0.001)
        direct_times.append(time.perf_counter() - t0)
        for p in pids:  # the double-forked sleep escaped the group: clean up after the baseline
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)

    async def daemon() -> None:
        nonlocal leaked
        started = await s.call("execute", {"argv": TREE})
        while len(psutil.Process(started["pid"]).children(recursive=True)) < 2:
            await asyncio.sleep(0.001)
        t0 = time.perf_counter()
        await s.call("control", {"type": "CANCEL", "execution_id": started["execution_id"]})
        while True:
            msg = orjson.loads(await s.ws.recv())
            if msg.get("method") == "process.completed":
                break
        daemon_times.append(time.perf_counter() - t0)
        for proc in psutil.process_iter():
            try:
                mine = proc.environ().get("CC_EXECUTOR_EXECUTION_ID") == started["execution_id"]
                if mine and proc.status() != "zombie":
                    leaked += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue

    direct_times: list[float] = []
    daemon_times: list[float] = []
    for _ in range(rounds):
        await direct()
        await daemon()
    await s.close()
    dm, xm = statistics.median(direct_times), statistics.median(daemon_times)
    report("cancel until tree gone", dm, xm, xm / dm, "<= 2x, 0 leaked")
    print(f"{'  processes leaked by the daemon':<34} {leaked}", flush=True)


async def bench_memory(d: Daemon, n: int = 200) -> None:
    idle = d.rss()
    sessions = [await d.connect() for _ in range(n)]
    # let the daemon settle its per-connection state
    await asyncio.sleep(0.5)
    loaded = d.rss()
    for s in sessions:
        await s.close()
    per_conn = (loaded - idle) / n
    print(f"{'idle daemon RSS':<34} {idle / 2**20:9.1f} MB   target <= 50 MB", flush=True)
    print(
        f"{'memory per open connection':<34} {per_conn / 1024:9.1f} KB"
        f"   target <= 32 KB ({n} open)",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))

    def want(name: str) -> bool:
        return not only or name in only

    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "lines.txt"
        with lines.open("w") as f:
            line = "x" * 75 + "\n"
            f.write(line * (2_000_000 // len(line)))
        d = Daemon(Path(tmp) / "state")
        try:
            if want("memory"):
                await bench_memory(d)
            if want("first_byte"):
                await bench_first_byte(d, args.rounds)
            if want("throughput_20mb"):
                await bench_throughput(
                    d,
                    args.rounds,
                    "throughput, 20 MB no newline",
                    ["sh", "-c", "head -c 20000000 /dev/zero | tr '\\0' x"],
                    ">= 0.7x",
                )
            if want("throughput_lines"):
                await bench_throughput(
                    d,
                    args.rounds,
                    "throughput, 2 MB of 76-col lines",
                    ["cat", str(lines)],
                    ">= 0.5x",
                )
            if want("concurrent"):
                await bench_concurrent_sleep(d, args.rounds)
            if want("cancel"):
                await bench_cancel(d, args.rounds)
            if want("memory"):
                print(f"{'daemon RSS at the end':<34} {d.rss() / 2**20:9.1f} MB", flush=True)
        finally:
            d.stop()


if __name__ == "__main__":
    asyncio.run(main())
