"""Benchmark the durable stores (SQLite and Redis) at the store API, without a daemon.

Measures, per backend:

* ``append_20mb_64k``: 20 MiB of 64 KiB frames, appended 16 frames (1 MiB) per call;
* ``append_2mb_small``: 2 MiB of 20-byte frames (~105k events), 1,000 per call, and the same
  amount again in one single call;
* ``replay_100mb``: reading back a 100 MiB execution with ``read_events`` pages of 256 events;
* ``open_and_recover``: opening a fresh store instance over a history of 10,000 executions (and,
  for SQLite, 1M events) and listing the unfinished ones (what daemon start-up does).

    python bench/store.py                     # both backends
    python bench/store.py --only sqlite
    python bench/store.py --redis-url redis://127.0.0.1:6379/0 --events-per-execution 10

Not a test: it measures; tests/storage checks behaviour. SQLite runs in a temporary directory;
Redis uses a unique key prefix that is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from loguru import logger

from cc_executor.storage import ExecutionRecord, SqliteStore, Store, StoredEvent
from cc_executor.storage.redis import RedisStore

MiB = 1024 * 1024
BIG_FRAME = 64 * 1024
BIG_PER_CALL = 16  # 1 MiB per append call, about what the recorder batches under heavy output
SMALL_FRAME = 20
SMALL_PER_CALL = 1_000
REPLAY_PAGE = 256  # 16 MiB per page of 64 KiB frames
HISTORY = 10_000
UNFINISHED = ("running", "paused", "pending", "waiting_for_limit")
UNFINISHED_IN_HISTORY = 40  # a busy daemon's worth of live executions among the 10,000


@dataclass
class Result:
    backend: str
    metric: str
    seconds: float
    detail: str


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


def frames(eid: str, count: int, frame: str, first: int = 1) -> list[StoredEvent]:
    return [StoredEvent(eid, seq, "execution.output", frame) for seq in range(first, first + count)]


async def append_in_calls(store: Store, events: list[StoredEvent], per_call: int) -> None:
    for start in range(0, len(events), per_call):
        await store.append_events(events[start : start + per_call])


async def bench_appends(name: str, store: Store) -> list[Result]:
    big = frames("big", 20 * MiB // BIG_FRAME, "b" * BIG_FRAME)
    seconds = await timed(lambda: append_in_calls(store, big, BIG_PER_CALL))
    results = [Result(name, "append_20mb_64k", seconds, f"{20 / seconds:.0f} MiB/s")]

    count = 2 * MiB // SMALL_FRAME
    small = frames("small", count, "s" * SMALL_FRAME)
    seconds = await timed(lambda: append_in_calls(store, small, SMALL_PER_CALL))
    rate = f"{count / seconds / 1000:.0f}k events/s, {count} events"
    results.append(Result(name, "append_2mb_small_1000_per_call", seconds, rate))

    one_call = frames("small-one-call", count, "s" * SMALL_FRAME)
    seconds = await timed(lambda: store.append_events(one_call))
    rate = f"{count / seconds / 1000:.0f}k events/s, {count} events"
    results.append(Result(name, "append_2mb_small_one_call", seconds, rate))
    return results


async def bench_replay(name: str, store: Store) -> Result:
    frame = "r" * BIG_FRAME
    count = 100 * MiB // BIG_FRAME
    await append_in_calls(store, frames("replay", count, frame), BIG_PER_CALL)

    async def replay() -> None:
        after, seen = 0, 0
        while page := await store.read_events("replay", after_seq=after, limit=REPLAY_PAGE):
            seen += len(page)
            after = page[-1].seq
        assert seen == count, seen

    seconds = await timed(replay)
    return Result(name, "replay_100mb", seconds, f"{100 / seconds:.0f} MiB/s")


async def fill_history(store: Store, events_per_execution: int) -> None:
    now = time.time()
    frame = '{"jsonrpc":"2.0","method":"execution.output","params":{"data":"line of output"}}'
    pending: list[StoredEvent] = []
    for i in range(HISTORY):
        eid = f"h{i:05d}"
        live = i >= HISTORY - UNFINISHED_IN_HISTORY
        state = UNFINISHED[i % len(UNFINISHED)] if live else "completed"
        await store.put_execution(
            ExecutionRecord(eid, state, "echo history", created_at=now - HISTORY + i)
        )
        pending.extend(frames(eid, events_per_execution, frame))
        if len(pending) >= 10_000:
            await store.append_events(pending)
            pending = []
    await store.append_events(pending)


async def bench_open(name: str, make: Callable[[], Store], events_per_execution: int) -> Result:
    filler = make()
    await filler.open()
    fill = await timed(lambda: fill_history(filler, events_per_execution))
    await filler.close()

    store = make()
    found: list[ExecutionRecord] = []

    async def open_and_list() -> None:
        await store.open()
        found.extend(await store.list_executions(states=UNFINISHED, limit=1000))

    seconds = await timed(open_and_list)
    await store.close()
    assert len(found) == UNFINISHED_IN_HISTORY, len(found)
    events = HISTORY * events_per_execution
    detail = f"{HISTORY} executions, {events} events (filled in {fill:.1f} s)"
    return Result(name, "open_and_list_unfinished", seconds, detail)


async def run_backend(
    name: str, make: Callable[[], Store], events_per_execution: int
) -> list[Result]:
    store = make()
    await store.open()
    try:
        results = await bench_appends(name, store)
        results.append(await bench_replay(name, store))
    finally:
        await store.close()
    results.append(await bench_open(name, make, events_per_execution))
    return results


def delete_redis_prefix(url: str, prefix: str) -> None:
    with redis.Redis.from_url(url) as client:
        batch = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)


async def main(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="cc-executor-bench-") as tmp:
            path = Path(tmp) / "cc-executor.db"
            results += await run_backend(
                "sqlite", lambda: SqliteStore(path), args.sqlite_events_per_execution
            )
    if args.only in (None, "redis"):
        prefix = f"cc-executor-bench:{uuid.uuid4().hex}:"
        try:
            results += await run_backend(
                "redis",
                lambda: RedisStore(args.redis_url, prefix=prefix),
                args.redis_events_per_execution,
            )
        finally:
            delete_redis_prefix(args.redis_url, prefix)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["sqlite", "redis"])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--sqlite-events-per-execution", type=int, default=100)
    parser.add_argument("--redis-events-per-execution", type=int, default=10)
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    measured = asyncio.run(main(parser.parse_args()))
    for r in measured:
        print(f"{r.backend:7} {r.metric:32} {r.seconds * 1000:9.1f} ms  {r.detail}")
    print("\n| backend | metric | time | detail |\n|---|---|---|---|")
    for r in measured:
        print(f"| {r.backend} | {r.metric} | {r.seconds * 1000:.1f} ms | {r.detail} |")
