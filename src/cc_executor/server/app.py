"""The composition root: ``create_app(settings)`` builds the Supervisor and the FastAPI app.

Owns wiring only. The lifespan owns the Supervisor: on shutdown every running group is canceled
(TERM, grace, KILL, sweep) before the process exits. Nothing here reads the environment except
to hand the children a copy of it without the daemon's token.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from loguru import logger
from pydantic import ValidationError

from cc_executor import __version__
from cc_executor.config import Settings
from cc_executor.errors import CCExecutorError
from cc_executor.scheduler import ClaudeRunConfig
from cc_executor.scheduler.hooks import install_reload_signal
from cc_executor.scheduler.hooks.gate import HookGate
from cc_executor.scheduler.service import ExecutionService, Retention, embedded_owner
from cc_executor.scheduler.task_lists import TaskLists
from cc_executor.scheduler.timeouts import TimeoutPredictor
from cc_executor.server.mcp_lazy import mount_mcp_lazy
from cc_executor.server.rest import build_rest_router, claude_path_lookup, rest_error_handler
from cc_executor.server.security import HostCheckMiddleware, allowed_host_names, allowed_origins
from cc_executor.server.websocket import WebSocketDoor, WebSocketFastPath, build_dispatcher
from cc_executor.storage import open_store
from cc_executor.supervisor import Supervisor
from cc_executor.tokens import load_or_create_token

__all__ = [
    "Services",
    "build_services",
    "child_base_env",
    "create_app",
    "daemon_owner",
    "embedded_services",
    "remove_stale_spool",
    "resolve_token",
]

DAY_S = 86400.0
WS_PATH = "/ws/mcp"
# Variables of the daemon's own environment that must never reach a child.
_SECRET_ENV = ("CC_EXECUTOR_TOKEN",)


def child_base_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The daemon's environment as children inherit it: without the token."""
    return {k: v for k, v in environ.items() if k not in _SECRET_ENV}


def remove_stale_spool(spool_dir: Path) -> int:
    """Delete event spool files a previous daemon left behind (it crashed); returns the count."""
    removed = 0
    for leftover in spool_dir.glob("*.events"):
        leftover.unlink(missing_ok=True)
        removed += 1
    if removed:
        logger.warning("removed {} event spool file(s) left by a previous daemon", removed)
    return removed


def resolve_token(settings: Settings) -> str | None:
    """The token every door checks; ``None`` when auth is explicitly turned off."""
    if not settings.auth_required:
        return None
    if settings.token is not None:
        return settings.token.get_secret_value()
    return load_or_create_token(settings.token_file)


@dataclass(frozen=True)
class Services:
    """The daemon's parts, built once from the settings; enter with :meth:`running`."""

    supervisor: Supervisor
    service: ExecutionService
    task_lists: TaskLists
    claude: ClaudeRunConfig
    spool_dir: Path

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Services]:
        """Open the store, recover, start the supervisor and the task lists; undo in reverse."""
        remove_stale_spool(self.spool_dir)
        async with self.service, self.task_lists:
            hooks = self.service.hooks
            # SIGHUP reloads hooks; signal handlers exist only on the main thread (the daemon),
            # not in the in-thread servers tests run.
            uninstall = (
                install_reload_signal(hooks.runner)
                if hooks is not None and threading.current_thread() is threading.main_thread()
                else None
            )
            try:
                yield self
            finally:
                if uninstall is not None:
                    uninstall()


def daemon_owner(settings: Settings) -> str:
    """The daemon's owner id: one per host, state dir and port (the pid-file lock's slot), so a
    restarted daemon recognises what its previous incarnation left running."""
    return f"daemon:{socket.gethostname()}:{settings.state_dir.resolve()}:{settings.port}"


