"""Where the daemon fires hooks: the bridge between :class:`HookRunner` and the service.

Owns: building each event's :class:`HookContext` from what the service has (``execute`` params,
a live :class:`~cc_executor.supervisor.Execution`, a task), deciding which hook outcomes block
(``pre_execution`` and ``pre_task`` only), and putting ``hook.warning`` / ``hook.completed`` into
the execution's event log while it is still open. Does not own: running hooks (``runner``), or
when the events happen (the service, the recorder and the task lists call in).

Post-execution and state-change hooks run in the background (the caller never waits for them):
a slow hook must not hold up the recorder or a task list.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from pydantic import JsonValue, TypeAdapter, ValidationError

from cc_executor.config import Settings
from cc_executor.protocol import ExecuteParams
from cc_executor.scheduler.hooks.model import HookContext, HookEvent
from cc_executor.scheduler.hooks.runner import HookRunner, RecordCallback
from cc_executor.supervisor import Execution

__all__ = ["HookGate", "Spawn"]

Spawn = Callable[[Coroutine[Any, Any, None]], None]
"""Runs a coroutine in the background under an owner's TaskGroup."""

_JSON_DICT: TypeAdapter[dict[str, JsonValue]] = TypeAdapter(dict[str, JsonValue])


def _json_dict(value: object) -> dict[str, JsonValue]:
    if not isinstance(value, Mapping):
        return {}
    try:
        return _JSON_DICT.validate_python(dict(value))
    except ValidationError:  # metadata that is not JSON (cannot come from the wire): drop it
        return {}


class HookGate:
    """Implements the service's ``HookGate`` protocol on top of a :class:`HookRunner`."""

    def __init__(self, runner: HookRunner, *, spawn: Spawn | None = None) -> None:
        self.runner = runner
        self._spawn = spawn
        self._executions: dict[str, Execution] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        base_env: Mapping[str, str],
        record: RecordCallback | None = None,
    ) -> HookGate:
        """A gate over a loaded :class:`HookRunner` whose notifications land in event logs."""
        gate = cls(HookRunner.from_settings(settings, base_env=base_env, record=record))
        gate.runner.notify = gate.notify
        return gate

    def bind(self, spawn: Spawn) -> None:
        """Give the gate its background owner (the service's TaskGroup) once it exists."""
        self._spawn = spawn

    def notify(self, execution_id: str | None, method: str, params: dict[str, object]) -> None:
        """The runner's ``notify``: into the execution's log while the execution is live."""
        if execution_id is None:
            return
        execution = self._executions.get(execution_id)
        if execution is not None and not execution.log.closed:
            execution.emit(method, params)

    def status(self) -> dict[str, Any]:
        return dict(self.runner.status())

    async def pre_execution(self, params: ExecuteParams) -> tuple[bool, str | None]:
        if not self.runner.handles(HookEvent.PRE_EXECUTION, params.agent):
            return True, None  # the common case: nothing to build, nothing to await
        metadata = _json_dict(params.metadata)
        ctx = HookContext(
            event=HookEvent.PRE_EXECUTION,
            execution_id=params.execution_id,
            command=params.command or (" ".join(params.argv) if params.argv else None),
            argv=list(params.argv) if params.argv else None,
            prompt=params.prompt,
            cwd=params.cwd,
            agent=params.agent,
            list_id=_str(metadata.get("task_list_id")),
            task_index=_int(metadata.get("task_index")),
            metadata=metadata,
        )
        outcome = await self.runner.run(HookEvent.PRE_EXECUTION, ctx)
        return outcome.proceed, outcome.message

    def watch(self, execution: Execution) -> None:
        if self.runner.enabled:  # hook notifications of a live execution go into its log
            self._executions[execution.id] = execution

    def state_changed(self, execution: Execution, previous: str | None) -> None:
        if not self.runner.handles(HookEvent.ON_STATE_CHANGE, execution.spec.agent):
            return
        ctx = self._context(HookEvent.ON_STATE_CHANGE, execution).model_copy(
            update={"previous_state": previous}
        )
        self._background(self.runner.run(HookEvent.ON_STATE_CHANGE, ctx))

    async def execution_finished(self, execution: Execution) -> None:
        self._executions.pop(execution.id, None)
        if not self.runner.handles(HookEvent.POST_EXECUTION, execution.spec.agent):
            return
        ctx = self._context(HookEvent.POST_EXECUTION, execution)
        self._background(self.runner.run(HookEvent.POST_EXECUTION, ctx))

    async def task_event(
        self, event: HookEvent, *, list_id: str, index: int, spec: Mapping[str, Any], **fields: Any
    ) -> tuple[bool, str | None]:
        """``pre_task`` (its outcome may block the task) or ``post_task``."""
        agent = _str(spec.get("agent"))
        if not self.runner.handles(event, agent):
            return True, None
        ctx = HookContext(
            event=event,
            list_id=list_id,
            task_index=index,
            command=_str(spec.get("command")),
            argv=list(spec["argv"]) if isinstance(spec.get("argv"), list) else None,
            prompt=_str(spec.get("prompt")),
            agent=agent,
            cwd=_str(spec.get("cwd")),
            metadata=_json_dict(spec.get("metadata")),
            **fields,
        )
        outcome = await self.runner.run(event, ctx)
        return outcome.proceed, outcome.message

    def _context(self, event: HookEvent, execution: Execution) -> HookContext:
        info = execution.info()
        spec = execution.spec
        metadata = _json_dict(spec.metadata)
        result = info.get("result")
        return HookContext(
            event=event,
            execution_id=execution.id,
            command=spec.display_command,
            argv=list(spec.argv),
            cwd=str(spec.cwd) if spec.cwd is not None else None,
            agent=spec.agent,
            state=execution.state.value,
            exit_code=execution.exit_code,
            reason=execution.reason,
            execution_time=execution.execution_time(),
            result=_json_dict(result) if isinstance(result, Mapping) else None,
            list_id=_str(metadata.get("task_list_id")),
            task_index=_int(metadata.get("task_index")),
            metadata=metadata,
        )

    def _background(self, coro: Coroutine[Any, Any, object]) -> None:
        async def run() -> None:
            await coro

        if self._spawn is None:
            coro.close()
            return
        self._spawn(run())


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
