"""Pydantic models of every params and result object on ``/ws/mcp``, and of notification params.

This module owns the *shapes* of the wire contract: what a method accepts (validated strictly, so a
string where a number belongs is ``-32602``, never coerced), what it returns, and what each
notification carries. It does not own behaviour: the dispatcher validates with these models, the
handlers (in ``server/``) decide what the fields mean, and the JSON Schema appendix of
``docs/protocol.md`` is generated from them (``scripts/gen_protocol_schema.py``).

Incoming params models forbid unknown fields. Result and notification models ignore unknown fields
instead, so a client validating what a newer server sends keeps working. Outgoing frames are built
from trusted fields and are not re-validated on the hot path; the models document them.

Every string that may reach ``exec`` (command, argv, cwd, env, agent, prompt) refuses NUL, which
``exec`` cannot carry: better a clear ``-32602`` than a truncated argument.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from cc_executor.protocol.names import ControlType, Method, Notification

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "EXECUTION_ID_PATTERN",
    "MAX_LIST_LIMIT",
    "MAX_TASKS_PER_LIST",
    "MAX_TASK_RETRIES",
    "MAX_TIMEOUT_S",
    "METHOD_PARAMS",
    "METHOD_RESULTS",
    "NOTIFICATION_PARAMS",
    "PROTOCOL_VERSION",
    "AgentEventParams",
    "AgentFailure",
    "AgentResult",
    "AttachParams",
    "AttachResult",
    "Capabilities",
    "CompletionStatus",
    "ConnectedParams",
    "ControlParams",
    "ControlResult",
    "DetachParams",
    "DetachResult",
    "EmptyParams",
    "ExecuteParams",
    "ExecuteResult",
    "ExecutionIdStr",
    "ExecutionInfo",
    "ExtensionEventParams",
    "HookStatusResult",
    "InputParams",
    "InputResult",
    "ListParams",
    "ListResult",
    "PingParams",
    "PongParams",
    "ProcessCanceledParams",
    "ProcessCompletedParams",
    "ProcessErrorParams",
    "ProcessOutputParams",
    "ProcessPausedParams",
    "ProcessResumedParams",
    "ProcessStartedParams",
    "RateLimitExceededParams",
    "StatusParams",
    "StreamGapParams",
    "StreamName",
    "TaskCompletedParams",
    "TaskListCompletedParams",
    "TaskListCreateParams",
    "TaskListParams",
    "TaskListPauseParams",
    "TaskListStatus",
    "TaskSpec",
    "TaskStartedParams",
    "TaskStatus",
    "TokenLimitExceededParams",
    "WaitingForLimitParams",
]

PROTOCOL_VERSION = "1.0"

# Client-chosen ids end up in log lines, file names and Redis keys: keep them to a safe alphabet.
# Server-generated ids (uuid4 hex) match the same pattern, so lookups validate with it too.
EXECUTION_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 10_000  # one `list` answer must stay well under the frame and memory budget
MAX_TIMEOUT_S = 30 * 24 * 3600.0  # 30 days: longer is a mistake, and "no timeout" is omission


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _env_name(value: str) -> str:
    if not value or "=" in value:
        raise ValueError("environment variable names must be non-empty and contain no '='")
    return value


def _upper(value: object) -> object:
    # Old clients send "pause"; normalising here keeps the enum the single source of names.
    return value.upper() if isinstance(value, str) else value


ExecStr = Annotated[StrictStr, AfterValidator(_no_nul)]
"""A string that may reach ``exec``: no NUL."""
NonEmptyExecStr = Annotated[StrictStr, Field(min_length=1), AfterValidator(_no_nul)]
EnvName = Annotated[StrictStr, AfterValidator(_no_nul), AfterValidator(_env_name)]
ExecutionIdStr = Annotated[StrictStr, Field(pattern=EXECUTION_ID_PATTERN)]
"""An execution id as it appears on the wire (see :data:`EXECUTION_ID_PATTERN`)."""
Seconds = Annotated[StrictFloat, Field(gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)]
Seq = Annotated[StrictInt, Field(ge=0)]
StreamName = Literal["stdout", "stderr"]
CompletionStatus = Literal["completed", "failed", "timeout", "canceled", "lost"]


class _Params(BaseModel):
    """Incoming params: unknown fields are an error, nothing is coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Outgoing(BaseModel):
    """Results and notification params: tolerant of fields added by newer servers."""

    model_config = ConfigDict(extra="ignore")


