"""From an ``execute`` request (or a Python call) to the :class:`ExecutionSpec` the supervisor runs.

Owns the choice between a plain command, an argv, an agent run (``agent: "claude"`` +
``prompt``) and a command whose program is ``claude`` (run as an argv in its simple form,
through the shell otherwise; see :func:`claude_command_spec`), and for the Claude kinds: the
executable (found at request time, so installing it later needs no restart), the argv
(``build_argv``, never a shell string), the child environment (``child_env``: the parent
session's variables and our token removed, the marker added; ``CLAUDE_CODE_MAX_RETRIES`` set to
:data:`CLI_MAX_RETRIES` so the daemon, not the CLI, owns retries), stdin closed, the idle
watchdog, and the :class:`~cc_executor.scheduler.agent_run.ClaudeRunPolicy` that parses and
retries. The doors stay thin: ``server/websocket.py`` and the Python API both call
:func:`build_execute_spec` (or :func:`claude_spec` directly).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict, get_args

from pydantic import ValidationError

from cc_executor.agents import (
    ClaudeOptions,
    PermissionMode,
    build_argv,
    child_env,
    find_claude,
    is_claude_command,
    shell_argv,
)
from cc_executor.agents.shell import ClaudeCommand, parse_claude_command
from cc_executor.errors import InvalidParams, ServiceError
from cc_executor.protocol.models import ExecuteParams
from cc_executor.scheduler.agent_run import ClaudeRunPolicy, LimitConfig
from cc_executor.scheduler.retry import BackoffConfig
from cc_executor.supervisor import ExecutionSpec

if TYPE_CHECKING:
    from cc_executor.config import Settings

__all__ = [
    "CLAUDE_AGENT",
    "CLI_MAX_RETRIES",
    "CLI_MAX_RETRIES_ENV",
    "DISPLAY_PROMPT_MAX_CHARS",
    "KNOWN_AGENTS",
    "ClaudeRunConfig",
    "build_execute_spec",
    "claude_command_spec",
    "claude_spec",
]

CLAUDE_AGENT = "claude"
KNOWN_AGENTS: tuple[str, ...] = (CLAUDE_AGENT,)
CLI_MAX_RETRIES_ENV = "CLAUDE_CODE_MAX_RETRIES"
# 0: the CLI gives up at the first 429/529 and the daemon's backoff takes over (checked with
# 2.1.332: one request, then the error result). A request's own `env` may still set it.
CLI_MAX_RETRIES = 0
DISPLAY_PROMPT_MAX_CHARS = 200  # `command` of status/process.started shows the prompt's start


@dataclass(frozen=True, slots=True)
class ClaudeRunConfig:
    """The daemon's Claude settings, as plain values (built once from ``Settings``)."""

    claude_path: str | None = None
    permission_mode: PermissionMode | None = None
    idle_timeout_s: float | None = None
    limits: LimitConfig = field(default_factory=LimitConfig)
    search_path: str | None = None  # PATH to look for `claude` on (None: this process's)
    cli_max_retries: int = CLI_MAX_RETRIES

    @classmethod
    def from_settings(
        cls, settings: Settings, *, search_path: str | None = None
    ) -> ClaudeRunConfig:
        mode = settings.claude_permission_mode
        if mode is not None and mode not in get_args(PermissionMode):
            raise ValueError(
                f"claude_permission_mode {mode!r} is not one of {get_args(PermissionMode)}"
            )
        return cls(
            claude_path=settings.claude_path,
            permission_mode=mode,  # type: ignore[arg-type]  # checked against the Literal above
            idle_timeout_s=settings.claude_idle_timeout_s,
            limits=LimitConfig(
                result_grace_s=settings.claude_result_grace_s,
                backoff=BackoffConfig(
                    attempts=settings.retry_attempts,
                    min_wait_s=settings.retry_min_wait_s,
                    max_wait_s=settings.retry_max_wait_s,
                ),
                token_limit_retries=settings.token_limit_retries,
                usage_limit_max_wait_s=settings.usage_limit_max_wait_s,
            ),
            search_path=search_path,
        )


