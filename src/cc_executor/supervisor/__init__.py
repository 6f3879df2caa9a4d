"""Supervised process groups: the only package that touches ``os``, ``signal``, ``psutil`` and
asyncio subprocesses.

The public surface is re-exported here; the modules are ``states`` (state table), ``eventlog``
(seq-numbered event log with replay), ``process`` (process groups, signals, sweeps),
``execution`` (one execution's life, possibly several attempts), ``attempts`` (the seam a
retry policy implements) and ``supervisor`` (the API every door calls).
"""

from cc_executor.supervisor.attempts import (
    AttemptEnd,
    AttemptHost,
    AttemptPolicy,
    Decision,
    Finish,
    Retry,
)
from cc_executor.supervisor.eventlog import Event, EventLog, Gap
from cc_executor.supervisor.execution import EnvHook, Execution, ExecutionId, ExecutionSpec
from cc_executor.supervisor.process import ProcessGroup
from cc_executor.supervisor.procfs import MARKER_ENV
from cc_executor.supervisor.states import (
    TERMINAL_STATES,
    TRANSITIONS,
    ExecutionState,
    check_transition,
)
from cc_executor.supervisor.supervisor import ExecutionObserver, Supervisor

__all__ = [
    "MARKER_ENV",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "AttemptEnd",
    "AttemptHost",
    "AttemptPolicy",
    "Decision",
    "EnvHook",
    "Event",
    "EventLog",
    "Execution",
    "ExecutionId",
    "ExecutionObserver",
    "ExecutionSpec",
    "ExecutionState",
    "Finish",
    "Gap",
    "ProcessGroup",
    "Retry",
    "Supervisor",
    "check_transition",
]
