"""`cc-executor history ...` against a real SqliteStore in a temporary state dir."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from cc_executor.cli.main import app
from cc_executor.config import Settings
from cc_executor.protocol.jsonrpc import encode_notification
from cc_executor.protocol.names import Notification
from cc_executor.storage import ExecutionRecord, StoredEvent, open_store
from cc_executor.storage.export import read_export

runner = CliRunner()
NOW = float(int(time.time()))  # retention compares against the real clock
DAY = 86400.0
SNOWMAN = "☃".encode()  # three bytes: split across two pieces below


def output_event(
    execution_id: str, seq: int, stream: str, data: bytes, *, b64: bool = False
) -> StoredEvent:
    params: dict[str, Any] = {
        "execution_id": execution_id,
        "seq": seq,
        "type": stream,
        "truncated": False,
    }
    if b64:
        params |= {"data": base64.b64encode(data).decode(), "encoding": "base64"}
    else:
        params["data"] = data.decode()
    return StoredEvent(
        execution_id,
        seq,
        Notification.PROCESS_OUTPUT,
        encode_notification(Notification.PROCESS_OUTPUT, params),
    )


def records() -> list[ExecutionRecord]:
    def agent(n: int, state: str, cost: float, took: float, **extra: Any) -> ExecutionRecord:
        return ExecutionRecord(
            execution_id=f"agent-{n}",
            state=state,
            command=f"claude -p task {n}",
            agent="claude",
            created_at=NOW - n * 10,
            ended_at=NOW - n * 10 + took,
            execution_time=took,
            task_list_id="list-a" if n < 2 else "list-b",
            task_index=n,
            category="claude:code:low",
            timeout=100.0,
            timeout_predicted=True,
            result={
                "total_cost_usd": cost,
                "usage": {"input_tokens": 100 * (n + 1), "output_tokens": 10 * (n + 1)},
            },
            **extra,
        )

    return [
        agent(0, "completed", 0.25, 20.0),
        agent(1, "completed", 0.75, 40.0),
        agent(2, "timeout", 0.5, 100.0),
        ExecutionRecord(
            execution_id="shell-ok",
            state="completed",
            command="echo hi",
            exit_code=0,
            created_at=NOW - 100,
            execution_time=1.0,
            last_seq=5,
        ),
        ExecutionRecord(
            execution_id="shell-old",
            state="failed",
            command="false",
            exit_code=1,
            created_at=NOW - 40 * DAY,
            ended_at=NOW - 40 * DAY + 3,
            execution_time=3.0,
        ),
        ExecutionRecord(
            execution_id="still-running", state="running", command="sleep 1000", created_at=NOW - 1
        ),
    ]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A state dir seeded with executions and the output events of ``shell-ok``."""
    state = tmp_path / "state"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # exports land here; no stray .env is read

    async def seed() -> None:
        store = open_store(Settings(state_dir=state))
        await store.open()
        try:
            for record in records():
                await store.put_execution(record)
            await store.append_events(
                [
                    output_event("shell-ok", 1, "stdout", b"hello " + SNOWMAN[:1], b64=True),
                    output_event("shell-ok", 2, "stdout", SNOWMAN[1:] + b"\n", b64=True),
                    output_event("shell-ok", 3, "stderr", b"warn: x\n"),
                    output_event("shell-ok", 4, "stdout", b"bye \xff\n", b64=True),
                ]
            )
        finally:
            await store.close()

    asyncio.run(seed())
    return {"CC_EXECUTOR_STATE_DIR": str(state), "CC_EXECUTOR_STORE": "sqlite"}


def invoke(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, ["history", *args], env=env, input=stdin)


def as_json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def test_list(env: dict[str, str]) -> None:
    rows = as_json(invoke(env, "list", "--json"))
    assert [r["execution_id"] for r in rows] == [
        "agent-0",
        "still-running",
        "agent-1",
        "agent-2",
        "shell-ok",
        "shell-old",
    ]
    failed = as_json(invoke(env, "list", "--json", "--status", "failed", "--status", "timeout"))
    assert [r["execution_id"] for r in failed] == ["agent-2", "shell-old"]
    assert len(as_json(invoke(env, "list", "--json", "--limit", "2"))) == 2
    table = invoke(env, "list")
    assert table.exit_code == 0
    assert "shell-ok" in table.stdout
    assert "running" in table.stdout


