"""Supervised process groups: the only package that touches ``os``, ``signal``, ``psutil`` and
asyncio subprocesses.

The public surface is re-exported here; the modules are ``states`` (state table), ``eventlog``
(seq-numbered event log with replay), ``process`` (process groups, signals, sweeps),
``execution`` (one execution's life) and ``supervisor`` (the API every door calls).
"""

from cc_executor.supervisor.eventlog import Event, EventLog, Gap
from cc_executor.supervisor.execution import Execution, ExecutionId, ExecutionSpec
from cc_executor.supervisor.process import MARKER_ENV, ProcessGroup
from cc_executor.supervisor.states import (
    TERMINAL_STATES,
    TRANSITIONS,
    ExecutionState,
    check_transition,
)
from cc_executor.supervisor.supervisor import Supervisor

__all__ = [
    "MARKER_ENV",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Event",
    "EventLog",
    "Execution",
    "ExecutionId",
    "ExecutionSpec",
    "ExecutionState",
    "Gap",
    "ProcessGroup",
    "Supervisor",
    "check_transition",
]
