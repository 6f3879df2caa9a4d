"""Behavioural self-check of a running daemon: ``cc-executor test assess core|cli|hooks|claude``.

Owns the checks and the Markdown report, not the command line (``cli.assess_cmd``) and not the
daemon. Every check talks to the daemon the way a user does, through :class:`WebSocketClient`:

* ``core``: streaming (output arrives while the process still runs), large output (5 MiB whole,
  byte for byte), pause/resume (output stops while paused, flows again after), cancel with a
  ``setsid`` grandchild (the execution ends ``canceled`` and, when the daemon is local, no process
  carrying the execution's environment marker is left), timeout (status ``timeout``);
* ``hooks``: ``hook_status`` answers with a well-formed result;
* ``claude``: ``claude --version`` runs on the daemon; with ``live`` a real tiny prompt;
* ``cli``: ``cc-executor server status`` and ``config show`` run and exit 0.

This is an observer from outside the daemon, which is why it reads other processes' environments
with psutil (read only, never a signal) and runs the CLI with ``subprocess``: those are what it
verifies, not means of supervision. Checks that wait for the *absence* of output (pause) watch a
fixed, named window; every other wait is for an event and bounded.

Past 500 lines on purpose: one small function per behaviour, and the report they feed; splitting
the report off would make its two dataclasses a cross-module interface for no other user.
"""

from __future__ import annotations

import asyncio
import enum
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil
from loguru import logger

from cc_executor.client.client import WebSocketClient
from cc_executor.client.events import AgentEvent, Completed, Event, Output
from cc_executor.client.handle import ExecutionHandle
from cc_executor.errors import CCExecutorError

__all__ = [
    "CHECK_TIMEOUT_S",
    "LARGE_OUTPUT_BYTES",
    "MARKER_ENV",
    "SUITES",
    "Assessment",
    "CheckResult",
    "Outcome",
    "Target",
    "marked_processes",
    "run_assessment",
]

MiB = 1024 * 1024
SUITES = ("core", "cli", "hooks", "claude")
MARKER_ENV = "CC_EXECUTOR_EXECUTION_ID"  # the supervisor puts it in every child's environment
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost", "0.0.0.0", "::", ""})  # noqa: S104

CHECK_TIMEOUT_S = 120.0  # one whole check; the slowest (cancel) needs the daemon's TERM grace
STEP_TIMEOUT_S = 30.0  # one expected event (first output, paused, completed, ...)
COMMAND_LIMIT_S = 120.0  # the daemon-side timeout of every command a check starts (no leftovers)
LARGE_OUTPUT_BYTES = 5 * MiB  # big enough to span many 64 KB pieces and pipe buffers
PAUSE_SETTLE_S = 0.3  # output written just before SIGSTOP may still be read from the pipe
PAUSE_WINDOW_S = 1.0  # no output may arrive for this long while paused (20 ticks' worth)
TIMEOUT_LIMIT_S = 1.0  # the `timeout` check's limit for a command that would run 30 s
LEFTOVER_WAIT_S = 2.0  # a killed process may need a moment to vanish from /proc
SCAN_INTERVAL_S = 0.05
CLI_TIMEOUT_S = 60.0  # one `cc-executor` CLI command
LIVE_TIMEOUT_S = 300.0  # a real Claude prompt, including the CLI's own start-up
RAW_OUTPUT_MAX_CHARS = 4000  # per check in the report; longer raw output is cut in the middle

STREAM_COMMAND = 'echo ready; read line; echo "got $line"'
LARGE_COMMAND = f"head -c {LARGE_OUTPUT_BYTES} /dev/zero | tr '\\0' x"
TICK_COMMAND = "while :; do echo tick; sleep 0.05; done"
GRANDCHILD_COMMAND = 'setsid sleep 300 </dev/null >/dev/null 2>&1 & echo "grandchild $!"; sleep 300'
TIMEOUT_COMMAND = "sleep 30"
NOT_VISIBLE = "the daemon's processes are not visible from here"
CLAUDE_VERSION_ARGV = ("claude", "--version")
LIVE_PROMPT = "Reply with the single word OK and nothing else."


