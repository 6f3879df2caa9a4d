"""One execution: its spec, its process group, its timers, its state and its event log.

Owns: the life of one spawned command, from ``process.started`` to ``process.completed`` (always
the last event, after all output was read), applying pause/resume/cancel through the state table,
wall-clock and idle timeouts, and making sure nothing of it survives: when the leader exits, the
rest of its group and every escaped descendant are killed, then the pipes are drained to EOF.
Does not own: validation of requests, limits, id allocation or bookkeeping of many executions
(``supervisor.py``), the OS calls themselves (``process.py``), or cutting output into pieces
(``protocol.chunking``).

Timers wait on one :class:`asyncio.Event` with a computed deadline; output does not wake them (it
only moves the idle deadline, which the timer re-reads when its old deadline passes), pause and
resume do. Nothing polls.

Attempts: with an :class:`~cc_executor.supervisor.attempts.AttemptPolicy` in the spec, one
execution may spawn its command several times (agent retries). Each attempt is supervised like a
plain run; between attempts the policy decides, and a delay is spent in ``waiting_for_limit``
(a bounded wait on the same stop event CANCEL sets, so a cancel ends it at once). Time spent
waiting does not count against ``timeout``; ``process.completed`` comes once, at the very end.

Size: this module is past the usual 500 lines because the attempt loop, the timers and the
controls all act on one state machine and one stop event; split across files (mixins) they would
hide the races the table decides. The spec and the policy seam live apart (``attempts.py``).
"""

from __future__ import annotations

import asyncio
import shlex
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NewType

from loguru import logger

from cc_executor.errors import InvalidParams, InvalidTransition, LimitReached, ServiceError
from cc_executor.protocol.chunking import OutputChunker
from cc_executor.protocol.names import ControlType, Notification
from cc_executor.supervisor.attempts import AttemptEnd, AttemptPolicy, Finish, Retry
from cc_executor.supervisor.eventlog import EventLog
from cc_executor.supervisor.process import TERMINATE_GRACE_S, ProcessGroup, Stream
from cc_executor.supervisor.states import (
    ExecutionState,
    check_transition,
    invalid_transition,
    is_terminal,
)

__all__ = [
    "INPUT_DRAIN_TIMEOUT_S",
    "LEADER_REAP_TIMEOUT_S",
    "OUTPUT_DRAIN_TIMEOUT_S",
    "EnvHook",
    "Execution",
    "ExecutionId",
    "ExecutionSpec",
]

ExecutionId = NewType("ExecutionId", str)

OUTPUT_DRAIN_TIMEOUT_S = 5.0  # every writer is dead by now, so EOF is immediate; bound it anyway
LEADER_REAP_TIMEOUT_S = 5.0  # after SIGKILL the leader is reaped in ms unless stuck in the kernel
INPUT_DRAIN_TIMEOUT_S = 30.0  # a child not reading its stdin must not hang the writer forever

_S = ExecutionState

EnvHook = Callable[[dict[str, str], str], dict[str, str]]
"""``(composed child env, execution id) -> env``: an agent's last word on its environment."""


def program_error(program: str, exc: OSError) -> InvalidParams:
    """The ``InvalidParams`` for an exec that failed because of the program.

    ``FileNotFoundError``/``NotADirectoryError``: not found (on the child's PATH for a bare name,
    relative to the child's cwd for a path); ``PermissionError``: not executable (no x bit, a
    directory, a non-executable file first on the PATH).
    """
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        if "/" in program:
            return InvalidParams(f"program {program!r} not found", program=program)
        return InvalidParams(f"program {program!r} not found on the child's PATH", program=program)
    if isinstance(exc, PermissionError):
        return InvalidParams(f"program {program!r} is not executable", program=program)
    return InvalidParams(f"cannot run {program!r}: {exc.strerror or exc}", program=program)


