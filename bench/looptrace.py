"""What the daemon's event loop does during one request, on the client's clock.

Starts a daemon whose interpreter records, on ``CLOCK_MONOTONIC`` (shared by every process), each
callback the loop runs (``Handle._run``: the function, or the coroutine a task steps) and each
``select`` it enters and leaves, then runs a scenario from ``bench.py`` and prints the daemon's
marks of the last round relative to the client's send, between the client's own marks. Below the
resolution of a sampling profiler: this is how round 12 found the sweep's busy loop (a callback
run on every loop turn while a canceled tree died) and the loop turns around each spawn.

    python bench/looptrace.py cancel
    python bench/looptrace.py first_byte --rounds 20

The marks cost a few microseconds each: compare shapes and counts, not absolute times, with an
untraced run (``bench.py``, ``ab.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import bench

# Imported by the daemon's interpreter at start-up (``sitecustomize`` on its PYTHONPATH).
_HOOK = """
import asyncio.events, os, selectors, time

_fd = os.open(os.environ["CC_LOOPTRACE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def _mark(tag):
    os.write(_fd, b"%d %s\\n" % (time.monotonic_ns(), tag.encode()))


_run = asyncio.events.Handle._run


_WHERE = bool(os.environ.get("CC_LOOPTRACE_WHERE"))


def _resumes_at(coro):
    # The innermost coroutine the task is suspended in: where this step resumes.
    while getattr(coro, "cr_await", None) is not None and hasattr(coro.cr_await, "cr_frame"):
        coro = coro.cr_await
    frame = getattr(coro, "cr_frame", None)
    if frame is None:
        return ""
    return " @ %s:%d" % (frame.f_code.co_qualname, frame.f_lineno)


def _traced_run(self):
    callback = self._callback
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        _mark("task " + coro.__qualname__ + (_resumes_at(coro) if _WHERE else ""))
    else:
        _mark(getattr(callback, "__qualname__", type(callback).__name__))
    return _run(self)


asyncio.events.Handle._run = _traced_run
_select = selectors.EpollSelector.select


def _traced_select(self, timeout=None):
    _mark("select")
    ready = _select(self, timeout)
    _mark("select -> %d ready" % len(ready))
    return ready


selectors.EpollSelector.select = _traced_select


def _wrap(spec):
    import functools, importlib

    module, _, path = spec.partition(":")
    *outer, name = path.split(".")
    owner = importlib.import_module(module)
    for part in outer:
        owner = getattr(owner, part)
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def traced(*args, **kwargs):
        _mark(path + " >")
        try:
            return inner(*args, **kwargs)
        finally:
            _mark(path + " <")

    setattr(owner, name, traced)


for _spec in filter(None, os.environ.get("CC_LOOPTRACE_WRAP", "").split(",")):
    _wrap(_spec)
"""


async def _round(s: bench.Session, scenario: str) -> dict[str, int]:
    """One round; the client's marks (monotonic ns), ``send`` first."""
    if scenario == "cancel":
        started = await s.execute(bench.TREE)
        members = await bench._tree_up(started["pid"])
        marks = {"client: send": time.monotonic_ns()}
        await s.call("control", {"type": "CANCEL", "execution_id": started["execution_id"]})
        marks["client: response"] = time.monotonic_ns()
        await s.drain(started["execution_id"])
        marks["client: process.completed"] = time.monotonic_ns()
        await bench._until_gone(members)
        marks["client: tree gone"] = time.monotonic_ns()
        return marks
    await asyncio.sleep(0.003)  # as idle as bench.py's first byte
    marks = {"client: send": time.monotonic_ns()}
    started = await s.execute(["echo", "hi"])
    marks["client: response"] = time.monotonic_ns()
    await s.first_output(started["execution_id"])
    marks["client: first output"] = time.monotonic_ns()
    await s.drain(started["execution_id"])
    return marks


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("scenario", choices=("cancel", "first_byte"))
    parser.add_argument("--rounds", type=int, default=10, help="the last one is printed")
    parser.add_argument(
        "--where",
        action="store_true",
        help="name, for each task step, the function and line it resumes at",
    )
    parser.add_argument(
        "--wrap",
        action="append",
        default=[],
        metavar="MODULE:NAME",
        help="also mark entry and exit of this synchronous function or method, patched where"
        " it is looked up (e.g. cc_executor.supervisor.process:ProcessGroup.begin_terminate)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hook_dir = Path(tmp) / "hook"
        hook_dir.mkdir()
        (hook_dir / "sitecustomize.py").write_text(_HOOK)
        trace = Path(tmp) / "trace"
        path = os.pathsep.join(filter(None, [str(hook_dir), os.environ.get("PYTHONPATH")]))
        daemon = bench.Daemon(
            Path(tmp) / "d",
            extra_env={
                "PYTHONPATH": path,
                "CC_LOOPTRACE": str(trace),
                "CC_LOOPTRACE_WRAP": ",".join(args.wrap),
                "CC_LOOPTRACE_WHERE": "1" if args.where else "",
            },
        )
        try:
            s = await daemon.connect()
            for _ in range(args.rounds):
                trace.write_bytes(b"")
                client = await _round(s, args.scenario)
            await s.close()
        finally:
            daemon.stop()
        lines = trace.read_text().splitlines()
    marks = [(int(ns), tag) for ns, tag in (line.split(" ", 1) for line in lines)]
    marks += [(ns, tag) for tag, ns in client.items()]
    t0 = client["client: send"]
    for ns, tag in sorted(marks):
        print(f"{(ns - t0) / 1e6:8.3f} ms  {tag}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
