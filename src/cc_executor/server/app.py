"""The composition root: ``create_app(settings)`` builds the Supervisor and the FastAPI app.

Owns wiring only. The lifespan owns the Supervisor: on shutdown every running group is canceled
(TERM, grace, KILL, sweep) before the process exits. Nothing here reads the environment except
to hand the children a copy of it without the daemon's token.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from loguru import logger

from cc_executor import __version__
from cc_executor.config import Settings
from cc_executor.scheduler import ClaudeRunConfig
from cc_executor.server.security import HostCheckMiddleware, allowed_host_names, allowed_origins
from cc_executor.server.websocket import WebSocketDoor, build_dispatcher
from cc_executor.supervisor import Supervisor
from cc_executor.tokens import load_or_create_token

__all__ = ["child_base_env", "create_app", "remove_stale_spool", "resolve_token"]

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


def create_app(settings: Settings) -> FastAPI:
    token = resolve_token(settings)
    hosts = allowed_host_names(settings.host, settings.port, settings.allowed_hosts)
    base_env = child_base_env(os.environ)
    # One spool dir per daemon (state dir + port, which the pid-file lock makes unique), so the
    # files a crashed predecessor left behind can be removed at start without touching another
    # daemon's.
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
    door = WebSocketDoor(
        supervisor=supervisor,
        dispatcher=build_dispatcher(max_frame_bytes=settings.max_frame_bytes),
        token=token,
        hosts=hosts,
        origins=allowed_origins(settings.host, settings.port, settings.allowed_origins),
        max_executions_per_connection=settings.max_executions_per_connection,
        cancel_on_disconnect=settings.on_disconnect == "cancel",
        claude=claude,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        remove_stale_spool(spool_dir)
        async with supervisor:
            yield

    app = FastAPI(
        title="cc-executor",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.supervisor = supervisor
    app.state.settings = settings
    app.state.claude = claude
    app.add_middleware(HostCheckMiddleware, hosts=hosts)
    app.add_api_websocket_route("/ws/mcp", door)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "running_executions": supervisor.running_count,
        }

    return app
