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
"""

from __future__ import annotations

from cc_executor.api.amend import RULES as AMEND_RULES
from cc_executor.api.amend import Amended, AmendRule, amend
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