def build_services(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    owner: str | None = None,
    auto_resume: bool = True,
    spool_dir: Path | None = None,
) -> Services:
    """Store, supervisor, service and task lists as ``settings`` say (nothing started yet).

    ``owner``: the daemon's own id by default; an embedded user passes its own
    (:func:`~cc_executor.scheduler.service.embedded_owner`) and ``auto_resume=False``.
    ``spool_dir``: where event logs spill; an embedded user passes a directory of its own, since
    :meth:`Services.running` empties it at start (the default is the daemon's).
    """
    base_env = child_base_env(os.environ if environ is None else environ)
    # One spool dir per daemon (state dir + port, which the pid-file lock makes unique), so the
    # files a crashed predecessor left behind can be removed at start without touching another
    # daemon's.
    if spool_dir is None:
        spool_dir = settings.state_dir / f"spool-{settings.port}"
    supervisor = Supervisor(
        shell=settings.shell,
        terminate_grace_s=settings.terminate_grace_s,
        max_executions=settings.max_executions,
        event_log_memory_bytes=settings.event_log_memory_bytes,
        event_log_max_bytes=settings.event_log_max_bytes,
        spool_dir=spool_dir,
        finished_executions_kept=settings.finished_executions_kept,
        base_env=base_env,
    )
    # `claude` is looked up where the children look: on the PATH they inherit.
    claude = ClaudeRunConfig.from_settings(settings, search_path=base_env.get("PATH"))
    store = open_store(settings)
    hooks = HookGate.from_settings(settings, base_env=base_env, record=store.add_hook_run)
    service = ExecutionService(
        supervisor=supervisor,
        store=store,
        claude=claude,
        hooks=hooks,
        timeouts=TimeoutPredictor.from_settings(settings, store),
        owner=owner or daemon_owner(settings),
        heartbeat_s=settings.heartbeat_s,
        owner_ttl_s=settings.owner_ttl_s,
        retention=Retention(
            max_age_s=None
            if settings.retention_max_age_days is None
            else settings.retention_max_age_days * DAY_S,
            keep_last=settings.retention_max_executions,
            max_event_bytes=settings.retention_max_event_bytes,
        ),
    )
    return Services(
        supervisor=supervisor,
        service=service,
        task_lists=TaskLists(service, auto_resume=auto_resume),
        claude=claude,
        spool_dir=spool_dir,
    )


EMBEDDED_SPOOL_PREFIX = "cc-executor-spool-"


@asynccontextmanager
async def embedded_services(
    settings: Settings, *, environ: Mapping[str, str] | None = None
) -> AsyncIterator[Services]:
    """The daemon's services running inside another program (``cc-executor mcp``, the Python
    API): an owner id of its own, no automatic resume of task lists, and event logs spilling to
    a temporary directory of its own (a daemon empties its spool dir at start; this one must
    never be that one)."""
    with tempfile.TemporaryDirectory(prefix=EMBEDDED_SPOOL_PREFIX) as spool:
        services = build_services(
            settings,
            environ=environ,
            owner=embedded_owner(),
            auto_resume=False,
            spool_dir=Path(spool),
        )
        async with services.running():
            yield services


def create_app(settings: Settings) -> FastAPI:
    token = resolve_token(settings)
    hosts = allowed_host_names(settings.host, settings.port, settings.allowed_hosts)
    services = build_services(settings)
    supervisor = services.supervisor
    door = WebSocketDoor(
        service=services.service,
        task_lists=services.task_lists,
        dispatcher=build_dispatcher(max_frame_bytes=settings.max_frame_bytes),
        token=token,
        hosts=hosts,
        origins=allowed_origins(settings.host, settings.port, settings.allowed_origins),
        max_executions_per_connection=settings.max_executions_per_connection,
        cancel_on_disconnect=settings.on_disconnect == "cancel",
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The MCP door's session manager (`mcp_running`, from mount_mcp_lazy below) runs inside the
        # services: it stops taking tool calls before the service stops.
        async with services.running(), mcp_running:
            yield

    app = FastAPI(
        title="cc-executor",
        version=__version__,
        lifespan=lifespan,
        # REST door: the schema and the docs page are open (they hold no secret); the routes
        # they describe need the token.
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.supervisor = supervisor
    app.state.service = services.service
    app.state.task_lists = services.task_lists
    app.state.settings = settings
    app.state.claude = services.claude
    app.add_middleware(HostCheckMiddleware, hosts=hosts)
    # Added last, so outermost of ours: /ws/mcp skips the router (the door checks Host itself).
    app.add_middleware(WebSocketFastPath, path=WS_PATH, door=door)
    # --- REST door (server/rest.py) ---
    app.include_router(
        build_rest_router(
            services.service,
            services.task_lists,
            token=token,
            origins=allowed_origins(settings.host, settings.port, settings.allowed_origins),
            claude_path_lookup=claude_path_lookup(services.claude),
            claude_env=child_base_env(os.environ),  # what executions get: probe it, not ours
        )
    )
    app.add_exception_handler(CCExecutorError, rest_error_handler)
    app.add_exception_handler(ValidationError, rest_error_handler)
    # --- end REST door ---
    # --- MCP door (server/mcp.py): /mcp (streamable HTTP) and /.well-known/mcp/cc-executor.json ---
    # Mounted lazily (server/mcp_lazy.py): the MCP SDK is imported by the first /mcp request,
    # not at start (~23 MB of RSS and ~0.5 s of start-up most daemons never need).
    mcp_running = mount_mcp_lazy(
        app,
        services.service,
        services.task_lists,
        token=token,
        hosts=hosts,
        origins=allowed_origins(settings.host, settings.port, settings.allowed_origins),
    )
    # --- end MCP door ---

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "running_executions": supervisor.running_count,
        }

    return app
