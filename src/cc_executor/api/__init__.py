"""The Python task API: run Claude Code tasks from Python, in-process or through a daemon.

::

    from cc_executor import cc_execute, cc_execute_task_list

    result = cc_execute("What is 2+2?", dangerously_skip_permissions=True)
    answer, cost, echoed = result.text, result.cost_usd, result.uuid_found

    results = cc_execute_task_list(["Create app.py", "Write tests for app.py"])

    results = cc_execute_task_list(tasks, durable=True)  # stored; survives this process
    results = resume(results.list_id)  # after a crash: finish it

Each task runs in a fresh Claude process (fresh context), on an embedded supervisor by default
or on a daemon with ``server_url=``. See ``docs/python-api.md``.

Loaded on first use (as the package root does): the daemon imports ``cc_executor.api.events``
for its receipt hook, and importing this package's every module with it would bring the client
and its websockets stack into an idle daemon (1.4 MB of its RSS).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Eager, and first: ``amend`` names both a submodule and its function. Loading the submodule binds
# the module to this package's ``amend``; the function must be bound after that, not before
# (a lazy lookup would find the module once anything had imported it). It imports nothing heavy.
from cc_executor.api.amend import RULES as AMEND_RULES
from cc_executor.api.amend import Amended, AmendRule, amend

if TYPE_CHECKING:
    from cc_executor.api.audit import export_execution_history, verify_execution
    from cc_executor.api.durable import aresume, resume
    from cc_executor.api.durable_tasks import TaskListResults
    from cc_executor.api.events import TaskEvent
    from cc_executor.api.execute import ProgressCallback, TaskStream, acc_execute, cc_execute
    from cc_executor.api.history import clear_history
    from cc_executor.api.json_mode import JSONModeError, parse_json_answer
    from cc_executor.api.receipts import Check, Receipt, Verification
    from cc_executor.api.result import RunOutcome, TaskResult, Validation
    from cc_executor.api.runners import DaemonRunner, EmbeddedRunner, Runner, RunRequest
    from cc_executor.api.task_list import (
        OnFailure,
        TaskItem,
        acc_execute_list,
        cc_execute_list,
        cc_execute_task_list,
    )

__all__ = [
    "AMEND_RULES",
    "AmendRule",
    "Amended",
    "Check",
    "DaemonRunner",
    "EmbeddedRunner",
    "JSONModeError",
    "OnFailure",
    "ProgressCallback",
    "Receipt",
    "RunOutcome",
    "RunRequest",
    "Runner",
    "TaskEvent",
    "TaskItem",
    "TaskListResults",
    "TaskResult",
    "TaskStream",
    "Validation",
    "Verification",
    "acc_execute",
    "acc_execute_list",
    "amend",
    "aresume",
    "cc_execute",
    "cc_execute_list",
    "cc_execute_task_list",
    "clear_history",
    "export_execution_history",
    "parse_json_answer",
    "resume",
    "verify_execution",
]

# public name -> (module, name in it)
_LAZY: dict[str, tuple[str, str]] = {
    "Check": ("cc_executor.api.receipts", "Check"),
    "DaemonRunner": ("cc_executor.api.runners", "DaemonRunner"),
    "EmbeddedRunner": ("cc_executor.api.runners", "EmbeddedRunner"),
    "JSONModeError": ("cc_executor.api.json_mode", "JSONModeError"),
    "OnFailure": ("cc_executor.api.task_list", "OnFailure"),
    "ProgressCallback": ("cc_executor.api.execute", "ProgressCallback"),
    "Receipt": ("cc_executor.api.receipts", "Receipt"),
    "RunOutcome": ("cc_executor.api.result", "RunOutcome"),
    "RunRequest": ("cc_executor.api.runners", "RunRequest"),
    "Runner": ("cc_executor.api.runners", "Runner"),
    "TaskEvent": ("cc_executor.api.events", "TaskEvent"),
    "TaskItem": ("cc_executor.api.task_list", "TaskItem"),
    "TaskListResults": ("cc_executor.api.durable_tasks", "TaskListResults"),
    "TaskResult": ("cc_executor.api.result", "TaskResult"),
    "TaskStream": ("cc_executor.api.execute", "TaskStream"),
    "Validation": ("cc_executor.api.result", "Validation"),
    "Verification": ("cc_executor.api.receipts", "Verification"),
    "acc_execute": ("cc_executor.api.execute", "acc_execute"),
    "acc_execute_list": ("cc_executor.api.task_list", "acc_execute_list"),
    "aresume": ("cc_executor.api.durable", "aresume"),
    "cc_execute": ("cc_executor.api.execute", "cc_execute"),
    "cc_execute_list": ("cc_executor.api.task_list", "cc_execute_list"),
    "cc_execute_task_list": ("cc_executor.api.task_list", "cc_execute_task_list"),
    "clear_history": ("cc_executor.api.history", "clear_history"),
    "export_execution_history": ("cc_executor.api.audit", "export_execution_history"),
    "parse_json_answer": ("cc_executor.api.json_mode", "parse_json_answer"),
    "resume": ("cc_executor.api.durable", "resume"),
    "verify_execution": ("cc_executor.api.audit", "verify_execution"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'cc_executor.api' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
