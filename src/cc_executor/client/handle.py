"""``ExecutionHandle``: one execution as the client sees it, an async stream of its events.

Owns the per-execution buffer and the exactly-once rule: events are accepted in ``seq`` order,
each seq once. The buffer is bounded; when it fills (nobody is iterating), the handle stops
accepting, asks the client to ``detach`` it, and when the consumer has drained the buffer it
re-``attach``es from the last seq it accepted. The daemon's event log replays what was missed, so
nothing is lost and, because of the seq rule, nothing is delivered twice. The same re-attach
happens after a reconnect (driven by the client).

Does not own the connection: it talks to the daemon through its :class:`HandleOwner`.
"""

from __future__ import annotations

import asyncio
import base64
import enum
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cc_executor.client.errors import ConnectionLost
from cc_executor.client.events import Completed, Event, Gap, Output, Started
from cc_executor.protocol.names import ControlType, Method

__all__ = [
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_BUFFERED_EVENTS",
    "CommandResult",
    "ExecutionHandle",
    "Feed",
    "HandleOwner",
]

# A consumer that does not iterate holds at most this much per execution; the rest stays in the
# daemon's event log and is replayed on demand.
DEFAULT_MAX_BUFFERED_EVENTS = 4096
DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024
_EVENT_OVERHEAD_BYTES = 256  # rough size of an event without its data, for the byte budget


