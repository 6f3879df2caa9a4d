"""The recorder: copies what the supervisor does into the durable store, in batches.

Owns: turning live executions into :class:`~cc_executor.storage.ExecutionRecord` s and their event
logs into :class:`~cc_executor.storage.StoredEvent` s, and writing both from one background task.
Does not own: the store's I/O (``storage/``), or the events themselves (``supervisor/eventlog``).

How it stays off the hot path and bounded:

* The event log calls :meth:`StoreRecorder._dirty` (a set insert) on every append; nothing else
  happens there. One writer task wakes, takes every dirty execution's events past what it has
  persisted (``log.events_after``: memory, or the log's own spool once the recorder is behind),
  writes them in one ``append_events`` call, then upserts the execution records. So the store
  sees few large batches, never one call per event, and the recorder holds no copy of its own:
  a store slower than the output leaves the events in the log (bounded by its retention), not in
  a queue.
* Events are written before the record that claims them (``last_seq``), so a record never
  points past what is durable.
* Finished executions leave the recorder once their last event (``process.completed``) and
  final record are written; ``on_persisted`` then runs (duration statistics, task lists).

What is durable when: an event is in the store one writer round after it was appended (a few
milliseconds when the store keeps up; see ``docs/storage.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from cc_executor.storage.base import ExecutionRecord, Store, StoredEvent
from cc_executor.supervisor import Execution, Gap

__all__ = ["RECORD_BATCH_BYTES", "StoreRecorder", "record_of"]

RECORD_BATCH_BYTES = 4 * 1024 * 1024  # one append_events call carries at most about this much
STORE_RETRY_S = 1.0  # after a failed write, wait this long before trying the same batch again


def record_of(
    execution: Execution, *, last_seq: int | None = None, owner: str | None = None
) -> ExecutionRecord:
    """The store's view of a live execution."""
    info = execution.info()
    spec = execution.spec
    metadata: dict[str, Any] = dict(spec.metadata or {})
    result = info.get("result")
    failure = info.get("failure")
    agent_result: dict[str, Any] | None = None
    if isinstance(result, dict):
        agent_result = dict(result)
    if isinstance(failure, dict):
        agent_result = {**(agent_result or {}), "failure": failure}
    session = info.get("session_id")
    if isinstance(session, str):
        agent_result = {**(agent_result or {}), "session_id": session}
    task_list_id = metadata.get("task_list_id")
    task_index = metadata.get("task_index")
    return ExecutionRecord(
        execution_id=execution.id,
        state=execution.state.value,
        command=spec.display_command,
        argv=list(spec.argv),
        cwd=str(spec.cwd) if spec.cwd is not None else None,
        agent=spec.agent,
        metadata=metadata,
        pid=execution.pid,
        pgid=execution.pgid,
        exit_code=execution.exit_code,
        signal=execution.signal,
        reason=execution.reason,
        created_at=execution.created_at,
        started_at=execution.started_at,
        ended_at=execution.ended_at,
        execution_time=execution.execution_time(),
        last_seq=execution.log.last_seq if last_seq is None else last_seq,
        attempt=execution.attempt,
        task_list_id=task_list_id if isinstance(task_list_id, str) else None,
        task_index=task_index if isinstance(task_index, int) else None,
        timeout=spec.timeout,
        timeout_predicted=bool(spec.labels.get("timeout_predicted", False)),
        category=category if isinstance(category := spec.labels.get("category"), str) else None,
        result=agent_result,
        output_bytes=execution.output_bytes,
        owner=owner,
    )


class StoreRecorder:
    """Implements the supervisor's ``ExecutionObserver``; run :meth:`run` as a daemon task."""

    def __init__(
        self,
        store: Store,
        *,
        owner: str | None = None,
        batch_bytes: int = RECORD_BATCH_BYTES,
        on_persisted: Callable[[Execution], Awaitable[None]] | None = None,
        on_state: Callable[[Execution, str | None], None] | None = None,
    ) -> None:
        self.store = store
        self.owner = owner
        self._on_state = on_state
        self._states: dict[str, str] = {}  # the state last written, per tracked execution
        self._batch_bytes = batch_bytes
        self._on_persisted = on_persisted
        self._tracked: dict[str, Execution] = {}
        self._persisted: dict[str, int] = {}  # execution id -> newest seq written
        self._dirty: dict[str, None] = {}  # insertion-ordered set
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.dropped_events = 0  # events the log dropped before the recorder could read them

    # --- ExecutionObserver -------------------------------------------------------------------

    def watch(self, execution: Execution) -> None:
        self._tracked[execution.id] = execution
        self._persisted.setdefault(execution.id, 0)
        execution.log.listener = self._mark
        self._mark(execution.id)

    async def drain(self) -> None:
        """Return once everything appended so far is written (bounded by the caller)."""
        while self._dirty or not self._idle.is_set():
            self._wake.set()
            self._idle.clear()
            await self._idle.wait()

    # --- writer ----------------------------------------------------------------------------------

    def _mark(self, execution_id: str) -> None:
        self._dirty[execution_id] = None
        self._idle.clear()
        self._wake.set()

    def persisted_seq(self, execution_id: str) -> int:
        return self._persisted.get(execution_id, 0)

    async def run(self) -> None:
        """The writer loop; runs until cancelled (drain first to lose nothing)."""
        while True:
            if not self._dirty:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._write_round()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store failed (Redis down, disk full): keep the events, retry
                logger.exception("recorder: store write failed; retrying in {}s", STORE_RETRY_S)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(STORE_RETRY_S):
                        await asyncio.Event().wait()

    async def _write_round(self) -> None:
        events: list[StoredEvent] = []
        size = 0
        touched: list[tuple[Execution, int]] = []
        for execution_id in list(self._dirty):
            execution = self._tracked.get(execution_id)
            if execution is None:
                self._dirty.pop(execution_id, None)
                continue
            seq = self._persisted.get(execution_id, 0)
            for item in execution.log.events_after(seq):
                if isinstance(item, Gap):
                    self.dropped_events += item.to_seq - item.from_seq + 1
                    logger.warning(
                        "recorder: events {}..{} of {} were dropped before they were stored",
                        item.from_seq,
                        item.to_seq,
                        execution_id,
                    )
                    seq = item.to_seq
                    continue
                events.append(StoredEvent(execution_id, item.seq, item.method, item.frame))
                size += len(item.frame)
                seq = item.seq
                if size >= self._batch_bytes:
                    break
            touched.append((execution, seq))
            if size >= self._batch_bytes:
                break
        # A failure below leaves every execution dirty and _persisted unchanged: the next round
        # writes the same events again (idempotent per seq), so nothing is lost.
        if events:
            await self.store.append_events(events)
        for execution, seq in touched:
            await self.store.put_execution(record_of(execution, last_seq=seq, owner=self.owner))
            self._persisted[execution.id] = seq
            state = execution.state.value
            previous = self._states.get(execution.id)
            if state != previous:
                self._states[execution.id] = state
                if self._on_state is not None:
                    self._on_state(execution, previous)
            if seq >= execution.log.last_seq:  # nothing new arrived during the awaits
                self._dirty.pop(execution.id, None)
                if execution.finished:
                    await self._finished(execution)

    async def _finished(self, execution: Execution) -> None:
        self._tracked.pop(execution.id, None)
        self._persisted.pop(execution.id, None)
        self._states.pop(execution.id, None)
        execution.log.listener = None
        if self._on_persisted is not None:
            try:
                await self._on_persisted(execution)
            except Exception:  # statistics are best effort; the record itself is stored
                logger.exception("recorder: on_persisted failed for {}", execution.id)
