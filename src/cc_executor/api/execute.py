"""The public task API: ``cc_execute`` / ``acc_execute`` and their options.

``acc_execute`` builds a :class:`~cc_executor.api.task.TaskConfig` and a runner (embedded
supervisor, or a daemon when ``server_url`` is given), runs :func:`~cc_executor.api.task.run_task`
and returns its :class:`TaskResult`, or with ``stream=True`` a :class:`TaskStream` of the events
followed by the result. ``cc_execute`` is the blocking twin for code without an event loop.

This module is an edge like the CLI: it builds ``Settings`` (unless given) and hands the Claude
processes this process's environment (plus ``env``), as ``create_app`` does for the daemon.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

from pydantic import ValidationError

from cc_executor.agents import ClaudeOptions
from cc_executor.api.events import TaskEvent
from cc_executor.api.json_mode import JSONModeError
from cc_executor.api.result import TaskResult
from cc_executor.api.runners import DaemonRunner, EmbeddedRunner, Runner
from cc_executor.api.task import Done, TaskConfig, run_task
from cc_executor.config import Settings
from cc_executor.errors import InvalidParams

__all__ = [
    "ProgressCallback",
    "TaskStream",
    "acc_execute",
    "build_config",
    "build_runner",
    "cc_execute",
    "reports_dir_of",
    "run_sync",
    "settings_or_default",
]

ProgressCallback = Callable[[TaskEvent], object]  # may return an awaitable; it is awaited
T = TypeVar("T")

LOOP_RUNNING_MESSAGE = (
    "{name}() cannot be called from a running event loop (it would block it); "
    "use `await {async_name}(...)` instead"
)


def run_sync(coro: Coroutine[Any, Any, T], name: str, async_name: str) -> T:
    """``asyncio.run(coro)``, with a clear error when a loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError(LOOP_RUNNING_MESSAGE.format(name=name, async_name=async_name))


def settings_or_default(settings: Settings | None) -> Settings:
    """``settings``, else ``Settings()`` from the environment and ``.env`` (this is an edge)."""
    return settings if settings is not None else Settings()


def reports_dir_of(settings: Settings) -> Path:
    return settings.reports_dir or settings.state_dir / "reports"


def build_config(
    *,
    settings: Settings,
    json_mode: bool = False,
    generate_report: bool = False,
    amend_prompt: bool = False,
    amend_with_claude: bool = False,
    validation_prompt: str | None = None,
    timeout: float | None = None,
    idle_timeout: float | None = None,
    model: str | None = None,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    reports_dir: str | Path | None = None,
    **options: Any,
) -> TaskConfig:
    """The task configuration; ``options`` are :class:`ClaudeOptions` fields (checked here)."""
    if model is not None:
        options["model"] = model
    try:
        claude_options = ClaudeOptions(**options)
    except ValidationError as exc:
        raise InvalidParams(f"invalid Claude options: {exc}", options=sorted(options)) from None
    env = dict(env or {})
    return TaskConfig(
        reports_dir=Path(reports_dir) if reports_dir is not None else reports_dir_of(settings),
        options=claude_options,
        json_mode=json_mode,
        generate_report=generate_report,
        amend_prompt=amend_prompt,
        amend_with_claude=amend_with_claude,
        validation_prompt=validation_prompt,
        timeout=timeout,
        idle_timeout=idle_timeout,
        cwd=str(cwd) if cwd is not None else None,
        env=env,
        home=env.get("HOME") or os.environ.get("HOME"),
    )


def build_runner(
    settings: Settings, server_url: str | None = None, token: str | None = None
) -> Runner:
    """A daemon runner when a URL is given (or set), else the embedded services (whose runs
    land in the store ``settings`` name)."""
    url = server_url or settings.server_url
    if url:
        secret = token or (settings.token.get_secret_value() if settings.token else None)
        return DaemonRunner(url, token=secret, token_file=settings.token_file)
    return EmbeddedRunner(settings, environ=os.environ)


async def _notify(callback: ProgressCallback | None, event: TaskEvent) -> None:
    if callback is None:
        return
    outcome = callback(event)
    if inspect.isawaitable(outcome):
        await outcome


def _raise_json_error(done: Done) -> None:
    if done.json_error is not None:
        result = done.result
        error = JSONModeError(
            f"Claude's answer is not JSON: {done.json_error}",
            execution_id=result.execution_id,
            text=result.text,
            error=done.json_error,
            report_path=result.report_path,
        )
        error.result = result  # type: ignore[attr-defined]
        raise error


async def _items(
    task: str, config: TaskConfig, runner: Runner, callback: ProgressCallback | None
) -> AsyncIterator[TaskEvent | Done]:
    async with runner:
        try:
            async for item in run_task(task, config, runner):
                if isinstance(item, TaskEvent):
                    await _notify(callback, item)
                yield item
        except GeneratorExit:
            # Closed early by the consumer: leave the runner normally, so it stops what still
            # runs (TERM, grace, KILL) instead of seeing GeneratorExit as a failure.
            return


