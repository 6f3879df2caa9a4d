"""The seam between an execution and whoever decides about its attempts (the scheduler).

Owns the *shape* of that conversation, nothing of its policy. An :class:`ExecutionSpec` may carry
an :class:`AttemptPolicy`; the execution then

1. calls :meth:`AttemptPolicy.bind` once with itself as the :class:`AttemptHost`,
2. before each spawn calls :meth:`AttemptPolicy.attempt_started` (attempts count from 1),
3. hands it every chunk read from stdout/stderr (:meth:`AttemptPolicy.on_output`, after the
   chunk's ``process.output`` events were appended, so ``seq`` order is pipe order),
4. once the attempt's process group is gone and its pipes are drained, asks
   :meth:`AttemptPolicy.attempt_ended` what next: :class:`Retry` (spawn again within the same
   execution, after ``delay_s`` spent in state ``waiting_for_limit``), :class:`Finish` (settle
   as completed or failed, whatever the exit code said), or ``None`` (settle by exit code).

The policy talks back through the host: it appends its own notifications to the execution's
event log (one ``seq`` sequence for everything) and may ask for the running attempt to be ended
after a grace period (the result-grace watchdog of agent CLIs that hang after their answer).

The supervisor never imports the scheduler or the agents: they implement these protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["AttemptEnd", "AttemptHost", "AttemptPolicy", "Decision", "Finish", "Retry"]

Stream = Literal["stdout", "stderr"]


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """How one attempt ended (its group is gone and its output fully read)."""

    attempt: int
    exit_code: int | None  # None when a signal ended it
    signal: str | None  # e.g. "SIGTERM"
    ended_by: str | None  # the reason given to AttemptHost.end_attempt_after, if that ended it
    can_retry: bool  # False once the execution was canceled, timed out or is paused


@dataclass(frozen=True, slots=True)
class Retry:
    """Spawn again. ``argv`` ``None`` repeats the previous one; ``delay_s`` > 0 waits first."""

    reason: str
    delay_s: float = 0.0
    argv: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """Settle the execution now: ``completed`` if ``succeeded`` else ``failed``."""

    succeeded: bool
    reason: str | None = None


Decision = Retry | Finish | None


class AttemptHost(Protocol):
    """What an execution offers its policy."""

    @property
    def id(self) -> str: ...

    def emit(self, method: str, params: Mapping[str, object]) -> None:
        """Append a notification to the execution's event log (dropped once it is closed)."""

    def end_attempt_after(self, delay_s: float, reason: str) -> None:
        """End the running attempt (TERM, grace, KILL) unless it exits within ``delay_s``."""


class AttemptPolicy(Protocol):
    """Implemented by the scheduler; every method is called on the event loop, none may block."""

    def bind(self, host: AttemptHost) -> None: ...

    def attempt_started(self, attempt: int) -> None: ...

    def on_output(self, stream: Stream, data: bytes) -> None:
        """Every chunk read from a pipe: on the output hot path, keep it cheap."""

    def attempt_ended(self, end: AttemptEnd) -> Decision: ...

    def info(self) -> Mapping[str, object]:
        """Extra fields for ``status`` (e.g. ``session_id``, ``result``)."""
