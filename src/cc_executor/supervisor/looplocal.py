"""One object per running event loop (futures and timers belong to one loop)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TypeVar

__all__ = ["loop_local"]

T = TypeVar("T")


def loop_local(factory: Callable[[asyncio.AbstractEventLoop], T]) -> Callable[[], T]:
    """A getter returning the running loop's instance, made by ``factory(loop)`` on first use.

    Instances die with their loop (weak keys), so tests that each run their own loop start fresh.
    """
    instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get() -> T:
        loop = asyncio.get_running_loop()
        found = instances.get(loop)
        if found is None:
            found = instances[loop] = factory(loop)
        return found

    return get
