"""The REST door: JSON over HTTP for ``curl`` and scripts, beside the WebSocket door.

Owns: the HTTP routes (``/execute``, ``/executions/...``, ``/task-lists/...``, ``/auth/status``),
their request and response models as the OpenAPI schema shows them (request bodies are the
protocol's own ``ExecuteParams`` and ``TaskListCreateParams``), the bearer-token dependency, the
one exception handler that turns our error tree into HTTP statuses, the results view (events as
JSON objects plus the output decoded to text) and the ``/auth/status`` probe of the Claude CLI.

Does not own: executions (:class:`~cc_executor.scheduler.service.ExecutionService`), task-list
scheduling (anything with the :class:`TaskListControl` shape), the token's storage
(``cc_executor.tokens``) or the Host check (``server.security``'s middleware covers every HTTP
route). ``/health`` stays in ``server.app`` and needs no token.

One layering exception, on purpose: ``/auth/status`` runs ``claude --version`` itself (a bounded
one-shot probe with a kill on timeout) instead of going through the supervisor, because a probe is
not an execution: it must not appear in ``/executions``, the store or the event logs.

Longer than the house's ~500 lines because the wire models live beside the routes they describe
(the OpenAPI schema is generated from them); the ``/auth/status`` probe is the part to move into
its own module if it grows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import orjson
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from loguru import logger
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from cc_executor.agents.claude import find_claude
from cc_executor.errors import (
    CCExecutorError,
    CommandNotAllowed,
    ExecutionNotFound,
    InvalidParams,
    InvalidRequest,
    InvalidTransition,
    LimitReached,
    MethodNotFound,
    ParseError,
    RequestError,
    ServiceError,
    StateError,
)
from cc_executor.protocol import (
    EXECUTION_ID_PATTERN,
    MAX_LIST_LIMIT,
    AgentFailure,
    AgentResult,
    ExecuteParams,
    ExecuteResult,
    ExecutionInfo,
    TaskListCreateParams,
    TaskListStatus,
)
from cc_executor.protocol.names import Notification
from cc_executor.scheduler import ClaudeRunConfig
from cc_executor.scheduler.service import ExecutionService
from cc_executor.server.security import check_bearer, origin_allowed
from cc_executor.storage.base import LOST
from cc_executor.supervisor import TERMINAL_STATES, Event, ExecutionState, Gap

__all__ = [
    "CLAUDE_VERSION_OUTPUT_MAX_BYTES",
    "CLAUDE_VERSION_TIMEOUT_S",
    "HTTP_STATUS_BY_ERROR",
    "MAX_SEQ",
    "RESULTS_DEFAULT_LIMIT",
    "RESULTS_MAX_LIMIT",
    "AuthSource",
    "AuthStatus",
    "ClaudeCli",
    "ErrorBody",
    "ExecuteRequest",
    "ExecutionList",
    "ExecutionStatus",
    "HTTPErrorBody",
    "ResultEvent",
    "ResultsPage",
    "StreamText",
    "TaskListControl",
    "TaskLists",
    "build_rest_router",
    "claude_auth_sources",
    "claude_path_lookup",
    "probe_claude_version",
    "rest_error_handler",
    "results_page",
]

RESULTS_DEFAULT_LIMIT = 256  # events per results page unless asked: one store read page
RESULTS_MAX_LIMIT = 1000  # x 64 KiB pieces at most: one response stays under ~100 MB of JSON
MAX_SEQ = 2**53  # seqs count from 1; beyond this a JavaScript client could not even say it
CLAUDE_VERSION_TIMEOUT_S = 10.0  # `claude --version` is local; a hung CLI must not hold a request
CLAUDE_VERSION_KILL_WAIT_S = 5.0  # after SIGKILL the exit is near-instant; bounded anyway
CLAUDE_VERSION_OUTPUT_MAX_BYTES = 4096  # a version line is tens of bytes; never buffer more

HTTP_STATUS_BY_ERROR: Mapping[type[CCExecutorError], int] = {
    ParseError: 400,
    InvalidRequest: 400,
    InvalidParams: 400,  # 422 stays FastAPI's own validation shape, so the schema is one per code
    MethodNotFound: 404,
    CommandNotAllowed: 403,
    ExecutionNotFound: 404,
    RequestError: 400,
    LimitReached: 429,
    InvalidTransition: 409,
    StateError: 409,
    ServiceError: 503,
    CCExecutorError: 500,
}
"""HTTP status per error class; the most specific class in an exception's MRO wins."""

