"""Observing executions and processes in supervisor tests: every wait is bounded, none sleeps
for a fixed time (OS states without a notification are polled with a short bounded loop)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import orjson
import psutil
from tests.polling import poll_until

from cc_executor.supervisor import Execution
from cc_executor.supervisor.procfs import find_marked_processes

WAIT_S = 10.0  # generous bound for CI; tests finish in far less
POLL_S = 0.01  # only for OS states that have no notification (process run state)


def messages(execution: Execution) -> list[dict[str, Any]]:
    """Every retained event of the execution, decoded."""
    decoded: list[dict[str, Any]] = []
    for item in execution.log.events_after(0):
        assert not hasattr(item, "from_seq"), f"unexpected gap {item}"
        decoded.append(orjson.loads(item.frame))  # type: ignore[union-attr]
    return decoded


def methods(execution: Execution) -> list[str]:
    return [m["method"] for m in messages(execution)]


def piece_bytes(params: dict[str, Any]) -> bytes:
    data: str = params["data"]
    return base64.b64decode(data) if params.get("encoding") == "base64" else data.encode()


def output(execution: Execution, stream: str = "stdout") -> bytes:
    return b"".join(
        piece_bytes(m["params"])
        for m in messages(execution)
        if m["method"] == "process.output" and m["params"]["type"] == stream
    )


def completion(execution: Execution) -> dict[str, Any]:
    last = messages(execution)[-1]
    assert last["method"] == "process.completed"
    params: dict[str, Any] = last["params"]
    return params


async def finished(execution: Execution, within: float = WAIT_S) -> dict[str, Any]:
    """Wait for the execution to finish; return its ``process.completed`` params."""
    await execution.wait(within)
    return completion(execution)


async def wait_for_output(execution: Execution, needle: bytes, within: float = WAIT_S) -> bytes:
    """Follow the log until stdout contains ``needle``; returns stdout so far."""
    seen = b""
    async with asyncio.timeout(within):
        async for item in execution.log.follow(0):
            message = orjson.loads(item.frame)  # type: ignore[union-attr]
            params = message["params"]
            if message["method"] == "process.output" and params["type"] == "stdout":
                seen += piece_bytes(params)
                if needle in seen:
                    return seen
    raise AssertionError(f"{needle!r} never appeared; stdout was {seen[-500:]!r}")


def pids(stdout: bytes, role: str) -> list[int]:
    """Pids reported by tests/programs/tree.py as ``<role> <pid>`` lines."""
    return [
        int(line.split()[1]) for line in stdout.decode().splitlines() if line.startswith(role + " ")
    ]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie is dead: it runs no code and holds no pipe)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def status(pid: int) -> str:
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return "gone"


def marked_alive(execution_id: str) -> list[int]:
    """Live processes that still carry the execution's environment marker."""
    return [p.pid for p in find_marked_processes(execution_id) if alive(p.pid)]


async def eventually(predicate: Callable[[], bool], what: str, within: float = WAIT_S) -> None:
    """Bounded poll for an OS state with no notification (e.g. a process being stopped)."""
    await poll_until(predicate, timeout=within, what=what)
