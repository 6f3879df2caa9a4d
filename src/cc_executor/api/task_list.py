"""``cc_execute_list`` / ``cc_execute_task_list``: tasks one after another, each in a fresh
Claude process (fresh context), sharing one runner (one supervisor, or one daemon connection).

A task is a string, or a mapping with ``"task"`` and any ``cc_execute`` keyword for that task
alone (``{"task": "...", "timeout": 600, "json_mode": True}``). A task failed when its result
is not ``success`` (including a JSON-mode answer that stayed unparseable, and errors such as
the Claude CLI missing); ``on_failure="stop"`` marks the rest ``skipped``, ``"continue"`` runs
them anyway. One result per task, in order.

With ``durable=True`` the list is a durable task list instead (:mod:`cc_executor.api.durable`):
stored, resumable after a crash, same results.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from loguru import logger

from cc_executor.api.events import TaskEvent
from cc_executor.api.execute import (
    ProgressCallback,
    _notify,
    build_config,
    build_runner,
    run_sync,
    settings_or_default,
)
from cc_executor.api.result import TaskResult
from cc_executor.api.runners import Runner
from cc_executor.api.task import Done, run_task
from cc_executor.config import Settings
from cc_executor.errors import CCExecutorError, InvalidParams

__all__ = ["OnFailure", "TaskItem", "acc_execute_list", "cc_execute_list", "cc_execute_task_list"]

OnFailure = Literal["stop", "continue"]
TaskItem = str | Mapping[str, Any]


def _split(item: TaskItem) -> tuple[str, dict[str, Any]]:
    if isinstance(item, str):
        return item, {}
    overrides = dict(item)
    task = overrides.pop("task", None)
    if not isinstance(task, str):
        raise InvalidParams("a task mapping needs a 'task' string", keys=sorted(item))
    return task, overrides


def _failed(task: str, error: str) -> TaskResult:
    now = time.time()
    return TaskResult(
        task=task,
        prompt="",
        execution_id="",
        state="failed",
        success=False,
        text="",
        is_error=True,
        error=error,
        started_at=now,
        ended_at=now,
    )


def _skipped(task: str, index: int) -> TaskResult:
    return TaskResult(
        task=task,
        prompt="",
        execution_id="",
        state="skipped",
        success=False,
        text="",
        error=f"skipped: task {index + 1} failed and on_failure='stop'",
    )


async def _one(
    task: str,
    kwargs: dict[str, Any],
    settings: Settings,
    runner: Runner,
    callback: ProgressCallback | None,
) -> TaskResult:
    try:
        config = build_config(settings=settings, **kwargs)
        done: Done | None = None
        async for item in run_task(task, config, runner):
            if isinstance(item, TaskEvent):
                await _notify(callback, item)
            else:
                done = item
    except CCExecutorError as exc:
        logger.warning("task failed before it ran: {}", exc)
        return _failed(task, f"{type(exc).__name__}: {exc}")
    assert done is not None, "run_task always ends with Done"
    return done.result


async def acc_execute_list(
    tasks: Sequence[TaskItem],
    *,
    on_failure: OnFailure = "stop",
    timeout_per_task: float | None = None,
    progress_callback: ProgressCallback | None = None,
    server_url: str | None = None,
    settings: Settings | None = None,
    runner: Runner | None = None,
    token: str | None = None,
    reports_dir: str | Path | None = None,
    durable: bool = False,
    list_id: str | None = None,
    name: str | None = None,
    wait_timeout: float | None = None,
    **common: Any,
) -> list[TaskResult]:
    """Run ``tasks`` in order, each in a fresh Claude process; one :class:`TaskResult` each.

    ``common`` keywords (``json_mode``, ``model``, ``cwd``, ``generate_report``, Claude options,
    ...) apply to every task; a task mapping overrides them for that task. The timeout of a task
    is its own ``timeout``, else ``timeout_per_task``.

    ``durable=True``: the list is a durable task list in the store (embedded) or on the daemon
    (``server_url``) and survives this process; a task mapping may then be ``{"command": ...}``
    (a shell command) and carry ``retries``, ``on_failure`` and ``depends_on``. The result is a
    :class:`~cc_executor.api.durable_tasks.TaskListResults` (``.list_id``); an interrupted list
    is finished by :func:`~cc_executor.api.durable.resume`. ``list_id`` and ``name`` name the
    list; ``wait_timeout`` bounds the wait (the list goes on). See ``docs/python-api.md``.
    """
    if on_failure not in ("stop", "continue"):
        raise InvalidParams("on_failure must be 'stop' or 'continue'", on_failure=on_failure)
    if durable:
        from cc_executor.api.durable import run_durable_list

        return await run_durable_list(
            tasks,
            settings=settings_or_default(settings),
            on_failure=on_failure,
            timeout_per_task=timeout_per_task,
            progress_callback=progress_callback,
            server_url=server_url,
            runner=runner,
            token=token,
            reports_dir=reports_dir,
            list_id=list_id,
            name=name,
            wait_timeout=wait_timeout,
            common=common,
        )
    if list_id is not None or name is not None or wait_timeout is not None:
        raise InvalidParams("list_id, name and wait_timeout need durable=True")
    parsed = [_split(item) for item in tasks]
    configured = settings_or_default(settings)
    chosen = runner if runner is not None else build_runner(configured, server_url, token)
    results: list[TaskResult] = []
    async with chosen:
        for index, (task, overrides) in enumerate(parsed):
            if results and on_failure == "stop" and not results[-1].success:
                failed_at = next(i for i, r in enumerate(results) if not r.success)
                results.append(_skipped(task, failed_at))
                continue
            kwargs: dict[str, Any] = {"timeout": timeout_per_task, **common, **overrides}
            if reports_dir is not None:
                kwargs.setdefault("reports_dir", reports_dir)
            logger.info("task {}/{}: starting", index + 1, len(parsed))
            results.append(await _one(task, kwargs, configured, chosen, progress_callback))
    return results


def cc_execute_list(
    tasks: Sequence[TaskItem],
    *,
    on_failure: OnFailure = "stop",
    timeout_per_task: float | None = None,
    progress_callback: ProgressCallback | None = None,
    server_url: str | None = None,
    durable: bool = False,
    **common: Any,
) -> list[TaskResult]:
    """Blocking :func:`acc_execute_list` (same keywords)."""
    return run_sync(
        acc_execute_list(
            tasks,
            on_failure=on_failure,
            timeout_per_task=timeout_per_task,
            progress_callback=progress_callback,
            server_url=server_url,
            durable=durable,
            **common,
        ),
        "cc_execute_list",
        "acc_execute_list",
    )


cc_execute_task_list = cc_execute_list  # the earlier CC Executor's name
