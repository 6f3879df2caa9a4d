"""What a durable task list is made of, and what its results are: no I/O but receipt files.

Owns the translation both ways between the Python API and ``task_list.create``:

- :func:`list_params`: the API's tasks (a prompt string, ``{"task": prompt, ...}`` or
  ``{"command": "...", ...}``) and keywords into validated :class:`TaskListCreateParams`. A
  Claude task's prompt is sent as the non-durable path sends it (amendment rules when asked, the
  receipt instruction with a fresh UUID); what the results need later (the task as written, the
  receipt UUID, ``generate_report``) rides in the task's ``metadata`` under :data:`META_KEY`, so
  a process that never saw the list (``resume`` after a crash) can build the same results.
- :func:`results_from_view`: a ``task_list.status`` view plus each task's last execution's
  events into one :class:`TaskResult` per task (the shape ``cc_execute_task_list`` always
  returns), as a :class:`TaskListResults` carrying the ``list_id``.

Does not own: running or waiting for the list (:mod:`cc_executor.api.durable`).
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid as uuid_module
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cc_executor.api import history
from cc_executor.api.amend import amend
from cc_executor.api.events import TaskEvent
from cc_executor.api.execute import build_config
from cc_executor.api.receipts import (
    marker_instruction,
    strip_marker,
    uuid_in,
    write_outcome_receipt,
)
from cc_executor.api.report import write_report
from cc_executor.api.result import TaskResult, outcome_from_events
from cc_executor.api.runners import AGENT_NAME
from cc_executor.config import Settings
from cc_executor.errors import InvalidParams
from cc_executor.protocol import TaskListCreateParams
from cc_executor.protocol.names import Notification

__all__ = [
    "FINISHED_LIST_STATES",
    "LIST_FIELDS",
    "META_KEY",
    "UNSUPPORTED_DURABLE",
    "TaskListResults",
    "list_params",
    "results_from_view",
]

META_KEY = "cc_executor_api"  # the task metadata the API writes at creation and reads back
LIST_FIELDS = ("retries", "on_failure", "depends_on")  # per-task keys the list itself handles
# Keywords that would run extra Claude processes outside the list (repair, judge, rewrite):
# a durable list runs exactly one process per task attempt, so they are refused, not ignored.
UNSUPPORTED_DURABLE = ("json_mode", "validation_prompt", "amend_with_claude")
FINISHED_LIST_STATES = frozenset({"completed", "failed", "canceled"})
EARLIER_FAILED = "an earlier task failed"  # the list's reason for tasks it never ran


class TaskListResults(list[TaskResult]):
    """One :class:`TaskResult` per task, in order; also the durable list's ``list_id``, its
    final ``state`` and its ``status`` view (attempts and execution ids of every task)."""

    def __init__(
        self, results: Iterable[TaskResult], *, list_id: str, state: str, status: dict[str, Any]
    ) -> None:
        super().__init__(results)
        self.list_id = list_id
        self.state = state
        self.status = status


def _spec(
    item: str | Mapping[str, Any],
    index: int,
    common: Mapping[str, Any],
    settings: Settings,
) -> dict[str, Any]:
    overrides = {"task": item} if isinstance(item, str) else dict(item)
    list_fields = {k: overrides.pop(k) for k in LIST_FIELDS if k in overrides}
    command = overrides.pop("command", None)
    task = overrides.pop("task", None)
    if (command is None) == (task is None) or not isinstance(command or task, str):
        raise InvalidParams(
            "a task is a prompt string or a mapping with either 'task' (a Claude prompt) or "
            "'command' (a shell command)",
            index=index,
        )
    kwargs = {**common, **overrides}
    refused = sorted(k for k in UNSUPPORTED_DURABLE if kwargs.pop(k, None))
    if refused:
        raise InvalidParams(
            f"{', '.join(refused)} cannot be used with durable=True: they run extra Claude "
            "processes outside the list",
            index=index,
            keywords=refused,
        )
    config = build_config(settings=settings, **kwargs)  # checks the Claude options
    spec: dict[str, Any] = {
        "timeout": config.timeout,
        "idle_timeout": config.idle_timeout,
        "cwd": config.cwd,
        "env": dict(config.env) or None,
        **list_fields,
    }
    if command is not None:
        spec["command"] = command
        meta: dict[str, Any] = {"task": command}
    else:
        assert isinstance(task, str)
        prompt, applied = task, tuple[str, ...]()
        if config.amend_prompt:
            amended = amend(task)
            prompt, applied = amended.prompt, amended.applied
        receipt = str(uuid_module.uuid4())
        spec["agent"] = AGENT_NAME
        spec["prompt"] = prompt + marker_instruction(receipt)
        spec["agent_options"] = config.options.model_dump(exclude_defaults=True) or None
        meta = {
            "task": task,
            "receipt_uuid": receipt,
            "amendments": list(applied),
            "generate_report": config.generate_report,
        }
    spec["metadata"] = {META_KEY: meta}
    return {k: v for k, v in spec.items() if v is not None}


def list_params(
    tasks: Sequence[str | Mapping[str, Any]],
    *,
    settings: Settings,
    on_failure: str,
    timeout_per_task: float | None,
    list_id: str | None,
    name: str | None,
    common: Mapping[str, Any],
) -> TaskListCreateParams:
    """The validated ``task_list.create`` params; ``InvalidParams`` before anything runs."""
    specs = [_spec(item, index, common, settings) for index, item in enumerate(tasks)]
    try:
        return TaskListCreateParams.model_validate(
            {
                "tasks": specs,
                "name": name,
                "timeout_per_task": timeout_per_task,
                "on_failure": on_failure,
                "list_id": list_id,
                "metadata": {META_KEY: {"durable": True}},
            }
        )
    except ValidationError as exc:
        raise InvalidParams(f"invalid durable task list: {exc}", list_id=list_id) from None


def _output(events: Iterable[TaskEvent], stream: str) -> str:
    data = bytearray()
    for event in events:
        if event.method != Notification.PROCESS_OUTPUT or event.get("type") != stream:
            continue
        piece = event.text("data")
        if event.get("encoding") == "base64":
            try:
                data += base64.b64decode(piece)
            except (binascii.Error, ValueError):
                continue
        else:
            data += piece.encode()
    return data.decode(errors="replace")


def _completed(events: Sequence[TaskEvent]) -> TaskEvent | None:
    return next((e for e in reversed(events) if e.method == Notification.PROCESS_COMPLETED), None)


def _not_run(row: Mapping[str, Any], task: str, prompt: str) -> TaskResult:
    state = str(row.get("state"))
    error = row.get("error") if isinstance(row.get("error"), str) else None
    if state == "canceled" and error == EARLIER_FAILED:
        state = "skipped"  # what the non-durable path calls a task after a failure
    return TaskResult(
        task=task,
        prompt=prompt,
        execution_id="",
        state=state,
        success=False,
        text="",
        is_error=state != "skipped",
        error=error,
        started_at=row.get("started_at"),
        ended_at=row.get("ended_at"),
    )


def _command_result(
    row: Mapping[str, Any], task: str, execution_id: str, events: Sequence[TaskEvent]
) -> TaskResult:
    completed = _completed(events)
    state = completed.text("status") if completed is not None else str(row.get("state"))
    exit_code = completed.get("exit_code") if completed is not None else row.get("exit_code")
    success = state == "completed" and exit_code == 0
    stderr = _output(events, "stderr")
    error = None if success else (stderr.strip() or row.get("error") or state)
    execution_time = completed.get("execution_time") if completed is not None else None
    return TaskResult(
        task=task,
        prompt=task,
        execution_id=execution_id,
        state=state,
        success=success,
        text=_output(events, "stdout"),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        is_error=not success,
        error=str(error) if error is not None else None,
        execution_time=float(execution_time) if isinstance(execution_time, int | float) else None,
        started_at=row.get("started_at"),
        ended_at=row.get("ended_at"),
        events=tuple(events),
    )


def _claude_result(
    row: Mapping[str, Any],
    meta: Mapping[str, Any],
    execution_id: str,
    events: Sequence[TaskEvent],
    reports_dir: Path,
) -> TaskResult:
    spec = row.get("spec") or {}
    sent = str(spec.get("prompt") or "")
    task = str(meta.get("task") or sent)
    receipt_uuid = meta.get("receipt_uuid") if isinstance(meta.get("receipt_uuid"), str) else None
    outcome = outcome_from_events(execution_id, events)
    found = receipt_uuid is not None and uuid_in(outcome.assistant_texts(), receipt_uuid)
    receipt_path: str | None = None
    if receipt_uuid is not None:
        env = spec.get("env") or {}
        receipt_path = str(
            write_outcome_receipt(
                outcome,
                prompt=sent,
                receipt_uuid=receipt_uuid,
                cwd=spec.get("cwd"),
                home=env.get("HOME") or os.environ.get("HOME"),
                reports_dir=reports_dir,
            )
        )
    text = strip_marker(outcome.text, receipt_uuid) if receipt_uuid else outcome.text
    result = TaskResult(
        **{**outcome.result_fields(), "execution_id": execution_id},
        task=task,
        prompt=sent,
        success=outcome.success,
        text=text,
        error=outcome.error,
        started_at=row.get("started_at"),
        ended_at=row.get("ended_at"),
        uuid=receipt_uuid,
        uuid_found=found,
        receipt_path=receipt_path,
        amendments=tuple(str(a) for a in meta.get("amendments") or ()),
    )
    if meta.get("generate_report"):
        result = replace(result, report_path=str(write_report(result, reports_dir)))
    return result


def results_from_view(
    view: Mapping[str, Any],
    events: Mapping[str, Sequence[TaskEvent]],
    *,
    reports_dir: Path,
) -> TaskListResults:
    """One result per task of ``view`` (``task_list.status``); ``events`` maps each task's last
    execution id to that execution's events. Results are recorded for ``verify_execution``."""
    results: list[TaskResult] = []
    for row in view.get("tasks") or ():
        spec = row.get("spec") or {}
        meta = (spec.get("metadata") or {}).get(META_KEY) or {}
        prompt = str(spec.get("prompt") or spec.get("command") or " ".join(spec.get("argv") or ()))
        task = str(meta.get("task") or prompt)
        execution_id = row.get("execution_id")
        if not isinstance(execution_id, str):
            results.append(_not_run(row, task, prompt))
            continue
        task_events = events.get(execution_id, ())
        if spec.get("agent") is not None:
            result = _claude_result(row, meta, execution_id, task_events, reports_dir)
        else:
            result = _command_result(row, task, execution_id, task_events)
        history.record(result)
        results.append(result)
    return TaskListResults(
        results,
        list_id=str(view.get("list_id")),
        state=str(view.get("state")),
        status=dict(view),
    )
