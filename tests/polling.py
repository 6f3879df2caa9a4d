"""Bounded polling for OS states that have no notification (a process's run state, its exit
when it is not our child). Events that *can* be awaited are awaited, never polled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

POLL_INTERVAL_S = 0.01  # fine enough for tests, coarse enough not to busy-spin


async def poll_until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Return once ``predicate()`` holds; fail the test with ``what`` after ``timeout`` s."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(POLL_INTERVAL_S)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


async def poll_until_async(
    predicate: Callable[[], Awaitable[bool]], *, timeout: float, what: str
) -> None:
    """:func:`poll_until` for a state only an await can read (a store row, a status call)."""
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(POLL_INTERVAL_S)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None
