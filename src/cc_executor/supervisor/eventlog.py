"""The per-execution event log: sequence numbers, encoded frames, bounded memory, replay + live.

Owns: numbering every notification of one execution (``seq`` from 1, no gaps), encoding each
notification exactly once (:func:`~cc_executor.protocol.jsonrpc.encode_notification`), keeping the
newest events in memory, spilling older ones to append-only spool files, dropping the oldest beyond
``max_bytes``, and letting any number of followers replay what is retained and then go live.
Does not own: what the events mean (the execution appends them), who receives them (the doors),
or durable storage (``storage/``).

Invariants:

* :meth:`EventLog.append` is synchronous and never waits for a reader: it is on the output hot path.
  A follower that falls behind does not hold anything back; it simply replays from the spool files.
* Memory holds at most ``memory_bytes`` of frames (plus the newest event); older events live in
  spool segments with a ``seq -> end offset`` index (an ``array``), so memory never grows with the
  amount of output.
* Disk holds about ``max_bytes``: the spool is split into segments, and when the total exceeds
  ``max_bytes`` the oldest segment is deleted. A follower that asks for dropped events receives one
  :class:`Gap` first, then continues from the oldest retained event.
* Followers are woken by one :class:`asyncio.Event` per generation (created by the first waiter,
  set and forgotten by the next append), so an append costs O(1) however many followers wait.
* With a durable store behind it (:meth:`EventLog.back_with`, set by the recorder), events the
  store already holds (:meth:`EventLog.mark_durable`) leave memory without touching the spool:
  followers read them back from the store. Only events the store has not taken yet (it is
  behind, or down) still go to the spool, so output is written to disk once, not twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from cc_executor.protocol.jsonrpc import encode_notification

__all__ = [
    "EVENT_LOG_MAX_BYTES",
    "EVENT_LOG_MEMORY_BYTES",
    "Event",
    "EventLog",
    "Gap",
    "StoredReader",
]

MiB = 1024 * 1024
EVENT_LOG_MEMORY_BYTES = 8 * MiB  # live followers read the newest events without any I/O
EVENT_LOG_MAX_BYTES = 1024 * MiB  # per-execution spool cap; beyond it the oldest events are dropped
SPOOL_SEGMENTS = 4  # the spool is cut into files, so dropping the oldest frees a whole one
SPILL_LOW_WATER = 3 / 4  # spill down to this share of memory_bytes: one write per batch
STORE_HOLD = 2  # behind a store, memory holds up to this many windows of events it has not taken
REPLAY_BATCH_BYTES = 1 * MiB  # a follower replaying from disk reads this much per pread
FOLLOW_BATCH_EVENTS = 512  # a follower yields the loop after this many in-memory events
CLOSED_MEMORY_BYTES = 64 * 1024  # in-memory tail a closed (finished) log keeps; the rest spills
CLOSED_SPILL_DELAY_S = 1.0  # ...that long after close(), not on the way to process.completed
_IOV_MAX = 1024  # os.writev takes at most this many buffers (Linux IOV_MAX)
_SPOOL_SUFFIX = ".events"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class Event:
    """One notification of an execution, already encoded as a JSON-RPC frame."""

    seq: int
    method: str
    frame: str


@dataclass(frozen=True, slots=True)
class Gap:
    """Events ``from_seq..to_seq`` (inclusive) were dropped by retention and cannot be replayed."""

    from_seq: int
    to_seq: int


StoredReader = Callable[[int, int], Awaitable[list[Event]]]
"""``read(seq, max_events)``: stored events from ``seq`` on, oldest first (``[]``: none)."""

STORED_READ_EVENTS = 64  # a follower reading back from the store asks for this many per read


@dataclass(frozen=True, slots=True)
class _Stored:
    """Events from ``seq`` on left memory because the durable store holds them."""

    seq: int


class _Segment:
    """One append-only spool file holding events ``first_seq .. first_seq + len(ends) - 1``.

    A record is ``method + b"\\n" + frame`` (frames never contain a raw newline: JSON escapes it).
    ``ends[i]`` is the file offset just past record ``first_seq + i``.
    """

    __slots__ = ("ends", "fd", "first_seq", "path", "size")

    def __init__(self, fd: int, path: Path | None, first_seq: int) -> None:
        self.fd = fd
        self.path = path
        self.first_seq = first_seq
        self.ends = array("q")
        self.size = 0

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.ends) - 1

    def write(self, events: list[Event]) -> int:
        # One writev per up to IOV_MAX buffers instead of building one joined copy of the batch
        # (frames of 64 KiB make the copy cost as much as the write itself).
        parts: list[bytes] = []
        end = self.size
        for event in events:
            head = event.method.encode() + b"\n"
            body = event.frame.encode()
            parts.append(head)
            parts.append(body)
            end += len(head) + len(body)
            self.ends.append(end)
        total = end - self.size
        for start in range(0, len(parts), _IOV_MAX):
            _write_all(self.fd, parts[start : start + _IOV_MAX])
        self.size = end
        return total

    def read(self, seq: int, max_bytes: int) -> list[Event]:
        first = seq - self.first_seq
        start = self.ends[first - 1] if first else 0
        last = max(first, bisect_right(self.ends, start + max_bytes) - 1)
        data = os.pread(self.fd, self.ends[last] - start, start)
        if len(data) != self.ends[last] - start:
            raise OSError(f"spool file truncated: wanted {self.ends[last] - start} bytes")
        events: list[Event] = []
        offset = 0
        for index in range(first, last + 1):
            end = self.ends[index] - start
            newline = data.index(b"\n", offset, end)
            method = data[offset:newline].decode()
            events.append(Event(self.first_seq + index, method, data[newline + 1 : end].decode()))
            offset = end
        return events

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _write_all(fd: int, parts: list[bytes]) -> None:
    written = os.writev(fd, parts)
    total = sum(len(part) for part in parts)
    if written == total:
        return
    # A regular file writes everything unless the disk is full; finish the rest anyway.
    view = memoryview(b"".join(parts))[written:]
    while view:
        view = view[os.write(fd, view) :]


class EventLog:
    """Numbered, encoded notifications of one execution; see the module docstring."""

    def __init__(
        self,
        execution_id: str,
        *,
        memory_bytes: int = EVENT_LOG_MEMORY_BYTES,
        max_bytes: int = EVENT_LOG_MAX_BYTES,
        spool_dir: Path | None = None,
    ) -> None:
        self.execution_id = execution_id
        self._memory_bytes = max(0, memory_bytes)
        self._max_bytes = max(0, max_bytes)
        self._segment_bytes = max(1, self._max_bytes // SPOOL_SEGMENTS)
        self._spool_dir = spool_dir
        # In-memory tail: ``_mem[_mem_head:]`` are the newest events, oldest first. A list with a
        # moving head (compacted now and then) gives O(1) append, pop-oldest and index-by-seq.
        self._mem: list[Event] = []
        self._mem_head = 0
        self._mem_bytes = 0
        self._segments: deque[_Segment] = deque()
        self._disk_bytes = 0
        self._first_seq = 1  # oldest retained seq; everything below was dropped
        self._last_seq = 0
        self._closed = False
        self._discarded = False
        self._wakeup: asyncio.Event | None = None
        self._closed_spill: asyncio.TimerHandle | None = None
        self._stored: StoredReader | None = None
        self._durable_seq = 0  # every event up to this seq is in the durable store
        # Called (with the execution id) after every append and on close: the durable store's
        # recorder marks the execution dirty here. It must be cheap and must never raise.
        self.listener: Callable[[str], None] | None = None

    # --- producer side -------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """Seq of the newest event (0 before the first)."""
        return self._last_seq

    @property
    def first_retained_seq(self) -> int:
        """Seq of the oldest event that can still be replayed."""
        return self._first_seq

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def memory_bytes_used(self) -> int:
        """Size of the frames held in memory."""
        return self._mem_bytes

    @property
    def disk_bytes_used(self) -> int:
        """Size of the records held in spool files."""
        return self._disk_bytes

    @property
    def durable_seq(self) -> int:
        """Every event up to this seq is held by the durable store (0: none, or no store)."""
        return self._durable_seq

    def back_with(self, read: StoredReader) -> None:
        """Let events the store holds leave memory without a spool write; read them from it."""
        self._stored = read

    def mark_durable(self, seq: int) -> None:
        """The store holds every event up to ``seq`` (the recorder calls this after a write)."""
        if self._stored is not None and seq > self._durable_seq:
            self._durable_seq = min(seq, self._last_seq)
            if self._segments:
                self._drop_stored_segments()
            if self._closed and self._mem_bytes > CLOSED_MEMORY_BYTES:
                # Finished: what the store holds leaves memory now (nothing is written, so no
                # follower waits on it), not after CLOSED_SPILL_DELAY_S; a follower still behind
                # reads it back from the store. Executions ending one after another each kept
                # up to a window here for that second: 48-54 MB after 20 runs of 20 MB.
                self._drop_durable(CLOSED_MEMORY_BYTES)
                self._compact()
            elif self._mem_bytes > self._memory_bytes:
                self._spill()  # drops what the store now holds; writes nothing

    def append(self, method: str, params: Mapping[str, object]) -> Event:
        """Number, encode and store one notification; wakes followers. Never waits."""
        if self._closed:
            raise RuntimeError(f"event log of {self.execution_id} is closed")
        seq = self._last_seq + 1
        body: dict[str, Any] = {"execution_id": self.execution_id, "seq": seq}
        body.update(params)
        body["execution_id"] = self.execution_id  # params can never forge these two
        body["seq"] = seq
        event = Event(seq, method, encode_notification(method, body))
        self._mem.append(event)
        self._mem_bytes += len(event.frame)
        self._last_seq = seq
        if self._mem_bytes > self._memory_bytes:
            self._spill()
        self._wake()
        if self.listener is not None:
            self.listener(self.execution_id)
        return event

    def close(self) -> None:
        """No more events; followers end once they have drained what is retained.

        A finished execution is kept for ``status``/``attach`` long after its output stopped, so
        its in-memory tail goes to the spool (down to ``CLOSED_MEMORY_BYTES``): otherwise every
        finished execution would hold up to ``memory_bytes`` and the daemon's RSS would grow with
        the number of executions instead of staying bounded. It goes ``CLOSED_SPILL_DELAY_S``
        later, not now: the live followers are still sending that tail and ``process.completed``
        after it, and writing up to ``memory_bytes`` here would hold them back (it was ~10 % of a
        20 MB run). Memory stays bounded: each finished log holds its tail for that long only.
        """
        self._closed = True
        if self._mem_bytes > CLOSED_MEMORY_BYTES and self._closed_spill is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (synchronous use): spill now
                self._spill(CLOSED_MEMORY_BYTES)
            else:
                self._closed_spill = loop.call_later(CLOSED_SPILL_DELAY_S, self._spill_closed)
        self._wake()
        if self.listener is not None:
            self.listener(self.execution_id)

    def _spill_closed(self) -> None:
        self._closed_spill = None
        if self._mem_bytes > CLOSED_MEMORY_BYTES:
            self._spill(CLOSED_MEMORY_BYTES)

    def discard(self) -> None:
        """Close and delete the spool files; followers get a :class:`Gap` for spilled events."""
        self.close()
        self._discarded = True
        timer, self._closed_spill = self._closed_spill, None
        if timer is not None:
            timer.cancel()
        self._spill_closed()  # discarded: only forgets the oldest in-memory events
        self._drop_disk()

    async def aclose(self) -> None:
        """Async spelling of :meth:`discard` (for ``contextlib.aclosing`` and owners that await)."""
        self.discard()

    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None:
            self._wakeup = None
            waiter.set()

    def _mem_first_seq(self) -> int:
        return self._last_seq - (len(self._mem) - self._mem_head) + 1

    def _spill(self, low_water: int | None = None) -> None:
        """Bring memory down to ``low_water``: stored events are dropped (the store has them),
        the others go to the spool. Behind a store, events it has not taken yet stay in memory
        until it does (:meth:`mark_durable`) or memory passes ``STORE_HOLD`` times the window;
        an explicit ``low_water`` (a closed log) spools them at once."""
        hold = low_water is None and self._stored is not None
        if low_water is None:
            low_water = int(self._memory_bytes * SPILL_LOW_WATER)
        mem = self._mem
        self._drop_durable(low_water)
        batch: list[Event] = []
        if not hold or self._mem_bytes > self._memory_bytes * STORE_HOLD:
            while self._mem_bytes > low_water and len(mem) - self._mem_head > 1:
                event = mem[self._mem_head]
                self._mem_head += 1
                self._mem_bytes -= len(event.frame)
                batch.append(event)
        self._compact()
        if self._stored is not None:
            self._drop_stored_segments()
        if batch:
            self._write_disk(batch)

    def _drop_durable(self, low_water: int) -> None:
        """Forget the oldest in-memory events the store holds, down to ``low_water`` (keeping at
        least the newest event, however small the window)."""
        mem = self._mem
        while (
            self._mem_bytes > low_water
            and len(mem) - self._mem_head > 1
            and mem[self._mem_head].seq <= self._durable_seq
        ):
            self._mem_bytes -= len(mem[self._mem_head].frame)
            self._mem_head += 1

    def _compact(self) -> None:
        """Cut the dropped prefix off the list once it is at least half of it (amortised O(1)
        per event): with 64 KiB frames, waiting for hundreds of dropped events kept tens of MB
        alive."""
        if self._mem_head * 2 >= len(self._mem):
            del self._mem[: self._mem_head]
            self._mem_head = 0

    def _drop_stored_segments(self) -> None:
        """Delete spool files whose every event the store holds now (oldest first)."""
        segments = self._segments
        while segments and segments[0].last_seq <= self._durable_seq:
            oldest = segments.popleft()
            self._disk_bytes -= oldest.size
            oldest.remove()

    def _write_disk(self, batch: list[Event]) -> None:
        if self._max_bytes == 0 or self._discarded:
            self._first_seq = batch[-1].seq + 1
            return
        try:
            while batch:
                segment = self._segments[-1] if self._segments else None
                if (
                    segment is None
                    or segment.size >= self._segment_bytes
                    # A segment holds consecutive seqs; behind a store, the events between
                    # the two spills left memory for the store instead.
                    or segment.last_seq + 1 != batch[0].seq
                ):
                    segment = self._new_segment(batch[0].seq)
                room = self._segment_bytes - segment.size
                take, size = 0, 0
                while take < len(batch) and (take == 0 or size + len(batch[take].frame) <= room):
                    size += len(batch[take].frame)
                    take += 1
                self._disk_bytes += segment.write(batch[:take])
                batch = batch[take:]
                while self._disk_bytes > self._max_bytes and len(self._segments) > 1:
                    oldest = self._segments.popleft()
                    self._disk_bytes -= oldest.size
                    self._first_seq = oldest.last_seq + 1
                    oldest.remove()
        except OSError as exc:
            # Disk full or spool dir gone: keep running, report the loss as a gap to followers.
            logger.error(
                "event log {}: spool write failed ({}); dropping spilled events",
                self.execution_id,
                exc,
            )
            self._drop_disk()

    def _new_segment(self, first_seq: int) -> _Segment:
        path: Path | None
        if self._spool_dir is not None:
            self._spool_dir.mkdir(parents=True, exist_ok=True)
            prefix = _UNSAFE_NAME.sub("_", self.execution_id)[:64] + "-"
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=_SPOOL_SUFFIX, dir=self._spool_dir)
            path = Path(name)
        else:
            # No spool dir: an anonymous file (unlinked at once) that vanishes with the process.
            fd, name = tempfile.mkstemp(suffix=_SPOOL_SUFFIX)
            os.unlink(name)
            path = None
        segment = _Segment(fd, path, first_seq)
        self._segments.append(segment)
        return segment

    def _drop_disk(self) -> None:
        while self._segments:
            self._segments.popleft().remove()
        self._disk_bytes = 0
        self._first_seq = max(self._first_seq, self._mem_first_seq())

    # --- follower side -------------------------------------------------------------------------

    def _take(self, seq: int) -> list[Event | Gap] | _Stored:
        """Retained items starting at ``seq`` (a Gap first when ``seq`` was dropped), or
        :class:`_Stored` when only the durable store holds them (see :meth:`_read_stored`)."""
        mem_first = self._mem_first_seq()
        if seq >= mem_first:
            return self._take_memory(seq, mem_first)
        segment = self._segment_of(seq)
        if segment is None and seq <= self._durable_seq:
            return _Stored(seq)
        if seq < self._first_seq:
            return [Gap(seq, self._first_seq - 1)]
        if segment is None:
            # Not reachable while the invariants hold; report rather than loop forever.
            return [Gap(seq, mem_first - 1)]
        try:
            return list(segment.read(seq, REPLAY_BATCH_BYTES))
        except OSError as exc:
            logger.error(
                "event log {}: spool read failed ({}); reporting a gap", self.execution_id, exc
            )
            self._drop_disk()
            return self._take(seq)

    def _take_memory(self, seq: int, mem_first: int) -> list[Event | Gap]:
        start = self._mem_head + (seq - mem_first)
        batch = self._mem[start : start + FOLLOW_BATCH_EVENTS]
        # A batch pins its frames until the follower sent them: bound it by bytes as well.
        size = 0
        for index, event in enumerate(batch):
            size += len(event.frame)
            if size > REPLAY_BATCH_BYTES:
                return list(batch[: index + 1])
        return list(batch)

    def _segment_of(self, seq: int) -> _Segment | None:
        for segment in self._segments:
            if segment.first_seq <= seq <= segment.last_seq:
                return segment
        return None

    async def _read_stored(self, seq: int) -> list[Event | Gap]:
        """Events from ``seq`` on, read back from the durable store (a Gap if it lost them)."""
        assert self._stored is not None
        end = min(self._durable_seq, self._mem_first_seq() - 1)
        try:
            events = await self._stored(seq, STORED_READ_EVENTS)
        except Exception as exc:  # the store is down: report a gap rather than end the follower
            logger.error("event log {}: store read failed ({})", self.execution_id, exc)
            events = []
        found: list[Event | Gap] = []
        for event in events:
            if event.seq > end:
                break
            if event.seq != seq:  # pruned or lost in between: say so, then carry on
                found.append(Gap(seq, event.seq - 1))
            found.append(event)
            seq = event.seq + 1
        if not found:
            found.append(Gap(seq, max(seq, end)))
        return found

    def events_after(self, after_seq: int = 0) -> Iterator[Event | Gap]:
        """What memory and spool hold with ``seq > after_seq`` up to now, in order (synchronous).

        Stops early at events only the durable store holds; :meth:`read` returns those too.
        """
        seq = max(after_seq, 0) + 1
        while seq <= self._last_seq:
            items = self._take(seq)
            if isinstance(items, _Stored):
                return
            for item in items:
                yield item
                seq = (item.to_seq if isinstance(item, Gap) else item.seq) + 1

    async def read(self, after_seq: int = 0, limit: int = FOLLOW_BATCH_EVENTS) -> list[Event | Gap]:
        """Up to ``limit`` items with ``seq > after_seq`` that exist now, the store's included."""
        seq = max(after_seq, 0) + 1
        found: list[Event | Gap] = []
        while seq <= self._last_seq and len(found) < limit:
            items = self._take(seq)
            if isinstance(items, _Stored):
                items = await self._read_stored(seq)
            for item in items[: limit - len(found)]:
                found.append(item)
                seq = (item.to_seq if isinstance(item, Gap) else item.seq) + 1
        return found

    async def follow(self, after_seq: int = 0) -> AsyncIterator[Event | Gap]:
        """Replay retained events with ``seq > after_seq``, then live ones; ends after close().

        Never yields a duplicate; yields a :class:`Gap` only for events dropped by retention.
        """
        seq = max(after_seq, 0) + 1
        while True:
            if seq <= self._last_seq:
                items = self._take(seq)
                if isinstance(items, _Stored):
                    items = await self._read_stored(seq)
                for item in items:
                    yield item
                    seq = (item.to_seq if isinstance(item, Gap) else item.seq) + 1
                # A consumer that never awaits would otherwise starve the loop during a replay.
                await asyncio.sleep(0)
                continue
            if self._closed:
                return
            waiter = self._wakeup
            if waiter is None:
                waiter = self._wakeup = asyncio.Event()
            await waiter.wait()
