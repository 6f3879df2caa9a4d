"""EventLog: numbering, single encoding, replay + live following, spill to disk, retention gaps."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.polling import poll_until

from cc_executor.supervisor import eventlog as eventlog_module
from cc_executor.supervisor.eventlog import Event, EventLog, Gap

WAIT_S = 5.0


def _params(event: Event) -> dict[str, object]:
    message = orjson.loads(event.frame)
    assert message["jsonrpc"] == "2.0"
    assert message["method"] == event.method
    params: dict[str, object] = message["params"]
    return params


def _fill(log: EventLog, count: int, size: int = 50) -> list[Event]:
    return [log.append("process.output", {"data": f"{n:06d}" + "x" * size}) for n in range(count)]


async def _drain(log: EventLog, after_seq: int = 0) -> list[Event | Gap]:
    items: list[Event | Gap] = []
    async with asyncio.timeout(WAIT_S):
        async for item in log.follow(after_seq):
            items.append(item)
    return items


def test_append_numbers_and_encodes_once() -> None:
    log = EventLog("e1")
    first = log.append("process.started", {"pid": 1, "pgid": 1, "command": "x"})
    second = log.append("process.output", {"type": "stdout", "data": "hi", "seq": 99})
    assert (first.seq, second.seq, log.last_seq) == (1, 2, 2)
    assert _params(first) == {"execution_id": "e1", "seq": 1, "pid": 1, "pgid": 1, "command": "x"}
    assert _params(second)["seq"] == 2  # params cannot forge the numbering
    assert list(log.events_after(0)) == [first, second]
    assert list(log.events_after(1)) == [second]


def test_append_after_close_is_a_bug() -> None:
    log = EventLog("e1")
    log.close()
    with pytest.raises(RuntimeError):
        log.append("process.output", {})


async def test_follow_from_zero_after_the_fact() -> None:
    log = EventLog("e1")
    appended = _fill(log, 100)
    log.close()
    assert await _drain(log) == appended


async def test_follow_from_the_middle() -> None:
    log = EventLog("e1")
    appended = _fill(log, 100)
    log.close()
    assert await _drain(log, after_seq=40) == appended[40:]
    assert await _drain(log, after_seq=100) == []


async def test_follow_live_sees_every_event_once_in_order() -> None:
    log = EventLog("e1")
    early = _fill(log, 3)
    received: list[Event | Gap] = []
    saw_early = asyncio.Event()

    async def follower() -> None:
        async for item in log.follow(0):
            received.append(item)
            if len(received) == len(early):
                saw_early.set()

    async with asyncio.timeout(WAIT_S), asyncio.TaskGroup() as tasks:
        tasks.create_task(follower())
        await saw_early.wait()  # replayed, now waiting live
        late = _fill(log, 50)
        log.close()
    assert received == early + late


async def test_many_followers_each_get_everything() -> None:
    log = EventLog("e1")
    async with asyncio.timeout(WAIT_S), asyncio.TaskGroup() as tasks:
        followers = [tasks.create_task(_drain(log, 0)) for _ in range(5)]
        appended = _fill(log, 200)
        log.close()
    assert all(f.result() == appended for f in followers)


async def test_spill_to_file_replays_everything_exactly(tmp_path: Path) -> None:
    log = EventLog("e/1", memory_bytes=1000, max_bytes=64 * 1024 * 1024, spool_dir=tmp_path)
    appended = _fill(log, 5000)
    assert log.memory_bytes_used <= 1000
    assert log.disk_bytes_used > 0
    assert os.listdir(tmp_path)  # a named spool file (the "/" of the id was made safe)
    assert list(log.events_after(0)) == appended
    log.close()
    assert await _drain(log, 1234) == appended[1234:]


async def test_spill_without_spool_dir_uses_an_anonymous_file() -> None:
    log = EventLog("e1", memory_bytes=500)
    appended = _fill(log, 1000)
    log.close()
    assert await _drain(log) == appended


async def test_slow_follower_never_holds_the_producer_back(tmp_path: Path) -> None:
    log = EventLog("e1", memory_bytes=2000, spool_dir=tmp_path)
    first = _fill(log, 1)
    follower = log.follow(0)
    assert await anext(follower) == first[0]
    rest = _fill(log, 3000)  # the follower is not reading meanwhile; append never waits
    assert log.memory_bytes_used <= 2000
    log.close()
    items: list[Event | Gap] = []
    async with asyncio.timeout(WAIT_S):
        async for item in follower:
            items.append(item)
    assert items == rest


async def test_retention_drops_oldest_and_reports_one_gap(tmp_path: Path) -> None:
    log = EventLog("e1", memory_bytes=1000, max_bytes=8000, spool_dir=tmp_path)
    appended = _fill(log, 2000)
    log.close()
    first = log.first_retained_seq
    assert first > 1
    assert log.disk_bytes_used <= 8000 + 200  # at most one record over the cap
    items = await _drain(log)
    assert items[0] == Gap(1, first - 1)
    assert items[1:] == appended[first - 1 :]
    # A follower already past the dropped part sees no gap.
    assert await _drain(log, first) == appended[first:]


async def test_max_bytes_zero_keeps_only_memory() -> None:
    log = EventLog("e1", memory_bytes=1000, max_bytes=0)
    appended = _fill(log, 500)
    log.close()
    items = await _drain(log)
    assert isinstance(items[0], Gap)
    assert items[1:] == appended[items[0].to_seq :]


async def test_discard_removes_the_spool_file(tmp_path: Path) -> None:
    log = EventLog("e1", memory_bytes=1000, spool_dir=tmp_path)
    appended = _fill(log, 1000)
    assert os.listdir(tmp_path)
    await log.aclose()
    assert os.listdir(tmp_path) == []
    items = await _drain(log)  # what memory still holds stays readable; the rest is a gap
    assert isinstance(items[0], Gap)
    assert items[1:] == appended[items[0].to_seq :]


async def test_close_spills_the_tail_later_not_on_the_way_to_completion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventlog_module, "CLOSED_SPILL_DELAY_S", 0.01)
    log = EventLog("e1", memory_bytes=1 << 20, spool_dir=tmp_path)
    events = _fill(log, 200, size=1000)  # ~200 KB, more than CLOSED_MEMORY_BYTES
    log.close()
    assert log.memory_bytes_used > eventlog_module.CLOSED_MEMORY_BYTES  # not yet
    await poll_until(
        lambda: log.memory_bytes_used <= eventlog_module.CLOSED_MEMORY_BYTES,
        timeout=WAIT_S,
        what="the closed log's tail spilled by its timer",
    )
    assert log.disk_bytes_used > 0
    replayed = list(log.events_after(0))
    assert [e.frame for e in replayed if isinstance(e, Event)] == [e.frame for e in events]
    log.discard()


def test_close_without_a_loop_spills_at_once(tmp_path: Path) -> None:
    log = EventLog("e1", memory_bytes=1 << 20, spool_dir=tmp_path)
    _fill(log, 200, size=1000)
    log.close()
    assert log.memory_bytes_used <= eventlog_module.CLOSED_MEMORY_BYTES
    log.discard()


async def test_discard_cancels_the_pending_spill(tmp_path: Path) -> None:
    log = EventLog("e1", memory_bytes=1 << 20, spool_dir=tmp_path)
    _fill(log, 200, size=1000)
    log.close()
    log.discard()
    assert log.memory_bytes_used <= eventlog_module.CLOSED_MEMORY_BYTES
    assert log.disk_bytes_used == 0
    assert os.listdir(tmp_path) == []


def test_spool_records_written_with_writev_round_trip(tmp_path: Path) -> None:
    # More buffers than one writev takes (IOV_MAX): the batch is written in several calls.
    log = EventLog("e1", memory_bytes=4096, spool_dir=tmp_path)
    events = _fill(log, 3000, size=10)
    replayed = [e for e in log.events_after(0) if isinstance(e, Event)]
    assert [(e.seq, e.method, e.frame) for e in replayed] == [
        (e.seq, e.method, e.frame) for e in events
    ]
    log.discard()


class FakeStore:
    """What a recorder gives the log: events it stored, readable by seq; can lose some."""

    def __init__(self) -> None:
        self.events: dict[int, Event] = {}
        self.reads = 0

    def take(self, log: EventLog, most: int | None = None) -> None:
        """Store (at most ``most`` of) what the log holds past what is stored; tell the log."""
        after = max(self.events, default=0)
        for index, item in enumerate(log.events_after(after)):
            if most is not None and index >= most:
                break
            assert isinstance(item, Event)
            self.events[item.seq] = item
        log.mark_durable(max(self.events, default=0))

    async def read(self, seq: int, max_events: int) -> list[Event]:
        self.reads += 1
        found = [self.events[s] for s in sorted(self.events) if s >= seq]
        return found[:max_events]


def _backed(memory_bytes: int = 64 * 1024) -> tuple[EventLog, FakeStore]:
    log = EventLog("e1", memory_bytes=memory_bytes)
    store = FakeStore()
    log.back_with(store.read)
    return log, store


async def test_stored_events_leave_memory_without_a_spool_write() -> None:
    log, store = _backed()
    appended: list[Event] = []
    for _ in range(40):  # the store keeps up: 40 x 16 KiB through a 64 KiB window
        appended += _fill(log, 1, size=16 * 1024)
        store.take(log)
    assert log.disk_bytes_used == 0
    assert log.memory_bytes_used <= 64 * 1024 + 17 * 1024
    assert log.durable_seq == 40
    log.close()
    assert await _drain(log) == appended  # the oldest come back from the store
    assert store.reads > 0
    assert await log.read(0, limit=3) == appended[:3]
    # The synchronous view holds only memory (and spool): it stops where the store begins.
    assert list(log.events_after(0)) == []
    assert list(log.events_after(39)) == appended[39:]


async def test_events_the_store_has_not_taken_stay_in_memory_up_to_the_hold() -> None:
    log, store = _backed()
    _fill(log, 6, size=16 * 1024)  # 96 KiB, nothing stored: held, not spooled
    assert log.disk_bytes_used == 0
    assert log.memory_bytes_used > 64 * 1024
    store.take(log)  # the store catches up: memory drops back under the window, still no I/O
    assert log.memory_bytes_used <= 64 * 1024
    assert log.disk_bytes_used == 0
    # The store stops taking: past STORE_HOLD windows the log spools to stay bounded.
    more = _fill(log, 12, size=16 * 1024)
    assert log.disk_bytes_used > 0
    assert log.memory_bytes_used <= eventlog_module.STORE_HOLD * 64 * 1024
    log.close()
    items = await _drain(log)
    assert [item.seq for item in items if isinstance(item, Event)] == list(range(1, 19))
    assert items[-12:] == more


async def test_a_finished_log_lets_go_of_what_the_store_took_at_once() -> None:
    # Runs ending one after another each kept up to a window of stored events in memory until
    # the closed-log spill a second later; now the store's word is enough, and nothing is
    # written to the spool for it.
    log, store = _backed(memory_bytes=1024 * 1024)
    appended = _fill(log, 40, size=16 * 1024)  # 640 KiB, all in the window
    log.close()
    assert log.memory_bytes_used > eventlog_module.CLOSED_MEMORY_BYTES
    store.take(log)
    assert log.memory_bytes_used <= eventlog_module.CLOSED_MEMORY_BYTES
    assert log.disk_bytes_used == 0
    assert await _drain(log) == appended  # the oldest come back from the store
    assert store.reads > 0


async def test_a_finished_log_keeps_what_the_store_has_not_taken() -> None:
    log, store = _backed(memory_bytes=1024 * 1024)
    appended = _fill(log, 40, size=16 * 1024)
    log.close()
    store.take(log, most=10)  # the store is behind: only the first 10 are held there
    assert log.memory_bytes_used >= 30 * 16 * 1024  # the other 30 are only in memory
    assert log.disk_bytes_used == 0
    assert await _drain(log) == appended


async def test_events_the_store_lost_are_a_gap_not_a_hang() -> None:
    log, store = _backed()
    for _ in range(20):
        _fill(log, 1, size=16 * 1024)
        store.take(log)
    for seq in (3, 4, 5):  # pruned under a follower's feet
        del store.events[seq]
    log.close()
    items = await _drain(log)
    assert items[:3] == [store.events[1], store.events[2], Gap(3, 5)]
    assert [i.seq for i in items[3:] if isinstance(i, Event)] == list(range(6, 21))


async def test_a_failing_store_read_is_reported_as_a_gap() -> None:
    log, store = _backed()
    for _ in range(20):
        _fill(log, 1, size=16 * 1024)
        store.take(log)

    async def broken(seq: int, max_events: int) -> list[Event]:
        raise ConnectionError("store down")

    log.back_with(broken)
    log.close()
    items = await _drain(log)
    gap = items[0]
    assert isinstance(gap, Gap)
    assert gap.from_seq == 1
    assert [i.seq for i in items[1:] if isinstance(i, Event)] == list(range(gap.to_seq + 1, 21))


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 12), st.integers(1, 24), st.integers(0, 8)),
        min_size=1,
        max_size=25,
    )
)
def test_any_mix_of_store_progress_and_spills_replays_every_event_once(
    steps: list[tuple[int, int, int]],
) -> None:
    # Appends of various sizes; the store takes some of what it has not, between them. Whatever
    # went to the store, the spool (in ranges with holes) or stayed in memory comes back once.
    async def scenario() -> None:
        log, store = _backed(memory_bytes=64 * 1024)
        appended: list[Event] = []
        for count, kib, take in steps:
            appended += _fill(log, count, size=kib * 1024)
            store.take(log, most=take)
            assert log.memory_bytes_used <= eventlog_module.STORE_HOLD * 64 * 1024 + 25 * 1024
        halfway = await log.read(0, limit=len(appended) // 2)
        assert halfway == appended[: len(appended) // 2]
        log.close()
        assert await _drain(log) == appended
        store.take(log)
        assert log.disk_bytes_used == 0  # everything is stored: no spool file is kept

    asyncio.run(scenario())
