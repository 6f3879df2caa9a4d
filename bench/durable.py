"""Durable-store benchmarks through the real daemon (issue 5), for the SQLite and Redis stores.

Per store, against a real daemon (``python -m cc_executor server start --foreground``, the same
launcher as ``bench.py``) with that store configured:

* ``throughput``: 20 MB without newlines, interleaved round by round with the direct
  ``asyncio.create_subprocess_exec`` baseline (the daemon records every event into the store
  meanwhile); target >= 0.5x direct.
* ``replay``: a finished 100 MB execution attached with ``after_seq=0``, first from the live
  daemon (its event log: memory + spool), then after a daemon restart (every event comes from the
  store); MB/s and time per replay, interleaved with a direct 100 MB pipe read for scale.
* ``restart``: the store seeded directly (``SqliteStore`` / ``RedisStore``) with 10,000 finished
  executions of a few events each, then ``cc-executor server start`` (background, the console
  script a user runs) timed until ``/health`` answers; interleaved with the same start over an
  empty store, plus the daemon alone (``server start --foreground``, no CLI in front) over the
  full store. Target: ready in under 1 s.

    python bench/durable.py                       # both stores, every metric
    python bench/durable.py --store redis --only replay --rounds 3

Redis runs under a unique ``CC_EXECUTOR_REDIS_PREFIX`` whose keys are deleted at the end. Not a
test: it measures; tests/ check behaviour.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import bench
import httpx
from store import delete_redis_prefix

from cc_executor.storage import ExecutionRecord, SqliteStore, Store, StoredEvent
from cc_executor.storage.redis import RedisStore

REDIS_URL = "redis://127.0.0.1:6379/0"
TP_BYTES = 20_000_000
REPLAY_BYTES = 100_000_000
HISTORY = 10_000
EVENTS_PER_EXECUTION = 4  # started, two output frames, completed: "a few events each"
SEED_BATCH = 2_000  # events per append_events call while seeding
READY_TARGET_S = 1.0
HEALTH_POLL_S = 0.005  # our own readiness poll; finer than the CLI's 50 ms
START_DEADLINE_S = 30.0


class StoreConfig:
    """One store choice: the daemon's env, a direct handle for seeding, and cleanup."""

    def __init__(self, kind: str, state_dir: Path) -> None:
        self.kind = kind
        self.state_dir = state_dir
        self.prefix = f"cc-executor-bench:{uuid.uuid4().hex}:"

    def env(self) -> dict[str, str]:
        if self.kind == "redis":
            return {
                "CC_EXECUTOR_STORE": "redis",
                "CC_EXECUTOR_REDIS_URL": REDIS_URL,
                "CC_EXECUTOR_REDIS_PREFIX": self.prefix,
            }
        return {"CC_EXECUTOR_STORE": "sqlite"}

    def store(self) -> Store:
        if self.kind == "redis":
            return RedisStore(REDIS_URL, prefix=self.prefix)
        return SqliteStore(self.state_dir / "cc-executor.db")

    def cleanup(self) -> None:
        if self.kind != "redis":
            return
        delete_redis_prefix(REDIS_URL, self.prefix)


def _daemon(cfg: StoreConfig) -> bench.Daemon:
    return bench.Daemon(cfg.state_dir, extra_env=cfg.env())


# --- throughput ------------------------------------------------------------------------------


async def bench_tp(cfg: StoreConfig, rounds: int) -> None:
    d = _daemon(cfg)
    try:
        await bench.bench_throughput(
            d,
            rounds,
            f"[{cfg.kind}] throughput, 20 MB no newline",
            bench.zero_argv(TP_BYTES),
            TP_BYTES,
            0.5,
        )
    finally:
        d.stop()


# --- replay ----------------------------------------------------------------------------------


async def _replay_once(d: bench.Daemon, eid: str) -> float:
    s = await d.connect()
    try:
        t0 = time.perf_counter()
        answer = await s.call("attach", {"execution_id": eid, "after_seq": 0})
        n, completed = await s.drain(eid)
        elapsed = time.perf_counter() - t0
    finally:
        await s.close()
    assert n == REPLAY_BYTES, (n, answer)
    assert completed["status"] == "completed", completed
    return elapsed