class Outcome(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    SKIP = "skip"


class CheckFailed(Exception):
    """A check saw the daemon misbehave; ``detail`` says what was expected and what came."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class CheckResult:
    """One check: its outcome, how long it took, a one-line detail and the raw output."""

    name: str
    outcome: Outcome
    duration_s: float
    detail: str
    output: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome is not Outcome.FAIL


@dataclass
class Assessment:
    """A suite's results and where they came from; ``to_markdown()`` is the report."""

    suite: str
    target: str
    started_at: datetime
    daemon_version: str | None = None
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for c in self.checks if c.outcome is outcome)

    def to_markdown(self) -> str:
        total = sum(c.duration_s for c in self.checks)
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"# cc-executor self-assessment: {self.suite}",
            "",
            f"- daemon: `{self.target}` (version {self.daemon_version or 'unknown'})",
            f"- started: {self.started_at.isoformat(timespec='seconds')}",
            f"- duration: {total:.2f} s",
            f"- result: **{verdict}** ({self.count(Outcome.PASS)} passed, "
            f"{self.count(Outcome.FAIL)} failed, {self.count(Outcome.SKIP)} skipped)",
            "",
            "| check | result | duration | detail |",
            "|---|---|---|---|",
        ]
        for c in self.checks:
            cell = c.detail.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {c.name} | {c.outcome.value} | {c.duration_s:.2f} s | {cell} |")
        for c in self.checks:
            lines += ["", f"## {c.name}", "", f"**{c.outcome.value}** in {c.duration_s:.2f} s: "]
            lines[-1] += c.detail
            if c.output:
                fence = "`" * max(3, _longest_backtick_run(c.output) + 1)
                lines += ["", "Raw output:", "", f"{fence}text", _clip(c.output), fence]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "target": self.target,
            "started_at": self.started_at.isoformat(),
            "daemon_version": self.daemon_version,
            "passed": self.passed,
            "checks": [
                {
                    "name": c.name,
                    "outcome": c.outcome.value,
                    "duration_s": c.duration_s,
                    "detail": c.detail,
                    "output": _clip(c.output),
                }
                for c in self.checks
            ],
        }


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def _clip(text: str) -> str:
    if len(text) <= RAW_OUTPUT_MAX_CHARS:
        return text
    half = RAW_OUTPUT_MAX_CHARS // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[... {cut} characters cut ...]\n{text[-half:]}"


@dataclass(frozen=True)
class Target:
    """The daemon under assessment and how to reach it."""

    host: str = "127.0.0.1"
    port: int = 8003
    token: str | None = None
    token_file: Path | None = None
    cli_argv: tuple[str, ...] = (sys.executable, "-m", "cc_executor")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}/ws/mcp"

    @property
    def local(self) -> bool:
        """Whether the daemon's processes are (probably) visible to psutil from here."""
        return self.host in LOOPBACK_HOSTS

    def client(self) -> WebSocketClient:
        return WebSocketClient(
            self.host, self.port, self.token, token_file=self.token_file, reconnect=False
        )


# --- helpers --------------------------------------------------------------------------------------
class _Log:
    """The raw transcript of one check, for the report."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines)


def _describe(event: Event) -> str:
    if isinstance(event, Output):
        return f"[{event.seq}] {event.stream}: {event.text!r}"
    return f"[{event.seq}] {event.method} {orjson.dumps(event.params).decode()}"


async def _next_event(handle: ExecutionHandle, log: _Log, timeout: float) -> Event:  # noqa: ASYNC109
    try:
        async with asyncio.timeout(timeout):
            event = await anext(handle)
    except StopAsyncIteration:
        raise CheckFailed("the event stream ended early") from None
    except TimeoutError:
        raise CheckFailed(f"no event within {timeout}s") from None
    log.add(_describe(event))
    return event


async def _until(
    handle: ExecutionHandle, log: _Log, want: Callable[[Event], bool], what: str
) -> Event:
    """Read events until ``want`` holds; fail if the execution completes first."""
    try:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while True:
                event = await _next_event(handle, log, STEP_TIMEOUT_S)
                if want(event):
                    return event
                if isinstance(event, Completed):
                    raise CheckFailed(f"completed ({event.status}) before {what}")
    except TimeoutError:
        raise CheckFailed(f"no {what} within {STEP_TIMEOUT_S}s") from None


async def _completion(handle: ExecutionHandle, log: _Log) -> Completed:
    event = await _until(handle, log, lambda e: isinstance(e, Completed), "completion")
    if not isinstance(event, Completed):  # pragma: no cover - _until returned what it matched
        raise CheckFailed(f"expected process.completed, got {event.method}")
    return event


async def _stop(handle: ExecutionHandle) -> None:
    """Cancel an execution a failed check left running (best effort, bounded)."""
    if handle.done:
        return
    try:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await handle.cancel()
    except (CCExecutorError, TimeoutError) as exc:
        logger.warning("could not cancel {} after a failed check: {}", handle.execution_id, exc)


def _output_with(text: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, Output) and text in e.text


def marked_processes(execution_id: str) -> list[int]:
    """Pids of live processes whose environment has ``MARKER_ENV=execution_id`` (no zombies)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER_ENV) != execution_id:
                continue
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


