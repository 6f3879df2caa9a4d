"""The built-in receipt hook: api.receipts' UUID check, run as a post_execution hook."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from cc_executor.api.receipts import load_receipt, marker_instruction, new_receipt, write_receipt
from cc_executor.scheduler.hooks import HookContext, HookEvent, HookOutcome, HookRunner
from cc_executor.scheduler.hooks.runner import builtin_hooks

POST = HookEvent.POST_EXECUTION
CWD = "/work/some-project"
SESSION = "0b5e5a34-1111-4222-8333-444455556666"


@pytest.fixture
def receipt_uuid() -> str:
    return str(uuid.uuid4())


def runner(reports: Path, home: Path) -> HookRunner:
    hooks = HookRunner(
        hooks_dir=None,
        entry_point_group=None,
        builtins=builtin_hooks(reports_dir=reports, home=str(home)),
    )
    hooks.load()
    return hooks


def context(receipt_uuid: str, answer: str, **fields: object) -> HookContext:
    values: dict[str, object] = {
        "event": POST,
        "execution_id": "exec/1",
        "agent": "claude",
        "prompt": "What is 2+2?" + marker_instruction(receipt_uuid),
        "cwd": CWD,
        "state": "completed",
        "exit_code": 0,
        "result": {"text": answer, "session_id": SESSION},
        "metadata": {"receipt_uuid": receipt_uuid},
    }
    values.update(fields)
    return HookContext.model_validate(values)


async def test_echoed_uuid_is_verified_and_a_receipt_is_written(
    tmp_path: Path, receipt_uuid: str
) -> None:
    reports = tmp_path / "reports"
    outcome = await runner(reports, tmp_path / "home").run(
        POST, context(receipt_uuid, f"4\nCC_EXECUTOR_RECEIPT: {receipt_uuid}")
    )
    run = outcome.runs[0]
    assert run.hook == "builtin.receipt"
    assert run.ok
    assert run.message == "receipt verified: the UUID is in Claude's recorded answer"
    receipt = load_receipt(reports, "exec/1")
    assert receipt is not None
    assert receipt.uuid == receipt_uuid
    assert receipt.uuid_found is True
    assert receipt.session_id == SESSION
    assert receipt.transcript_path is None  # no transcript under this home


async def test_missing_uuid_is_a_warning_not_a_block(tmp_path: Path, receipt_uuid: str) -> None:
    outcome: HookOutcome = await runner(tmp_path / "reports", tmp_path).run(
        POST, context(receipt_uuid, "4")
    )
    run = outcome.runs[0]
    assert not run.ok
    assert run.error == "receipt not verified: the recorded answer does not contain the UUID"
    assert outcome.proceed
    assert len(outcome.warnings) == 1


async def test_the_cli_transcript_is_checked(tmp_path: Path, receipt_uuid: str) -> None:
    home = tmp_path / "home"
    ctx = context(receipt_uuid, f"4 CC_EXECUTOR_RECEIPT: {receipt_uuid}")
    project = home / ".claude" / "projects" / re.sub(r"[^A-Za-z0-9]", "-", CWD)
    project.mkdir(parents=True)
    records = [
        {"type": "user", "sessionId": SESSION, "message": {"content": ctx.prompt}},
        {
            "type": "assistant",
            "sessionId": SESSION,
            "message": {"content": [{"type": "text", "text": f"4 {receipt_uuid}"}]},
        },
    ]
    (project / f"{SESSION}.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8"
    )
    outcome = await runner(tmp_path / "reports", home).run(POST, ctx)
    run = outcome.runs[0]
    assert run.ok, run.error
    assert run.message is not None
    assert "the transcript holds the prompt with the recorded sha256" in run.message
    assert "the transcript's assistant answer contains the UUID" in run.message


async def test_an_existing_receipt_is_verified_not_replaced(
    tmp_path: Path, receipt_uuid: str
) -> None:
    reports = tmp_path / "reports"
    original = new_receipt(
        execution_id="exec/1",
        uuid=receipt_uuid,
        prompt="as the Python API sent it",
        session_id=None,
        transcript=None,
        uuid_found=True,
        state="completed",
    )
    path = write_receipt(original, reports)
    before = path.read_text()
    outcome = await runner(reports, tmp_path).run(
        POST, context(receipt_uuid, f"done {receipt_uuid}")
    )
    assert outcome.runs[0].ok
    assert path.read_text() == before


@pytest.mark.parametrize("agent", [None, "shell"])
async def test_the_hook_does_not_even_run_for_other_agents(
    tmp_path: Path, receipt_uuid: str, agent: str | None
) -> None:
    # A plain command costs no context, no thread and no hook-run record.
    reports = tmp_path / "reports"
    hooks = runner(reports, tmp_path)
    assert hooks.handles(POST, "claude")
    assert not hooks.handles(POST, agent)
    outcome = await hooks.run(POST, context(receipt_uuid, "4", agent=agent))
    assert outcome.runs == ()
    assert not (reports / "receipts").exists()


@pytest.mark.parametrize("fields", [{"metadata": {}}, {"metadata": {"receipt_uuid": 7}}])
async def test_other_executions_are_left_alone(
    tmp_path: Path, receipt_uuid: str, fields: dict[str, object]
) -> None:
    reports = tmp_path / "reports"
    outcome = await runner(reports, tmp_path).run(POST, context(receipt_uuid, "4", **fields))
    run = outcome.runs[0]
    assert run.ok
    assert run.message is None
    assert not (reports / "receipts").exists()


async def test_only_post_execution(tmp_path: Path, receipt_uuid: str) -> None:
    outcome = await runner(tmp_path, tmp_path).run(
        HookEvent.PRE_EXECUTION, context(receipt_uuid, "4")
    )
    assert outcome.runs == ()