_ALL_STATES = (*(s.value for s in ExecutionState), LOST)
_FINISHED = frozenset({*(s.value for s in TERMINAL_STATES), LOST})
_AUTH_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="The daemon's token (`<state_dir>/token`), as `Authorization: Bearer <token>`.",
)


# --- the task-list seam ----------------------------------------------------------------------


class TaskListControl(Protocol):
    """What the REST door needs of the task-list scheduler (``scheduler/task_lists.py``)."""

    async def create(self, params: TaskListCreateParams) -> dict[str, Any]: ...
    async def status(self, list_id: str) -> dict[str, Any]: ...
    async def pause(self, list_id: str, *, pause_running: bool = False) -> dict[str, Any]: ...
    async def resume(self, list_id: str) -> dict[str, Any]: ...
    async def cancel(self, list_id: str) -> dict[str, Any]: ...
    async def list(
        self, states: Iterable[str] | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]: ...


# --- wire models -----------------------------------------------------------------------------


def _request_kind(body: Any) -> str:
    if isinstance(body, dict):
        return "task_list" if "tasks" in body else "execute"
    return "task_list" if isinstance(body, TaskListCreateParams) else "execute"


ExecuteRequest = Annotated[
    Annotated[ExecuteParams, Tag("execute")] | Annotated[TaskListCreateParams, Tag("task_list")],
    Discriminator(_request_kind),
]
"""``POST /execute``: one execution, or (a body with ``tasks``) a task list."""

ExecutionIdPath = Annotated[str, PathParam(pattern=EXECUTION_ID_PATTERN)]
ListIdPath = Annotated[str, PathParam(pattern=EXECUTION_ID_PATTERN)]


class ErrorDetail(BaseModel):
    code: int = Field(description="The JSON-RPC error code of the same error on the WebSocket.")
    message: str
    data: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """Every error of ours: the same code, message and data as the WebSocket door sends."""

    error: ErrorDetail


class HTTPErrorBody(BaseModel):
    """Refusals before a handler runs (missing or wrong token)."""

    detail: str


class ExecutionStatus(ExecutionInfo):
    """``status`` of one execution; newer servers may add fields."""

    model_config = ConfigDict(extra="allow")


# ExecutionInfo's fields name models defined after it in protocol.models; resolve them here.
ExecutionStatus.model_rebuild(
    _types_namespace={"AgentResult": AgentResult, "AgentFailure": AgentFailure}
)


class ExecutionList(BaseModel):
    executions: list[ExecutionStatus]


class TaskLists(BaseModel):
    task_lists: list[TaskListStatus]


class ResultEvent(BaseModel):
    seq: int = Field(description="The event's seq (a gap: its first missing seq).")
    method: str = Field(description='The notification, e.g. "process.output".')
    params: dict[str, Any]


class StreamText(BaseModel):
    data: str = Field(description="This page's output of the stream, as text or base64.")
    encoding: Literal["utf-8", "base64"] = Field(
        description="base64 when the bytes are not valid UTF-8."
    )
    bytes: int = Field(description="Length of the decoded output in bytes.")


class ResultsPage(BaseModel):
    execution_id: str
    state: str
    finished: bool = Field(description="The execution ended: no event will follow the last.")
    events: list[ResultEvent] = Field(description="Events with seq > after_seq, oldest first.")
    next_after_seq: int = Field(description="Pass as after_seq to get the next page.")
    last_seq: int = Field(description="Newest seq the execution has so far.")
    has_more: bool = Field(description="Events past this page exist already.")
    output: dict[Literal["stdout", "stderr"], StreamText] = Field(
        description="The page's process.output pieces joined per stream."
    )