async def _leftovers(execution_id: str) -> list[int]:
    """What still carries the marker once ``LEFTOVER_WAIT_S`` has passed without it clearing."""
    deadline = time.monotonic() + LEFTOVER_WAIT_S
    while True:
        pids = await asyncio.to_thread(marked_processes, execution_id)
        if not pids or time.monotonic() >= deadline:
            return pids
        await asyncio.sleep(SCAN_INTERVAL_S)  # /proc has no notification for "gone"


# --- core checks ----------------------------------------------------------------------------------
Check = Callable[["_Context", _Log], Awaitable[tuple[Outcome, str]]]


@dataclass
class _Context:
    target: Target
    client: WebSocketClient
    live: bool


async def _streaming(ctx: _Context, log: _Log) -> tuple[Outcome, str]:
    handle = await ctx.client.execute(STREAM_COMMAND, stdin=True, timeout=COMMAND_LIMIT_S)
    try:
        # "ready" must arrive while the shell still blocks on `read`: that is streaming.
        await _until(handle, log, _output_with("ready"), "the first line")
        await handle.send_input("go\n", eof=True)
        completed = await _completion(handle, log)
    finally:
        await _stop(handle)
    stdout = handle.stdout
    if not completed.success or stdout != b"ready\ngot go\n":
        raise CheckFailed(f"status {completed.status}, exit {completed.exit_code}, {stdout!r}")
    return Outcome.PASS, "first line arrived before the process ended; input round-tripped"


async def _large_output(ctx: _Context, log: _Log) -> tuple[Outcome, str]:
    handle = await ctx.client.execute(LARGE_COMMAND, timeout=COMMAND_LIMIT_S)
    pieces = 0
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            async for event in handle:
                pieces += isinstance(event, Output)
    except TimeoutError:
        raise CheckFailed(f"not complete within {CHECK_TIMEOUT_S}s") from None
    finally:
        await _stop(handle)
    completed = handle.completed
    stdout = handle.stdout
    log.add(f"{pieces} output pieces, {len(stdout)} bytes, completed: {completed}")
    if completed is None or not completed.success:
        raise CheckFailed(f"did not complete successfully: {completed}")
    if len(stdout) != LARGE_OUTPUT_BYTES or stdout.count(b"x") != LARGE_OUTPUT_BYTES:
        raise CheckFailed(f"expected {LARGE_OUTPUT_BYTES} bytes of 'x', got {len(stdout)}")
    return Outcome.PASS, f"{LARGE_OUTPUT_BYTES} bytes arrived whole in {pieces} pieces"


async def _quiet_while_paused(handle: ExecutionHandle, log: _Log) -> int:
    """Outputs that arrive in the pause window (after the settle time); must be none."""
    loop = asyncio.get_running_loop()
    settle_end = loop.time() + PAUSE_SETTLE_S
    window_end = settle_end + PAUSE_WINDOW_S
    late = 0
    while (now := loop.time()) < window_end:
        try:
            event = await _next_event(handle, log, window_end - now)
        except CheckFailed:
            break  # no event until the window closed: the quiet we want
        if isinstance(event, Completed):
            raise CheckFailed(f"completed ({event.status}) while paused")
        if isinstance(event, Output) and loop.time() >= settle_end:
            late += 1
    return late


