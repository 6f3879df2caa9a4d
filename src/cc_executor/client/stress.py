"""Load test of a running daemon: ``cc-executor test stress --tasks N --parallel P``.

Owns running N executions of one command with P at a time and summarising them (latency to the
first output byte and to completion, throughput). Each of the P workers has its own connection
(so the daemon's per-connection limit is never what is measured) and runs its share of the tasks
one after another. It does not render anything: ``cli.stress_cmd`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cc_executor.client.client import WebSocketClient
from cc_executor.client.events import Completed, Output
from cc_executor.errors import CCExecutorError

__all__ = [
    "DEFAULT_STRESS_COMMAND",
    "PERCENTILES",
    "STRESS_TASK_TIMEOUT_S",
    "StressReport",
    "TaskSample",
    "percentile",
    "run_stress",
]

DEFAULT_STRESS_COMMAND = "echo cc-executor stress"
STRESS_TASK_TIMEOUT_S = 60.0  # the daemon-side limit of one task unless the caller gives one
TASK_WAIT_SLACK_S = 30.0  # beyond the task's own limit: the daemon's TERM grace and the KILL
PERCENTILES = (50, 90, 99)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (the smallest value with ``pct`` % at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class TaskSample:
    """One task: whether it succeeded, its latencies (seconds) and how many bytes it output."""

    index: int
    ok: bool
    first_byte_s: float | None
    total_s: float
    output_bytes: int
    status: str
    error: str | None = None


@dataclass
class StressReport:
    """Every sample of one run and the wall-clock time it took."""

    command: str
    tasks: int
    parallel: int
    wall_s: float = 0.0
    samples: list[TaskSample] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return sum(1 for s in self.samples if s.ok)

    @property
    def failed(self) -> int:
        return len(self.samples) - self.ok

    def latencies(self, which: str) -> dict[str, float | None]:
        """``{"p50": ..., "p90": ..., "p99": ...}`` of ``first_byte`` or ``total`` (ok tasks)."""
        values: list[float] = []
        for s in self.samples:
            value = s.first_byte_s if which == "first_byte" else s.total_s
            if s.ok and value is not None:
                values.append(value)
        return {f"p{p}": percentile(values, p) for p in PERCENTILES}

    @property
    def tasks_per_s(self) -> float:
        return len(self.samples) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def bytes_per_s(self) -> float:
        total = sum(s.output_bytes for s in self.samples)
        return total / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "tasks": self.tasks,
            "parallel": self.parallel,
            "ok": self.ok,
            "failed": self.failed,
            "wall_s": self.wall_s,
            "tasks_per_s": self.tasks_per_s,
            "bytes_per_s": self.bytes_per_s,
            "output_bytes": sum(s.output_bytes for s in self.samples),
            "first_byte_s": self.latencies("first_byte"),
            "completion_s": self.latencies("total"),
            "errors": [
                {"index": s.index, "status": s.status, "error": s.error}
                for s in self.samples
                if not s.ok
            ],
        }


async def _one_task(
    client: WebSocketClient,
    index: int,
    command: str,
    limit: float,
) -> TaskSample:
    started = time.perf_counter()
    first_byte: float | None = None
    size = 0
    status = "error"
    ok = False
    error: str | None = "the stream ended without process.completed"
    try:
        async with asyncio.timeout(limit + TASK_WAIT_SLACK_S):
            handle = await client.execute(command, timeout=limit, capture=False)
            async for event in handle:
                if isinstance(event, Output):
                    if first_byte is None:
                        first_byte = time.perf_counter() - started
                    size += len(event.data_bytes)
                elif isinstance(event, Completed):
                    status = event.status
                    ok = event.success
                    error = None if ok else f"{status}, exit code {event.exit_code}"
    except TimeoutError:
        ok, error = False, f"no completion within {limit + TASK_WAIT_SLACK_S}s"
    except CCExecutorError as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"
    total = time.perf_counter() - started
    return TaskSample(index, ok, first_byte, total, size, status, error)


async def run_stress(
    client_factory: Callable[[], WebSocketClient],
    *,
    tasks: int,
    parallel: int,
    command: str = DEFAULT_STRESS_COMMAND,
    task_timeout: float = STRESS_TASK_TIMEOUT_S,
    on_sample: Callable[[TaskSample], None] | None = None,
) -> StressReport:
    """Run ``tasks`` executions of ``command``, ``parallel`` at a time; ``on_sample`` per task.

    Connects every worker before the clock starts; a daemon that cannot be reached raises the
    client's error (:class:`~cc_executor.client.DaemonUnreachable`, ...). A task that fails is a
    sample with ``ok=False``, never an exception.
    """
    if tasks < 1 or parallel < 1:
        raise ValueError("tasks and parallel must be at least 1")
    report = StressReport(command, tasks, min(parallel, tasks))
    indexes = iter(range(tasks))

    async def worker(client: WebSocketClient) -> None:
        for index in indexes:  # shared: each index goes to exactly one worker
            sample = await _one_task(client, index, command, task_timeout)
            report.samples.append(sample)
            if on_sample is not None:
                on_sample(sample)

    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(client_factory()) for _ in range(report.parallel)
        ]
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for client in clients:
                group.create_task(worker(client))
        report.wall_s = time.perf_counter() - started
    report.samples.sort(key=lambda s: s.index)
    return report
