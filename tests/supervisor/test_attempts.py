"""The attempt seam with a tiny scripted policy (no agents): re-spawn within one execution,
overriding the verdict, the end-attempt watchdog, a failing observer, a failing re-spawn."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.supervisor.probes import finished, messages, methods, output

from cc_executor.supervisor import (
    AttemptEnd,
    AttemptHost,
    Decision,
    ExecutionSpec,
    Finish,
    Retry,
    Supervisor,
)


@dataclass
class Scripted:
    decisions: list[Decision]
    end_after: float | None = None
    explode: bool = False
    host: AttemptHost | None = None
    ends: list[AttemptEnd] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)

    def bind(self, host: AttemptHost) -> None:
        self.host = host

    def attempt_started(self, attempt: int) -> None:
        assert self.host is not None
        self.host.emit("test.attempt", {"n": attempt})
        if self.end_after is not None:
            self.host.end_attempt_after(self.end_after, "watchdog")

    def on_output(self, stream: str, data: bytes) -> None:
        if self.explode:
            raise RuntimeError("parser bug")
        self.chunks.append(data)

    def attempt_ended(self, end: AttemptEnd) -> Decision:
        self.ends.append(end)
        return self.decisions.pop(0) if self.decisions else None

    def info(self) -> Mapping[str, object]:
        return {"ends": len(self.ends)}


def sh(command: str, policy: Scripted) -> ExecutionSpec:
    return ExecutionSpec(argv=["/bin/sh", "-c", command], attempt_policy=policy)


async def test_retry_respawns_with_new_argv_in_one_execution(supervisor: Supervisor) -> None:
    policy = Scripted([Retry("again", argv=["/bin/sh", "-c", "echo second"]), None])
    execution = await supervisor.execute(sh("echo first; exit 7", policy))
    done = await finished(execution)
    assert done["status"] == "completed"
    assert done["exit_code"] == 0
    assert output(execution) == b"first\nsecond\n"
    started = [m["params"] for m in messages(execution) if m["method"] == "process.started"]
    assert [s["attempt"] for s in started] == [1, 2]
    assert [e.exit_code for e in policy.ends] == [7, 0]
    assert methods(execution).count("test.attempt") == 2
    assert execution.info()["ends"] == 2
    assert execution.info()["attempt"] == 2


async def test_finish_overrides_the_exit_code(supervisor: Supervisor) -> None:
    execution = await supervisor.execute(sh("exit 3", Scripted([Finish(True, "fine")])))
    done = await finished(execution)
    assert done["status"] == "completed"
    assert done["reason"] == "fine"


async def test_end_attempt_watchdog(supervisor: Supervisor) -> None:
    policy = Scripted([Finish(True, "watchdog")], end_after=0.1)
    execution = await supervisor.execute(sh("sleep 30", policy))
    done = await finished(execution)
    assert done["status"] == "completed"
    assert done["signal"] == "SIGTERM"
    assert policy.ends[0].ended_by == "watchdog"


async def test_observer_failure_keeps_output(supervisor: Supervisor) -> None:
    policy = Scripted([Retry("ignored")], explode=True)
    execution = await supervisor.execute(sh("echo hi", policy))
    done = await finished(execution)
    assert done["status"] == "completed"
    assert output(execution) == b"hi\n"
    assert "process.error" in methods(execution)
    assert policy.ends == []  # a failed policy is not asked again


async def test_failed_respawn_fails_the_execution(supervisor: Supervisor) -> None:
    policy = Scripted([Retry("again", argv=["/nonexistent/program"])])
    execution = await supervisor.execute(sh("exit 1", policy))
    done = await finished(execution)
    assert done["status"] == "failed"
    assert done["reason"] == "spawn_failed"
    assert "process.error" in methods(execution)


async def test_cancel_stops_retries(supervisor: Supervisor) -> None:
    policy = Scripted([Retry("again", delay_s=30)])
    execution = await supervisor.execute(sh("sleep 30", policy))
    await supervisor.cancel(execution.id)
    done = await finished(execution)
    assert done["status"] == "canceled"
    assert policy.ends[0].can_retry is False
    assert methods(execution).count("process.started") == 1