def test_show_with_output(env: dict[str, str]) -> None:
    shown = as_json(invoke(env, "show", "shell-ok", "--output", "--json"))
    assert shown["execution_id"] == "shell-ok"
    assert shown["output"] == "hello ☃\nwarn: x\nbye \ufffd\n"
    plain = as_json(invoke(env, "show", "agent-1", "--json"))
    assert "output" not in plain
    assert plain["result"]["total_cost_usd"] == 0.75
    text = invoke(env, "show", "shell-ok", "--output")
    assert text.exit_code == 0
    assert "hello ☃" in text.stdout
    assert "echo hi" in text.stdout
    missing = invoke(env, "show", "nope")
    assert missing.exit_code == 1
    assert "not found" in missing.stderr


@pytest.mark.parametrize("format", ["json", "csv"])
def test_export(env: dict[str, str], format: str) -> None:
    done = invoke(env, "export", "--format", format, "--output", f"out.{format}")
    assert done.exit_code == 0, done.output
    assert "wrote 6 execution(s)" in done.stdout
    assert read_export(Path(f"out.{format}")) == sorted(records(), key=lambda r: -r.created_at)
    filtered = invoke(
        env, "export", "--format", format, "-o", "f", "--status", "completed", "--limit", "2"
    )
    assert filtered.exit_code == 0
    assert [r.execution_id for r in read_export(Path("f"), format)] == ["agent-0", "agent-1"]  # type: ignore[arg-type]


def test_export_refuses_paths_outside(env: dict[str, str], tmp_path: Path) -> None:
    escaped = invoke(env, "export", "--output", "../escape.json")
    assert escaped.exit_code == 2
    assert "outside the export directory" in escaped.stderr
    assert not (tmp_path / "escape.json").exists()
    allowed = invoke(
        env, "export", "-o", str(tmp_path / "there.json"), "--export-dir", str(tmp_path)
    )
    assert allowed.exit_code == 0, allowed.output
    assert (tmp_path / "there.json").exists()
    bad_since = invoke(env, "export", "-o", "x.json", "--since", "yesterday-ish")
    assert bad_since.exit_code == 2


def test_metrics(env: dict[str, str]) -> None:
    metrics = as_json(invoke(env, "metrics", "--json"))
    counts = metrics["counts"]
    assert (counts["completed"], counts["failed"], counts["timeout"], counts["running"]) == (
        3,
        1,
        1,
        1,
    )
    assert metrics["finished"] == 5
    assert metrics["success_rate"] == pytest.approx(3 / 5)
    assert metrics["duration_s"]["p50"] == 20.0  # of 1, 3, 20, 40, 100
    assert metrics["duration_s"]["p90"] == 100.0
    tasks = metrics["provider_reported"]["per_task"]
    assert tasks["count"] == 3
    assert tasks["total_cost_usd"] == pytest.approx(1.5)
    assert tasks["cost_usd_per_item"] == pytest.approx(0.5)
    assert tasks["tokens"]["input_tokens"] == 600
    lists = metrics["provider_reported"]["per_task_list"]
    assert lists["count"] == 2
    assert lists["cost_usd_per_item"] == pytest.approx(0.75)
    assert lists["tokens_per_item"]["output_tokens"] == pytest.approx(30.0)
    predicted = metrics["timeouts"]["claude:code:low"]
    assert (predicted["executions"], predicted["predicted"], predicted["timed_out"]) == (3, 3, 1)
    assert predicted["actual_s"]["p90"] == 100.0
    assert predicted["used_of_predicted"]["p50"] == pytest.approx(0.4)
    recent = as_json(invoke(env, "metrics", "--json", "--since", str(NOW - 15)))
    assert recent["window"]["executions"] == 3  # agent-0, still-running and agent-1
    table = invoke(env, "metrics")
    assert table.exit_code == 0
    assert "provider-reported" in table.stdout


def test_prune(env: dict[str, str]) -> None:
    declined = invoke(env, "prune", "--keep", "1", stdin="n\n")
    assert declined.exit_code == 1
    assert len(as_json(invoke(env, "list", "--json"))) == 6
    report = as_json(invoke(env, "prune", "--older-than", "30", "--yes", "--json"))
    assert report["executions"] == 1  # shell-old, 40 days old (the retention default is 30)
    assert "shell-old" not in [r["execution_id"] for r in as_json(invoke(env, "list", "--json"))]
    kept = invoke(env, "prune", "--keep", "2", "--yes")
    assert kept.exit_code == 0, kept.output
    assert "pruned" in kept.stdout
    left = [r["execution_id"] for r in as_json(invoke(env, "list", "--json"))]
    assert "still-running" in left  # unfinished executions are never pruned
    assert len(left) <= 3


def test_store_unavailable_exits_1(env: dict[str, str]) -> None:
    broken = env | {"CC_EXECUTOR_STORE": "redis", "CC_EXECUTOR_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = invoke(broken, "list")
    assert result.exit_code == 1
    assert "store unavailable" in result.stderr
