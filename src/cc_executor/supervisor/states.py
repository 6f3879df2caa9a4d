"""The execution state machine: the states, the one table of allowed transitions, and its check.

Owns: which state may follow which. Does not own: what a transition does (signals, events), which
lives in :mod:`cc_executor.supervisor.execution`. Every pause/resume/cancel/timeout race is decided
here by looking the pair up in :data:`TRANSITIONS`; an illegal pair raises
:class:`~cc_executor.errors.InvalidTransition` (-32004) with ``{execution_id, state, requested}``.

To add a state (``lost``), add it to the enum and give it a row in the table; nothing else
changes.

``waiting_for_limit`` is an execution between two attempts of an agent run (no process exists):
it waits out a usage limit or a rate-limit backoff, then runs again. CANCEL ends it at once;
PAUSE is refused (there is nothing to stop) and so is RESUME (it is not paused).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from cc_executor.errors import InvalidTransition

__all__ = [
    "TERMINAL_STATES",
    "TRANSITIONS",
    "ExecutionState",
    "check_transition",
    "invalid_transition",
    "is_terminal",
]


class ExecutionState(StrEnum):
    """Where an execution is in its life; the values are the wire names."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELED = "canceled"
    WAITING_FOR_LIMIT = "waiting_for_limit"


_S = ExecutionState

TRANSITIONS: Mapping[ExecutionState, frozenset[ExecutionState]] = MappingProxyType(
    {
        # pending: spawning. It can fail to spawn, or be canceled (shutdown) while spawning.
        _S.PENDING: frozenset({_S.RUNNING, _S.FAILED, _S.CANCELED}),
        _S.RUNNING: frozenset(
            {_S.PAUSED, _S.WAITING_FOR_LIMIT, _S.COMPLETED, _S.FAILED, _S.TIMEOUT, _S.CANCELED}
        ),
        # paused: the group may still exit (killed from outside, or continued by someone else),
        # and the wall-clock timeout may fire when it counts paused time.
        _S.PAUSED: frozenset({_S.RUNNING, _S.COMPLETED, _S.FAILED, _S.TIMEOUT, _S.CANCELED}),
        # waiting_for_limit: between attempts; the next attempt starts (running), or it is canceled,
        # or the next spawn fails (failed).
        _S.WAITING_FOR_LIMIT: frozenset({_S.RUNNING, _S.FAILED, _S.CANCELED}),
        _S.COMPLETED: frozenset(),
        _S.FAILED: frozenset(),
        _S.TIMEOUT: frozenset(),
        _S.CANCELED: frozenset(),
    }
)

TERMINAL_STATES: frozenset[ExecutionState] = frozenset(
    s for s, nxt in TRANSITIONS.items() if not nxt
)


def is_terminal(state: ExecutionState) -> bool:
    """True when nothing may follow ``state``."""
    return state in TERMINAL_STATES


def check_transition(
    current: ExecutionState,
    target: ExecutionState,
    *,
    execution_id: str,
    requested: str | None = None,
) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> target`` is in :data:`TRANSITIONS`.

    ``requested`` names what the caller asked for in the error (``"RESUME"``, ``"CANCEL"``);
    it defaults to the target state's name.
    """
    if target in TRANSITIONS[current]:
        return
    raise invalid_transition(
        current, requested if requested is not None else target.value, execution_id=execution_id
    )


def invalid_transition(
    current: ExecutionState, asked: str, *, execution_id: str
) -> InvalidTransition:
    """The error for asking ``asked`` (``"RESUME"``, a state) of an execution in ``current``."""
    if current in TERMINAL_STATES:
        why = f"the execution has already finished ({current.value})"
    else:
        why = f"the execution is {current.value}"
    return InvalidTransition(
        f"cannot {asked} execution {execution_id}: {why}",
        execution_id=execution_id,
        state=current.value,
        requested=asked,
    )
