"""The one ``Settings`` object (pydantic-settings, prefix ``CC_EXECUTOR_``, reads ``.env``).

Built only at the edges: the CLI and ``create_app``. Inner code takes plain keyword arguments
with visible defaults and never reads ``os.environ``. Every field here is listed, with its
default, in ``.env.example``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_PORT", "Settings", "default_shell", "default_state_dir"]

DEFAULT_PORT = 8003  # the earlier CC Executor's port; its clients connect here unchanged
MiB = 1024 * 1024


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/cc-executor``, else ``~/.local/state/cc-executor``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cc-executor"


def default_shell() -> str:
    """zsh when installed (what Claude Code uses), else bash, else sh."""
    for name in ("zsh", "bash", "sh"):
        found = shutil.which(name)
        if found:
            return found
    return "/bin/sh"


class Settings(BaseSettings):
    """Every knob of the daemon, the CLI and the clients."""

    model_config = SettingsConfigDict(
        env_prefix="CC_EXECUTOR_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- network ---------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface to bind; loopback by default.")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="TCP port of the daemon.")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser Origins allowed on /ws/mcp besides http(s)://<bound host>:<port>.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Extra Host header names accepted (DNS-rebinding guard); loopback always.",
    )

    # --- security --------------------------------------------------------------------------
    auth_required: bool = Field(True, description="Require the bearer token on every door.")
    token: SecretStr | None = Field(
        None, description="Use this token instead of the generated one in <state_dir>/token."
    )
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Token file (0600), pid file and daemon log live here.",
    )

    # --- processes -------------------------------------------------------------------------
    shell: str = Field(
        default_factory=default_shell,
        description="Shell that runs `command` strings (zsh when installed, else bash).",
    )
    terminate_grace_s: float = Field(
        5.0, ge=0, description="CANCEL: seconds between SIGTERM and SIGKILL to the group."
    )
    max_executions: int = Field(64, ge=1, description="Running executions, all connections.")
    max_executions_per_connection: int = Field(
        16, ge=1, description="Running executions started by one connection."
    )
    on_disconnect: Literal["keep", "cancel"] = Field(
        "keep", description="What happens to a connection's executions when it drops."
    )
    event_log_memory_bytes: int = Field(
        8 * MiB,
        ge=64 * 1024,
        description=(
            "Newest events kept in memory per execution; older ones are read back from the"
            " store once it holds them (up to twice this waits for it), else spill to the spool."
        ),
    )
    event_log_max_bytes: int = Field(
        1024 * MiB,
        ge=64 * 1024,
        description="Events kept per execution (memory + spool file) for attach; oldest dropped.",
    )
    finished_executions_kept: int = Field(
        1000, ge=0, description="Finished executions kept in memory for status/attach."
    )

    server_url: str | None = Field(
        None,
        description="cc_execute() runs through this daemon (ws://host:port) instead of in-process.",
    )

    # --- agents (Claude Code) ------------------------------------------------------------------
    claude_path: str | None = Field(
        None, description="The `claude` executable; found on PATH when unset."
    )
    claude_permission_mode: str | None = Field(
        None,
        description="Default --permission-mode of Claude runs (acceptEdits, plan, ...).",
    )
    claude_result_grace_s: float = Field(
        10.0, gt=0, description="After Claude's `result` line, seconds it may take to exit."
    )
    claude_idle_timeout_s: float | None = Field(
        None, gt=0, description="Kill a Claude run with no output at all for this long."
    )
    retry_attempts: int = Field(
        5, ge=1, description="Attempts of a Claude run on rate limit / overload (429, 529)."
    )
    retry_min_wait_s: float = Field(5.0, ge=0, description="First backoff wait, seconds.")
    retry_max_wait_s: float = Field(60.0, ge=0, description="Longest backoff wait, seconds.")
    token_limit_retries: int = Field(
        2, ge=0, description="Adaptive retries after an output-token-limit failure."
    )
    usage_limit_max_wait_s: float = Field(
        6 * 3600.0, ge=0, description="Longest wait for a usage limit to reset before failing."
    )
    reports_dir: Path | None = Field(
        None, description="Markdown reports and receipts; default <state_dir>/reports."
    )

    # --- timeout prediction ------------------------------------------------------------------
    timeout_prediction: Literal["off", "agents", "all"] = Field(
        "agents",
        description="Predict a timeout for executions without one: agent runs, all, or none.",
    )
    timeout_safety_factor: float = Field(
        1.5, ge=1.0, description="Predicted timeout = p90 of recent durations x this factor."
    )
    timeout_floor_s: float = Field(60.0, gt=0, description="Shortest predicted timeout, seconds.")
    timeout_ceiling_s: float = Field(
        3600.0, gt=0, description="Longest predicted timeout, seconds."
    )

    # --- hooks -----------------------------------------------------------------------------
    hooks_dir: Path | None = Field(
        None, description="Hook files (*.py) and hooks.json; default <state_dir>/hooks."
    )
    hooks_enabled: bool = Field(True, description="Run hooks (built-in ones included).")
    hook_timeout_s: float = Field(
        10.0, gt=0, description="Default per-hook time limit; a hook may set its own."
    )

    # --- wire ------------------------------------------------------------------------------
    max_frame_bytes: int = Field(
        1 * MiB, ge=1024, description="Incoming frames larger than this get error -32001."
    )
    ws_hard_max_frame_bytes: int = Field(
        16 * MiB,
        ge=1024,
        description="Frames larger than this close the connection (1009) before being read.",
    )
    ws_ping_interval_s: float = Field(20.0, gt=0, description="WebSocket ping frame interval.")
    ws_ping_timeout_s: float = Field(
        60.0, gt=0, description="Close a connection whose pong is this late."
    )

    # --- storage ---------------------------------------------------------------------------
    store: Literal["sqlite", "redis"] = Field(
        "sqlite", description="Durable history: embedded SQLite file, or Redis (scale-out)."
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis server of the redis store."
    )
    redis_prefix: str = Field(
        "cc-executor:", description="Prefix of every Redis key the store writes."
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="NORMAL survives a daemon crash; FULL also survives power loss (slower).",
    )
    retention_max_age_days: float | None = Field(
        30, gt=0, description="Prune finished executions and task lists older than this."
    )
    retention_max_executions: int | None = Field(
        10000, ge=0, description="Keep at most this many executions; older finished ones go."
    )
    retention_max_event_bytes: int | None = Field(
        2048 * MiB,
        ge=0,
        description="Prune the oldest finished executions while stored output exceeds this.",
    )
    heartbeat_s: float = Field(
        5.0, gt=0, description="How often the daemon writes its heartbeat to the store."
    )
    owner_ttl_s: float = Field(
        30.0,
        gt=0,
        description="A daemon silent this long is dead: others recover its executions and lists.",
    )

    # --- logging ---------------------------------------------------------------------------
    log_level: str = Field(
        "INFO",
        validation_alias=AliasChoices("CC_EXECUTOR_LOG_LEVEL", "LOG_LEVEL", "log_level"),
        description="loguru level.",
    )
    log_format: Literal["auto", "human", "json"] = Field(
        "auto", description="human on a TTY, JSON lines otherwise (auto)."
    )

    @property
    def store_path(self) -> Path:
        return self.state_dir / "cc-executor.db"

    @property
    def token_file(self) -> Path:
        return self.state_dir / "token"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"daemon-{self.port}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"daemon-{self.port}.log"