async def _direct_pipe() -> float:
    t0 = time.perf_counter()
    n = await bench.direct_run(bench.zero_argv(REPLAY_BYTES))
    assert n == REPLAY_BYTES, n
    return time.perf_counter() - t0


async def _replay_rounds(label: str, d: bench.Daemon, eid: str, rounds: int) -> None:
    direct_t, replay_t = await bench.interleave(rounds, _direct_pipe, lambda: _replay_once(d, eid))
    mb = REPLAY_BYTES / 1e6
    ratio = direct_t / replay_t  # as a throughput: replay rate over the direct pipe's rate
    bench.record(f"[{label}] replay 100 MB", direct_t, replay_t, ratio, "", True, "ms")
    bench.record_value(
        f"[{label}] replay rate",
        f"{mb / replay_t:.0f} MB/s",
        f"(pipe {mb / direct_t:.0f} MB/s)",
        None,
    )


async def bench_replay(cfg: StoreConfig, rounds: int) -> None:
    d = _daemon(cfg)
    try:
        s = await d.connect()
        t0 = time.perf_counter()
        eid = (await s.execute(bench.zero_argv(REPLAY_BYTES)))["execution_id"]
        n, completed = await s.drain(eid)
        live_t = time.perf_counter() - t0
        await s.close()
        assert n == REPLAY_BYTES, n
        assert completed["status"] == "completed", completed
        print(f"{'':<40} 100 MB live run {live_t:.2f} s ({REPLAY_BYTES / 1e6 / live_t:.0f} MB/s)")
        await _replay_rounds(f"{cfg.kind}, same daemon", d, eid, rounds)
    finally:
        d.stop()  # SIGTERM: the daemon drains its recorder before it exits
    d = _daemon(cfg)
    try:
        await _replay_rounds(f"{cfg.kind}, after restart (store)", d, eid, rounds)
    finally:
        d.stop()


# --- restart with history ----------------------------------------------------------------------


async def seed_history(cfg: StoreConfig) -> float:
    """10,000 finished executions with a few events each, written straight into the store."""
    store = cfg.store()
    await store.open()
    t0 = time.perf_counter()
    now = time.time()
    pending: list[StoredEvent] = []
    try:
        for i in range(HISTORY):
            eid = f"hist{i:06d}"
            created = now - HISTORY + i
            await store.put_execution(
                ExecutionRecord(
                    eid,
                    "completed",
                    "echo history",
                    argv=["echo", "history"],
                    exit_code=0,
                    created_at=created,
                    started_at=created,
                    ended_at=created + 0.01,
                    execution_time=0.01,
                    last_seq=EVENTS_PER_EXECUTION,
                    output_bytes=16,
                )
            )
            for seq in range(1, EVENTS_PER_EXECUTION + 1):
                frame = (
                    '{"jsonrpc":"2.0","method":"process.output","params":{"execution_id":"'
                    + eid
                    + '","seq":'
                    + str(seq)
                    + ',"data":"history line\\n"}}'
                )
                pending.append(StoredEvent(eid, seq, "process.output", frame))
            if len(pending) >= SEED_BATCH:
                await store.append_events(pending)
                pending = []
        if pending:
            await store.append_events(pending)
    finally:
        await store.close()
    return time.perf_counter() - t0


def _cli() -> list[str]:
    """The ``cc-executor`` console script of this interpreter (what a user runs)."""
    script = Path(sys.executable).parent / "cc-executor"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cc_executor"]


def _wait_health(url: str, t0: float) -> float:
    with httpx.Client(timeout=1) as client:
        while True:
            try:
                if client.get(url).is_success:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            if time.perf_counter() - t0 > START_DEADLINE_S:
                raise RuntimeError("daemon did not become ready")
            time.sleep(HEALTH_POLL_S)


