"""The earlier CC Executor's import path for the task API: ``from cc_executor.client.cc_execute
import cc_execute``. Everything here is :mod:`cc_executor.api`; nothing is defined twice."""

from __future__ import annotations

from cc_executor.api import (
    JSONModeError,
    TaskResult,
    acc_execute,
    acc_execute_list,
    cc_execute,
    cc_execute_list,
    cc_execute_task_list,
    export_execution_history,
    verify_execution,
)

__all__ = [
    "JSONModeError",
    "TaskResult",
    "acc_execute",
    "acc_execute_list",
    "cc_execute",
    "cc_execute_list",
    "cc_execute_task_list",
    "export_execution_history",
    "verify_execution",
]