class AuthSource(BaseModel):
    kind: str = Field(description="api_key, oauth_token, third_party, credentials_file, ...")
    detail: str = Field(description="Where it was found (a variable name or a file path).")


class ClaudeCli(BaseModel):
    installed: bool
    path: str | None = None
    version: str | None = None
    version_error: str | None = None


class AuthStatus(BaseModel):
    claude: ClaudeCli
    authenticated: bool = Field(description="A credential Claude Code would use was found.")
    sources: list[AuthSource]
    instructions: list[str] = Field(description="What to do; empty when all is set up.")


# --- errors ----------------------------------------------------------------------------------


def _status_for(exc: CCExecutorError) -> int:
    for cls in type(exc).__mro__:
        status = HTTP_STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500


async def rest_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """The one place the REST door turns exceptions into HTTP errors (register on the app)."""
    if isinstance(exc, ValidationError):  # a model validated inside a handler: still bad input
        exc = InvalidParams("invalid params", errors=exc.errors(include_url=False))
    if not isinstance(exc, CCExecutorError):
        raise exc
    status = _status_for(exc)
    if status >= 500:
        logger.warning("{} {} failed: {}", request.method, request.url.path, exc.message)
    data = jsonable_encoder(exc.data) if exc.data else None
    body = {"error": {"code": exc.code, "message": exc.message, "data": data}}
    return JSONResponse(body, status_code=status)


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Documented error responses: every route can meet 400, 401, 403 and 503, plus ``statuses``."""
    models: dict[int, Any] = {
        400: ErrorBody | HTTPErrorBody,  # ours, or FastAPI's "error parsing the body"
        401: HTTPErrorBody,
        403: ErrorBody | HTTPErrorBody,  # CommandNotAllowed, or a refused token/Origin
    }
    return {s: {"model": models.get(s, ErrorBody)} for s in (400, 401, 403, 503, *statuses)}


# --- results ---------------------------------------------------------------------------------


def _event_object(item: Event | Gap, execution_id: str) -> ResultEvent:
    if isinstance(item, Gap):
        return ResultEvent(
            seq=item.from_seq,
            method=Notification.STREAM_GAP,
            params={"execution_id": execution_id, "from_seq": item.from_seq, "to_seq": item.to_seq},
        )
    frame = orjson.loads(item.frame)
    return ResultEvent(seq=item.seq, method=item.method, params=frame.get("params") or {})


def _piece_bytes(params: Mapping[str, Any]) -> bytes:
    data = str(params.get("data", ""))
    if params.get("encoding") == "base64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error:
            return b""  # the supervisor wrote it; unreadable base64 would be its bug, not ours
    return data.encode("utf-8", "surrogatepass")


def _stream_text(raw: bytes) -> StreamText:
    try:
        return StreamText(data=raw.decode("utf-8"), encoding="utf-8", bytes=len(raw))
    except UnicodeDecodeError:
        return StreamText(
            data=base64.b64encode(raw).decode("ascii"), encoding="base64", bytes=len(raw)
        )


def results_page(
    execution_id: str, status: Mapping[str, Any], items: Iterable[Event | Gap], after_seq: int
) -> ResultsPage:
    """One page of results: events as objects, ``process.output`` joined and decoded per stream."""
    events = [_event_object(item, execution_id) for item in items]
    streams: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    for event in events:
        if event.method == Notification.PROCESS_OUTPUT:
            stream = streams.get(str(event.params.get("type")))
            if stream is not None:
                stream += _piece_bytes(event.params)
    next_after = after_seq
    if events:
        last = events[-1]
        next_after = (
            int(last.params["to_seq"]) if last.method == Notification.STREAM_GAP else last.seq
        )
    last_seq = max(int(status.get("last_seq") or 0), next_after)
    state = str(status.get("state"))
    return ResultsPage(
        execution_id=execution_id,
        state=state,
        finished=state in _FINISHED,
        events=events,
        next_after_seq=next_after,
        last_seq=last_seq,
        has_more=last_seq > next_after,
        output={
            "stdout": _stream_text(bytes(streams["stdout"])),
            "stderr": _stream_text(bytes(streams["stderr"])),
        },
    )


# --- /auth/status ----------------------------------------------------------------------------


def claude_path_lookup(config: ClaudeRunConfig) -> Callable[[], str | None]:
    """Where executions would find ``claude`` (setting, then the children's PATH), or ``None``."""

    def lookup() -> str | None:
        try:
            return find_claude(config.claude_path, search_path=config.search_path)
        except ServiceError:
            return None

    return lookup


async def probe_claude_version(
    path: str, env: Mapping[str, str], *, timeout_s: float = CLAUDE_VERSION_TIMEOUT_S
) -> tuple[str | None, str | None]:
    """``(version, None)`` from ``claude --version``, or ``(None, why not)``; bounded in time."""
    try:
        proc = await asyncio.create_subprocess_exec(
            path,
            "--version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
        )
    except OSError as exc:
        return None, f"could not run {path}: {exc.strerror or exc}"
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(timeout_s):
            # Read at most a bounded prefix; a CLI that writes more blocks and hits the timeout.
            output = await proc.stdout.read(CLAUDE_VERSION_OUTPUT_MAX_BYTES)
            code = await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLAUDE_VERSION_KILL_WAIT_S):
                await proc.wait()
        return None, f"`claude --version` did not finish within {timeout_s:g} s"
    text = output.decode("utf-8", "replace").strip()
    if code != 0:
        return None, f"`claude --version` exited with {code}: {text[:200]}"
    return text, None


