"""The vocabulary of hooks: events, the context a hook sees, what it returns, what a run yields.

Owns: :class:`HookEvent`, :class:`HookContext` (the one input of every hook, also the JSON a
command hook reads on stdin), :class:`HookResult` (what a hook answers) and how other return
values are read as one (:func:`coerce_result`), :class:`HookError` (a hook's clean way to fail),
the :func:`hook` declaration wrapper, :class:`HookSpec` (a loaded hook, whatever its kind) and
:class:`HookOutcome` (the aggregate of one event). Does not own: finding hooks (``python_hooks``,
``command_hooks``), running them (``runner``) or persisting runs (the store, via a callback).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from cc_executor.storage.base import HookRunRecord

__all__ = [
    "MESSAGE_MAX_CHARS",
    "DeclaredHook",
    "HookCallable",
    "HookContext",
    "HookError",
    "HookEvent",
    "HookInvoker",
    "HookKind",
    "HookOutcome",
    "HookResult",
    "HookSpec",
    "clip",
    "coerce_result",
    "hook",
]

MESSAGE_MAX_CHARS = 2000  # a hook's message goes into notifications and the store: keep it short


class HookEvent(StrEnum):
    """When hooks run. The values are the names used in ``HOOKS`` mappings and ``hooks.json``."""

    PRE_EXECUTION = "pre_execution"  # before spawning; proceed=False refuses the execution
    POST_EXECUTION = "post_execution"  # after the execution reached a final state
    ON_STATE_CHANGE = "on_state_change"  # every state transition (paused, resumed, ...)
    PRE_TASK = "pre_task"  # before a task of a task list starts; proceed=False skips/stops it
    POST_TASK = "post_task"  # after a task of a task list ended


HookKind = Literal["python", "command", "builtin"]


class HookContext(BaseModel):
    """Everything a hook may look at. Fields that do not apply to the event are ``None``.

    Serialised as-is (``model_dump_json``) on a command hook's stdin.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: HookEvent
    execution_id: str | None = None
    command: str | None = Field(None, description="Display form: shell command or joined argv.")
    argv: list[str] | None = None
    prompt: str | None = Field(None, description="The agent prompt (agent executions).")
    cwd: str | None = None
    agent: str | None = Field(None, description="e.g. 'claude'; None for plain commands.")
    state: str | None = Field(None, description="Execution state (the new one on a change).")
    previous_state: str | None = Field(None, description="on_state_change: the state left.")
    exit_code: int | None = None
    reason: str | None = Field(None, description="Why the execution ended (timeout, ...).")
    execution_time: float | None = Field(None, description="Seconds from spawn to end.")
    result: dict[str, JsonValue] | None = Field(
        None, description="The agent's normalized result (text, session_id, cost, ...)."
    )
    list_id: str | None = Field(None, description="Task list of a task hook or task execution.")
    task_index: int | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    timestamp: float = Field(default_factory=time.time, description="Unix epoch seconds.")

    def for_event(self, event: HookEvent) -> HookContext:
        """This context with ``event`` set (the runner's ``event`` argument wins)."""
        return self if self.event is event else self.model_copy(update={"event": event})


@dataclass(frozen=True, slots=True)
class HookResult:
    """A hook's answer. ``proceed=False`` blocks what the event is about (pre_* events)."""

    proceed: bool = True
    message: str | None = None


class HookError(Exception):
    """Raise from a hook to fail with ``message`` (reported without a traceback)."""


HookCallable = Callable[[HookContext], object]
"""A Python hook: sync or async, returning a :class:`HookResult` or see :func:`coerce_result`."""

HookInvoker = Callable[[HookContext], Awaitable[HookResult]]
"""How the runner calls a loaded hook, whatever its kind (the runner bounds it with a timeout)."""


@dataclass(frozen=True, slots=True)
class DeclaredHook:
    """A Python hook with options, made by :func:`hook`. Calling it calls the function."""

    func: HookCallable
    required: bool = False
    timeout_s: float | None = None
    name: str | None = None

    def __call__(self, ctx: HookContext) -> object:
        return self.func(ctx)


def hook(
    *, required: bool = False, timeout_s: float | None = None, name: str | None = None
) -> Callable[[HookCallable], DeclaredHook]:
    """Declare a Python hook's options::

        @hook(required=True, timeout_s=5)
        async def check_budget(ctx: HookContext) -> HookResult: ...

    ``required``: its failure or timeout blocks (otherwise only a warning). ``timeout_s``: its
    own limit instead of the daemon's ``hook_timeout_s``. ``name``: instead of the function's.
    """
    if timeout_s is not None and timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, not {timeout_s}")

    def declare(func: HookCallable) -> DeclaredHook:
        return DeclaredHook(func, required=required, timeout_s=timeout_s, name=name)

    return declare


def clip(text: str | None) -> str | None:
    """``text`` cut to :data:`MESSAGE_MAX_CHARS` (``None`` and ``""`` become ``None``)."""
    if not text:
        return None
    return text if len(text) <= MESSAGE_MAX_CHARS else text[: MESSAGE_MAX_CHARS - 1] + "…"


def coerce_result(value: object) -> HookResult:
    """Read a hook's return value: a ``HookResult``; ``None`` (proceed); a ``bool`` (proceed or
    not); a ``str`` (a message, proceed); a mapping with ``proceed`` and/or ``message``.

    Raises :class:`HookError` for anything else.
    """
    if isinstance(value, HookResult):
        return HookResult(value.proceed, clip(value.message))
    if value is None:
        return HookResult()
    if isinstance(value, bool):
        return HookResult(proceed=value)
    if isinstance(value, str):
        return HookResult(message=clip(value))
    if isinstance(value, Mapping):
        proceed = value.get("proceed", True)
        message = value.get("message")
        if isinstance(proceed, bool) and (message is None or isinstance(message, str)):
            return HookResult(proceed, clip(message))
    raise HookError(f"hook returned {type(value).__name__}, not a HookResult")


@dataclass(frozen=True, slots=True)
class HookSpec:
    """One loaded hook: what ``status`` shows, plus how to call it."""

    name: str
    kind: HookKind
    events: tuple[HookEvent, ...]
    invoke: HookInvoker = field(repr=False, compare=False)
    required: bool = False
    timeout_s: float | None = None  # None: the runner's default
    source: str = ""  # file, entry point or "builtin"
    # Runs only for executions of these agents (None: every execution). The runner then builds
    # no context, starts nothing and records no run for the others.
    agents: tuple[str, ...] | None = None

    def applies(self, event: HookEvent, agent: str | None) -> bool:
        return event in self.events and (self.agents is None or agent in self.agents)

    def describe(self, default_timeout_s: float) -> dict[str, object]:
        """The JSON-ready row of ``hook_status``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "events": [str(event) for event in self.events],
            "agents": list(self.agents) if self.agents is not None else None,
            "required": self.required,
            "timeout": self.timeout_s if self.timeout_s is not None else default_timeout_s,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class HookOutcome:
    """All hooks of one event. ``proceed`` is False only if a hook returned ``proceed=False`` or
    a required hook failed or timed out; ``message`` then says why. ``warnings`` lists the
    failures of hooks that were not required (they do not block)."""

    event: HookEvent
    proceed: bool = True
    message: str | None = None
    runs: tuple[HookRunRecord, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def blocked_by(self) -> tuple[str, ...]:
        return tuple(run.hook for run in self.runs if not run.proceed)