async def _pause_resume(ctx: _Context, log: _Log) -> tuple[Outcome, str]:
    handle = await ctx.client.execute(TICK_COMMAND, timeout=COMMAND_LIMIT_S)
    try:
        await _until(handle, log, _output_with("tick"), "the first tick")
        if (answer := await handle.pause()) != "paused":
            raise CheckFailed(f"pause answered {answer!r}")
        await _until(handle, log, lambda e: e.method == "process.paused", "process.paused")
        late = await _quiet_while_paused(handle, log)
        if late:
            raise CheckFailed(f"{late} output pieces arrived while paused")
        if (answer := await handle.resume()) != "resumed":
            raise CheckFailed(f"resume answered {answer!r}")
        await _until(handle, log, _output_with("tick"), "a tick after resume")
        await handle.cancel()
        completed = await _completion(handle, log)
    finally:
        await _stop(handle)
    if completed.status != "canceled":
        raise CheckFailed(f"expected canceled at the end, got {completed.status}")
    return Outcome.PASS, f"no output for {PAUSE_WINDOW_S}s while paused; ticks resumed"


async def _cancel_tree(ctx: _Context, log: _Log) -> tuple[Outcome, str]:
    handle = await ctx.client.execute(GRANDCHILD_COMMAND, timeout=COMMAND_LIMIT_S)
    eid = handle.execution_id
    scan = ctx.target.local
    try:
        await _until(handle, log, _output_with("grandchild"), "the grandchild's pid")
        before = await asyncio.to_thread(marked_processes, eid) if scan else []
        log.add(f"marked processes before cancel: {before}")
        if scan and not before:
            scan = False  # another user's or a container's processes: not visible from here
        if (answer := await handle.cancel()) != "canceled":
            raise CheckFailed(f"cancel answered {answer!r}")
        completed = await _completion(handle, log)
    finally:
        await _stop(handle)
    if completed.status != "canceled":
        raise CheckFailed(f"process.completed says {completed.status}, expected canceled")
    state = (await ctx.client.status(eid)).get("state")
    log.add(f"daemon status: {state}")
    if state != "canceled":
        raise CheckFailed(f"the daemon's status says {state}, expected canceled")
    if not scan:
        return Outcome.PASS, f"canceled (no process scan: {NOT_VISIBLE})"
    left = await _leftovers(eid)
    log.add(f"marked processes after cancel: {left}")
    if left:
        raise CheckFailed(f"processes with {MARKER_ENV}={eid} survived the cancel: {left}")
    return Outcome.PASS, f"canceled; none of the {len(before)} marked processes remain"


async def _timeout(ctx: _Context, log: _Log) -> tuple[Outcome, str]:
    handle = await ctx.client.execute(TIMEOUT_COMMAND, timeout=TIMEOUT_LIMIT_S)
    try:
        completed = await _completion(handle, log)
    finally:
        await _stop(handle)
    if completed.status != "timeout":
        raise CheckFailed(f"status {completed.status}, expected timeout")
    return Outcome.PASS, f"status timeout after {completed.execution_time}s"


# --- hooks, claude --------------------------------------------------------------------------------
HOOK_STATUS_FIELDS: dict[str, type | tuple[type, ...]] = {
    "configured": bool,
    "enabled": bool,
    "hooks": list,
    "last_runs": list,
    "message": (str, type(None)),
}


