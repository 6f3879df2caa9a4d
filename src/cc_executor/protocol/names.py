"""Every method and notification name on the wire, as enums (no magic strings elsewhere)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ControlType", "Method", "Notification"]


class Method(StrEnum):
    """Client → server requests on ``/ws/mcp``."""

    EXECUTE = "execute"
    CONTROL = "control"
    HOOK_STATUS = "hook_status"
    STATUS = "status"
    LIST = "list"
    ATTACH = "attach"
    DETACH = "detach"
    INPUT = "input"
    PONG = "pong"
    TASK_LIST_CREATE = "task_list.create"
    TASK_LIST_STATUS = "task_list.status"
    TASK_LIST_PAUSE = "task_list.pause"
    TASK_LIST_RESUME = "task_list.resume"
    TASK_LIST_CANCEL = "task_list.cancel"


class ControlType(StrEnum):
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    CANCEL = "CANCEL"


class Notification(StrEnum):
    """Server → client notifications."""

    CONNECTED = "connected"
    PING = "ping"
    PROCESS_STARTED = "process.started"
    PROCESS_OUTPUT = "process.output"
    PROCESS_COMPLETED = "process.completed"
    PROCESS_PAUSED = "process.paused"
    PROCESS_RESUMED = "process.resumed"
    PROCESS_CANCELED = "process.canceled"
    PROCESS_ERROR = "process.error"
    STREAM_GAP = "stream.gap"
    AGENT_EVENT = "agent.event"
    # "token" here is an LLM context token, not a credential.
    ERROR_TOKEN_LIMIT_EXCEEDED = "error.token_limit_exceeded"  # noqa: S105
    ERROR_RATE_LIMIT_EXCEEDED = "error.rate_limit_exceeded"
    TASK_STARTED = "task.started"
    TASK_COMPLETED = "task.completed"
    TASK_WAITING_FOR_LIMIT = "task.waiting_for_limit"
    TASK_LIST_COMPLETED = "task_list.completed"
    HOOK_WARNING = "hook.warning"
    HOOK_COMPLETED = "hook.completed"
