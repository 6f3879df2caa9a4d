"""Backoff waits (tenacity), usage-limit waits and the adaptive prompt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cc_executor.scheduler import BackoffConfig, backoff_wait, concise_prompt, usage_limit_wait
from cc_executor.scheduler.retry import USAGE_LIMIT_RESET_MARGIN_S, USAGE_LIMIT_UNKNOWN_RESET_WAIT_S

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    config = BackoffConfig(attempts=5, min_wait_s=5, max_wait_s=60)
    for _ in range(50):
        waits = [backoff_wait(n, config) for n in range(1, 6)]
        assert 5 <= waits[0] <= 10
        assert 10 <= waits[1] <= 15
        assert 20 <= waits[2] <= 25
        assert all(w <= 60 for w in waits)
        assert waits[4] == 60


def test_backoff_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="counts from 1"):
        backoff_wait(0, BackoffConfig())
    with pytest.raises(ValueError, match="attempts"):
        BackoffConfig(attempts=0)


def test_usage_limit_wait() -> None:
    soon = NOW + timedelta(seconds=30)
    assert usage_limit_wait(soon, now=NOW, max_wait_s=60) == 30 + USAGE_LIMIT_RESET_MARGIN_S
    assert usage_limit_wait(NOW - timedelta(seconds=5), now=NOW, max_wait_s=60) == (
        USAGE_LIMIT_RESET_MARGIN_S
    )
    assert usage_limit_wait(NOW + timedelta(hours=7), now=NOW, max_wait_s=3600) is None
    assert usage_limit_wait(None, now=NOW, max_wait_s=10) == 10
    assert usage_limit_wait(None, now=NOW, max_wait_s=10**6) == USAGE_LIMIT_UNKNOWN_RESET_WAIT_S


def test_concise_prompt_keeps_the_prompt() -> None:
    amended = concise_prompt("do X", 1, 2)
    assert amended.startswith("do X\n\n")
    assert "retry 1 of 2" in amended
    assert "more concisely" in amended