async def _hook_status(ctx: _Context, log: _Log) -> tuple[Outcome, str]:
    result = await ctx.client.hook_status()
    log.add(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    wrong = [
        f"{name} is {type(result.get(name)).__name__}" if name in result else f"{name} missing"
        for name, kind in HOOK_STATUS_FIELDS.items()
        if name not in result or not isinstance(result[name], kind)
    ]
    if wrong:
        raise CheckFailed("malformed hook_status: " + ", ".join(wrong))
    return Outcome.PASS, (
        f"configured={result['configured']}, enabled={result['enabled']}, "
        f"{len(result['hooks'])} hooks"
    )


async def _claude_version(ctx: _Context, log: _Log) -> tuple[Outcome, str]:
    try:
        result = await ctx.client.run(argv=list(CLAUDE_VERSION_ARGV), timeout=STEP_TIMEOUT_S)
    except CCExecutorError as exc:
        raise CheckFailed(f"the daemon could not run `claude --version`: {exc}") from None
    out = result.stdout.decode(errors="replace").strip()
    log.add(out)
    log.add(result.stderr.decode(errors="replace"))
    if not result.success or not out:
        raise CheckFailed(f"`claude --version` ended {result.status}, exit {result.exit_code}")
    return Outcome.PASS, f"claude {out}"


async def _claude_live(ctx: _Context, log: _Log) -> tuple[Outcome, str]:
    if not ctx.live:
        return Outcome.SKIP, "a real prompt runs only with --live"
    handle = await ctx.client.execute(agent="claude", prompt=LIVE_PROMPT, timeout=LIVE_TIMEOUT_S)
    answer: Any = None
    try:
        async with asyncio.timeout(LIVE_TIMEOUT_S + STEP_TIMEOUT_S):
            async for event in handle:
                log.add(_describe(event))
                if isinstance(event, AgentEvent) and event.kind == "result":
                    answer = event.params.get("result")
    except TimeoutError:
        raise CheckFailed(f"no completion within {LIVE_TIMEOUT_S}s") from None
    finally:
        await _stop(handle)
    completed = handle.completed
    if completed is None or not completed.success or answer is None:
        raise CheckFailed(
            f"ended {completed.status if completed else 'unknown'}, result {answer!r}"
        )
    return Outcome.PASS, f"answered {str(answer).strip()[:80]!r}"


# --- cli ------------------------------------------------------------------------------------------
def _run_cli(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )


def _cli_check(*args: str, use_target: bool) -> Check:
    async def check(ctx: _Context, log: _Log) -> tuple[Outcome, str]:
        target = ctx.target
        where = ("--host", target.host, "--port", str(target.port)) if use_target else ()
        argv = [*target.cli_argv, *args, *where]
        log.add("$ " + " ".join(argv))
        try:
            done = await asyncio.to_thread(_run_cli, argv)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"did not finish within {CLI_TIMEOUT_S}s") from None
        except OSError as exc:
            raise CheckFailed(f"could not start: {exc}") from None
        log.add(done.stdout)
        log.add(done.stderr)
        if done.returncode != 0:
            raise CheckFailed(f"`cc-executor {' '.join(args)}` exited {done.returncode}")
        return Outcome.PASS, f"`cc-executor {' '.join(args)}` exited 0"

    return check


CHECKS: dict[str, list[tuple[str, Check]]] = {
    "core": [
        ("streaming", _streaming),
        ("large_output", _large_output),
        ("pause_resume", _pause_resume),
        ("cancel_tree", _cancel_tree),
        ("timeout", _timeout),
    ],
    "hooks": [("hook_status", _hook_status)],
    "claude": [("claude_version", _claude_version), ("claude_live", _claude_live)],
    "cli": [
        ("server_status", _cli_check("server", "status", use_target=True)),
        ("config_show", _cli_check("config", "show", use_target=False)),
    ],
}
SUITES_WITHOUT_CONNECTION = frozenset({"cli"})


async def _run_check(name: str, check: Check, ctx: _Context) -> CheckResult:
    log = _Log()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            outcome, detail = await check(ctx, log)
    except CheckFailed as exc:
        outcome, detail = Outcome.FAIL, exc.detail
    except TimeoutError:
        outcome, detail = Outcome.FAIL, f"did not finish within {CHECK_TIMEOUT_S}s"
    except CCExecutorError as exc:
        outcome, detail = Outcome.FAIL, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # the top of one check: report it, run the next one
        logger.exception("check {} crashed", name)
        log.add(traceback.format_exc())
        outcome, detail = Outcome.FAIL, f"crashed: {type(exc).__name__}: {exc}"
    return CheckResult(name, outcome, time.perf_counter() - started, detail, log.text())


async def run_assessment(
    suite: str,
    target: Target,
    *,
    live: bool = False,
    on_result: Callable[[CheckResult], None] | None = None,
) -> Assessment:
    """Run ``suite`` against the daemon at ``target``; ``on_result`` sees each check as it ends.

    Raises ``ValueError`` for an unknown suite and the client's connection errors
    (:class:`~cc_executor.client.DaemonUnreachable`, ...) when the daemon cannot be reached.
    """
    if suite not in CHECKS:
        raise ValueError(f"unknown suite {suite!r}; one of {', '.join(SUITES)}")
    assessment = Assessment(suite, target.url, datetime.now(UTC))
    client = target.client()
    if suite not in SUITES_WITHOUT_CONNECTION:
        await client.connect()
        version = client.server_info.get("version")
        assessment.daemon_version = version if isinstance(version, str) else None
    try:
        ctx = _Context(target, client, live)
        for name, check in CHECKS[suite]:
            result = await _run_check(name, check, ctx)
            assessment.checks.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        await client.close()
    return assessment