class TaskStream:
    """``async for item in stream``: every :class:`TaskEvent`, then the :class:`TaskResult`.

    ``stream.result`` holds the result once the iteration is over. In JSON mode a final answer
    that is not JSON raises :class:`JSONModeError` after the result was yielded.
    """

    def __init__(self, items: AsyncIterator[TaskEvent | Done]) -> None:
        self._items = items
        self.result: TaskResult | None = None
        self._pending_error: Done | None = None

    def __aiter__(self) -> TaskStream:
        return self

    async def __anext__(self) -> TaskEvent | TaskResult:
        if self._pending_error is not None:
            done, self._pending_error = self._pending_error, None
            _raise_json_error(done)
        if self.result is not None:
            raise StopAsyncIteration
        item = await anext(self._items)
        if isinstance(item, Done):
            async for _ in self._items:  # nothing follows Done; this closes the runner
                pass
            self.result = item.result
            if item.json_error is not None:
                self._pending_error = item
            return item.result
        return item

    async def aclose(self) -> None:
        """Stop early: the running Claude process is canceled."""
        close = getattr(self._items, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> TaskStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


@overload
async def acc_execute(task: str, *, stream: Literal[True], **kwargs: Any) -> TaskStream: ...
@overload
async def acc_execute(
    task: str, *, stream: Literal[False] = False, **kwargs: Any
) -> TaskResult: ...
async def acc_execute(
    task: str,
    *,
    json_mode: bool = False,
    stream: bool = False,
    progress_callback: ProgressCallback | None = None,
    generate_report: bool = False,
    amend_prompt: bool = False,
    validation_prompt: str | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - the process's limit, not a wait bound
    model: str | None = None,
    cwd: str | Path | None = None,
    server_url: str | None = None,
    settings: Settings | None = None,
    runner: Runner | None = None,
    **options: Any,
) -> TaskResult | TaskStream:
    """Run ``task`` in a fresh Claude Code process and return its :class:`TaskResult`.

    - ``json_mode``: ask for JSON; ``result.data`` (and ``result["key"]``) is the parsed value.
      One repair run in a fresh process; then :class:`JSONModeError`.
    - ``stream``: return a :class:`TaskStream` (events, then the result) instead of waiting.
    - ``progress_callback(event)``: called with every :class:`TaskEvent` (sync or async).
    - ``generate_report``: write a Markdown report; its path is ``result.report_path``.
    - ``amend_prompt``: apply the rewrite rules of :mod:`cc_executor.api.amend`
      (``amend_with_claude=True`` adds a Claude pass).
    - ``validation_prompt``: a second fresh Claude run judges the result (``result.validation``).
    - ``timeout`` (s, kills the process group), ``idle_timeout``, ``model``, ``cwd``, ``env``.
    - ``server_url``: run on that daemon (``ws://127.0.0.1:8003/ws/mcp``) instead of in-process.
    - ``settings``, ``reports_dir``, ``token``, ``runner`` (the seam tests use).
    - other keywords are :class:`~cc_executor.agents.ClaudeOptions` fields
      (``dangerously_skip_permissions``, ``allowed_tools``, ``max_turns``, ...).

    Every prompt carries a receipt UUID (``result.uuid``, ``result.uuid_found``,
    ``result.receipt_path``); see :func:`verify_execution`.
    """
    configured = settings_or_default(settings)
    token = options.pop("token", None)
    config = build_config(
        settings=configured,
        json_mode=json_mode,
        generate_report=generate_report,
        amend_prompt=amend_prompt,
        validation_prompt=validation_prompt,
        timeout=timeout,
        model=model,
        cwd=cwd,
        **options,
    )
    chosen = runner if runner is not None else build_runner(configured, server_url, token)
    items = _items(task, config, chosen, progress_callback)
    if stream:
        return TaskStream(items)
    done: Done | None = None
    async for item in items:
        if isinstance(item, Done):
            done = item
    assert done is not None, "run_task always ends with Done"
    _raise_json_error(done)
    return done.result


def cc_execute(
    task: str,
    *,
    json_mode: bool = False,
    stream: bool = False,
    progress_callback: ProgressCallback | None = None,
    generate_report: bool = False,
    amend_prompt: bool = False,
    validation_prompt: str | None = None,
    timeout: float | None = None,
    model: str | None = None,
    cwd: str | Path | None = None,
    server_url: str | None = None,
    **options: Any,
) -> TaskResult:
    """Blocking :func:`acc_execute` (same keywords) for code without a running event loop.

    ``stream=True`` here means: deliver events as they happen to ``progress_callback`` (the
    result is returned at the end); for an iterator of events use ``acc_execute(stream=True)``.
    Inside a running loop it raises ``RuntimeError`` pointing to ``acc_execute``.
    """
    del stream  # events always reach progress_callback live; there is nothing to switch
    return run_sync(
        acc_execute(
            task,
            stream=False,
            json_mode=json_mode,
            progress_callback=progress_callback,
            generate_report=generate_report,
            amend_prompt=amend_prompt,
            validation_prompt=validation_prompt,
            timeout=timeout,
            model=model,
            cwd=cwd,
            server_url=server_url,
            **options,
        ),
        "cc_execute",
        "acc_execute",
    )