def _foreground_start(state_dir: Path, env_extra: dict[str, str]) -> float:
    """The daemon alone (``server start --foreground``, no CLI in front): seconds to /health."""
    port = bench.free_port()
    env = {
        **os.environ,
        **env_extra,
        "CC_EXECUTOR_PORT": str(port),
        "CC_EXECUTOR_STATE_DIR": str(state_dir),
    }
    argv = [sys.executable, "-m", "cc_executor", "server", "start", "--foreground"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return _wait_health(f"http://127.0.0.1:{port}/health", t0)
    finally:
        proc.terminate()
        proc.wait(START_DEADLINE_S)


def _start_and_wait(state_dir: Path, env_extra: dict[str, str]) -> tuple[float, float]:
    """``cc-executor server start`` (background); seconds until /health answers, and until the CLI
    returned. The daemon is stopped again (SIGTERM via ``server stop``) before returning."""
    port = bench.free_port()
    env = {
        **os.environ,
        **env_extra,
        "CC_EXECUTOR_PORT": str(port),
        "CC_EXECUTOR_STATE_DIR": str(state_dir),
    }
    url = f"http://127.0.0.1:{port}/health"
    t0 = time.perf_counter()
    cli = subprocess.Popen(
        [*_cli(), "server", "start"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    ready = _wait_health(url, t0)
    _, err = cli.communicate(timeout=START_DEADLINE_S)
    cli_done = time.perf_counter() - t0
    if cli.returncode != 0:
        raise RuntimeError(f"server start failed: {err.decode(errors='replace')}")
    subprocess.run(
        [*_cli(), "server", "stop"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return ready, cli_done


async def bench_restart(cfg: StoreConfig, rounds: int, tmp: Path) -> None:
    seeded = await seed_history(cfg)
    print(f"{'':<40} seeded {HISTORY} executions in {seeded:.1f} s", flush=True)
    empty = StoreConfig(cfg.kind, tmp / f"empty-{cfg.kind}")
    empty.state_dir.mkdir()
    full_ready: list[float] = []
    empty_ready: list[float] = []
    full_cli: list[float] = []
    full_fg: list[float] = []
    try:
        for i in range(rounds):
            runs = [("full", cfg), ("empty", empty)]
            for name, which in runs if i % 2 == 0 else runs[::-1]:
                ready, cli_done = await asyncio.to_thread(
                    _start_and_wait, which.state_dir, which.env()
                )
                (full_ready if name == "full" else empty_ready).append(ready)
                if name == "full":
                    full_cli.append(cli_done)
            full_fg.append(await asyncio.to_thread(_foreground_start, cfg.state_dir, cfg.env()))
    finally:
        empty.cleanup()
    full_t, empty_t = statistics.median(full_ready), statistics.median(empty_ready)
    bench.record(
        f"[{cfg.kind}] start until /health, 10k history (vs empty)",
        empty_t,
        full_t,
        full_t / empty_t,
        "< 1 s",
        full_t < READY_TARGET_S,
        "ms",
    )
    spread = f"{min(full_ready):.2f}-{max(full_ready):.2f} s"
    bench.record_value(f"[{cfg.kind}]   range over {rounds} starts", spread, "", None)
    cli_t = statistics.median(full_cli)
    bench.record_value(f"[{cfg.kind}]   `server start` CLI returned", f"{cli_t:.2f} s", "", None)
    fg_t = statistics.median(full_fg)
    bench.record_value(f"[{cfg.kind}]   daemon alone (--foreground)", f"{fg_t:.2f} s", "", None)


METRICS = ("throughput", "replay", "restart")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "redis", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help=f"comma-separated subset of {METRICS}")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    if only - set(METRICS):
        parser.error(f"unknown metrics {sorted(only - set(METRICS))}; choose from {METRICS}")
    kinds = ["sqlite", "redis"] if args.store == "both" else [args.store]
    print(f"python {sys.version.split()[0]}  cpus {os.cpu_count()}  load {os.getloadavg()[0]:.2f}")
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix=f"cc-durable-{kind}-") as tmp_name:
            tmp = Path(tmp_name)
            # One state dir (and, for Redis, one prefix) per metric, so each starts clean.
            for metric in METRICS:
                if only and metric not in only:
                    continue
                cfg = StoreConfig(kind, tmp / metric)
                cfg.state_dir.mkdir()
                try:
                    if metric == "throughput":
                        await bench_tp(cfg, args.rounds)
                    elif metric == "replay":
                        await bench_replay(cfg, max(1, args.rounds // 2))
                    else:
                        await bench_restart(cfg, args.rounds, tmp)
                finally:
                    cfg.cleanup()
    bench.print_table()


if __name__ == "__main__":
    asyncio.run(main())
