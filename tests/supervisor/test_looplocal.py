"""loop_local: one instance per running loop, made on first use."""

from __future__ import annotations

import asyncio

import pytest

from cc_executor.supervisor.looplocal import loop_local


def test_one_instance_per_loop_made_on_first_use() -> None:
    made: list[asyncio.AbstractEventLoop] = []

    def make(loop: asyncio.AbstractEventLoop) -> object:
        made.append(loop)
        return object()

    get = loop_local(make)

    async def twice() -> tuple[object, object]:
        return get(), get()

    first_a, first_b = asyncio.run(twice())
    second_a, _ = asyncio.run(twice())
    assert first_a is first_b  # the same loop: the same instance
    assert second_a is not first_a  # a new loop: a new one
    assert len(made) == 2


def test_outside_a_running_loop_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        loop_local(lambda loop: object())()
