"""The MCP door: cc-executor's tools over the official MCP Python SDK (streamable HTTP and stdio).

Owns: the tool catalogue (names, descriptions, input schemas, annotations), argument validation,
the one place where this door turns our exceptions into MCP tool errors (``isError`` results that
carry the JSON-RPC ``code`` of the exception), decoding of event frames for ``peek`` and
``wait``, and the manifest's content. The ``/mcp`` mount (streamable HTTP behind
:class:`~cc_executor.server.security.RequestGuard`, built on the first request) is
``mcp_lazy.py``'s. Does not own: the MCP protocol (the SDK's
low-level ``Server`` and its ``StreamableHTTPSessionManager``), executions or task lists (the
:class:`~cc_executor.scheduler.service.ExecutionService` and the task-list scheduler every door
calls), or who may connect (``security.py`` decides; this module only mounts the guard).

The tools follow an asynchronous pattern so that no call hits a client's tool-call time limit:
``execute`` and ``run_task_list`` return as soon as the work has started, ``wait`` blocks at most
:data:`WAIT_MAX_S` seconds and says whether the execution is done, and ``peek`` reads output
without blocking at all.

Length: past 500 lines because a third of it is the tool catalogue's prose (descriptions an LLM
reads to choose a tool); the handlers and the catalogue change together, so they stay in one
module.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import mcp_types as types
import orjson
from loguru import logger
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from cc_executor import __version__
from cc_executor.errors import CCExecutorError, InvalidParams, ServiceError
from cc_executor.protocol import ExecuteParams, TaskListCreateParams
from cc_executor.protocol.models import ExecutionIdStr
from cc_executor.protocol.names import Notification
from cc_executor.scheduler.service import REPLAY_PAGE_EVENTS, UNFINISHED_STATES, ExecutionService
from cc_executor.server.mcp_lazy import MANIFEST_PATH, MCP_PATH  # the routes, mounted lazily
from cc_executor.supervisor import Event, ExecutionState, Gap

__all__ = [
    "MANIFEST_PATH",
    "MCP_PATH",
    "SERVER_NAME",
    "WAIT_DEFAULT_S",
    "WAIT_MAX_S",
    "McpDoor",
    "TaskListsApi",
    "build_mcp_server",
    "manifest",
]

SERVER_NAME = "cc-executor"
STDIO_COMMAND = ("cc-executor", "mcp")  # how a local client starts the stdio transport

WAIT_DEFAULT_S = 25.0  # under the 30 s tool-call limit several MCP clients apply by default
WAIT_MAX_S = 55.0  # under the 60 s request timeout of the TypeScript SDK's clients
WAIT_PROGRESS_INTERVAL_S = 2.0  # progress cadence during `wait`: a live sign for client UIs
TAIL_LINES_DEFAULT = 20  # output lines `wait` and `peek` return by default
TAIL_LINES_MAX = 2000  # a tail longer than this belongs in paged `peek` calls (after_seq)
TAIL_SCAN_EVENTS = 1024  # events read back from the end to build a line tail (≤ 64 KiB each)
OUTPUT_TEXT_MAX_CHARS = 64 * 1024  # output text in one tool result: an LLM context budget
PEEK_EVENTS_DEFAULT = 100  # events one paged `peek` returns by default
PEEK_EVENTS_MAX = 1000  # and at most
LIST_LIMIT_DEFAULT = 50  # rows `list_executions` and `history` return by default
LIST_LIMIT_MAX = 1000  # and at most: one tool result stays readable

_STATES = (*(state.value for state in ExecutionState), "lost")
_STATE_HELP = "Only executions in these states: " + ", ".join(_STATES) + "."

Ctx = ServerRequestContext[Any, Any]


class TaskListsApi(Protocol):
    """What this door needs of the task-list scheduler (``scheduler/task_lists.py``)."""

    async def create(self, params: dict[str, Any]) -> dict[str, Any]: ...
    async def status(self, list_id: str) -> dict[str, Any]: ...
    async def pause(self, list_id: str, *, pause_running: bool = False) -> dict[str, Any]: ...
    async def resume(self, list_id: str) -> dict[str, Any]: ...
    async def cancel(self, list_id: str) -> dict[str, Any]: ...


# --- tool arguments ------------------------------------------------------------------------------


class _Args(BaseModel):
    """Tool arguments: unknown fields are an error (a typo must not be ignored silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _ExecutionArgs(_Args):
    execution_id: ExecutionIdStr = Field(description="The id `execute` returned.")


Stream = Literal["stdout", "stderr", "both"]
TailLines = Annotated[StrictInt, Field(ge=0, le=TAIL_LINES_MAX)]


class _PeekArgs(_ExecutionArgs):
    lines: TailLines = Field(
        TAIL_LINES_DEFAULT, description="How many of the last output lines to return."
    )
    stream: Stream = Field("both", description="Which output to read.")
    after_seq: Annotated[StrictInt, Field(ge=0)] | None = Field(
        None,
        description=(
            "Instead of a line tail, return the events (output, state changes, agent events) "
            "with a sequence number above this one; start at 0 and pass back `next_after_seq`."
        ),
    )
    limit: Annotated[StrictInt, Field(ge=1, le=PEEK_EVENTS_MAX)] = Field(
        PEEK_EVENTS_DEFAULT, description="With `after_seq`: at most this many events."
    )


class _WaitArgs(_ExecutionArgs):
    timeout: Annotated[float, Field(gt=0, le=WAIT_MAX_S, allow_inf_nan=False)] = Field(
        WAIT_DEFAULT_S, description=f"Seconds to block at most (≤ {WAIT_MAX_S:g})."
    )
    lines: TailLines = Field(TAIL_LINES_DEFAULT, description="Output lines to include.")


class _ListArgs(_Args):
    states: list[StrictStr] | None = Field(None, description=_STATE_HELP)
    limit: Annotated[StrictInt, Field(ge=1, le=LIST_LIMIT_MAX)] = Field(
        LIST_LIMIT_DEFAULT, description="At most this many rows, newest first."
    )


class _TaskListArgs(_Args):
    list_id: ExecutionIdStr = Field(description="The `list_id` that `run_task_list` returned.")


class _TaskListControlArgs(_TaskListArgs):
    action: Literal["pause", "resume", "cancel"] = Field(
        description="pause: hold the queue; resume: release it; cancel: stop the list."
    )
    pause_running: StrictBool = Field(
        False, description="With pause: also SIGSTOP the task that is running now."
    )


class _ExecuteArgs(ExecuteParams):
    """``execute`` as the WebSocket door takes it, without ``stdin`` (MCP has no input channel)."""

    @model_validator(mode="after")
    def _no_stdin(self) -> _ExecuteArgs:
        if self.stdin:
            raise ValueError("stdin is not available over MCP")
        return self


def _schema(model: type[BaseModel], *, drop: Iterable[str] = ()) -> dict[str, Any]:
    schema = model.model_json_schema()
    properties: dict[str, Any] = schema.get("properties", {})
    for name in drop:
        properties.pop(name, None)
    if "required" in schema:
        schema["required"] = [r for r in schema["required"] if r in properties]
    return schema


# --- output decoding -----------------------------------------------------------------------------


def _frame_params(event: Event) -> dict[str, Any]:
    frame = orjson.loads(event.frame)
    params = frame.get("params") if isinstance(frame, dict) else None
    return dict(params) if isinstance(params, dict) else {}


def _output_bytes(params: dict[str, Any]) -> bytes:
    data = params.get("data")
    if not isinstance(data, str):
        return b""
    if params.get("encoding") == "base64":
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return b""
    return data.encode("utf-8", "surrogatepass")


def _decoded_event(item: Event | Gap) -> dict[str, Any]:
    """An event as a tool returns it: output always as text (base64 pieces decoded)."""
    if isinstance(item, Gap):
        return {"gap": {"from_seq": item.from_seq, "to_seq": item.to_seq}}
    params = _frame_params(item)
    if item.method == Notification.PROCESS_OUTPUT and params.get("encoding") == "base64":
        params["data"] = _output_bytes(params).decode("utf-8", "replace")
        params["encoding"] = None
        params["decoded_from_base64"] = True
    return {"seq": item.seq, "method": item.method, "params": params}


def _clip(text: str) -> tuple[str, bool]:
    if len(text) <= OUTPUT_TEXT_MAX_CHARS:
        return text, False
    return text[-OUTPUT_TEXT_MAX_CHARS:], True


async def _output_tail(
    service: ExecutionService, execution_id: str, *, lines: int, stream: Stream
) -> dict[str, Any]:
    """The last ``lines`` lines of output, read from the newest :data:`TAIL_SCAN_EVENTS` events."""
    last = await service.last_seq(execution_id)
    after = max(0, last - TAIL_SCAN_EVENTS)
    pieces: list[bytes] = []
    while after < last:
        page = await service.events(execution_id, after_seq=after, limit=REPLAY_PAGE_EVENTS)
        if not page:
            break
        for item in page:
            if isinstance(item, Gap):
                after = max(after, item.to_seq)
                continue
            after = item.seq
            if item.seq > last or item.method != Notification.PROCESS_OUTPUT:
                continue
            params = _frame_params(item)
            if stream in ("both", params.get("type")):
                pieces.append(_output_bytes(params))
    text = b"".join(pieces).decode("utf-8", "replace")
    tail = "\n".join(text.splitlines()[-lines:]) if lines else ""
    tail, clipped = _clip(tail)
    return {"text": tail, "last_seq": last, "clipped": clipped}


# --- tools ---------------------------------------------------------------------------------------

Handler = Callable[[Any, Ctx], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class _Tool:
    definition: types.Tool
    args: type[BaseModel]
    handler: Handler


@dataclass(frozen=True, slots=True)
class McpDoor:
    """The built MCP server and the tool catalogue it serves (also what the manifest lists)."""

    server: Server[Any]
    tools: tuple[types.Tool, ...]


class _Tools:
    """The tool handlers: each validates nothing itself and raises our typed errors."""

    def __init__(
        self,
        service: ExecutionService,
        task_lists: TaskListsApi | None,
        progress_interval_s: float,
    ) -> None:
        self.service = service
        self.task_lists = task_lists
        self.progress_interval_s = progress_interval_s

    def _lists(self) -> TaskListsApi:
        if self.task_lists is None:  # build_mcp_server leaves these tools out then
            raise ServiceError("task lists are not available in this daemon")
        return self.task_lists

    async def execute(self, args: ExecuteParams, ctx: Ctx) -> dict[str, Any]:
        execution = await self.service.execute(args)
        info = execution.info()
        return {
            "execution_id": execution.id,
            "state": info["state"],
            "pid": execution.pid,
            "pgid": execution.pgid,
        }

    async def status(self, args: _ExecutionArgs, ctx: Ctx) -> dict[str, Any]:
        return await self.service.status(args.execution_id)

    async def peek(self, args: _PeekArgs, ctx: Ctx) -> dict[str, Any]:
        eid = args.execution_id
        if args.after_seq is None:
            status = await self.service.status(eid)
            tail = await _output_tail(self.service, eid, lines=args.lines, stream=args.stream)
            return {"execution_id": eid, "state": status["state"], "output_tail": tail}
        items = await self.service.events(eid, after_seq=args.after_seq, limit=args.limit)
        events: list[dict[str, Any]] = []
        budget = OUTPUT_TEXT_MAX_CHARS
        next_after = args.after_seq
        for item in items:
            decoded = _decoded_event(item)
            data = decoded.get("params", {}).get("data")
            size = len(data) if isinstance(data, str) else 0
            if events and size > budget:
                break  # the rest comes with the next call, from next_after_seq
            budget -= size
            events.append(decoded)
            next_after = item.to_seq if isinstance(item, Gap) else item.seq
        last = await self.service.last_seq(eid)
        return {
            "execution_id": eid,
            "events": events,
            "next_after_seq": next_after,
            "last_seq": last,
            "more": next_after < last,
        }

    async def wait(self, args: _WaitArgs, ctx: Ctx) -> dict[str, Any]:
        eid = args.execution_id
        await self.service.ensure_known(eid)
        started = time.monotonic()
        deadline = started + args.timeout
        await ctx.session.report_progress(0.0, args.timeout, "waiting")
        while True:
            remaining = deadline - time.monotonic()
            status = await self.service.wait(eid, min(self.progress_interval_s, remaining))
            done = status["state"] not in UNFINISHED_STATES
            if done or deadline - time.monotonic() <= 0:
                break
            elapsed = time.monotonic() - started
            await ctx.session.report_progress(
                min(elapsed, args.timeout), args.timeout, f"{status['state']} after {elapsed:.0f}s"
            )
        tail = await _output_tail(self.service, eid, lines=args.lines, stream="both")
        return {**status, "done": done, "output_tail": tail}

    async def cancel(self, args: _ExecutionArgs, ctx: Ctx) -> dict[str, Any]:
        return await self.service.cancel(args.execution_id)

    async def pause(self, args: _ExecutionArgs, ctx: Ctx) -> dict[str, Any]:
        return await self.service.pause(args.execution_id)

    async def resume(self, args: _ExecutionArgs, ctx: Ctx) -> dict[str, Any]:
        return await self.service.resume(args.execution_id)

    async def list_executions(self, args: _ListArgs, ctx: Ctx) -> dict[str, Any]:
        found = self.service.supervisor.list(states=args.states, limit=args.limit)
        return {"executions": [execution.info() for execution in found]}

    async def history(self, args: _ListArgs, ctx: Ctx) -> dict[str, Any]:
        return {"executions": await self.service.list(args.states, args.limit)}

    async def run_task_list(self, args: TaskListCreateParams, ctx: Ctx) -> dict[str, Any]:
        return await self._lists().create(args.model_dump(exclude_none=True))

    async def task_list_status(self, args: _TaskListArgs, ctx: Ctx) -> dict[str, Any]:
        return await self._lists().status(args.list_id)

    async def task_list_control(self, args: _TaskListControlArgs, ctx: Ctx) -> dict[str, Any]:
        lists = self._lists()
        if args.action == "pause":
            return await lists.pause(args.list_id, pause_running=args.pause_running)
        if args.action == "resume":
            return await lists.resume(args.list_id)
        return await lists.cancel(args.list_id)


_READ_ONLY = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
_CONTROL = types.ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
_DESTRUCTIVE = types.ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
_STARTS_WORK = types.ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
)

_EXECUTE_HELP = (
    "Start a shell command (`command`), a program with arguments (`argv`, no shell) or Claude "
    'Code (`agent`: "claude" with `prompt`) as a supervised process group on the cc-executor '
    "host. Returns at once with `execution_id` and `pid`; the process keeps running after this "
    "call. Then call `wait` (repeatedly, until `done` is true) or `peek` for output, and "
    "`pause`/`resume`/`cancel` to control it. Give exactly one of command, argv or agent."
)
_PEEK_HELP = (
    "Read an execution's output without waiting. By default the last `lines` lines "
    "(`stream` stdout, stderr or both). With `after_seq`, the events after that sequence "
    "number instead, output decoded to text, paged by `limit`: pass `next_after_seq` back "
    "to read on."
)
_WAIT_HELP = (
    "Block until the execution finishes or `timeout` seconds pass (default "
    f"{WAIT_DEFAULT_S:g}, at most {WAIT_MAX_S:g}, so the call stays under client time limits). "
    "Returns its status with `done` (false: call `wait` again), the tail of its output and, "
    "for Claude runs, the result. Sends progress notifications when the request has a "
    "progress token."
)
_TASK_LIST_HELP = (
    "Start a task list: tasks run one after another, each in a fresh process (Claude gets a "
    "fresh context per task), each with its own timeout, retries and on_failure "
    "(stop|continue), optionally depending on earlier tasks. Durable across daemon restarts. "
    "Returns at once with `list_id`; follow it with `task_list_status`."
)


def _catalogue(tools: _Tools, with_task_lists: bool) -> list[tuple[str, str, Any, Any, Any]]:
    execute_schema = _schema(_ExecuteArgs, drop=("stdin",))  # MCP has no stdin channel
    rows: list[tuple[str, str, Any, Any, Any]] = [
        ("execute", _EXECUTE_HELP, (_ExecuteArgs, execute_schema), tools.execute, _STARTS_WORK),
        (
            "status",
            "State, exit code, timings and (for Claude runs) the result of one execution.",
            _ExecutionArgs,
            tools.status,
            _READ_ONLY,
        ),
        ("peek", _PEEK_HELP, _PeekArgs, tools.peek, _READ_ONLY),
        ("wait", _WAIT_HELP, _WaitArgs, tools.wait, _READ_ONLY),
        (
            "cancel",
            "Stop an execution: TERM to its whole process group, a grace period, then KILL.",
            _ExecutionArgs,
            tools.cancel,
            _DESTRUCTIVE,
        ),
        (
            "pause",
            "Suspend an execution (SIGSTOP to its process group); `resume` continues it.",
            _ExecutionArgs,
            tools.pause,
            _CONTROL,
        ),
        (
            "resume",
            "Continue a paused execution (SIGCONT to its process group).",
            _ExecutionArgs,
            tools.resume,
            _CONTROL,
        ),
        (
            "list_executions",
            "Executions this daemon holds in memory (running, paused and recently finished), "
            "newest first.",
            _ListArgs,
            tools.list_executions,
            _READ_ONLY,
        ),
        (
            "history",
            "Every execution on record (stored and live, across daemon restarts), newest first.",
            _ListArgs,
            tools.history,
            _READ_ONLY,
        ),
    ]
    if with_task_lists:
        rows += [
            (
                "run_task_list",
                _TASK_LIST_HELP,
                TaskListCreateParams,
                tools.run_task_list,
                _STARTS_WORK,
            ),
            (
                "task_list_status",
                "State of a task list and of each of its tasks (state, attempts, execution ids).",
                _TaskListArgs,
                tools.task_list_status,
                _READ_ONLY,
            ),
            (
                "task_list_control",
                "Pause (hold the queue), resume or cancel a task list.",
                _TaskListControlArgs,
                tools.task_list_control,
                _CONTROL,
            ),
        ]
    return rows


# --- the server ----------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, default=str))


def _result(payload: dict[str, Any]) -> types.CallToolResult:
    safe = _json_safe(payload)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=orjson.dumps(safe).decode())],
        structured_content=safe,
    )


