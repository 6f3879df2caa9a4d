"""Command hooks: programs listed in ``<hooks dir>/hooks.json``, run as their own process group.

Owns: the ``hooks.json`` format (:class:`CommandHookConfig`), loading it entry by entry (a bad
entry becomes a :class:`~cc_executor.scheduler.hooks.python_hooks.LoadError`, the others still
load), the environment a hook gets (the daemon's, minus ``CC_EXECUTOR_TOKEN``, plus the entry's
``env`` and ``CC_EXECUTOR_HOOK_*``), and running one: spawn ``argv`` (never a shell string) in a
new session through the supervisor's :class:`~cc_executor.supervisor.ProcessGroup`, the
:class:`~cc_executor.scheduler.hooks.model.HookContext` as JSON on stdin, then read the exit code
and stdout. If the run is cancelled (the runner's timeout, shutdown) the whole group and any
escaped descendant are SIGKILLed before the cancellation propagates.
Does not own: the timeout value or what a failure means (``runner``).

Answer of a command hook: stdout that is a JSON object ``{"proceed": bool, "message": str}`` is
honoured whatever the exit code (``proceed: false`` blocks). Otherwise exit 0 proceeds (stdout,
if any, is the message) and any other exit is a failure.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cc_executor.scheduler.hooks.model import (
    HookContext,
    HookError,
    HookEvent,
    HookResult,
    HookSpec,
    clip,
)
from cc_executor.scheduler.hooks.python_hooks import Loaded, LoadError
from cc_executor.supervisor import ProcessGroup
from cc_executor.supervisor.process import Stream
from cc_executor.supervisor.supervisor import TOKEN_ENV

__all__ = [
    "HOOKS_FILE",
    "HOOK_EVENT_ENV",
    "HOOK_EXECUTION_ENV",
    "HOOK_NAME_ENV",
    "OUTPUT_MAX_BYTES",
    "CommandHookConfig",
    "command_env",
    "load_command_hooks",
    "run_command_hook",
]

HOOKS_FILE = "hooks.json"
OUTPUT_MAX_BYTES = 64 * 1024  # of each of stdout/stderr kept; a hook answers in a few bytes
ERROR_TAIL_CHARS = 500  # of stderr quoted in a failure message
HOOK_NAME_ENV = "CC_EXECUTOR_HOOK_NAME"
HOOK_EVENT_ENV = "CC_EXECUTOR_HOOK_EVENT"
HOOK_EXECUTION_ENV = "CC_EXECUTOR_HOOK_EXECUTION_ID"  # the execution the event is about
_MARKER_PREFIX = "hook-"  # the group's sweep marker (MARKER_ENV) is "hook-<uuid>"


class CommandHookConfig(BaseModel):
    """One entry of ``hooks.json``'s ``hooks`` list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Unique among all hooks.")
    argv: list[str] = Field(
        min_length=1,
        description="Program and arguments; a relative path with a '/' is relative to the "
        "hooks dir, a bare name is looked up on PATH.",
    )
    events: list[HookEvent] = Field(min_length=1)
    timeout_s: float | None = Field(None, gt=0, description="Default: hook_timeout_s.")
    required: bool = False
    env: dict[str, str] = Field(default_factory=dict, description="Added to the environment.")
    cwd: str | None = Field(None, description="Working directory; default the hooks dir.")

    @field_validator("env")
    @classmethod
    def _no_token(cls, env: dict[str, str]) -> dict[str, str]:
        if TOKEN_ENV in env:
            raise ValueError(f"{TOKEN_ENV} is never passed to hooks")
        return env


def command_env(
    base_env: Mapping[str, str], config: CommandHookConfig, ctx: HookContext
) -> dict[str, str]:
    """The hook's environment: never the daemon's token, whatever ``base_env`` holds."""
    env = {key: value for key, value in base_env.items() if key != TOKEN_ENV}
    env.update(config.env)
    env[HOOK_NAME_ENV] = config.name
    env[HOOK_EVENT_ENV] = str(ctx.event)
    if ctx.execution_id is not None:
        env[HOOK_EXECUTION_ENV] = ctx.execution_id
    env.pop(TOKEN_ENV, None)
    return env


