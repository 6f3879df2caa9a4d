"""``cc-executor run --claude PROMPT``: a live view of one Claude task, or JSON lines.

Rendering only: the task runs through the Python task API (:func:`cc_executor.api.acc_execute`
with ``stream=True``), on the daemon (default) or in this process (``--local``). The view is a
spinner on stderr with the latest activity, tool calls, tokens and cost; tool calls are printed
as they happen; the answer goes to stdout at the end. ``--json`` prints every event as one JSON
line and the result as the last line (``{"method": "result", "params": {...}}``).

:class:`ClaudeCommandView` gives ``cc-executor run "claude -p '...'"`` the same view: the
daemon runs such a command with stream-json output and reports ``agent.event``s, and the view
switches on at the first one. Until then stdout is held back (it would be the raw stream-json
line the event is parsed from); output that is not stream-json (a daemon that runs the command
unchanged, a ``--output-format text`` run) is written through as it is.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import orjson
from rich.status import Status
from rich.text import Text

from cc_executor.cli.console import (
    EXIT_FAILURE,
    console,
    err_console,
    exit_code_for_error,
)
from cc_executor.cli.run_cmd import EXIT_CANCELED, EXIT_TIMEOUT
from cc_executor.client import AgentEvent, Completed, Event, Output, ProcessError
from cc_executor.config import Settings

if TYPE_CHECKING:
    from cc_executor.api import TaskEvent, TaskResult

__all__ = [
    "HOLD_MAX_BYTES",
    "ClaudeCommandView",
    "ClaudeView",
    "exit_code_for_result",
    "run_claude",
]

VIEW_LOG_LEVEL = "WARNING"
# Stdout held back while waiting for the first agent.event: the init line (tens of KiB) fits
# easily; past this the output is taken for something else and written through.
HOLD_MAX_BYTES = 4 * 1024 * 1024
# Daemon notices worth a line in the view (retries and waits), besides agent events.
_NOTICES = frozenset(
    {"error.rate_limit_exceeded", "error.token_limit_exceeded", "task.waiting_for_limit"}
)


@dataclass
class _Totals:
    tools: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None


def _usage_of(raw: str) -> dict[str, object]:
    try:
        message = orjson.loads(raw).get("message")
    except (orjson.JSONDecodeError, AttributeError):
        return {}
    usage = message.get("usage") if isinstance(message, dict) else None
    return usage if isinstance(usage, dict) else {}


class ClaudeView:
    """Turns task events into terminal output (``status`` is a rich spinner, or ``None``)."""

    def __init__(self, status: Status | None) -> None:
        self._status = status
        self.totals = _Totals()
        self._seen_messages: set[str] = set()

    def line(self) -> str:
        t = self.totals
        cost = f" · ${t.cost_usd:.4f}" if t.cost_usd is not None else ""
        return f"tools {t.tools} · tokens {t.input_tokens} in / {t.output_tokens} out{cost}"

    def on_event(self, event: TaskEvent) -> None:
        kind = event.kind
        if kind == "tool_call":
            self.totals.tools += 1
            err_console.print(Text.assemble(("→ ", "cyan"), event.summary()), markup=False)
        elif kind == "tool_result" and event.get("is_error"):
            err_console.print(Text.assemble(("✗ ", "red"), event.summary()), markup=False)
        elif kind in {"api_retry", "rate_limit"}:
            err_console.print(Text.assemble(("… ", "yellow"), event.summary()), markup=False)
        elif kind == "result":
            cost = event.get("total_cost_usd")
            if isinstance(cost, int | float):
                self.totals.cost_usd = float(cost)
        if kind in ("assistant_text", "tool_call"):
            self._count_tokens(event)
        if self._status is not None and kind is not None:
            self._status.update(f"Claude · {event.summary()[:60]} · {self.line()}")

    def _count_tokens(self, event: TaskEvent) -> None:
        # One API message arrives as several lines (one per block), each with the same usage.
        message_id = event.text("message_id")
        if not message_id or message_id in self._seen_messages:
            return
        self._seen_messages.add(message_id)
        usage = _usage_of(event.text("raw"))
        for key in ("input_tokens", "output_tokens"):
            value = usage.get(key)
            if isinstance(value, int):
                setattr(self.totals, key, getattr(self.totals, key) + value)


class ClaudeCommandView:
    """Renders a ``claude -p`` command's events: the live view once agent events come, else raw.

    Called with every client event, then :meth:`finish` with the completion. Modes:
    ``undecided`` (stdout held), ``view`` (stdout is the stream-json the events show), ``raw``.
    """

    def __init__(self, stdout: BinaryIO, stderr: BinaryIO) -> None:
        self._out = stdout
        self._err = stderr
        self.mode = "undecided"
        self._held = bytearray()
        self._status = err_console.status("Claude is starting…")
        self.view = ClaudeView(self._status)
        self._result: TaskEvent | None = None
        self._session_id: str | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, AgentEvent):
            self._agent_event(event)
        elif isinstance(event, Output):
            self._output(event)
        elif isinstance(event, ProcessError):
            self._note(Text(f"cc-executor: {event.error}"))
        elif self.mode == "view" and event.method in _NOTICES:
            self._note(Text.assemble(("… ", "yellow"), _task_event(event).summary()))

    def _agent_event(self, event: AgentEvent) -> None:
        if self.mode == "undecided":
            self.mode = "view"
            self._held.clear()  # the stream-json lines the events are parsed from
            self._status.start()
        if self.mode != "view":
            return
        task_event = _task_event(event)
        self.view.on_event(task_event)
        session = task_event.text("session_id")
        self._session_id = session or self._session_id
        if task_event.kind == "result":
            self._result = task_event

    def _output(self, event: Output) -> None:
        data = event.data_bytes
        if event.stream == "stderr":
            if self.mode == "view":
                err_console.out(data.decode("utf-8", "replace"), end="", highlight=False)
            else:
                self._write(self._err, data)
        elif self.mode == "raw":
            self._write(self._out, data)
        elif self.mode == "undecided":
            self._held += data
            start = self._held.lstrip()
            if (start and not start.startswith(b"{")) or len(self._held) > HOLD_MAX_BYTES:
                self._go_raw()

    def _go_raw(self) -> None:
        self.mode = "raw"
        held = bytes(self._held)
        self._held.clear()
        if held:
            self._write(self._out, held)

    def _note(self, text: Text) -> None:
        err_console.print(text, markup=False)

    @staticmethod
    def _write(target: BinaryIO, data: bytes) -> None:
        target.write(data)
        target.flush()

    def finish(self, completed: Completed) -> None:
        """The answer on stdout and a summary line on stderr (view), or whatever was held."""
        if self.mode == "undecided":
            self._go_raw()
        if self.mode != "view":
            return
        self._status.stop()
        result = self._result
        if result is not None:
            text = result.text("result")
            if text:
                console.out(text, highlight=False)
            usage = result.get("usage")
            if isinstance(usage, dict):
                for key in ("input_tokens", "output_tokens"):
                    value = usage.get(key)
                    if isinstance(value, int):
                        setattr(self.view.totals, key, value)
        style = "green" if completed.success else "red"
        err_console.print(
            Text.assemble(
                (completed.status, style),
                f" · {self.view.line()} · session {self._session_id or '—'}",
            ),
            markup=False,
        )


def _task_event(event: Event) -> TaskEvent:
    from cc_executor.api.events import event_from_params

    return event_from_params(event.method, {"execution_id": event.execution_id, **event.params})


def exit_code_for_result(result: TaskResult) -> int:
    if result.success:
        return 0
    if result.state == "timeout":
        return EXIT_TIMEOUT
    if result.state == "canceled":
        return EXIT_CANCELED
    return EXIT_FAILURE


def _print_result(result: TaskResult, view: ClaudeView) -> None:
    if result.text:
        console.out(result.text, highlight=False)
    if result.cost_usd is not None:
        view.totals.cost_usd = result.cost_usd
    if result.usage:
        for key in ("input_tokens", "output_tokens"):
            value = result.usage.get(key)
            if isinstance(value, int):
                setattr(view.totals, key, value)
    verdict = "receipt ok" if result.uuid_found else "receipt UUID missing"
    style = "green" if result.success else "red"
    err_console.print(
        Text.assemble(
            (f"{result.state}", style),
            f" · {view.line()} · {verdict} · session {result.session_id or '—'}",
        ),
        markup=False,
    )
    if result.error and not result.success:
        err_console.print(f"cc-executor: {result.error}", markup=False)


def _write_json(out: BinaryIO, payload: dict[str, object]) -> None:
    out.write(orjson.dumps(payload, default=str) + b"\n")
    out.flush()


async def _run(
    settings: Settings,
    prompt: str,
    *,
    json_lines: bool,
    local: bool,
    timeout: float | None,  # noqa: ASYNC109 - the process's limit, not a wait bound
    cwd: Path,
    model: str | None,
) -> int:
    from cc_executor.api import TaskResult, acc_execute
    from cc_executor.server.daemon import probe_host

    url = None if local else f"ws://{probe_host(settings.host)}:{settings.port}/ws/mcp"
    stream = await acc_execute(
        prompt,
        stream=True,
        server_url=url,
        settings=settings,
        timeout=timeout,
        cwd=cwd,
        model=model,
    )
    status = None if json_lines else err_console.status("Claude is starting…")
    view = ClaudeView(status)
    result: TaskResult | None = None
    if status is not None:
        status.start()
    try:
        async with stream:
            async for item in stream:
                if isinstance(item, TaskResult):
                    result = item
                elif json_lines:
                    _write_json(sys.stdout.buffer, item.to_dict())
                else:
                    view.on_event(item)
    finally:
        if status is not None:
            status.stop()
    assert result is not None, "a task stream ends with its result"
    if json_lines:
        _write_json(sys.stdout.buffer, {"method": "result", "params": result.to_dict()})
    else:
        _print_result(result, view)
    return exit_code_for_result(result)


def run_claude(
    settings: Settings,
    prompt: str,
    *,
    json_lines: bool = False,
    local: bool = False,
    timeout: float | None = None,
    cwd: Path,
    model: str | None = None,
) -> int:
    """Run one Claude task and render it; returns the exit code."""
    from cc_executor.errors import CCExecutorError
    from cc_executor.logging import configure_logging

    # The live view is the output; an in-process supervisor's INFO lines would only clutter it.
    configure_logging(VIEW_LOG_LEVEL, settings.log_format)
    try:
        return asyncio.run(
            _run(
                settings,
                prompt,
                json_lines=json_lines,
                local=local,
                timeout=timeout,
                cwd=cwd,
                model=model,
            )
        )
    except CCExecutorError as exc:
        return exit_code_for_error(exc, unreachable_hint=" (or use --local)")
    except KeyboardInterrupt:
        return EXIT_CANCELED
