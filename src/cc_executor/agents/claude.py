"""How to run the Claude Code CLI: its options, argv, environment and executable.

Owns the *shape* of a Claude run, not the run itself: nothing here spawns a process, reads
``os.environ`` or touches the filesystem beyond looking up the executable. The supervisor runs
the argv this module builds (always a list, never a shell string), with the environment
:func:`child_env` returns; :class:`~cc_executor.agents.claude_stream.StreamJsonParser` reads its
stdout and :func:`~cc_executor.agents.claude_failures.classify_failure` explains a failed run.

Facts about the CLI (version 2.1.332) that shape the argv, see ``docs/claude-cli.md``:

- ``-p``/``--print`` is a flag; the prompt is the positional argument. A prompt that starts
  with ``-`` (``--help``) is read as an option unless it follows ``--``, so the prompt always
  goes last, after ``--``.
- ``--allowedTools``, ``--disallowedTools``, ``--add-dir`` and ``--mcp-config`` are variadic:
  they swallow every following argument that is not an option. ``--`` before the prompt also
  keeps the prompt out of them.
- Free-text option values are passed as ``--name=value`` so a value starting with ``-`` is
  never read as an option.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cc_executor.errors import InvalidParams, ServiceError

__all__ = [
    "CLAUDE_PATH_SETTING",
    "EXECUTION_ID_ENV",
    "PARENT_SESSION_ENV",
    "ClaudeAdapter",
    "ClaudeOptions",
    "PermissionMode",
    "build_argv",
    "child_env",
    "find_claude",
]

CLAUDE_PATH_SETTING = "CC_EXECUTOR_CLAUDE_PATH"
CLAUDE_EXECUTABLE = "claude"
EXECUTION_ID_ENV = "CC_EXECUTOR_EXECUTION_ID"  # marker the supervisor sweeps escaped children by

# Variables a running Claude Code session sets for the commands it runs (seen with `env` in a
# Bash tool call of 2.1.332, plus CLAUDE_CODE_SSE_PORT of the IDE integration). Inherited by a
# nested `claude`, they make it believe it is a sub-session of ours: it reports to the parent's
# messaging socket, reuses its session id, and changes its entry point. Our own daemon token
# must never reach an agent either.
PARENT_SESSION_ENV: frozenset[str] = frozenset(
    {
        "CLAUDECODE",
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAUDE_CODE_SSE_PORT",
        "CLAUDE_CODE_CHILD_NOTES_DIR",
        "CLAUDE_CODE_CHILD_SESSION",
        "CLAUDE_CODE_EXECPATH",
        "CLAUDE_CODE_MESSAGING_SOCKET",
        "CLAUDE_CODE_MESSAGING_TOKEN",
        "CLAUDE_CODE_SESSION_ATTENDED",
        "CLAUDE_CODE_SESSION_ID",
        "CLAUDE_EFFORT",
        "CLAUDE_PID",
        "AI_AGENT",
        "CC_EXECUTOR_TOKEN",
    }
)

PermissionMode = Literal[
    "default", "acceptEdits", "auto", "bypassPermissions", "manual", "dontAsk", "plan"
]


def _no_option_like(values: list[str], what: str) -> list[str]:
    for value in values:
        if not value or value.startswith("-"):
            raise ValueError(f"{what} entries must be non-empty and not start with '-': {value!r}")
    return values


class ClaudeOptions(BaseModel):
    """What a caller may choose about one Claude run. ``cwd`` is where the supervisor runs it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    fallback_model: str | None = None
    max_turns: int | None = Field(None, ge=1)
    permission_mode: PermissionMode | None = Field(
        None, description="None: the daemon's default (its setting), if any."
    )
    dangerously_skip_permissions: bool = Field(
        False, description="Pass --dangerously-skip-permissions. Only for sandboxes."
    )
    allowed_tools: list[str] = Field(default_factory=list)
    disallowed_tools: list[str] = Field(default_factory=list)
    append_system_prompt: str | None = None
    mcp_config: list[str] = Field(
        default_factory=list, description="Paths of MCP config files, or JSON strings."
    )
    add_dirs: list[str] = Field(default_factory=list)
    resume: str | None = Field(None, description="Session id (or name) to resume.")
    continue_session: bool = False
    session_id: str | None = Field(None, description="Use this UUID for the new session.")
    cwd: str | None = None

    @field_validator("allowed_tools", "disallowed_tools", "add_dirs", "mcp_config")
    @classmethod
    def _check_list(cls, values: list[str]) -> list[str]:
        return _no_option_like(values, "list")

    @field_validator("model", "fallback_model", "resume")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or value.startswith("-")):
            raise ValueError(f"must be non-empty and not start with '-': {value!r}")
        return value

    @field_validator("session_id")
    @classmethod
    def _check_uuid(cls, value: str | None) -> str | None:
        if value is not None:
            uuid.UUID(value)  # the CLI refuses anything else
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> ClaudeOptions:
        if self.resume is not None and self.continue_session:
            raise ValueError("resume and continue_session are exclusive")
        if self.permission_mode == "bypassPermissions" and not self.dangerously_skip_permissions:
            raise ValueError("permission_mode=bypassPermissions needs dangerously_skip_permissions")
        return self