def _error_result(exc: CCExecutorError) -> types.CallToolResult:
    """The wire form of one of our errors: ``isError`` with the same code, message and data."""
    return _result({"error": exc.to_wire()}).model_copy(update={"is_error": True})


def _parse(tool: _Tool, arguments: dict[str, Any]) -> Any:
    try:
        return tool.args.model_validate(arguments)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise InvalidParams(
            f"invalid arguments for {tool.definition.name}: "
            + "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in errors),
            errors=_json_safe(errors),
        ) from None


def build_mcp_server(
    service: ExecutionService,
    task_lists: TaskListsApi | None,
    *,
    progress_interval_s: float = WAIT_PROGRESS_INTERVAL_S,
) -> McpDoor:
    """An MCP server whose tools call ``service`` (and ``task_lists``, when given)."""
    tools = _Tools(service, task_lists, progress_interval_s)
    registry: dict[str, _Tool] = {}
    for name, description, args, handler, hints in _catalogue(tools, task_lists is not None):
        model, schema = args if isinstance(args, tuple) else (args, _schema(args))
        definition = types.Tool(
            name=name, description=description, input_schema=schema, annotations=hints
        )
        registry[name] = _Tool(definition, model, handler)
    catalogue = tuple(tool.definition for tool in registry.values())

    async def list_tools(
        ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=builtins.list(catalogue))

    async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = registry.get(params.name)
        if tool is None:  # the spec makes an unknown tool a protocol error, not a tool error
            raise MCPError(types.INVALID_PARAMS, f"unknown tool: {params.name}")
        try:
            args = _parse(tool, dict(params.arguments or {}))
            return _result(await tool.handler(args, ctx))
        except CCExecutorError as exc:
            logger.debug("MCP tool {} failed: {} ({})", params.name, exc.message, exc.code)
            return _error_result(exc)
        except Exception:  # request top level: the client gets -32603, the log the traceback
            logger.exception("MCP tool {} raised", params.name)
            return _error_result(ServiceError(f"internal error in tool {params.name}"))

    def input_schema(name: str) -> dict[str, Any] | None:
        tool = registry.get(name)
        return None if tool is None else dict(tool.definition.input_schema)

    server: Server[Any] = Server(
        SERVER_NAME,
        version=__version__,
        instructions=(
            "cc-executor runs commands and Claude Code as supervised, stoppable jobs. Start "
            "with `execute` (returns at once), then `wait` until done, `peek` for output."
        ),
        get_tool_input_schema=input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    return McpDoor(server=server, tools=catalogue)


# --- HTTP mount and manifest ---------------------------------------------------------------------


def manifest(door: McpDoor, *, base_url: str) -> dict[str, Any]:
    """Name, version, transports and the tools (exactly as ``tools/list`` returns them)."""
    return {
        "name": SERVER_NAME,
        "version": __version__,
        "description": "Run Claude Code and shell commands as supervised, observable jobs.",
        "transports": [
            {
                "type": "streamable-http",
                "url": base_url.rstrip("/") + MCP_PATH,
                "auth": {"type": "bearer", "header": "Authorization"},
            },
            {"type": "stdio", "command": STDIO_COMMAND[0], "args": list(STDIO_COMMAND[1:])},
        ],
        "tools": [
            tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in door.tools
        ],
    }
