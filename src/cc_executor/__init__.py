"""cc-executor: run Claude Code and plain commands as supervised, observable, stoppable jobs.

The task API is importable from here (``from cc_executor import cc_execute``); it is loaded on
first use, so ``import cc_executor`` stays light for the CLI and the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "__version__",
    "acc_execute",
    "aresume",
    "cc_execute",
    "cc_execute_list",
    "cc_execute_task_list",
    "export_execution_history",
    "resume",
    "verify_execution",
]

__version__ = "0.1.0"

_LAZY = frozenset(__all__) - {"__version__"}

if TYPE_CHECKING:
    from cc_executor.api import (
        acc_execute,
        aresume,
        cc_execute,
        cc_execute_list,
        cc_execute_task_list,
        export_execution_history,
        resume,
        verify_execution,
    )


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from cc_executor import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cc_executor' has no attribute {name!r}")
