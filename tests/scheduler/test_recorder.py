"""The recorder against a store that fails: nothing is lost, nothing is written twice, events
always land before the record that claims them, and a finished execution leaves the recorder."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from cc_executor.scheduler.recorder import StoreRecorder
from cc_executor.storage.base import ExecutionRecord, StoredEvent
from cc_executor.supervisor import ExecutionSpec, Supervisor

WAIT_S = 30.0


class FlakyStore:
    """In-memory events and records; the first ``failures`` appends raise like a dead Redis."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.events: dict[tuple[str, int], StoredEvent] = {}
        self.appends = 0
        self.records: list[ExecutionRecord] = []
        self.wrote_event = asyncio.Event()

    async def append_events(self, events: Sequence[StoredEvent]) -> None:
        self.appends += 1
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("store unreachable")
        for event in events:
            key = (event.execution_id, event.seq)
            assert key not in self.events, f"seq {event.seq} written twice"
            self.events[key] = event
        self.wrote_event.set()

    async def put_execution(self, record: ExecutionRecord) -> None:
        stored = [seq for (eid, seq) in self.events if eid == record.execution_id]
        assert record.last_seq <= max(stored, default=0), "record ahead of its events"
        self.records.append(record)

    async def put_executions(self, records: Sequence[ExecutionRecord]) -> None:
        for record in records:
            await self.put_execution(record)


async def test_a_failing_store_delays_but_loses_nothing(monkeypatch: Any) -> None:
    monkeypatch.setattr("cc_executor.scheduler.recorder.STORE_RETRY_S", 0.01)
    store = FlakyStore(failures=2)
    finished = asyncio.Event()

    async def on_persisted(_execution: object) -> None:
        finished.set()

    recorder = StoreRecorder(store, owner="me", on_persisted=on_persisted)  # type: ignore[arg-type]
    async with (
        Supervisor(shell="/bin/sh", observer=recorder) as supervisor,
        asyncio.TaskGroup() as tasks,
    ):
        writer = tasks.create_task(recorder.run())
        execution = await supervisor.execute(
            ExecutionSpec(argv=["sh", "-c", "for i in 1 2 3; do echo line$i; done; echo err >&2"])
        )
        await execution.wait(timeout=WAIT_S)
        async with asyncio.timeout(WAIT_S):
            await finished.wait()
            await recorder.drain()
        writer.cancel()
    seqs = sorted(seq for (eid, seq) in store.events if eid == execution.id)
    assert seqs == list(range(1, execution.log.last_seq + 1))
    assert store.appends >= 3  # two failures, then the retried batch
    final = store.records[-1]
    assert final.state == "completed"
    assert final.owner == "me"
    assert final.last_seq == execution.log.last_seq
    assert final.output_bytes == len(b"line1\nline2\nline3\nerr\n")
    assert recorder.persisted_seq(execution.id) == 0  # finished: the recorder forgot it
    # ...after telling the log that the store holds it all (memory may drop it, unspooled).
    assert execution.log.durable_seq == execution.log.last_seq
