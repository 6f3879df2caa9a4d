"""The recorder holds back a streaming execution's record (output only) but never loses it: a
held-back record is written when its interval is up even if nothing else arrives, ``drain()``
writes it at once, and a state change is written at once whatever the interval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from tests.polling import poll_until

from cc_executor.scheduler.recorder import StoreRecorder
from cc_executor.storage.base import ExecutionRecord, StoredEvent
from cc_executor.supervisor import Execution, ExecutionSpec, Supervisor

WAIT_S = 30.0
NEVER_S = 3600.0  # a record interval no test waits out
# Two lines a moment apart, then silence: the second line's round falls inside the interval.
TWO_LINES = ["sh", "-c", "echo first; sleep 0.2; echo second; exec sleep 30"]


class MemoryStore:
    def __init__(self) -> None:
        self.events: dict[tuple[str, int], StoredEvent] = {}
        self.records: list[ExecutionRecord] = []

    async def append_events(self, events: Sequence[StoredEvent]) -> None:
        for event in events:
            self.events.setdefault((event.execution_id, event.seq), event)

    async def put_execution(self, record: ExecutionRecord) -> None:
        stored = [seq for (eid, seq) in self.events if eid == record.execution_id]
        assert record.last_seq <= max(stored, default=0), "record ahead of its events"
        self.records.append(record)

    async def put_executions(self, records: Sequence[ExecutionRecord]) -> None:
        for record in records:
            await self.put_execution(record)

    def newest(self, execution_id: str) -> ExecutionRecord | None:
        mine = [r for r in self.records if r.execution_id == execution_id]
        return mine[-1] if mine else None


@asynccontextmanager
async def recording(
    store: MemoryStore, record_interval_s: float
) -> AsyncIterator[tuple[Supervisor, StoreRecorder]]:
    recorder = StoreRecorder(
        store,  # type: ignore[arg-type]
        record_interval_s=record_interval_s,
        round_interval_s=0.0,
    )
    async with Supervisor(shell="/bin/sh", observer=recorder) as supervisor:
        writer = asyncio.get_running_loop().create_task(recorder.run())
        try:
            yield supervisor, recorder
        finally:
            writer.cancel()


async def _second_line_stored(store: MemoryStore, execution: Execution) -> int:
    def stored() -> bool:
        return any(
            "second" in event.frame
            for (eid, _), event in store.events.items()
            if eid == execution.id
        )

    await poll_until(stored, timeout=WAIT_S, what="second line stored")
    return max(seq for (eid, seq) in store.events if eid == execution.id)


async def test_a_held_back_record_is_written_when_its_interval_is_up() -> None:
    store = MemoryStore()
    async with recording(store, record_interval_s=0.5) as (supervisor, _recorder):
        execution = await supervisor.execute(ExecutionSpec(argv=TWO_LINES))
        seq = await _second_line_stored(store, execution)

        def record_caught_up() -> bool:
            record = store.newest(execution.id)
            return record is not None and record.last_seq >= seq

        # No further event arrives (the child sleeps): the interval alone writes the record.
        await poll_until(record_caught_up, timeout=WAIT_S, what="record caught up")
        await supervisor.cancel(execution.id)
        await execution.wait(timeout=WAIT_S)


async def test_drain_writes_held_back_records_and_a_state_change_is_not_held_back() -> None:
    store = MemoryStore()
    async with recording(store, record_interval_s=NEVER_S) as (supervisor, recorder):
        execution = await supervisor.execute(ExecutionSpec(argv=TWO_LINES))
        seq = await _second_line_stored(store, execution)
        async with asyncio.timeout(WAIT_S):
            await recorder.drain()
        record = store.newest(execution.id)
        assert record is not None
        assert record.last_seq >= seq

        await supervisor.pause(execution.id)

        def paused_recorded() -> bool:
            newest = store.newest(execution.id)
            return newest is not None and newest.state == "paused"

        await poll_until(paused_recorded, timeout=WAIT_S, what="paused recorded")
        await supervisor.cancel(execution.id)
        await execution.wait(timeout=WAIT_S)
        async with asyncio.timeout(WAIT_S):
            await recorder.drain()
    final = store.newest(execution.id)
    assert final is not None
    assert final.state == "canceled"
    assert final.last_seq == execution.log.last_seq