def _json_object(path: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def claude_auth_sources(env: Mapping[str, str]) -> list[AuthSource]:
    """Every credential Claude Code 2.x would use, by name and place only (never a value).

    Variables first (``ANTHROPIC_API_KEY``, ``CLAUDE_CODE_OAUTH_TOKEN`` from ``claude
    setup-token``, ``ANTHROPIC_AUTH_TOKEN``, Bedrock/Vertex), then the login files: on Linux the
    OAuth tokens are in ``$CLAUDE_CONFIG_DIR/.credentials.json`` (default ``~/.claude``) under
    ``claudeAiOauth``; ``.claude.json``'s ``oauthAccount`` records a login (on macOS the tokens
    themselves are in the Keychain). Reads files: call it off the event loop.
    """
    sources: list[AuthSource] = []
    for name, kind in (
        ("ANTHROPIC_API_KEY", "api_key"),
        ("CLAUDE_CODE_OAUTH_TOKEN", "oauth_token"),
        ("ANTHROPIC_AUTH_TOKEN", "auth_token"),
    ):
        if env.get(name, "").strip():
            sources.append(AuthSource(kind=kind, detail=name))
    for name in ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"):
        if env.get(name, "").strip() not in ("", "0", "false"):
            sources.append(AuthSource(kind="third_party", detail=name))
    home = env.get("HOME")
    config_dir = env.get("CLAUDE_CONFIG_DIR") or (f"{home}/.claude" if home else None)
    if config_dir is not None:
        credentials = Path(config_dir) / ".credentials.json"
        oauth = (_json_object(credentials) or {}).get("claudeAiOauth")
        if isinstance(oauth, dict) and (oauth.get("accessToken") or oauth.get("refreshToken")):
            sources.append(AuthSource(kind="credentials_file", detail=str(credentials)))
    candidates = (
        [Path(env["CLAUDE_CONFIG_DIR"]) / ".claude.json"] if env.get("CLAUDE_CONFIG_DIR") else []
    )
    if home:
        candidates.append(Path(home) / ".claude.json")
    for state_file in candidates:
        if isinstance((_json_object(state_file) or {}).get("oauthAccount"), dict):
            sources.append(AuthSource(kind="oauth_account", detail=str(state_file)))
            break
    return sources


_INSTALL_HELP = (
    "Install Claude Code: `npm install -g @anthropic-ai/claude-code`"
    " (or scripts/install-claude.sh),"
    " or set CC_EXECUTOR_CLAUDE_PATH to the `claude` executable; then restart the daemon."
)
_LOGIN_HELP = (
    "Authenticate Claude Code as the user the daemon runs as: run `claude` once and log in"
    " (`/login`), or create a long-lived token with `claude setup-token` and export"
    " CLAUDE_CODE_OAUTH_TOKEN, or export ANTHROPIC_API_KEY; then restart the daemon."
)


async def _auth_status(
    lookup: Callable[[], str | None],
    env: Mapping[str, str],
    probe: Callable[[str, Mapping[str, str]], Awaitable[tuple[str | None, str | None]]],
) -> AuthStatus:
    path = await asyncio.to_thread(lookup)
    cli = ClaudeCli(installed=path is not None, path=path)
    if path is not None:
        cli.version, cli.version_error = await probe(path, env)
    sources = await asyncio.to_thread(claude_auth_sources, env)
    instructions = []
    if path is None or cli.version_error is not None:
        instructions.append(_INSTALL_HELP)
    if not sources:
        instructions.append(_LOGIN_HELP)
    return AuthStatus(
        claude=cli, authenticated=bool(sources), sources=sources, instructions=instructions
    )


# --- the router ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RequestCheck:
    """Origin (a browser page of a foreign site is refused even with a token), then the token."""

    token: str | None
    origins: frozenset[str]

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_AUTH_SCHEME)],
    ) -> None:
        if not origin_allowed(request.headers.get("origin"), self.origins):
            raise HTTPException(403, "Origin not allowed")
        decision = check_bearer(credentials.credentials if credentials else None, self.token)
        if not decision.allowed:
            raise HTTPException(
                decision.status, decision.reason, headers={"WWW-Authenticate": "Bearer"}
            )