@dataclass(slots=True)
class ExecutionSpec:
    """What to run and how; built by the doors (from ``execute`` params) or by the agents."""

    argv: list[str]
    display_command: str = ""  # shown as ``command``; defaults to the shell-quoted argv
    cwd: Path | str | None = None
    env: dict[str, str] = field(default_factory=dict)  # overrides on top of the daemon's base env
    timeout: float | None = None  # wall clock seconds, paused time excluded unless said otherwise
    idle_timeout: float | None = None  # seconds without any output
    timeout_includes_paused: bool = False
    stdin: bool = False  # open a pipe for ``input``; otherwise stdin is /dev/null
    execution_id: str | None = None  # client-chosen id (idempotent execute)
    metadata: dict[str, object] = field(default_factory=dict)
    agent: str | None = None
    env_hook: EnvHook | None = None  # e.g. remove a parent agent session's variables
    attempt_policy: AttemptPolicy | None = None  # retries, output observer (one per execution)
    # The daemon's own annotations (timeout-prediction class, ...): shown by status, never mixed
    # into the caller's metadata.
    labels: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.display_command and all(isinstance(arg, str) for arg in self.argv):
            self.display_command = shlex.join(self.argv)


class Execution:
    """A running (or finished) command; created and driven by the :class:`Supervisor`."""

    def __init__(
        self,
        spec: ExecutionSpec,
        execution_id: ExecutionId,
        *,
        log: EventLog,
        terminate_grace_s: float = TERMINATE_GRACE_S,
        on_finished: Callable[[Execution], None] | None = None,
    ) -> None:
        self.id = execution_id
        self.spec = spec
        self.log = log
        self.state = _S.PENDING
        self.pid: int | None = None
        self.pgid: int | None = None
        self.exit_code: int | None = None
        self.signal: str | None = None
        self.created_at = time.time()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.reason: str | None = None
        self._grace = terminate_grace_s
        self._on_finished = on_finished
        self._group: ProcessGroup | None = None
        self._chunkers: dict[Stream, OutputChunker] = {
            "stdout": OutputChunker("stdout"),
            "stderr": OutputChunker("stderr"),
        }
        self._done = asyncio.Event()
        self._stop = asyncio.Event()  # set by cancel or a timeout: run() terminates the group
        self._timer_wake: asyncio.Event | None = None
        self._output_failed = False
        # Output read while the spawn still awaits (connecting stdin) would come before
        # process.started was appended; it waits here until then.
        self._early_output: list[tuple[Stream, bytes]] | None = []
        # time.monotonic() clocks, set at spawn (loop.time() may use another base, e.g. uvloop)
        self._t_started = 0.0
        self._t_ended: float | None = None
        self._last_activity = 0.0
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._waited_total = 0.0  # between attempts (waiting_for_limit); not counted by timeout
        self.attempt = 0
        self.output_bytes = 0  # bytes read from stdout and stderr, all attempts
        self._argv = spec.argv
        self._env: dict[str, str] = {}
        self._policy = spec.attempt_policy
        self._policy_failed = False
        self._cancel_logged = False
        self._attempt_stop = asyncio.Event()  # set by the policy's end_attempt_after timer
        self._attempt_ended_by: str | None = None
        self._attempt_timer: asyncio.TimerHandle | None = None

    # --- read side -------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once ``process.completed`` was appended and the log closed."""
        return self._done.is_set()

    @property
    def stdin_open(self) -> bool:
        return self._group is not None and self.spec.stdin and self._group.stdin_open

    def execution_time(self) -> float | None:
        """Wall-clock seconds from spawn to end (or to now while running)."""
        if self.started_at is None:
            return None
        end = self._t_ended if self._t_ended is not None else time.monotonic()
        return round(end - self._t_started, 6)

    def info(self) -> dict[str, object]:
        """The ``status`` view of this execution (times are Unix epoch seconds)."""
        info: dict[str, object] = {
            "execution_id": self.id,
            "state": self.state.value,
            "command": self.spec.display_command,
            "pid": self.pid,
            "pgid": self.pgid,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "execution_time": self.execution_time(),
            "reason": self.reason,
            "last_seq": self.log.last_seq,
            "metadata": self.spec.metadata,
            "attempt": self.attempt,
            "agent": self.spec.agent,
            "output_bytes": self.output_bytes,
            "timeout": self.spec.timeout,
            **self.spec.labels,
        }
        if self._policy is not None:
            info.update(self._policy.info())
        return info

    async def wait(self, timeout: float | None = None) -> ExecutionState:  # noqa: ASYNC109
        """Wait until the execution finished (raises ``TimeoutError`` after ``timeout``)."""
        async with asyncio.timeout(timeout):
            await self._done.wait()
        return self.state

    # --- start and supervision (called by the Supervisor) -------------------------------------

    async def start(self, env: Mapping[str, str]) -> None:
        """Spawn the group and append ``process.started``. Raises InvalidParams/ServiceError."""
        self._env = dict(env)
        if self._policy is not None:
            self._policy.bind(self)
        await self._spawn(self.spec.argv)

    async def _spawn(self, argv: list[str]) -> None:
        self.attempt += 1
        self._argv = argv
        self._early_output = []
        self._attempt_stop = asyncio.Event()
        self._attempt_ended_by = None
        if self._policy is not None:
            self._policy.attempt_started(self.attempt)
        try:
            group = await ProcessGroup.spawn(
                argv,
                cwd=self.spec.cwd,
                env=self._env,
                stdin=self.spec.stdin,
                marker=self.id,
                on_output=self._on_output,
            )
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            raise program_error(argv[0], exc) from None
        except OSError as exc:
            raise ServiceError(
                f"spawn of {argv[0]!r} failed: {exc}", execution_id=self.id
            ) from None
        self._group = group
        self.pid, self.pgid = group.pid, group.pgid
        self._last_activity = time.monotonic()
        if self.attempt == 1:
            self.started_at = time.time()
            self._t_started = self._last_activity
        if self.state in (_S.PENDING, _S.WAITING_FOR_LIMIT):
            self._set_state(_S.RUNNING)
        self.log.append(
            Notification.PROCESS_STARTED,
            {
                "pid": group.pid,
                "pgid": group.pgid,
                "command": self.spec.display_command,
                "attempt": self.attempt,
            },
        )
        if self.state is _S.CANCELED and not self._cancel_logged:  # canceled while spawning
            self._cancel_logged = True
            self.log.append(Notification.PROCESS_CANCELED, {})
        early, self._early_output = self._early_output or [], None
        for stream, data in early:
            self._on_output(stream, data)
        # DEBUG, not INFO: every execution is in the store's history already (`cc-executor
        # history`), and two INFO lines an execution cost its caller ~0.3 ms of the first
        # output of `echo hi` on two cores (docs/benchmarks.md, round 11).
        logger.debug(
            "execution {} attempt {} started pid={} argv={}", self.id, self.attempt, group.pid, argv
        )

    async def run(self) -> None:
        """Supervise until everything of this execution is gone, then record completion.

        Runs as a task of the Supervisor's TaskGroup; it never raises except CancelledError, so one
        failing execution never takes the others down.
        """
        assert self._group is not None, "start() first"
        try:
            await self._run_attempts()
        except asyncio.CancelledError:
            # Our owner is going away and will not wait: KILL synchronously, record, re-raise.
            self._kill_now()
            self._settle(_S.CANCELED, "supervisor_shutdown")
            raise
        except Exception as exc:  # task top level: report, kill, complete as failed
            logger.exception("execution {}: supervision failed", self.id)
            self._kill_now()
            self._append_error(f"supervision failed: {exc!r}")
            self._settle(_S.FAILED, "error")
        finally:
            self._cancel_attempt_timer()
            if self._group is not None:
                self._group.close()
            self._finish()

    def _kill_now(self) -> None:
        if self._group is not None:
            self._group.kill_now()

    def abandon(self) -> None:
        """The owner is gone and :meth:`run` never got to run (its task was cancelled before its
        first step): KILL the group synchronously and record the end, as run() would have."""
        if self.finished:
            return
        self._kill_now()
        self._settle(_S.CANCELED, "supervisor_shutdown")
        self._cancel_attempt_timer()
        if self._group is not None:
            self._group.close()
        self._finish()

    async def _run_attempts(self) -> None:
        while True:
            group = self._group
            assert group is not None
            ended_by = await self._supervise(group)
            self._cancel_attempt_timer()
            retry = self._decide(ended_by)
            if retry is None:
                return
            group.close()
            self._flush_output()
            if not await self._wait_before_retry(retry):
                return
            try:
                await self._spawn(retry.argv or self._argv)
            except (InvalidParams, ServiceError) as exc:
                self._append_error(f"attempt {self.attempt} could not start: {exc}")
                self._settle(_S.FAILED, "spawn_failed")
                return

    def _decide(self, ended_by: str | None) -> Retry | None:
        """After an attempt: settle the state, or return how to retry (policy executions)."""
        policy = self._policy
        if policy is None or self._policy_failed:
            self._settle_by_exit()
            return None
        end = AttemptEnd(
            attempt=self.attempt,
            exit_code=self.exit_code,
            signal=self.signal,
            ended_by=ended_by,
            can_retry=self.state is _S.RUNNING and not self._stop.is_set(),
        )
        decision = policy.attempt_ended(end)
        if isinstance(decision, Retry) and end.can_retry:
            return decision
        if isinstance(decision, Finish):
            self._settle(_S.COMPLETED if decision.succeeded else _S.FAILED, decision.reason)
        else:
            self._settle_by_exit()
        return None

    async def _wait_before_retry(self, retry: Retry) -> bool:
        """Wait ``retry.delay_s`` in waiting_for_limit; False when canceled meanwhile."""
        logger.info("execution {}: retry ({}) in {:.3f}s", self.id, retry.reason, retry.delay_s)
        if retry.delay_s > 0:
            self._set_state(_S.WAITING_FOR_LIMIT)
            began = time.monotonic()
            try:
                async with asyncio.timeout(retry.delay_s):
                    await self._stop.wait()
            except TimeoutError:
                pass
            finally:
                self._waited_total += time.monotonic() - began
        return not self._stop.is_set()

    async def _supervise(self, group: ProcessGroup) -> str | None:
        """One attempt, until its group is gone and its pipes are drained; records the exit.

        Returns the reason the policy gave when its timer ended the attempt, else None.
        """
        ended_by: str | None = None
        async with asyncio.TaskGroup() as tasks:
            leader = tasks.create_task(group.wait(), name=f"{self.id}:leader")
            stop = tasks.create_task(self._stop.wait(), name=f"{self.id}:stop")
            end_attempt = tasks.create_task(self._attempt_stop.wait(), name=f"{self.id}:attempt")
            timer = tasks.create_task(self._run_timers(), name=f"{self.id}:timers")
            await asyncio.wait({leader, stop, end_attempt}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            end_attempt.cancel()
            timer.cancel()
            terminated = False
            if not leader.done() and not self._stop.is_set():
                ended_by = self._attempt_ended_by
            if not leader.done():
                # canceled or timed out: TERM, grace, KILL, sweep
                await group.terminate(self._grace)
                terminated = True
            try:
                async with asyncio.timeout(LEADER_REAP_TIMEOUT_S):
                    await leader
            except TimeoutError:
                self._append_error(f"leader pid {group.pid} not reaped after SIGKILL")
                leader.cancel()
            self._record_exit()
            if self._policy is None:
                self._settle_by_exit()  # at once: a racing control request sees the end
            if not terminated:
                # The leader is gone; anything it left behind (background jobs, setsid
                # grandchildren) would hold the pipes open and run unsupervised.
                await group.kill_all()
            try:
                async with asyncio.timeout(OUTPUT_DRAIN_TIMEOUT_S):
                    await group.wait_output_closed()
            except TimeoutError:
                # Only a process that left the group *and* cleared its environment can hold them.
                self._append_error(
                    f"output pipes still open {OUTPUT_DRAIN_TIMEOUT_S}s after the group was killed"
                )
        return ended_by

    async def _run_timers(self) -> None:
        if self.spec.timeout is None and self.spec.idle_timeout is None:
            return
        while True:
            deadline, reason = self._next_deadline()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                self._expire(reason)
                return
            wake = self._timer_wake = asyncio.Event()
            try:
                async with asyncio.timeout(None if deadline is None else deadline - now):
                    await wake.wait()
            except TimeoutError:
                pass

    def _next_deadline(self) -> tuple[float | None, str]:
        spec = self.spec
        paused = self._paused_since is not None
        candidates: list[tuple[float, str]] = []
        if spec.timeout is not None:
            if spec.timeout_includes_paused:
                candidates.append((self._t_started + spec.timeout, "timeout"))
            elif not paused:
                not_running = self._paused_total + self._waited_total
                candidates.append((self._t_started + not_running + spec.timeout, "timeout"))
        if spec.idle_timeout is not None and not paused:
            # Silence while paused is expected; the idle clock restarts on resume.
            candidates.append((self._last_activity + spec.idle_timeout, "idle_timeout"))
        if not candidates:
            return None, ""
        return min(candidates)

    def _expire(self, reason: str) -> None:
        self._settle_exit_if_exited()
        if is_terminal(self.state):
            return
        logger.info("execution {}: {} after {}s", self.id, reason, self.execution_time())
        self._set_state(_S.TIMEOUT)
        self.reason = reason
        self._stop.set()

    def _wake_timer(self) -> None:
        wake, self._timer_wake = self._timer_wake, None
        if wake is not None:
            wake.set()

    def _on_output(self, stream: Stream, data: bytes) -> None:
        # Called by the loop for every chunk read from a pipe: must stay cheap and never raise.
        self._last_activity = time.monotonic()
        if self._early_output is not None:
            self._early_output.append((stream, data))
            return
        self.output_bytes += len(data)
        if self.log.closed or self._output_failed:
            return
        try:
            for piece in self._chunkers[stream].feed(data):
                self.log.append(Notification.PROCESS_OUTPUT, piece.to_params())
        except Exception as exc:  # callback top level: the loop would only log it
            logger.exception("execution {}: output handling failed", self.id)
            self._output_failed = True
            self._append_error(f"output handling failed: {exc!r}")
        policy = self._policy
        if policy is not None and not self._policy_failed:
            try:
                policy.on_output(stream, data)
            except Exception as exc:  # a parser bug must not cost the output or the run
                logger.exception("execution {}: output observer failed", self.id)
                self._policy_failed = True
                self._append_error(f"agent output handling failed: {exc!r}")

    # --- the policy's host side (AttemptHost) ---------------------------------------------------

    def emit(self, method: str, params: Mapping[str, object]) -> None:
        """Append a notification for the policy (ignored once the log is closed)."""
        if not self.log.closed:
            self.log.append(method, params)

    def end_attempt_after(self, delay_s: float, reason: str) -> None:
        """Arm the watchdog ending this attempt after ``delay_s`` (the first arming wins)."""
        if self._attempt_timer is not None:
            return
        attempt = self.attempt
        loop = asyncio.get_running_loop()
        self._attempt_timer = loop.call_later(delay_s, self._end_attempt, attempt, reason)

    def _end_attempt(self, attempt: int, reason: str) -> None:
        self._attempt_timer = None
        if attempt == self.attempt and not self._attempt_stop.is_set():
            logger.info("execution {}: ending attempt {} ({})", self.id, attempt, reason)
            self._attempt_ended_by = reason
            self._attempt_stop.set()

    def _cancel_attempt_timer(self) -> None:
        timer, self._attempt_timer = self._attempt_timer, None
        if timer is not None:
            timer.cancel()

    def _append_error(self, message: str) -> None:
        logger.error("execution {}: {}", self.id, message)
        if not self.log.closed:
            self.log.append(
                Notification.PROCESS_ERROR, {"error": message, "code": ServiceError.code}
            )

    # --- state changes ---------------------------------------------------------------------------

    def _set_state(self, target: ExecutionState, requested: str | None = None) -> None:
        check_transition(self.state, target, execution_id=self.id, requested=requested)
        self.state = target

    def _settle(self, target: ExecutionState, reason: str | None) -> None:
        """Move to ``target`` unless already terminal (first decision wins)."""
        if not is_terminal(self.state):
            self._set_state(target)
            self.reason = reason

    def _record_exit(self) -> None:
        """Record the leader's exit status (of the latest attempt)."""
        group = self._group
        code = group.returncode if group is not None else None
        if code is None:
            self.exit_code = self.signal = None
        elif code < 0:
            self.exit_code, self.signal = None, signal.Signals(-code).name
        else:
            self.exit_code, self.signal = code, None

    def _settle_by_exit(self) -> None:
        """Decide completed/failed from the recorded exit, unless already decided."""
        if self.exit_code is None and self.signal is None:
            self._settle(_S.FAILED, "lost")
        elif not is_terminal(self.state):
            self._set_state(_S.COMPLETED if self.exit_code == 0 else _S.FAILED)

    def _settle_exit(self) -> None:
        self._record_exit()
        self._settle_by_exit()

    def _settle_exit_if_exited(self) -> None:
        # The leader's exit is known (protocol callback) a few loop turns before run() gets to
        # it; a control request in between must see a finished execution, not a running one.
        # Not with a policy: its execution is not over when one attempt's leader exits.
        group = self._group
        if self._policy is None and group is not None and group.exited and self._t_ended is None:
            self._settle_exit()

    def _finish(self) -> None:
        if self._done.is_set():
            return
        if self.exit_code is None and self.signal is None and self._group is not None:
            code = self._group.returncode
            if code is not None:
                self._settle_exit()
        if not is_terminal(self.state):
            self._settle(_S.FAILED, "error")
        self._t_ended = time.monotonic()
        self.ended_at = time.time()
        self._flush_output()
        self.log.append(
            Notification.PROCESS_COMPLETED,
            {
                "status": self.state.value,
                "exit_code": self.exit_code,
                "signal": self.signal,
                "execution_time": self.execution_time(),
                "reason": self.reason,
            },
        )
        self.log.close()
        self._done.set()
        if self._on_finished is not None:
            self._on_finished(self)
        logger.debug(
            "execution {} {} exit_code={} signal={} reason={}",
            self.id,
            self.state.value,
            self.exit_code,
            self.signal,
            self.reason,
        )

    def _flush_output(self) -> None:
        """Close open lines of both streams (end of an attempt, end of the execution)."""
        try:
            for chunker in self._chunkers.values():
                for piece in chunker.flush():
                    self.log.append(Notification.PROCESS_OUTPUT, piece.to_params())
        except Exception as exc:  # never let a flush bug lose the completion event
            logger.exception("execution {}: output flush failed", self.id)
            self._append_error(f"output flush failed: {exc!r}")

    # --- control (called by the Supervisor) ------------------------------------------------------

    def pause(self) -> None:
        """SIGSTOP the group and append ``process.paused``."""
        self._settle_exit_if_exited()
        self._set_state(_S.PAUSED, ControlType.PAUSE)
        assert self._group is not None
        self._group.signal_group(signal.SIGSTOP)
        self._paused_since = time.monotonic()
        self.log.append(Notification.PROCESS_PAUSED, {})
        self._wake_timer()

    def resume(self) -> None:
        """SIGCONT the group and append ``process.resumed``."""
        self._settle_exit_if_exited()
        if self.state is _S.WAITING_FOR_LIMIT:  # the table allows waiting -> running; not RESUME
            raise invalid_transition(self.state, ControlType.RESUME, execution_id=self.id)
        self._set_state(_S.RUNNING, ControlType.RESUME)
        assert self._group is not None
        self._group.signal_group(signal.SIGCONT)
        now = time.monotonic()
        if self._paused_since is not None:
            self._paused_total += now - self._paused_since
            self._paused_since = None
        self._last_activity = now
        self.log.append(Notification.PROCESS_RESUMED, {})
        self._wake_timer()

    def cancel(self, reason: str = "canceled") -> None:
        """Record the cancel, send SIGTERM (+SIGCONT) to the group and let run() finish the job."""
        self._settle_exit_if_exited()
        self._set_state(_S.CANCELED, ControlType.CANCEL)
        self.reason = reason
        if self._group is not None:
            self._group.begin_terminate()  # SIGTERM + SIGCONT first; run() does the rest
            self._cancel_logged = True
            self.log.append(Notification.PROCESS_CANCELED, {})
        self._stop.set()

    async def write_input(self, data: bytes, *, eof: bool = False) -> int:
        """Write to the child's stdin; returns the number of bytes accepted."""
        state = self.state.value
        if not self.spec.stdin or self._group is None:
            raise InvalidTransition(
                f"execution {self.id} was started without stdin",
                execution_id=self.id,
                state=state,
                requested="INPUT",
            )
        if is_terminal(self.state):
            raise InvalidTransition(
                f"execution {self.id} has finished ({state})",
                execution_id=self.id,
                state=state,
                requested="INPUT",
            )
        try:
            async with asyncio.timeout(INPUT_DRAIN_TIMEOUT_S):
                await self._group.write_stdin(data, eof=eof)
        except BrokenPipeError:
            raise InvalidTransition(
                f"stdin of execution {self.id} is closed",
                execution_id=self.id,
                state=state,
                requested="INPUT",
            ) from None
        except TimeoutError:
            raise LimitReached(
                f"execution {self.id} is not reading its stdin; the data stays queued",
                execution_id=self.id,
            ) from None
        return len(data)
