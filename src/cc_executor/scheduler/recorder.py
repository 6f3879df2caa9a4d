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
* After each write the recorder tells the log what the store now holds (``mark_durable``) and
  lets it read events back (``back_with``): past its memory window the log drops stored events
  instead of writing them to its spool, so output reaches the disk once.
* Events are written before the record that claims them (``last_seq``), so a record never
  points past what is durable.
* While only output arrives, an execution's record (``last_seq``, ``output_bytes``, timings) is
  rewritten at most every :data:`RECORD_INTERVAL_S`; its events are still written every round. A
  state change, the first record and the final one are written at once, and a record whose
  write was held back is written when its interval is up (or by :meth:`StoreRecorder.drain`), even
  if no further event arrives. Without this, every round wrote one record per streaming
  execution: 50 executions trickling output cost hundreds of record upserts a second (measured in
  ``docs/benchmarks.md``, round 6).
* Finished executions leave the recorder once their last event (``process.completed``) and
  final record are written; ``on_persisted`` then runs (duration statistics, task lists).

What is durable when: an event is in the store one writer round after it was appended: a few
milliseconds when the store keeps up, at most :data:`ROUND_INTERVAL_S` more for output that follows
a round closely (see ``docs/storage.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from cc_executor.storage.base import ExecutionRecord, Store, StoredEvent
from cc_executor.supervisor import Event, Execution, Gap
from cc_executor.supervisor.eventlog import StoredReader

__all__ = [
    "RECORD_BATCH_BYTES",
    "RECORD_INTERVAL_S",
    "ROUND_INTERVAL_S",
    "SETTLE_S",
    "StoreRecorder",
    "record_of",
]

RECORD_BATCH_BYTES = 4 * 1024 * 1024  # one append_events call carries at most about this much
STORE_RETRY_S = 1.0  # after a failed write, wait this long before trying the same batch again
# A running execution's record is rewritten at most this often while only output arrives: what it
# would update (last_seq, output_bytes, execution_time) may lag by this much in `history`; events
# and state changes do not wait.
RECORD_INTERVAL_S = 0.5
# While only output is pending, a write round starts at most this long after the previous one,
# so a trickle of small events becomes one append per window instead of one per event; a state
# change (or a finished execution, or drain) starts the round at once.
SETTLE_S = 0.005  # a round starts this long after the writer found work: a burst goes out first
ROUND_INTERVAL_S = 0.02


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
        record_interval_s: float = RECORD_INTERVAL_S,
        round_interval_s: float = ROUND_INTERVAL_S,
        settle_s: float = SETTLE_S,
        on_persisted: Callable[[Execution], Awaitable[None]] | None = None,
        on_state: Callable[[Execution, str | None], None] | None = None,
    ) -> None:
        self.store = store
        self.owner = owner
        self._on_state = on_state
        self._states: dict[str, str] = {}  # the state last written, per tracked execution
        self._batch_bytes = batch_bytes
        self._record_interval_s = record_interval_s
        self._record_written: dict[str, float] = {}  # id -> monotonic time of its last record
        self._record_stale: dict[str, None] = {}  # ids whose record lags their stored events
        self._draining = False  # drain() asked: held-back records are written at once
        self._round_interval_s = round_interval_s
        self._settle_s = settle_s
        self._dirty_since = 0.0  # monotonic time the dirty set last became non-empty
        self._settling = False  # a wake-up is scheduled SETTLE_S after the dirty set filled
        self._last_round = -round_interval_s  # monotonic start of the previous write round
        self._backlog = False  # the previous round stopped at the batch limit
        self._holding = False  # waiting out ROUND_INTERVAL_S with only output pending
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
        execution.log.back_with(self._reader(execution.id))
        self._mark(execution.id)

    def _reader(self, execution_id: str) -> StoredReader:
        """Reads back what this recorder stored, for the log's followers (see ``mark_durable``)."""
        store = self.store

        async def read(seq: int, max_events: int) -> list[Event]:
            stored = await store.read_events(execution_id, after_seq=seq - 1, limit=max_events)
            return [Event(e.seq, e.method, e.frame) for e in stored]

        return read

    async def drain(self) -> None:
        """Return once everything appended so far is written, records included (bounded by the
        caller)."""
        self._draining = True
        try:
            while self._dirty or self._record_stale or not self._idle.is_set():
                self._wake.set()
                self._idle.clear()
                await self._idle.wait()
        finally:
            self._draining = False

    # --- writer ----------------------------------------------------------------------------------

    def _mark(self, execution_id: str) -> None:
        first = not self._dirty
        self._dirty[execution_id] = None
        self._idle.clear()
        if first:
            self._dirty_since = time.monotonic()
            if self._settle_s > 0 and not self._draining and not self._holding:
                # Wake the writer once the burst is out, not now: no task step on its path.
                self._settling = True
                asyncio.get_running_loop().call_later(self._settle_s, self._settled)
                return
        if self._settling:
            return
        if self._holding and self._output_only(execution_id):
            return  # the round due at the end of the window takes it; no wake-up per event
        self._wake.set()

    def _settled(self) -> None:
        self._settling = False
        self._wake.set()

    def _output_only(self, execution_id: str) -> bool:
        execution = self._tracked.get(execution_id)
        return (
            execution is not None
            and not execution.finished
            and execution.state.value == self._states.get(execution_id)
        )

    def persisted_seq(self, execution_id: str) -> int:
        return self._persisted.get(execution_id, 0)

    async def run(self) -> None:
        """The writer loop; runs until cancelled (drain first to lose nothing)."""
        while True:
            if not self._dirty:
                if not self._record_stale:
                    self._idle.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                delay = self._stale_delay()
                if delay > 0:
                    # Nothing is due before the first held-back record, unless an event (or
                    # drain) wakes us first. No await between the checks and clear(): no lost
                    # wake-up.
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wake.wait()
                    continue
            if self._dirty and (delay := self._round_delay()) > 0:
                self._wake.clear()  # a state change, a finish or drain() wakes us early
                self._holding = True
                try:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wake.wait()
                finally:
                    self._holding = False
                continue
            try:
                if self._dirty:
                    self._last_round = time.monotonic()
                    await self._write_round()
                else:
                    await self._write_stale()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store failed (Redis down, disk full): keep the events, retry
                logger.exception("recorder: store write failed; retrying in {}s", STORE_RETRY_S)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(STORE_RETRY_S):
                        await asyncio.Event().wait()

    async def _write_round(self) -> None:
        events, size, touched = self._gather()
        # A full batch left events behind: the next round starts at once instead of after the
        # round interval, or output faster than one batch per interval would outrun the store.
        self._backlog = size >= self._batch_bytes
        # A failure below leaves every execution dirty and _persisted unchanged: the next round
        # writes the same events again (idempotent per seq), so nothing is lost.
        if events:
            await self.store.append_events(events)
        now = time.monotonic()
        due: list[tuple[Execution, int]] = []
        for execution, seq in touched:
            execution.log.mark_durable(seq)  # memory may now drop them without a spool write
            if self._hold_back(execution, seq, now):
                # Output only, and its record was written moments ago: the events are stored,
                # the record follows when its interval is up (_write_stale) or at drain().
                self._persisted[execution.id] = seq
                self._record_stale[execution.id] = None
            else:
                due.append((execution, seq))
        await self._put(due)  # every record of the round in one store round trip
        for execution, seq in touched:
            if seq >= execution.log.last_seq:  # nothing new arrived during the awaits
                self._dirty.pop(execution.id, None)
                if execution.finished and execution.id not in self._record_stale:
                    await self._finished(execution)

    def _gather(self) -> tuple[list[StoredEvent], int, list[tuple[Execution, int]]]:
        """The events of this round (up to the batch size), their bytes, and per execution the
        last seq taken."""
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
        return events, size, touched

    def _hold_back(self, execution: Execution, seq: int, now: float) -> bool:
        """Whether this round may skip the record: same state, not final, written recently."""
        if execution.finished and seq >= execution.log.last_seq:
            return False  # the final record
        if execution.state.value != self._states.get(execution.id):
            return False  # a state change (or the first record)
        written = self._record_written.get(execution.id)
        return written is not None and now - written < self._record_interval_s

    def _round_delay(self) -> float:
        """Seconds until the next round may start (0: now): only output pending, last one recent."""
        if self._draining or self._backlog:
            return 0.0
        now = time.monotonic()
        # The spawn, the execute response and the first output of a new execution are on the
        # loop right now; copying them to the store a few ms later keeps that path free (it
        # cost 0.4-0.5 ms of the first byte when the round ran at once).
        settle = self._dirty_since + self._settle_s - now
        delay = self._last_round + self._round_interval_s - now
        if delay <= 0 or not all(self._output_only(eid) for eid in self._dirty):
            delay = 0.0
        return max(delay, settle, 0.0)

    def _stale_delay(self) -> float:
        """Seconds until the first held-back record is due (0: write now)."""
        if self._draining:
            return 0.0
        oldest = min(self._record_written.get(eid, 0.0) for eid in self._record_stale)
        return max(0.0, oldest + self._record_interval_s - time.monotonic())

    async def _write_stale(self) -> None:
        """Write the held-back records that are due (all of them when draining)."""
        now = time.monotonic()
        due: list[tuple[Execution, int]] = []
        for execution_id in list(self._record_stale):
            execution = self._tracked.get(execution_id)
            if execution is None:
                self._record_stale.pop(execution_id, None)
                continue
            written = self._record_written.get(execution_id, 0.0)
            if self._draining or now - written >= self._record_interval_s:
                due.append((execution, self._persisted.get(execution_id, 0)))
        await self._put(due)

    async def _put(self, due: list[tuple[Execution, int]]) -> None:
        """Upsert each record claiming its events up to ``seq`` (stored already), all in one
        store call; report the states that changed (as stored: a state reached during the
        await is the next round's)."""
        if not due:
            return
        records = [record_of(execution, last_seq=seq, owner=self.owner) for execution, seq in due]
        await self.store.put_executions(records)
        written = time.monotonic()
        for (execution, seq), record in zip(due, records, strict=True):
            self._persisted[execution.id] = seq
            self._record_written[execution.id] = written
            self._record_stale.pop(execution.id, None)
            previous = self._states.get(execution.id)
            if record.state != previous:
                self._states[execution.id] = record.state
                if self._on_state is not None:
                    self._on_state(execution, previous)

    async def _finished(self, execution: Execution) -> None:
        self._tracked.pop(execution.id, None)
        self._persisted.pop(execution.id, None)
        self._states.pop(execution.id, None)
        self._record_written.pop(execution.id, None)
        self._record_stale.pop(execution.id, None)
        execution.log.listener = None
        if self._on_persisted is not None:
            try:
                await self._on_persisted(execution)
            except Exception:  # statistics are best effort; the record itself is stored
                logger.exception("recorder: on_persisted failed for {}", execution.id)