def _states(values: builtins.list[str] | None) -> builtins.list[str] | None:
    if not values:
        return None
    states = [s.strip() for value in values for s in value.split(",") if s.strip()]
    unknown = sorted(set(states) - set(_ALL_STATES))
    if unknown:
        raise InvalidParams(f"unknown state(s): {', '.join(unknown)}", known=list(_ALL_STATES))
    return states or None


StateQuery = Annotated[
    builtins.list[str] | None,
    Query(description="Only these states (repeat the parameter, or separate with commas)."),
]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)]


def build_rest_router(
    service: ExecutionService,
    task_lists: TaskListControl,
    *,
    token: str | None,
    origins: frozenset[str],
    claude_path_lookup: Callable[[], str | None],
    claude_env: Mapping[str, str],
    claude_version_probe: Callable[
        [str, Mapping[str, str]], Awaitable[tuple[str | None, str | None]]
    ] = probe_claude_version,
) -> APIRouter:
    """The REST routes; every one needs the token (``token=None``: auth is off).

    ``origins`` are the browser Origins accepted (``server.security.allowed_origins``); a
    request without an Origin header is a non-browser client and only needs the token.

    ``claude_env`` is the environment executions get (the daemon's, without its token): the
    CLI is probed and credentials are looked for where the children will look.
    """
    router = APIRouter(dependencies=[Depends(_RequestCheck(token, origins))])

    @router.post(
        "/execute",
        status_code=202,
        response_model=ExecuteResult | TaskListStatus,
        responses=_responses(400, 429),
        summary="Start one execution, or a task list (a body with `tasks`)",
    )
    async def execute(body: Annotated[ExecuteRequest, Body()]) -> dict[str, Any]:
        if isinstance(body, TaskListCreateParams):
            return await task_lists.create(body)
        execution = await service.execute(body)
        return {
            "execution_id": execution.id,
            "status": "started",
            "pid": execution.pid,
            "pgid": execution.pgid,
        }

    @router.get("/executions", response_model=ExecutionList, responses=_responses(400))
    async def list_executions(state: StateQuery = None, limit: LimitQuery = 100) -> dict[str, Any]:
        return {"executions": await service.list(_states(state), limit=limit)}

    @router.get(
        "/executions/{execution_id}/status",
        response_model=ExecutionStatus,
        responses=_responses(404),
    )
    async def status(execution_id: ExecutionIdPath) -> dict[str, Any]:
        return await service.status(execution_id)

    @router.get(
        "/executions/{execution_id}/results",
        response_model=ResultsPage,
        responses=_responses(404),
        summary="Events past after_seq (oldest first), with the output decoded",
    )
    async def results(
        execution_id: ExecutionIdPath,
        after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
        limit: Annotated[int, Query(ge=1, le=RESULTS_MAX_LIMIT)] = RESULTS_DEFAULT_LIMIT,
    ) -> ResultsPage:
        items = await service.events(execution_id, after_seq=after_seq, limit=limit)
        # Status after the events: its last_seq then covers every event of this page.
        return results_page(execution_id, await service.status(execution_id), items, after_seq)

    @router.delete(
        "/executions/{execution_id}",
        response_model=ExecutionStatus,
        responses=_responses(404, 409),
        summary="Cancel: TERM, grace, KILL to the whole process group",
    )
    async def cancel(execution_id: ExecutionIdPath) -> dict[str, Any]:
        return await service.cancel(execution_id)

    @router.post(
        "/executions/{execution_id}/pause",
        response_model=ExecutionStatus,
        responses=_responses(404, 409),
    )
    async def pause(execution_id: ExecutionIdPath) -> dict[str, Any]:
        return await service.pause(execution_id)

    @router.post(
        "/executions/{execution_id}/resume",
        response_model=ExecutionStatus,
        responses=_responses(404, 409),
    )
    async def resume(execution_id: ExecutionIdPath) -> dict[str, Any]:
        return await service.resume(execution_id)

    @router.get("/task-lists", response_model=TaskLists, responses=_responses(400))
    async def list_task_lists(state: StateQuery = None, limit: LimitQuery = 100) -> dict[str, Any]:
        states = [s.strip() for v in state or () for s in v.split(",") if s.strip()] or None
        return {"task_lists": await task_lists.list(states, limit=limit)}

    @router.get("/task-lists/{list_id}", response_model=TaskListStatus, responses=_responses(404))
    async def task_list_status(list_id: ListIdPath) -> dict[str, Any]:
        return await task_lists.status(list_id)

    @router.post(
        "/task-lists/{list_id}/pause",
        response_model=TaskListStatus,
        responses=_responses(404, 409),
        summary="Hold the queue; with pause_running also SIGSTOP the running task",
    )
    async def task_list_pause(
        list_id: ListIdPath, pause_running: Annotated[bool, Query()] = False
    ) -> dict[str, Any]:
        return await task_lists.pause(list_id, pause_running=pause_running)

    @router.post(
        "/task-lists/{list_id}/resume",
        response_model=TaskListStatus,
        responses=_responses(404, 409),
    )
    async def task_list_resume(list_id: ListIdPath) -> dict[str, Any]:
        return await task_lists.resume(list_id)

    @router.delete(
        "/task-lists/{list_id}",
        response_model=TaskListStatus,
        responses=_responses(404, 409),
        summary="Cancel the list: the running task is canceled, the rest never start",
    )
    async def task_list_cancel(list_id: ListIdPath) -> dict[str, Any]:
        return await task_lists.cancel(list_id)

    @router.get("/auth/status", response_model=AuthStatus, responses=_responses())
    async def auth_status() -> AuthStatus:
        return await _auth_status(claude_path_lookup, claude_env, claude_version_probe)

    return router