def _check_text(value: str, what: str) -> None:
    # execve() cannot carry NUL bytes; better a clear error here than a ValueError at spawn.
    if "\x00" in value:
        raise InvalidParams(f"{what} must not contain NUL characters", field=what)


def build_argv(
    prompt: str,
    options: ClaudeOptions | None = None,
    *,
    claude_path: str,
    default_permission_mode: PermissionMode | None = None,
) -> list[str]:
    """The argv of a non-interactive, stream-json Claude run; the prompt is verbatim, last."""
    options = options or ClaudeOptions()
    if not prompt.strip():
        raise InvalidParams("prompt must not be empty", field="prompt")
    _check_text(prompt, "prompt")
    return [
        claude_path,
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        *_model_flags(options),
        *_permission_flags(options, default_permission_mode),
        *_context_flags(options),
        *_session_flags(options),
        "--",
        prompt,
    ]


def _model_flags(options: ClaudeOptions) -> list[str]:
    flags: list[str] = []
    if options.model:
        flags.append(f"--model={options.model}")
    if options.fallback_model:
        flags.append(f"--fallback-model={options.fallback_model}")
    if options.max_turns is not None:
        flags.append(f"--max-turns={options.max_turns}")
    return flags


def _permission_flags(options: ClaudeOptions, default: PermissionMode | None) -> list[str]:
    mode = options.permission_mode or default
    if mode == "bypassPermissions" and not options.dangerously_skip_permissions:
        raise InvalidParams(
            "bypassPermissions needs dangerously_skip_permissions", field="permission_mode"
        )
    flags = [f"--permission-mode={mode}"] if mode else []
    if options.dangerously_skip_permissions:
        flags.append("--dangerously-skip-permissions")
    for flag, tools in (
        ("--allowedTools", options.allowed_tools),
        ("--disallowedTools", options.disallowed_tools),
    ):
        if tools:
            flags.extend([flag, *tools])
    return flags


def _context_flags(options: ClaudeOptions) -> list[str]:
    flags: list[str] = []
    if options.append_system_prompt:
        _check_text(options.append_system_prompt, "append_system_prompt")
        flags.append(f"--append-system-prompt={options.append_system_prompt}")
    if options.add_dirs:
        flags.extend(["--add-dir", *options.add_dirs])
    if options.mcp_config:
        flags.extend(["--mcp-config", *options.mcp_config])
    return flags


def _session_flags(options: ClaudeOptions) -> list[str]:
    flags: list[str] = []
    if options.resume:
        flags.append(f"--resume={options.resume}")
    if options.continue_session:
        flags.append("--continue")
    if options.session_id:
        flags.append(f"--session-id={options.session_id}")
    return flags


def find_claude(configured: str | None, *, search_path: str | None = None) -> str:
    """The Claude executable: the ``CC_EXECUTOR_CLAUDE_PATH`` setting first, then ``PATH``.

    ``search_path`` is the PATH to search (``None``: the process's, as :func:`shutil.which`).
    """
    if configured:
        found = shutil.which(configured, path=search_path)
        if found is None:
            raise ServiceError(
                f"Claude Code CLI not found at {configured!r} (setting {CLAUDE_PATH_SETTING})",
                setting=CLAUDE_PATH_SETTING,
                configured=configured,
            )
        return os.path.abspath(found)
    found = shutil.which(CLAUDE_EXECUTABLE, path=search_path)
    if found is None:
        raise ServiceError(
            f"Claude Code CLI not found on PATH; install it (scripts/install-claude.sh) "
            f"or set {CLAUDE_PATH_SETTING}",
            setting=CLAUDE_PATH_SETTING,
        )
    return os.path.abspath(found)


def child_env(base: Mapping[str, str], *, execution_id: str) -> dict[str, str]:
    """``base`` without the parent session's variables and our token, plus the marker."""
    env = {k: v for k, v in base.items() if k not in PARENT_SESSION_ENV}
    env[EXECUTION_ID_ENV] = execution_id
    return env


@dataclass(frozen=True)
class ClaudeAdapter:
    """The daemon's view of Claude: one executable and one default permission mode."""

    claude_path: str
    default_permission_mode: PermissionMode | None = None

    def argv(self, prompt: str, options: ClaudeOptions | None = None) -> list[str]:
        return build_argv(
            prompt,
            options,
            claude_path=self.claude_path,
            default_permission_mode=self.default_permission_mode,
        )

    def env(self, base: Mapping[str, str], *, execution_id: str) -> dict[str, str]:
        return child_env(base, execution_id=execution_id)
