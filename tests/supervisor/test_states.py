"""The state table: every legal pair passes, every illegal pair raises InvalidTransition."""

from __future__ import annotations

import itertools

import pytest

from cc_executor.errors import InvalidTransition
from cc_executor.supervisor.states import (
    TERMINAL_STATES,
    TRANSITIONS,
    ExecutionState,
    check_transition,
    is_terminal,
)

S = ExecutionState
ALL_PAIRS = list(itertools.product(S, S))
LEGAL = [(a, b) for a, b in ALL_PAIRS if b in TRANSITIONS[a]]
ILLEGAL = [(a, b) for a, b in ALL_PAIRS if b not in TRANSITIONS[a]]


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(S)


def test_terminal_states() -> None:
    assert {S.COMPLETED, S.FAILED, S.TIMEOUT, S.CANCELED} == TERMINAL_STATES
    assert all(is_terminal(s) == (s in TERMINAL_STATES) for s in S)


@pytest.mark.parametrize(("current", "target"), LEGAL)
def test_legal_transitions_pass(current: S, target: S) -> None:
    check_transition(current, target, execution_id="e1")


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_transitions_raise(current: S, target: S) -> None:
    with pytest.raises(InvalidTransition) as info:
        check_transition(current, target, execution_id="e1")
    assert info.value.code == -32004
    assert info.value.data == {"execution_id": "e1", "state": current.value, "requested": target}


@pytest.mark.parametrize("finished", sorted(TERMINAL_STATES))
def test_cancel_of_a_finished_execution_is_illegal(finished: S) -> None:
    with pytest.raises(InvalidTransition, match="already finished"):
        check_transition(finished, S.CANCELED, execution_id="e1", requested="CANCEL")


def test_resume_of_a_running_execution_is_illegal() -> None:
    with pytest.raises(InvalidTransition) as info:
        check_transition(S.RUNNING, S.RUNNING, execution_id="e1", requested="RESUME")
    assert info.value.data["requested"] == "RESUME"
    assert info.value.data["state"] == "running"


def test_pause_twice_is_illegal() -> None:
    with pytest.raises(InvalidTransition):
        check_transition(S.PAUSED, S.PAUSED, execution_id="e1")
