"""Retry arithmetic: backoff waits (tenacity), usage-limit waits, the adaptive prompt.

Pure functions and frozen configs; no I/O, no clocks of their own (``now`` is passed in). The
waiting itself happens in the supervisor (a bounded, cancellable wait in ``waiting_for_limit``);
this module only says *how long* and *with what prompt*.

Backoff uses tenacity's ``wait_exponential_jitter`` (not hand-written math): attempt ``n`` waits
``min_wait_s * 2**(n-1)`` plus up to ``min_wait_s`` of random jitter, capped at ``max_wait_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "CONCISE_INSTRUCTION",
    "USAGE_LIMIT_RESET_MARGIN_S",
    "USAGE_LIMIT_UNKNOWN_RESET_WAIT_S",
    "BackoffConfig",
    "backoff_wait",
    "concise_prompt",
    "usage_limit_wait",
]

USAGE_LIMIT_RESET_MARGIN_S = 1.0  # run a little after the announced reset, not on the dot
USAGE_LIMIT_UNKNOWN_RESET_WAIT_S = 15 * 60.0  # the message named no reset time we could read

# Appended to the caller's prompt after an output-token-limit failure (the whole prompt stays).
CONCISE_INSTRUCTION = (
    "Note from the executor (retry {number} of {total}): your previous answer to this request "
    "was cut off at the output token limit. Answer more concisely this time. If the task is "
    "too large for one answer, do the first part only and end with a short list of what remains."
)


@dataclass(frozen=True, slots=True)
class BackoffConfig:
    """How often and how long to retry rate limits and overloads."""

    attempts: int = 5  # total attempts, the first included
    min_wait_s: float = 5.0
    max_wait_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.min_wait_s < 0 or self.max_wait_s < 0:
            raise ValueError("attempts must be >= 1 and waits >= 0")


def backoff_wait(retry_number: int, config: BackoffConfig) -> float:
    """Seconds to wait before retry ``retry_number`` (1 = the first retry), jittered and capped."""
    if retry_number < 1:
        raise ValueError("retry_number counts from 1")
    # Imported here: only a retry needs it, and an idle daemon is 0.4 MB lighter without it.
    from tenacity import RetryCallState, Retrying, wait_exponential_jitter

    strategy = wait_exponential_jitter(
        multiplier=config.min_wait_s,
        max=max(config.max_wait_s, config.min_wait_s),
        jitter=config.min_wait_s,
    )
    # tenacity's wait strategies read only the attempt number of the call state.
    state = RetryCallState(Retrying(), None, (), {})
    state.attempt_number = retry_number
    return float(strategy(state))


def usage_limit_wait(
    resets_at: datetime | None, *, now: datetime, max_wait_s: float
) -> float | None:
    """Seconds to wait for a usage limit to reset; ``None`` when that is beyond ``max_wait_s``."""
    if resets_at is None:
        wait = USAGE_LIMIT_UNKNOWN_RESET_WAIT_S
    else:
        wait = max(0.0, (resets_at - now).total_seconds()) + USAGE_LIMIT_RESET_MARGIN_S
    if wait > max_wait_s:
        return None if resets_at is not None else max_wait_s
    return wait


def concise_prompt(prompt: str, number: int, total: int) -> str:
    """The caller's prompt plus the request for a shorter answer (retry ``number`` of ``total``)."""
    return f"{prompt}\n\n{CONCISE_INSTRUCTION.format(number=number, total=total)}"