def build_execute_spec(
    params: ExecuteParams, *, shell: str, claude: ClaudeRunConfig
) -> ExecutionSpec:
    """The spec for any ``execute`` request: command, argv, agent, or a ``claude`` command."""
    if params.agent is not None:
        if params.agent not in KNOWN_AGENTS:
            raise InvalidParams(
                f"unknown agent {params.agent!r}; known agents: {', '.join(KNOWN_AGENTS)}",
                agent=params.agent,
                known_agents=list(KNOWN_AGENTS),
            )
        options = _options(params.agent_options)
        return claude_spec(params.prompt or "", options, claude, **_common(params))
    if params.command is not None:
        if is_claude_command(params.command):
            return claude_command_spec(
                params.command, claude, shell=shell, stdin=params.stdin, **_common(params)
            )
        return ExecutionSpec(
            argv=shell_argv(shell, params.command),
            display_command=params.command,
            stdin=params.stdin,
            **_common(params),
        )
    assert params.argv is not None  # ExecuteParams guarantees exactly one target
    return ExecutionSpec(argv=list(params.argv), stdin=params.stdin, **_common(params))


def claude_spec(
    prompt: str,
    options: ClaudeOptions | None,
    config: ClaudeRunConfig,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    idle_timeout: float | None = None,
    timeout_includes_paused: bool = False,
    execution_id: str | None = None,
    metadata: Mapping[str, object] | None = None,
) -> ExecutionSpec:
    """A supervised ``claude -p ... --output-format stream-json --verbose -- prompt`` run.

    Raises ``InvalidParams`` (bad prompt/options) and ``ServiceError`` (CLI not found: the
    message names ``CC_EXECUTOR_CLAUDE_PATH``).
    """
    options = options or ClaudeOptions()
    path = find_claude(config.claude_path, search_path=config.search_path)

    def argv_for(text: str) -> list[str]:
        return build_argv(
            text, options, claude_path=path, default_permission_mode=config.permission_mode
        )

    argv = argv_for(prompt)
    shown = (
        prompt
        if len(prompt) <= DISPLAY_PROMPT_MAX_CHARS
        else prompt[:DISPLAY_PROMPT_MAX_CHARS] + "…"
    )
    return ExecutionSpec(
        argv=argv,
        display_command=shlex.join([*argv[:-1], shown]),
        cwd=cwd if cwd is not None else options.cwd,
        env=_agent_env(env, config),
        timeout=timeout,
        idle_timeout=idle_timeout if idle_timeout is not None else config.idle_timeout_s,
        timeout_includes_paused=timeout_includes_paused,
        stdin=False,
        execution_id=execution_id,
        metadata=dict(metadata or {}),
        agent=CLAUDE_AGENT,
        env_hook=_claude_env,
        attempt_policy=ClaudeRunPolicy(config.limits, prompt=prompt, argv_for_prompt=argv_for),
    )


def claude_command_spec(
    command: str,
    config: ClaudeRunConfig,
    *,
    shell: str,
    stdin: bool = False,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    idle_timeout: float | None = None,
    timeout_includes_paused: bool = False,
    execution_id: str | None = None,
    metadata: Mapping[str, object] | None = None,
) -> ExecutionSpec:
    """A ``command`` running ``claude``: the simple form as an argv, anything else via the shell.

    The simple form (:func:`~cc_executor.agents.shell.parse_claude_command`: ``[VAR=value ...]
    claude ... -p ...`` with nothing a shell would expand) runs without a shell, as the words
    the shell would have produced, plus ``--output-format stream-json --verbose`` right after
    the program name when the user chose no output format; ``VAR=value`` words go into the
    environment. So it gets ``agent.event``s, and token-limit retries when its prompt word is
    known. Every other command runs through the shell exactly as given (we never rewrite shell
    syntax): parsed and retried, but stream-json only if the caller asked for it, and without
    token-limit retries (we do not own its prompt). ``display_command`` is ``command`` either
    way.
    """
    base_env = _agent_env(env, config)
    parsed = parse_claude_command(command)
    program = _command_program(parsed, config, base_env) if parsed is not None else None
    policy: ClaudeRunPolicy
    if parsed is None or program is None:
        argv = shell_argv(shell, command)
        policy = ClaudeRunPolicy(config.limits, may_print_text=True)
    else:
        argv = parsed.run_argv(program)
        base_env.update(parsed.env)  # `VAR=value claude ...`: for claude, over the request's
        policy = _command_policy(parsed, program, config)
    return ExecutionSpec(
        argv=argv,
        display_command=command,
        cwd=cwd,
        env=base_env,
        timeout=timeout,
        idle_timeout=idle_timeout if idle_timeout is not None else config.idle_timeout_s,
        timeout_includes_paused=timeout_includes_paused,
        stdin=stdin,
        execution_id=execution_id,
        metadata=dict(metadata or {}),
        agent=CLAUDE_AGENT,
        env_hook=_claude_env,
        attempt_policy=policy,
    )


