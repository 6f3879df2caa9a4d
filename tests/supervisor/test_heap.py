"""The heap trimmer: freed heap goes back to the OS once the last process group has closed (and
its finished log has had time to spill), never while a group is still open, and at most one trim
per quiet spell."""

from __future__ import annotations

import asyncio

import pytest
from tests.polling import poll_until
from tests.supervisor.probes import WAIT_S

from cc_executor.supervisor import heap as heap_module
from cc_executor.supervisor.heap import HeapTrimmer, heap_trimmer
from cc_executor.supervisor.process import ProcessGroup

SHORT_DELAY_S = 0.01


@pytest.fixture
def trims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def fake_malloc_trim(pad: int) -> int:
        calls.append(pad)
        return 1

    monkeypatch.setattr(heap_module, "_MALLOC_TRIM", fake_malloc_trim)
    monkeypatch.setattr(heap_module, "HEAP_TRIM_DELAY_S", SHORT_DELAY_S)
    return calls


async def test_trims_once_after_the_last_group_closed_and_never_while_one_is_open(
    trims: list[int],
) -> None:
    trimmer = HeapTrimmer(asyncio.get_running_loop())
    trimmer.opened()
    trimmer.opened()
    trimmer.closed()  # one group still open
    first = trimmer._timer
    assert first is not None
    # The timer fires while a group is open: it looks again later instead of trimming.
    await poll_until(lambda: trimmer._timer is not first, timeout=WAIT_S, what="timer fired")
    assert trims == []
    assert trimmer._timer is not None
    trimmer.closed()
    await poll_until(lambda: trims == [0], timeout=WAIT_S, what="one trim")
    assert trimmer._timer is None  # nothing closed since: nothing scheduled, no second trim
    assert trimmer.trims == 1


async def test_a_spawned_group_that_closes_leads_to_a_trim(trims: list[int]) -> None:
    group = await ProcessGroup.spawn(
        ["true"],
        cwd=None,
        env={"PATH": "/usr/bin:/bin"},
        stdin=False,
        marker="trim-test",
        on_output=lambda _stream, _data: None,
    )
    async with asyncio.timeout(WAIT_S):
        await group.wait()
        await group.wait_output_closed()
    before = heap_trimmer().trims
    group.close()
    group.close()  # idempotent: counted once
    await poll_until(lambda: heap_trimmer().trims == before + 1, timeout=WAIT_S, what="trim")
    await poll_until(lambda: len(trims) >= 1, timeout=WAIT_S, what="malloc_trim called")
