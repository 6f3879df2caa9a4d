"""``HookRunner``: the one object the daemon uses for hooks — load, run an event, report status.

Owns: the registry (built-ins, then hook files of the hooks dir in name order, then
``hooks.json`` commands in file order, then entry points in name order; a later hook whose name
is taken is reported and skipped), running every hook of an event in that order, each bounded by
its own timeout, and the aggregation into a :class:`~cc_executor.scheduler.hooks.model.HookOutcome`
(``proceed`` is False only when a hook answered ``proceed=False`` or a *required* hook failed or
timed out; a hook that is not required only produces a warning). Each run becomes a
:class:`~cc_executor.storage.base.HookRunRecord`: kept in memory (newest
:data:`LAST_RUNS_KEPT`) for ``hook_status``, handed to the optional ``record`` callback (the
store) and announced through the optional ``notify`` callback as ``hook.completed`` or
``hook.warning``. Also: reloading on SIGHUP (:func:`install_reload_signal`).
Does not own: when events fire and what a block means for an execution (the daemon wiring),
the store, or the wire (``hook_status`` is this module's :meth:`HookRunner.status`).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from cc_executor.protocol.names import Notification
from cc_executor.scheduler.hooks.command_hooks import HOOKS_FILE, load_command_hooks
from cc_executor.scheduler.hooks.model import (
    HookContext,
    HookError,
    HookEvent,
    HookOutcome,
    HookResult,
    HookSpec,
)
from cc_executor.scheduler.hooks.python_hooks import (
    ENTRY_POINT_GROUP,
    Loaded,
    LoadError,
    builtin_spec,
    load_entry_points,
    load_hook_files,
)
from cc_executor.storage.base import HookRunRecord
from cc_executor.supervisor.supervisor import DEFAULT_PATH

if TYPE_CHECKING:
    from cc_executor.config import Settings

__all__ = [
    "DEFAULT_HOOK_TIMEOUT_S",
    "HOOKS_DIR_NAME",
    "LAST_RUNS_KEPT",
    "RECORD_TIMEOUT_S",
    "HookRunner",
    "NotifyCallback",
    "RecordCallback",
    "builtin_hooks",
    "install_reload_signal",
]

DEFAULT_HOOK_TIMEOUT_S = 10.0  # Settings.hook_timeout_s mirrors this
HOOKS_DIR_NAME = "hooks"  # default hooks dir: <state_dir>/hooks
REPORTS_DIR_NAME = "reports"  # default reports dir: <state_dir>/reports (as the Python API)


LAST_RUNS_KEPT = 100  # runs kept in memory for hook_status; the store keeps the history
RECORD_TIMEOUT_S = 5.0  # a slow store must not hold an execution's start for long

RecordCallback = Callable[[HookRunRecord], Awaitable[None]]
"""Persists one run (e.g. ``store.add_hook_run``); failures are logged, never raised."""

NotifyCallback = Callable[[str | None, str, dict[str, object]], None]
"""``notify(execution_id, method, params)``: ``hook.completed`` or ``hook.warning``."""


def builtin_hooks(*, reports_dir: Path, home: str | None) -> list[HookSpec]:
    """The hooks that ship with cc-executor: ``builtin.receipt`` (post_execution)."""
    # Lazy: the receipt check lives in the Python task API, a layer above this package.
    from cc_executor.scheduler.hooks.receipt import CLAUDE_AGENT, RECEIPT_HOOK_NAME, ReceiptHook

    receipt = ReceiptHook(reports_dir, home=home)
    # Only Claude runs carry receipts: a plain command costs no thread and no hook-run record.
    return [
        builtin_spec(
            RECEIPT_HOOK_NAME, receipt, (HookEvent.POST_EXECUTION,), agents=(CLAUDE_AGENT,)
        )
    ]


def _notification(run: HookRunRecord) -> str:
    return Notification.HOOK_COMPLETED if run.ok and run.proceed else Notification.HOOK_WARNING


class HookRunner:
    """Loads hooks and runs them per event. Build with :meth:`from_settings`; see the module."""

    def __init__(
        self,
        *,
        hooks_dir: Path | None,
        enabled: bool = True,
        default_timeout_s: float = DEFAULT_HOOK_TIMEOUT_S,
        base_env: Mapping[str, str] | None = None,
        builtins: Sequence[HookSpec] = (),
        entry_point_group: str | None = ENTRY_POINT_GROUP,
        record: RecordCallback | None = None,
        notify: NotifyCallback | None = None,
        last_runs_kept: int = LAST_RUNS_KEPT,
    ) -> None:
        if default_timeout_s <= 0:
            raise ValueError(f"default_timeout_s must be > 0, not {default_timeout_s}")
        self.hooks_dir = hooks_dir
        self.enabled = enabled
        self.default_timeout_s = default_timeout_s
        # Command hooks inherit this (the token is removed again per hook).
        self._base_env = dict(base_env) if base_env is not None else {"PATH": DEFAULT_PATH}
        self._builtins = tuple(builtins)
        self._entry_point_group = entry_point_group
        self._record = record
        self.notify = notify
        self._hooks: tuple[HookSpec, ...] = ()
        self._errors: tuple[LoadError, ...] = ()
        self._last_runs: deque[dict[str, object]] = deque(maxlen=last_runs_kept)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        base_env: Mapping[str, str] | None = None,
        record: RecordCallback | None = None,
        notify: NotifyCallback | None = None,
        home: str | None = None,
    ) -> HookRunner:
        """A loaded runner for ``settings`` (``hooks_dir``, ``hooks_enabled``,
        ``hook_timeout_s``; receipts under ``reports_dir``). ``home``: where the Claude CLI keeps
        its transcripts (default: this user's home)."""
        runner = cls(
            hooks_dir=settings.hooks_dir or settings.state_dir / HOOKS_DIR_NAME,
            enabled=settings.hooks_enabled,
            default_timeout_s=settings.hook_timeout_s,
            base_env=base_env,
            builtins=builtin_hooks(
                reports_dir=settings.reports_dir or settings.state_dir / REPORTS_DIR_NAME,
                home=home if home is not None else str(Path.home()),
            ),
            record=record,
            notify=notify,
        )
        runner.load()
        return runner

    # --- registry ------------------------------------------------------------------------------

    @property
    def hooks(self) -> tuple[HookSpec, ...]:
        return self._hooks

    @property
    def errors(self) -> tuple[LoadError, ...]:
        return self._errors

    def get(self, name: str) -> HookSpec:
        """The hook called ``name``; ``KeyError`` if none is."""
        for spec in self._hooks:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def load(self) -> None:
        """(Re)build the registry. Never raises: what fails to load is listed in ``errors``.

        When hooks are disabled nothing is imported or read (no user code runs).
        """
        found = Loaded(hooks=list(self._builtins))
        if self.enabled:
            if self.hooks_dir is not None:
                found.extend(load_hook_files(self.hooks_dir))
                found.extend(load_command_hooks(self.hooks_dir, base_env=self._base_env))
            if self._entry_point_group is not None:
                found.extend(load_entry_points(self._entry_point_group))
        hooks: list[HookSpec] = []
        errors = list(found.errors)
        names: set[str] = set()
        for spec in found.hooks:
            if spec.name in names:
                errors.append(LoadError(spec.source, f"duplicate hook name {spec.name!r}"))
                continue
            names.add(spec.name)
            hooks.append(spec)
        self._hooks, self._errors = tuple(hooks), tuple(errors)
        logger.info(
            "hooks: {} loaded, {} load error(s), enabled={}, dir={}",
            len(hooks),
            len(errors),
            self.enabled,
            self.hooks_dir,
        )

    def reload(self) -> None:
        """Load again (after editing hook files); runs in progress finish with the old hooks."""
        self.load()

    # --- running -------------------------------------------------------------------------------

    def handles(self, event: HookEvent, agent: str | None) -> bool:
        """True when running ``event`` for an execution of ``agent`` would run any hook: callers
        skip building a context otherwise."""
        return self.enabled and any(spec.applies(event, agent) for spec in self._hooks)

    async def run(self, event: HookEvent | str, ctx: HookContext) -> HookOutcome:
        """Run every hook of ``event`` in registration order; see :class:`HookOutcome`.

        Raises ``ValueError`` for an unknown event name; never for a hook's failure.
        """
        event = HookEvent(event)
        if not self.enabled:
            return HookOutcome(event)
        selected = [spec for spec in self._hooks if spec.applies(event, ctx.agent)]
        return await self._run_all(event, selected, ctx.for_event(event))

    async def run_hook(self, name: str, ctx: HookContext) -> HookOutcome:
        """Run the one hook ``name`` with ``ctx`` (for ``cc-executor hooks run``), even when
        hooks are disabled or the hook is not registered for ``ctx.event``."""
        return await self._run_all(ctx.event, [self.get(name)], ctx)

    async def _run_all(
        self, event: HookEvent, selected: Sequence[HookSpec], ctx: HookContext
    ) -> HookOutcome:
        runs: list[HookRunRecord] = []
        warnings: list[str] = []
        for spec in selected:
            run = await self._run_one(spec, ctx)
            runs.append(run)
            if not run.ok and run.proceed:
                warnings.append(f"hook {spec.name} failed ({run.error}); not required, continuing")
        blocking = [run for run in runs if not run.proceed]
        message = "; ".join(
            f"{run.hook}: {run.message or run.error or 'proceed=false'}" for run in blocking
        )
        return HookOutcome(
            event=event,
            proceed=not blocking,
            message=message or None,
            runs=tuple(runs),
            warnings=tuple(warnings),
        )

    async def _invoke(self, spec: HookSpec, ctx: HookContext) -> tuple[HookResult | None, str]:
        """The hook's answer, or None and why it failed. A cancelled caller propagates."""
        timeout_s = spec.timeout_s if spec.timeout_s is not None else self.default_timeout_s
        try:
            async with asyncio.timeout(timeout_s) as scope:
                return await spec.invoke(ctx), ""
        except TimeoutError as exc:
            if scope.expired():
                return None, f"timed out after {timeout_s:g}s"
            return None, f"TimeoutError: {exc}"
        except HookError as exc:
            return None, str(exc) or type(exc).__name__
        except Exception as exc:  # hooks are user code: any failure is reported, never raised
            logger.opt(exception=exc).warning("hook {} raised", spec.name)
            return None, f"{type(exc).__name__}: {exc}"

    async def _run_one(self, spec: HookSpec, ctx: HookContext) -> HookRunRecord:
        started_at = time.time()
        start = time.monotonic()
        result, error = await self._invoke(spec, ctx)
        run = HookRunRecord(
            hook=spec.name,
            event=str(ctx.event),
            started_at=started_at,
            duration_s=time.monotonic() - start,
            ok=result is not None,
            # A failure blocks only when the hook is required.
            proceed=result.proceed if result is not None else not spec.required,
            message=result.message if result is not None else None,
            error=error or None,
            execution_id=ctx.execution_id,
            list_id=ctx.list_id,
        )
        if not run.ok:
            logger.warning("hook {} ({}) failed: {}", spec.name, ctx.event, error)
        elif not run.proceed:
            logger.info(
                "hook {} ({}) answered proceed=false: {}", spec.name, ctx.event, run.message
            )
        self._last_runs.appendleft({**asdict(run), "required": spec.required, "kind": spec.kind})
        await self._persist(run)
        self._announce(run, spec)
        return run

    async def _persist(self, run: HookRunRecord) -> None:
        if self._record is None:
            return
        try:
            async with asyncio.timeout(RECORD_TIMEOUT_S):
                await self._record(run)
        except Exception as exc:  # the store's trouble must not fail the execution
            logger.opt(exception=exc).warning("recording hook run of {} failed", run.hook)

    def _announce(self, run: HookRunRecord, spec: HookSpec) -> None:
        if self.notify is None:
            return
        params: dict[str, object] = {
            "hook": run.hook,
            "event": run.event,
            "kind": spec.kind,
            "required": spec.required,
            "ok": run.ok,
            "proceed": run.proceed,
            "message": run.message,
            "error": run.error,
            "duration_s": run.duration_s,
        }
        try:
            self.notify(run.execution_id, _notification(run), params)
        except Exception as exc:  # a notification sink's bug must not fail the execution
            logger.opt(exception=exc).warning("hook notification for {} failed", run.hook)

    # --- status --------------------------------------------------------------------------------

    def _configured(self) -> bool:
        if self.enabled:
            return any(spec.kind != "builtin" for spec in self._hooks)
        directory = self.hooks_dir
        return directory is not None and (
            (directory / HOOKS_FILE).is_file() or any(directory.glob("*.py"))
        )

    def status(self) -> dict[str, object]:
        """The ``hook_status`` result (JSON-ready)."""
        if not self.enabled:
            message = "hooks are disabled (CC_EXECUTOR_HOOKS_ENABLED=false)"
        else:
            message = f"{len(self._hooks)} hook(s) loaded, {len(self._errors)} load error(s)"
        return {
            "configured": self._configured(),
            "enabled": self.enabled,
            "hooks_dir": str(self.hooks_dir) if self.hooks_dir is not None else None,
            "default_timeout": self.default_timeout_s,
            "hooks": [spec.describe(self.default_timeout_s) for spec in self._hooks],
            "last_runs": list(self._last_runs),
            "errors": [error.to_dict() for error in self._errors],
            "message": message,
        }


def install_reload_signal(
    runner: HookRunner, *, loop: asyncio.AbstractEventLoop | None = None
) -> Callable[[], None]:
    """Reload ``runner`` when the process gets SIGHUP; returns the function that uninstalls it.

    Call from the daemon's running loop (e.g. its lifespan). Unix only.
    """
    target = loop if loop is not None else asyncio.get_running_loop()

    def on_sighup() -> None:
        logger.info("SIGHUP: reloading hooks")
        runner.reload()

    target.add_signal_handler(signal.SIGHUP, on_sighup)

    def uninstall() -> None:
        target.remove_signal_handler(signal.SIGHUP)

    return uninstall
