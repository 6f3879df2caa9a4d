"""Python clients of the cc-executor daemon (``ws://127.0.0.1:8003/ws/mcp``).

::

    async with WebSocketClient() as client:
        handle = await client.execute("echo Hello, World!")
        async for event in handle:
            ...
        completed = handle.completed  # Completed(status, exit_code, signal, execution_time)

    SyncWebSocketClient().execute_command("echo hi")  # {"success": True, "output_data": ...}

    async with WebSocketClient() as client:  # a durable task list on the daemon
        tasks = await client.task_list_create([{"command": "make"}, {"command": "make test"}])
        async for event in tasks:  # task.started / task.completed / task_list.completed
            ...
"""

from __future__ import annotations

from cc_executor.client.client import WebSocketClient
from cc_executor.client.errors import (
    ClientClosed,
    ConnectionLost,
    DaemonUnreachable,
    HandshakeRefused,
)
from cc_executor.client.events import (
    AgentEvent,
    Canceled,
    Completed,
    Event,
    Gap,
    Output,
    Paused,
    ProcessError,
    Resumed,
    Started,
)
from cc_executor.client.handle import CommandResult, ExecutionHandle
from cc_executor.client.sync import SyncWebSocketClient
from cc_executor.client.task_list import TaskListEvent, TaskListHandle

__all__ = [
    "AgentEvent",
    "Canceled",
    "ClientClosed",
    "CommandResult",
    "Completed",
    "ConnectionLost",
    "DaemonUnreachable",
    "Event",
    "ExecutionHandle",
    "Gap",
    "HandshakeRefused",
    "Output",
    "Paused",
    "ProcessError",
    "Resumed",
    "Started",
    "SyncWebSocketClient",
    "TaskListEvent",
    "TaskListHandle",
    "WebSocketClient",
]