def _command_program(
    parsed: ClaudeCommand, config: ClaudeRunConfig, env: Mapping[str, str]
) -> str | None:
    """The executable of a simple ``claude`` command; ``None``: leave the lookup to the shell.

    A path (``./node_modules/.bin/claude``) runs as written, like the shell would. A bare
    ``claude`` is the daemon's Claude, as for ``agent: "claude"``: the
    ``CC_EXECUTOR_CLAUDE_PATH`` setting, else the child's ``PATH``.
    """
    if "/" in parsed.program:
        return parsed.program
    search_path = parsed.env.get("PATH") or env.get("PATH") or config.search_path
    try:
        return find_claude(config.claude_path, search_path=search_path)
    except ServiceError:
        return None  # the shell reports "command not found" as it always did


def _command_policy(
    parsed: ClaudeCommand, program: str, config: ClaudeRunConfig
) -> ClaudeRunPolicy:
    prompt = parsed.prompt
    if prompt is None or not prompt.strip():
        return ClaudeRunPolicy(config.limits, may_print_text=not parsed.stream_json)

    def argv_for(text: str) -> list[str]:
        # The amended prompt starts like the user's, so it cannot turn into an option.
        return parsed.run_argv(program, prompt=text)

    return ClaudeRunPolicy(
        config.limits,
        prompt=prompt,
        argv_for_prompt=argv_for,
        may_print_text=not parsed.stream_json,
    )


def _claude_env(env: dict[str, str], execution_id: str) -> dict[str, str]:
    return child_env(env, execution_id=execution_id)


def _agent_env(env: Mapping[str, str] | None, config: ClaudeRunConfig) -> dict[str, str]:
    return {CLI_MAX_RETRIES_ENV: str(config.cli_max_retries), **(env or {})}


def _options(raw: Mapping[str, object] | None) -> ClaudeOptions:
    try:
        return ClaudeOptions.model_validate(dict(raw or {}))
    except ValidationError as exc:
        errors: list[dict[str, object]] = []
        for error in exc.errors(include_url=False, include_input=False):
            loc = [str(part) for part in error["loc"]]
            errors.append(
                {"loc": ["agent_options", *loc], "msg": error["msg"], "type": error["type"]}
            )
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "agent_options"
        raise InvalidParams(
            f"invalid agent_options: {where}: {first['msg']}", errors=errors
        ) from None


class _Common(TypedDict):
    cwd: str | None
    env: dict[str, str]
    timeout: float | None
    idle_timeout: float | None
    timeout_includes_paused: bool
    execution_id: str | None
    metadata: dict[str, object]


def _common(params: ExecuteParams) -> _Common:
    return {
        "cwd": params.cwd,
        "env": dict(params.env or {}),
        "timeout": params.timeout,
        "idle_timeout": params.idle_timeout,
        "timeout_includes_paused": params.timeout_includes_paused,
        "execution_id": params.execution_id,
        "metadata": dict(params.metadata or {}),
    }