class HandleOwner(Protocol):
    """What a handle needs from its client."""

    async def _call(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def _release(self, handle: ExecutionHandle) -> None: ...


class Feed(enum.Enum):
    """What :meth:`ExecutionHandle._feed` did with one event."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    DROPPED = "dropped"
    OVERFLOW = "overflow"  # just filled up: the owner should detach this execution


@dataclass(frozen=True)
class CommandResult:
    """A finished execution with its captured output (exact bytes)."""

    completed: Completed
    stdout: bytes
    stderr: bytes

    @property
    def execution_id(self) -> str:
        return self.completed.execution_id

    @property
    def status(self) -> str:
        return self.completed.status

    @property
    def exit_code(self) -> int | None:
        return self.completed.exit_code

    @property
    def success(self) -> bool:
        return self.completed.success


def _event_size(event: Event) -> int:
    if isinstance(event, Output):
        return len(event.data) + _EVENT_OVERHEAD_BYTES
    return _EVENT_OVERHEAD_BYTES


class ExecutionHandle:
    """One execution: control it and iterate over its events (ending after ``Completed``).

    One consumer at a time may iterate. Output is captured as it is consumed (``capture=True``)
    for :meth:`output`; pass ``capture=False`` to stream very large outputs without keeping them.
    """

    def __init__(
        self,
        owner: HandleOwner,
        execution_id: str,
        *,
        capture: bool = True,
        max_buffered_events: int = DEFAULT_MAX_BUFFERED_EVENTS,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        self._owner = owner
        self.execution_id = execution_id
        self.pid: int | None = None
        self.pgid: int | None = None
        self._capture = capture
        self._max_events = max(1, max_buffered_events)
        self._max_bytes = max(1, max_buffered_bytes)
        self._buffer: deque[Event] = deque()
        self._buffered_bytes = 0
        self._last_seq = 0  # highest seq accepted into the buffer
        self._overflowed = False  # stopped accepting; re-attach once the consumer drains
        self._resyncing = False  # an attach is in flight: stale pieces may still arrive
        self._final_accepted = False
        self._done = False
        self._detached = False
        self._failure: BaseException | None = None
        self._completed: Completed | None = None
        self._wakeup = asyncio.Event()
        self._stdout = bytearray()
        self._stderr = bytearray()

    def __repr__(self) -> str:
        return f"<ExecutionHandle {self.execution_id} last_seq={self._last_seq} done={self._done}>"

    # --- state, read by the client ------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        """The highest seq accepted so far (the ``after_seq`` of the next attach)."""
        return self._last_seq

    @property
    def completed(self) -> Completed | None:
        """The final event once it has been consumed."""
        return self._completed

    @property
    def done(self) -> bool:
        return self._done

    @property
    def stdout(self) -> bytes:
        """Stdout consumed so far (exact bytes)."""
        return bytes(self._stdout)

    @property
    def stderr(self) -> bytes:
        """Stderr consumed so far (exact bytes)."""
        return bytes(self._stderr)

    @property
    def wants_attach(self) -> bool:
        """Whether a new connection must re-attach this handle now."""
        return not (self._final_accepted or self._detached or self._overflowed or self._failure)

    # --- feeding (called by the client's reader; never awaits) ---------------------------------
    def _feed(self, event: Event) -> Feed:  # noqa: PLR0911 - one rule per case, kept together
        if self._final_accepted or self._detached:
            return Feed.DUPLICATE
        if isinstance(event, Gap):
            # Events the daemon no longer has: skip past them (the Gap itself tells the consumer).
            if event.to_seq <= self._last_seq:
                return Feed.DUPLICATE
            if event.from_seq > self._last_seq + 1:
                return self._hole()
            return self._accept(event, new_last_seq=event.to_seq)
        seq = event.seq
        if seq is None:
            return self._accept(event, new_last_seq=self._last_seq)
        if seq <= self._last_seq:
            return Feed.DUPLICATE
        if seq != self._last_seq + 1:
            return self._hole()
        return self._accept(event, new_last_seq=seq)

    def _hole(self) -> Feed:
        # While an attach is in flight, a hole is a stale piece of the old subscription; otherwise
        # something was missed and only a re-attach from the last accepted seq heals it.
        if self._resyncing or self._overflowed:
            return Feed.DROPPED
        self._overflowed = True
        self._wakeup.set()
        return Feed.OVERFLOW

    def _accept(self, event: Event, *, new_last_seq: int) -> Feed:
        if self._overflowed:
            return Feed.DROPPED
        size = _event_size(event)
        if self._buffer and (
            len(self._buffer) >= self._max_events or self._buffered_bytes + size > self._max_bytes
        ):
            self._overflowed = True
            self._wakeup.set()
            return Feed.OVERFLOW
        self._buffer.append(event)
        self._buffered_bytes += size
        self._last_seq = new_last_seq
        if isinstance(event, Completed):
            self._final_accepted = True
        self._wakeup.set()
        return Feed.ACCEPTED

    def _fail(self, exc: BaseException) -> None:
        """The stream cannot go on (connection lost for good, client closed, execution gone)."""
        if not self._done and self._failure is None:
            self._failure = exc
            self._wakeup.set()

    def _begin_resync(self) -> None:
        self._overflowed = False
        self._resyncing = True

    def _end_resync(self) -> None:
        self._resyncing = False

    # --- consuming ------------------------------------------------------------------------------
    def __aiter__(self) -> ExecutionHandle:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._buffer:
                event = self._buffer.popleft()
                self._buffered_bytes -= _event_size(event)
                self._consume(event)
                return event
            if self._done or self._detached:
                raise StopAsyncIteration
            if self._failure is not None:
                raise self._failure
            if self._overflowed:
                await self._resync()
                continue
            self._wakeup.clear()
            await self._wakeup.wait()

    def _consume(self, event: Event) -> None:
        if isinstance(event, Output):
            if self._capture:
                target = self._stderr if event.stream == "stderr" else self._stdout
                target += event.data_bytes
        elif isinstance(event, Started):
            self.pid = event.pid if event.pid is not None else self.pid
            self.pgid = event.pgid if event.pgid is not None else self.pgid
        elif isinstance(event, Completed):
            self._completed = event
            self._done = True
            self._owner._release(self)

    async def _resync(self) -> None:
        """Re-attach from the last accepted seq (after an overflow or a hole)."""
        self._begin_resync()
        try:
            await self._owner._call(
                Method.ATTACH, {"execution_id": self.execution_id, "after_seq": self._last_seq}
            )
        except ConnectionLost:
            # The client re-attaches every live handle once it has reconnected, or fails them.
            pass
        finally:
            self._end_resync()

    async def wait(self) -> Completed:
        """Consume the remaining events and return the final one."""
        async for _ in self:
            pass
        if self._completed is None:  # detached before the end
            raise ConnectionLost(
                "stream ended before the execution completed (detached)",
                execution_id=self.execution_id,
            )
        return self._completed

    async def output(self) -> tuple[bytes, bytes]:
        """Wait for completion and return ``(stdout, stderr)`` as exact bytes."""
        await self.wait()
        return bytes(self._stdout), bytes(self._stderr)

    async def result(self) -> CommandResult:
        """Wait for completion and return the final event with the captured output."""
        completed = await self.wait()
        return CommandResult(completed, bytes(self._stdout), bytes(self._stderr))

    # --- control --------------------------------------------------------------------------------
    async def _control(self, kind: ControlType) -> str:
        result = await self._owner._call(
            Method.CONTROL, {"type": kind.value, "execution_id": self.execution_id}
        )
        return str(result.get("status", ""))

    async def pause(self) -> str:
        """SIGSTOP the group; returns ``"paused"``."""
        return await self._control(ControlType.PAUSE)

    async def resume(self) -> str:
        """SIGCONT the group; returns ``"resumed"``."""
        return await self._control(ControlType.RESUME)

    async def cancel(self) -> str:
        """TERM, grace, KILL the group; returns ``"canceled"``. The stream still ends normally."""
        return await self._control(ControlType.CANCEL)

    async def send_input(self, data: str | bytes, eof: bool = False) -> int:
        """Write to the process's stdin (started with ``stdin=True``); returns bytes written."""
        params: dict[str, Any] = {"execution_id": self.execution_id, "eof": eof}
        if isinstance(data, bytes):
            try:
                params["data"] = data.decode()
            except UnicodeDecodeError:
                params["data"] = base64.b64encode(data).decode()
                params["encoding"] = "base64"
        else:
            params["data"] = data
        result = await self._owner._call(Method.INPUT, params)
        written = result.get("bytes_written", 0)
        return written if isinstance(written, int) else 0

    async def status(self) -> dict[str, Any]:
        """The daemon's view of this execution (state, pid, pgid, exit code, times, last seq)."""
        return await self._owner._call(Method.STATUS, {"execution_id": self.execution_id})

    async def detach(self) -> None:
        """Stop receiving this execution's events; it keeps running on the daemon."""
        self._detached = True
        self._wakeup.set()
        self._owner._release(self)
        await self._owner._call(Method.DETACH, {"execution_id": self.execution_id})