# --- method params ---------------------------------------------------------------------------


class ExecuteParams(_Params):
    """``execute``: exactly one of ``command``, ``argv`` or ``agent`` (+ ``prompt``)."""

    command: NonEmptyExecStr | None = Field(
        None, description="Run by the configured shell (`shell -c command`)."
    )
    argv: Annotated[list[ExecStr], Field(min_length=1)] | None = Field(
        None, description="Program and arguments, executed directly (no shell)."
    )
    agent: NonEmptyExecStr | None = Field(None, description='Agent to run, e.g. "claude".')
    prompt: ExecStr | None = Field(
        None, description="Prompt for the agent; never passes through a shell."
    )
    timeout: Seconds | None = Field(
        None, description="Wall-clock seconds before the whole process group is killed."
    )
    idle_timeout: Seconds | None = Field(
        None, description="Seconds without any output before the group is killed."
    )
    timeout_includes_paused: StrictBool = Field(
        False, description="Count time spent paused against `timeout`."
    )
    cwd: NonEmptyExecStr | None = Field(None, description="Working directory.")
    env: dict[EnvName, ExecStr] | None = Field(
        None, description="Variables added to (overriding) the daemon's environment."
    )
    execution_id: ExecutionIdStr | None = Field(
        None, description="Client-chosen id; repeating an execute with it is idempotent."
    )
    metadata: dict[StrictStr, Any] | None = Field(
        None, description="Opaque to the daemon; echoed back by status and list."
    )
    stdin: StrictBool = Field(False, description="Keep stdin open for the `input` method.")
    agent_options: dict[StrictStr, Any] | None = Field(
        None, description="Agent-specific options, validated by the agent."
    )

    @model_validator(mode="after")
    def _one_target(self) -> ExecuteParams:
        given = [name for name in ("command", "argv", "agent") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("exactly one of command, argv or agent (with prompt) is required")
        if self.agent is not None and self.prompt is None:
            raise ValueError("agent requires prompt")
        if self.agent is None and self.prompt is not None:
            raise ValueError("prompt is only valid with agent")
        if self.agent is None and self.agent_options is not None:
            raise ValueError("agent_options is only valid with agent")
        if self.argv is not None and not self.argv[0]:
            raise ValueError("argv[0] must be a non-empty program name")
        return self


MAX_TASKS_PER_LIST = 1000  # one list is one durable object; bigger batches are several lists
MAX_TASK_RETRIES = 20


class TaskSpec(ExecuteParams):
    """One task of a task list: what ``execute`` takes, plus how the list treats its failure."""

    retries: Annotated[StrictInt, Field(ge=0, le=MAX_TASK_RETRIES)] = Field(
        0, description="Extra attempts after a failure or timeout (each a fresh process)."
    )
    on_failure: Literal["stop", "continue"] | None = Field(
        None, description="After this task fails for good: stop the list, or go on (list default)."
    )
    depends_on: list[Annotated[StrictInt, Field(ge=0)]] = Field(
        default_factory=list,
        description="Indexes of earlier tasks that must have completed; otherwise skipped.",
    )

    @model_validator(mode="after")
    def _no_stdin(self) -> TaskSpec:
        if self.stdin:
            raise ValueError("tasks run unattended: stdin is not available")
        if self.execution_id is not None:
            raise ValueError("task executions get their ids from the list")
        return self


class TaskListCreateParams(_Params):
    """``task_list.create``: tasks run one by one, each in a fresh process with fresh context."""

    tasks: Annotated[list[TaskSpec], Field(min_length=1, max_length=MAX_TASKS_PER_LIST)]
    name: StrictStr | None = Field(None, max_length=200, description="Shown by status and history.")
    timeout_per_task: Seconds | None = Field(
        None, description="Timeout of every task that gives none itself."
    )
    on_failure: Literal["stop", "continue"] = Field(
        "stop", description="Default for tasks that give none: stop the list, or go on."
    )
    list_id: ExecutionIdStr | None = Field(
        None, description="Client-chosen id; creating a list with a used id is an error."
    )
    metadata: dict[StrictStr, Any] | None = None

    @model_validator(mode="after")
    def _dependencies_earlier(self) -> TaskListCreateParams:
        for index, task in enumerate(self.tasks):
            for dep in task.depends_on:
                if dep >= index:
                    raise ValueError(
                        f"task {index} depends on task {dep}: dependencies must be earlier tasks"
                    )
        return self


class TaskListParams(_Params):
    """``task_list.status`` / ``resume`` / ``cancel``."""

    list_id: ExecutionIdStr


class TaskListPauseParams(_Params):
    """``task_list.pause``: hold the queue; with ``pause_running`` also SIGSTOP the running task."""

    list_id: ExecutionIdStr
    pause_running: StrictBool = False


class ControlParams(_Params):
    """``control``: PAUSE, RESUME or CANCEL (any case), of one execution."""

    type: Annotated[ControlType, BeforeValidator(_upper)]
    execution_id: ExecutionIdStr | None = Field(
        None, description="Optional when the connection has exactly one live execution."
    )


class StatusParams(_Params):
    execution_id: ExecutionIdStr


class ListParams(_Params):
    state: list[StrictStr] | StrictStr | None = Field(
        None, description="Only executions in this state (or any of these states)."
    )
    limit: Annotated[StrictInt, Field(ge=1, le=MAX_LIST_LIMIT)] = DEFAULT_LIST_LIMIT

    @property
    def states(self) -> frozenset[str] | None:
        """The state filter as a set, ``None`` meaning every state."""
        if self.state is None:
            return None
        return frozenset([self.state] if isinstance(self.state, str) else self.state)


class AttachParams(_Params):
    execution_id: ExecutionIdStr
    after_seq: Seq = Field(0, description="Replay events with seq greater than this, then live.")


class DetachParams(_Params):
    execution_id: ExecutionIdStr


class InputParams(_Params):
    """``input``: bytes for the process's stdin (opened with ``execute{stdin: true}``)."""

    execution_id: ExecutionIdStr
    data: StrictStr = Field(description="Text, or base64 when `encoding` is base64.")
    encoding: Literal["utf-8", "base64"] = "utf-8"
    eof: StrictBool = Field(False, description="Close stdin after writing `data`.")

    @model_validator(mode="after")
    def _decodable(self) -> InputParams:
        self.to_bytes()
        return self

    def to_bytes(self) -> bytes:
        """The bytes to write; raises ``ValueError`` when ``data`` does not decode."""
        if self.encoding == "base64":
            try:
                return base64.b64decode(self.data, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"data is not valid base64: {exc}") from None
        try:
            return self.data.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("data contains lone surrogates") from None


class EmptyParams(_Params):
    """Methods without params (``hook_status``)."""


class PongParams(BaseModel):
    """``pong``: accepted and ignored, whatever old clients put in it."""

    model_config = ConfigDict(extra="allow", frozen=True)


# --- method results --------------------------------------------------------------------------


class ExecuteResult(_Outgoing):
    execution_id: str
    status: Literal["started"] = "started"
    pid: int
    pgid: int


class ControlResult(_Outgoing):
    execution_id: str
    status: Literal["paused", "resumed", "canceled"]


class ExecutionInfo(_Outgoing):
    """One execution as ``status`` and ``list`` report it. Times are Unix seconds."""

    execution_id: str
    state: str = Field(
        description="pending, running, paused, waiting_for_limit, completed, failed, timeout,"
        " canceled or lost."
    )
    command: str = Field(description="What runs, for display (shell string, argv or agent).")
    pid: int | None = None
    pgid: int | None = None
    exit_code: int | None = None
    signal: str | None = Field(None, description='Signal that ended the process, e.g. "SIGKILL".')
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    execution_time: float | None = Field(None, description="Seconds from start to end (or now).")
    reason: str | None = Field(None, description='Why it ended, e.g. "timeout", "idle_timeout".')
    last_seq: int = Field(0, description="Seq of the newest event; 0 before the first.")
    metadata: dict[str, Any] | None = None
    attempt: int = Field(1, description="Attempts spawned so far (agent retries re-spawn).")
    agent: str | None = Field(None, description='"claude" for agent runs and claude commands.')
    session_id: str | None = Field(None, description="Agent runs: the latest session id.")
    result: AgentResult | None = Field(None, description="Agent runs: the final result.")
    failure: AgentFailure | None = Field(
        None, description="Agent runs: why the last attempt failed."
    )


class AgentResult(_Outgoing):
    """The normalized ``result`` of an agent run (``status``/``list``)."""

    text: str | None = None
    is_error: bool | None = None
    subtype: str | None = None
    total_cost_usd: float | None = None
    usage: dict[str, Any] | None = None
    num_turns: int | None = None
    duration_ms: int | None = None
    terminal_reason: str | None = None
    api_error_status: int | None = None


class AgentFailure(_Outgoing):
    kind: str = Field(
        description="usage_limit, rate_limit, overloaded, output_token_limit, context_limit, other"
    )
    message: str
    api_error_status: int | None = None


class ListResult(_Outgoing):
    executions: list[ExecutionInfo]


class AttachResult(_Outgoing):
    execution_id: str
    replayed: int = Field(description="Events replayed (seq > after_seq) before going live.")
    last_seq: int | None = Field(None, description="Newest seq when the attach was answered.")


class DetachResult(_Outgoing):
    execution_id: str
    detached: bool = Field(description="Whether this connection was following the execution.")


class InputResult(_Outgoing):
    execution_id: str
    bytes_written: int


class HookStatusResult(_Outgoing):
    configured: bool = Field(description="Any hook besides the built-ins is registered.")
    enabled: bool = Field(description="CC_EXECUTOR_HOOKS_ENABLED.")
    hooks_dir: str | None = Field(None, description="Where hook files and hooks.json are read.")
    default_timeout: float | None = Field(None, description="Seconds, for hooks that set none.")
    hooks: list[dict[str, Any]] = Field(
        default_factory=list, description="name, kind, events, required, timeout, source."
    )
    last_runs: list[dict[str, Any]] = Field(default_factory=list, description="Newest first.")
    errors: list[dict[str, Any]] = Field(
        default_factory=list, description="Hook files or entries that failed to load."
    )
    message: str = ""


# --- notification params ---------------------------------------------------------------------


class Capabilities(_Outgoing):
    """What this server supports; sent in ``connected``. Open: servers may add feature flags."""

    model_config = ConfigDict(extra="allow")

    methods: list[str] = Field(default_factory=lambda: [str(m) for m in Method])
    notifications: list[str] | None = None
    agents: list[str] | None = Field(None, description='Agents `execute` accepts, e.g. "claude".')
    encodings: list[str] | None = Field(None, description='Output encodings: "utf-8", "base64".')
    max_frame_bytes: int | None = None
    output_chunk_max_bytes: int | None = None


class ConnectedParams(_Outgoing):
    session_id: str
    version: str = Field(description="cc-executor package version.")
    protocol_version: str = PROTOCOL_VERSION
    capabilities: Capabilities


class PingParams(_Outgoing):
    """JSON ``ping``: informational; clients may ignore it (liveness uses WebSocket pings)."""

    model_config = ConfigDict(extra="allow")


class _ExecutionEvent(_Outgoing):
    execution_id: str
    seq: int = Field(ge=1, description="Per execution, from 1, no gaps, across all event kinds.")


class ProcessStartedParams(_ExecutionEvent):
    pid: int
    pgid: int
    command: str
    attempt: int = Field(1, description="1, then 2, 3 ... when an agent run is re-spawned.")


class ProcessOutputParams(_ExecutionEvent):
    type: StreamName
    data: str = Field(description="Text, or base64 when `encoding` is base64; <= 64 KiB encoded.")
    truncated: bool = Field(description="The piece's last line continues in the next piece.")
    chunk_index: int | None = Field(None, description="Index of this piece in its line's run.")
    total_chunks: int | None = Field(None, description="Set on the piece that ends a run.")
    encoding: Literal["base64"] | None = None


class ProcessCompletedParams(_ExecutionEvent):
    status: CompletionStatus
    exit_code: int | None
    signal: str | None = None
    execution_time: float
    reason: str | None = Field(None, description='Why, e.g. "idle_timeout" or "lost".')


class ProcessPausedParams(_ExecutionEvent):
    pass


class ProcessResumedParams(_ExecutionEvent):
    pass


class ProcessCanceledParams(_ExecutionEvent):
    pass


class ProcessErrorParams(_ExecutionEvent):
    error: str
    code: int


class StreamGapParams(_Outgoing):
    """Sent to one follower instead of events it can no longer get (dropped from retention)."""

    execution_id: str
    from_seq: int = Field(ge=1, description="First missing seq (inclusive).")
    to_seq: int = Field(ge=1, description="Last missing seq (inclusive).")


class AgentEventParams(_ExecutionEvent):
    """A normalized agent event; fields beyond these depend on ``kind``."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(
        description="init, assistant_text, tool_call, tool_result, api_retry, rate_limit, result,"
        " unknown, invalid_json"
    )
    raw: str | None = Field(
        None, description="The output line this was parsed from (first 64 Ki characters)."
    )
    raw_truncated: bool | None = Field(None, description="`raw` was cut; see process.output.")
    raw_chars: int | None = Field(None, description="Length of the whole line when cut.")


class _LimitEvent(_ExecutionEvent):
    attempt: int = Field(description="The attempt that hit the limit.")
    kind: str = Field(description="The failure kind (rate_limit, overloaded, ...).")
    message: str = Field(description="The first line of the agent's error text.")
    api_error_status: int | None = None
    exit_code: int | None = None


class RateLimitExceededParams(_LimitEvent):
    """``error.rate_limit_exceeded``: a 429/529; the daemon backs off and retries."""

    retry: bool = Field(description="Whether another attempt follows.")
    wait_s: float | None = Field(description="Backoff before it (state waiting_for_limit).")
    retries_done: int
    max_attempts: int


class TokenLimitExceededParams(_LimitEvent):
    """``error.token_limit_exceeded``: output (or context) token limit."""

    retry: bool
    strategy: str | None = Field(description='"concise_prompt" when retrying.')
    retries_done: int
    max_retries: int
    prompt: str | None = Field(description="The amended prompt of the next attempt.")


class WaitingForLimitParams(_LimitEvent):
    """``task.waiting_for_limit``: a usage limit; the execution waits for its reset."""

    waiting: bool = Field(description="False: the reset is beyond usage_limit_max_wait_s.")
    wait_s: float | None
    resets_at: str | None = Field(description="ISO 8601, when the message named a time.")
    resets_at_epoch: float | None
    max_wait_s: float


class ExtensionEventParams(_Outgoing):
    """Scheduler and hook notifications (limits, tasks, hooks): open shape, owned there."""

    model_config = ConfigDict(extra="allow")

    execution_id: str | None = None
    seq: int | None = None


class TaskStatus(_Outgoing):
    index: int
    state: str = Field(
        description="queued running paused waiting_for_limit completed failed canceled skipped"
    )
    spec: dict[str, Any] = Field(description="The execute params the task runs with.")
    timeout: float | None = None
    retries: int = 0
    on_failure: str = "stop"
    depends_on: list[int] = Field(default_factory=list)
    attempts: int = Field(0, description="Attempts started, re-runs after a restart included.")
    execution_ids: list[str] = Field(default_factory=list, description="One per attempt.")
    execution_id: str | None = Field(None, description="The latest attempt's execution.")
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    error: str | None = None
    result: dict[str, Any] | None = None


class TaskListStatus(_Outgoing):
    """Result of every ``task_list.*`` method."""

    list_id: str
    name: str | None = None
    state: str = Field(description="queued running paused completed failed canceled")
    queue_paused: bool = Field(description="The next task is held until task_list.resume.")
    created_at: float
    updated_at: float
    started_at: float | None = None
    ended_at: float | None = None
    total_tasks: int
    counts: dict[str, int] = Field(description="Tasks per state.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    owner: str | None = Field(None, description="The service instance running the list.")
    tasks: list[TaskStatus]


class _TaskEvent(_Outgoing):
    list_id: str
    index: int


class TaskStartedParams(_TaskEvent):
    """``task.started``: an attempt of a task was spawned (its events follow on this socket)."""

    execution_id: str
    attempt: int


class TaskCompletedParams(_TaskEvent):
    """``task.completed``: a task ended for good (``status`` says how)."""

    status: str = Field(description="completed failed canceled skipped")
    execution_id: str | None = None
    exit_code: int | None = None
    error: str | None = None


class TaskListCompletedParams(_Outgoing):
    """``task_list.completed``: the list ended."""

    list_id: str
    state: str
    counts: dict[str, int] | None = None
    error: str | None = None


METHOD_PARAMS: dict[Method, type[BaseModel]] = {
    Method.EXECUTE: ExecuteParams,
    Method.CONTROL: ControlParams,
    Method.HOOK_STATUS: EmptyParams,
    Method.STATUS: StatusParams,
    Method.LIST: ListParams,
    Method.ATTACH: AttachParams,
    Method.DETACH: DetachParams,
    Method.INPUT: InputParams,
    Method.PONG: PongParams,
    Method.TASK_LIST_CREATE: TaskListCreateParams,
    Method.TASK_LIST_STATUS: TaskListParams,
    Method.TASK_LIST_PAUSE: TaskListPauseParams,
    Method.TASK_LIST_RESUME: TaskListParams,
    Method.TASK_LIST_CANCEL: TaskListParams,
}

METHOD_RESULTS: dict[Method, type[BaseModel] | None] = {
    Method.EXECUTE: ExecuteResult,
    Method.CONTROL: ControlResult,
    Method.HOOK_STATUS: HookStatusResult,
    Method.STATUS: ExecutionInfo,
    Method.LIST: ListResult,
    Method.ATTACH: AttachResult,
    Method.DETACH: DetachResult,
    Method.INPUT: InputResult,
    Method.PONG: None,  # result is {}
    Method.TASK_LIST_CREATE: TaskListStatus,
    Method.TASK_LIST_STATUS: TaskListStatus,
    Method.TASK_LIST_PAUSE: TaskListStatus,
    Method.TASK_LIST_RESUME: TaskListStatus,
    Method.TASK_LIST_CANCEL: TaskListStatus,
}

NOTIFICATION_PARAMS: dict[Notification, type[BaseModel]] = {
    Notification.CONNECTED: ConnectedParams,
    Notification.PING: PingParams,
    Notification.PROCESS_STARTED: ProcessStartedParams,
    Notification.PROCESS_OUTPUT: ProcessOutputParams,
    Notification.PROCESS_COMPLETED: ProcessCompletedParams,
    Notification.PROCESS_PAUSED: ProcessPausedParams,
    Notification.PROCESS_RESUMED: ProcessResumedParams,
    Notification.PROCESS_CANCELED: ProcessCanceledParams,
    Notification.PROCESS_ERROR: ProcessErrorParams,
    Notification.STREAM_GAP: StreamGapParams,
    Notification.AGENT_EVENT: AgentEventParams,
    Notification.ERROR_TOKEN_LIMIT_EXCEEDED: TokenLimitExceededParams,
    Notification.ERROR_RATE_LIMIT_EXCEEDED: RateLimitExceededParams,
    Notification.TASK_STARTED: TaskStartedParams,
    Notification.TASK_COMPLETED: TaskCompletedParams,
    Notification.TASK_LIST_COMPLETED: TaskListCompletedParams,
    Notification.TASK_WAITING_FOR_LIMIT: WaitingForLimitParams,
    Notification.HOOK_WARNING: ExtensionEventParams,
    Notification.HOOK_COMPLETED: ExtensionEventParams,
}
