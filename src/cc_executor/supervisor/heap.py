"""Giving the heap pages freed by finished executions back to the OS (glibc ``malloc_trim``).

Owns: when to trim (after the last process group closed, and at most every
``HEAP_TRIM_MAX_DEFER_S`` under constant load) and running the trim in a worker thread. Does not
own: the process groups themselves (``process.py`` tells the trimmer when one opens and closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import weakref
from collections.abc import Callable
from typing import cast

from cc_executor.supervisor.looplocal import loop_local

__all__ = ["HEAP_TRIM_DELAY_S", "HEAP_TRIM_MAX_DEFER_S", "HeapTrimmer", "heap_trimmer"]

# Heap trimming (see HeapTrimmer): a finished execution's in-memory event log is freed when its log
# spills, CLOSED_SPILL_DELAY_S (1 s) after it closed; trimming waits a little longer than that.
HEAP_TRIM_DELAY_S = 2.0
HEAP_TRIM_MAX_DEFER_S = 30.0  # with groups running all the time, trim at least this often


def _load_malloc_trim() -> Callable[[int], int] | None:
    # glibc only; musl and others have no malloc_trim (their free() returns memory differently).
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast(Callable[[int], int], trim)


_MALLOC_TRIM = _load_malloc_trim()


class HeapTrimmer:
    """Gives the heap pages freed by finished executions back to the OS (glibc ``malloc_trim``).

    Streaming leaves the C heap fragmented: frames of up to 1 MiB are allocated and freed while
    small long-lived objects land between them, and glibc only returns memory from the top of
    the heap by itself. Measured (docs/benchmarks.md, round 6): 50 executions of 1 MB each, three
    times, left a process at 158 MB RSS; ``malloc_trim(0)`` brought it to 68 MB.

    A trim runs ``HEAP_TRIM_DELAY_S`` after the last process group closed (by then the finished
    logs have spilled and freed their memory), and only while no group is open, because it holds
    glibc's arena locks (~12 ms after a 90 MB burst) and a streaming loop would wait on its next
    large allocation;
    with groups open all the time, at most every ``HEAP_TRIM_MAX_DEFER_S``. It runs in a worker
    thread (ctypes releases the GIL).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weak: the trimmer is the value of a WeakKeyDictionary keyed by this very loop.
        self._loop_ref = weakref.ref(loop)
        self._open = 0
        self._timer: asyncio.TimerHandle | None = None
        self._wanted_since: float | None = None  # loop time of the oldest close not trimmed yet
        self._due_at = 0.0  # loop time HEAP_TRIM_DELAY_S after the newest close
        self.trims = 0  # trims started so far (tests read it)

    def opened(self) -> None:
        self._open += 1

    def closed(self) -> None:
        self._open -= 1
        loop = self._loop_ref()
        if _MALLOC_TRIM is None or loop is None or loop.is_closed():
            return
        now = loop.time()
        if self._wanted_since is None:
            self._wanted_since = now
        self._due_at = now + HEAP_TRIM_DELAY_S
        if self._timer is None:
            self._timer = loop.call_at(self._due_at, self._due)

    def _due(self) -> None:
        self._timer = None
        since = self._wanted_since
        loop = self._loop_ref()
        if since is None or loop is None:
            return
        now = loop.time()
        busy = self._open > 0 or now < self._due_at
        if busy and now - since < HEAP_TRIM_MAX_DEFER_S:
            # A group is open, or one closed since the timer was set: look again later.
            self._timer = loop.call_at(max(self._due_at, now + HEAP_TRIM_DELAY_S), self._due)
            return
        self._wanted_since = None
        self.trims += 1
        # RuntimeError: the loop is shutting down its default executor; nothing to keep then.
        with contextlib.suppress(RuntimeError):
            loop.run_in_executor(None, _trim_heap)


def _trim_heap() -> None:
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


heap_trimmer = loop_local(HeapTrimmer)
"""The running loop's :class:`HeapTrimmer`."""