def _resolve(config: CommandHookConfig, hooks_dir: Path) -> tuple[list[str], Path]:
    program, *args = config.argv
    if "/" in program and not Path(program).is_absolute():
        program = str(hooks_dir / program)
    cwd = hooks_dir / config.cwd if config.cwd is not None else hooks_dir
    return [program, *args], cwd


def _answer(code: int, stdout: bytes, stderr: bytes) -> HookResult:
    text = stdout.decode(errors="replace").strip()
    answer: object = None
    if text.startswith("{"):
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
    if isinstance(answer, dict):
        proceed, message = answer.get("proceed", True), answer.get("message")
        if isinstance(proceed, bool) and (message is None or isinstance(message, str)):
            if not proceed or code == 0:
                return HookResult(proceed, clip(message))
            text = message or ""
    if code == 0:
        return HookResult(message=clip(text))
    how = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
    detail = stderr.decode(errors="replace").strip()[-ERROR_TAIL_CHARS:] or text[-ERROR_TAIL_CHARS:]
    raise HookError(f"{how}: {detail}" if detail else how)


async def run_command_hook(
    config: CommandHookConfig, ctx: HookContext, *, base_env: Mapping[str, str], hooks_dir: Path
) -> HookResult:
    """Run one command hook to its end; the caller bounds it (cancellation kills the group)."""
    argv, cwd = _resolve(config, hooks_dir)
    output: dict[Stream, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    def on_output(stream: Stream, data: bytes) -> None:
        kept = output[stream]
        room = OUTPUT_MAX_BYTES - len(kept)
        if room > 0:
            kept += data[:room]

    try:
        group = await ProcessGroup.spawn(
            argv,
            cwd=cwd,
            env=command_env(base_env, config, ctx),
            stdin=True,
            marker=_MARKER_PREFIX + uuid.uuid4().hex,
            on_output=on_output,
        )
    except OSError as exc:  # FileNotFoundError, PermissionError, bad cwd
        raise HookError(f"cannot start {argv[0]}: {exc}") from exc
    try:
        # A hook may exit without reading its context; its exit code still counts.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await group.write_stdin(ctx.model_dump_json().encode(), eof=True)
        code = await group.wait()
        # A descendant still holding stdout keeps this waiting: the timeout then ends it.
        await group.wait_output_closed()
    except BaseException:
        # Timed out or cancelled: SIGKILL the group and marked escapees synchronously, so
        # nothing outlives the hook even though the cancellation propagates right away.
        group.kill_now()
        raise
    finally:
        group.close()
    return _answer(code, bytes(output["stdout"]), bytes(output["stderr"]))


def _read_entries(path: Path) -> list[object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LookupError(f"unreadable: {exc}") from exc
    entries = data.get("hooks") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise LookupError('expected a JSON object {"hooks": [...]}')
    return entries


def load_command_hooks(hooks_dir: Path, *, base_env: Mapping[str, str]) -> Loaded:
    """The command hooks of ``hooks_dir/hooks.json`` (none if the file does not exist)."""
    loaded = Loaded()
    path = hooks_dir / HOOKS_FILE
    if not path.is_file():
        return loaded
    try:
        entries = _read_entries(path)
    except LookupError as exc:
        loaded.errors.append(LoadError(str(path), str(exc)))
        return loaded
    names: set[str] = set()
    for index, entry in enumerate(entries):
        source = f"{path}#hooks[{index}]"
        try:
            config = CommandHookConfig.model_validate(entry)
        except ValidationError as exc:
            loaded.errors.append(LoadError(source, str(exc)))
            continue
        if config.name in names:
            loaded.errors.append(LoadError(source, f"duplicate hook name {config.name!r}"))
            continue
        names.add(config.name)
        loaded.hooks.append(_spec(config, source, base_env=base_env, hooks_dir=hooks_dir))
    return loaded


def _spec(
    config: CommandHookConfig, source: str, *, base_env: Mapping[str, str], hooks_dir: Path
) -> HookSpec:
    async def invoke(ctx: HookContext) -> HookResult:
        return await run_command_hook(config, ctx, base_env=base_env, hooks_dir=hooks_dir)

    return HookSpec(
        name=config.name,
        kind="command",
        events=tuple(dict.fromkeys(config.events)),
        invoke=invoke,
        required=config.required,
        timeout_s=config.timeout_s,
        source=source,
    )
