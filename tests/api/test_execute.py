"""The task API's pipeline against a scripted runner: receipts, JSON mode, validation, streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.api.fakes import Answer, FakeRunner

from cc_executor.api import (
    JSONModeError,
    TaskEvent,
    TaskResult,
    acc_execute,
    cc_execute,
    verify_execution,
)
from cc_executor.api.json_mode import JSON_INSTRUCTION
from cc_executor.api.receipts import MARKER_PREFIX, transcript_path
from cc_executor.config import Settings
from cc_executor.errors import InvalidParams, ServiceError


def read_text(path: str | Path | None) -> str:
    assert path is not None
    return Path(path).read_text()


def read_json(path: str | Path | None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(read_text(path))
    return data


def write_text(path: str | Path | None, text: str) -> None:
    assert path is not None
    Path(path).write_text(text)


async def _until_error(stream: AsyncIterator[object]) -> AsyncIterator[object]:
    try:
        async for item in stream:
            yield item
    except JSONModeError as exc:
        yield exc


async def test_plain_answer_with_receipt(settings: Settings) -> None:
    runner = FakeRunner(Answer("2 + 2 = 4"))
    result = await acc_execute("What is 2+2?", settings=settings, runner=runner, timeout=30)
    (request,) = runner.requests
    assert request.prompt.startswith("What is 2+2?")
    assert f"{MARKER_PREFIX}: {result.uuid}" in request.prompt
    assert request.timeout == 30
    assert request.options.resume is None
    assert result.text == "2 + 2 = 4"
    assert str(result) == "2 + 2 = 4"
    assert result.success
    assert result.state == "completed"
    assert result.exit_code == 0
    assert result.uuid_found is True
    assert result.cost_usd == 0.001
    assert result.usage == {"input_tokens": 20, "output_tokens": 10}
    assert result.session_id is not None
    assert result.num_turns == 1
    assert result.execution_id == request.execution_id
    assert [e.seq for e in result.events] == list(range(1, len(result.events) + 1))
    assert runner.entered == runner.exited == 1
    receipt = read_json(result.receipt_path)
    assert receipt["execution_id"] == result.execution_id
    assert receipt["uuid"] == result.uuid
    assert receipt["uuid_found"] is True
    assert receipt["session_id"] == result.session_id
    assert receipt["transcript_path"] is None  # the fake writes no CLI transcript
    assert len(receipt["prompt_sha256"]) == 64
    assert Path(result.receipt_path or "").parent == settings.reports_dir / "receipts"  # type: ignore[operator]


async def test_missing_uuid_is_recorded_and_fails_verification(settings: Settings) -> None:
    runner = FakeRunner(Answer("I made it up", echo_uuid=False))
    result = await acc_execute("task", settings=settings, runner=runner)
    assert result.uuid_found is False
    assert result.success  # the run itself succeeded; the receipt tells the rest
    verdict = verify_execution(result.execution_id, settings=settings)
    assert verdict.verified is False
    assert "does not contain the UUID" in verdict.reason


async def test_verify_with_the_cli_transcript(settings: Settings, tmp_path: Path) -> None:
    home = tmp_path / "home"
    runner = FakeRunner(Answer("done"))
    result = await acc_execute("task", settings=settings, runner=runner, env={"HOME": str(home)})
    # What the CLI would have written (fakes do not): the transcript of the session.
    project = home / ".claude" / "projects" / "-work"
    project.mkdir(parents=True)
    transcript = project / f"{result.session_id}.jsonl"
    records = [
        {"type": "user", "sessionId": result.session_id, "message": {"content": result.prompt}},
        {
            "type": "assistant",
            "sessionId": result.session_id,
            "message": {"content": [{"type": "text", "text": f"done {result.uuid}"}]},
        },
    ]
    write_text(transcript, "\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    receipt = read_json(result.receipt_path)
    receipt["transcript_path"] = str(transcript)
    write_text(result.receipt_path, json.dumps(receipt))
    verdict = verify_execution(result.execution_id, reports_dir=settings.reports_dir)
    assert verdict.verified, verdict
    assert {c.name: c.passed for c in verdict.checks} == {
        "events": True,
        "transcript_prompt": True,
        "transcript_answer": True,
    }
    # A transcript whose prompt differs from what was sent is evidence against the run.
    records[0]["message"] = {"content": "another prompt"}
    write_text(transcript, "\n".join(json.dumps(r) for r in records))
    assert not verify_execution(result.execution_id, reports_dir=settings.reports_dir).verified


def test_verify_without_receipt(settings: Settings) -> None:
    verdict = verify_execution("nope", settings=settings)
    assert not verdict.verified
    assert "no readable receipt" in verdict.reason


def test_transcript_path_lookup(tmp_path: Path) -> None:
    home = tmp_path / "home"
    session = "0d4f4f4e-1111-4222-8333-444455556666"
    project = home / ".claude" / "projects" / "-work-my-dir-x"
    project.mkdir(parents=True)
    (project / f"{session}.jsonl").write_text("")
    # The CLI names the folder after the cwd, every non-alphanumeric character a '-'.
    assert transcript_path(session, cwd="/work/my dir.x", home=str(home)) == (
        project / f"{session}.jsonl"
    )
    # Another cwd (a daemon elsewhere): found by the unique session id.
    assert transcript_path(session, cwd="/elsewhere", home=str(home)) == (
        project / f"{session}.jsonl"
    )
    assert transcript_path(None, cwd="/work", home=str(home)) is None
    assert transcript_path("other", cwd="/work", home=str(home)) is None


async def test_json_mode_parses_fenced_json(settings: Settings) -> None:
    runner = FakeRunner(Answer('```json\n{"answer": 4, "files_created": []}\n```'))
    result = await acc_execute("2+2 as JSON", json_mode=True, settings=settings, runner=runner)
    assert JSON_INSTRUCTION in runner.requests[0].prompt
    assert result.data == {"answer": 4, "files_created": []}
    assert result["answer"] == 4
    assert result.uuid_found
    with pytest.raises(KeyError):
        result["missing"]


async def test_json_mode_repairs_once_in_a_fresh_process(settings: Settings) -> None:
    runner = FakeRunner(Answer("answer: four"), Answer("[1, 2]"))
    result = await acc_execute("list", json_mode=True, settings=settings, runner=runner)
    first, repair = runner.requests
    assert repair.execution_id != first.execution_id
    assert "answer: four" in repair.prompt
    assert "not" in repair.prompt
    assert "JSON" in repair.prompt
    assert result.data == [1, 2]
    assert result[1] == 2
    assert result.extra_execution_ids == (repair.execution_id,)


async def test_json_mode_error_after_repair(settings: Settings) -> None:
    runner = FakeRunner(Answer("no json"), Answer("still none"))
    with pytest.raises(JSONModeError) as info:
        await acc_execute("x", json_mode=True, settings=settings, runner=runner)
    assert isinstance(info.value, ServiceError)
    assert "after one repair attempt" in str(info.value)
    assert info.value.data["text"] == "no json"
    assert info.value.result.success is False  # type: ignore[attr-defined]
    assert len(runner.requests) == 2


async def test_json_mode_skips_parsing_when_the_run_failed(settings: Settings) -> None:
    runner = FakeRunner(Answer("API Error", is_error=True, exit_code=1, state="failed"))
    result = await acc_execute("x", json_mode=True, settings=settings, runner=runner)
    assert not result.success
    assert result.data is None
    assert result.error == "API Error" or "API Error" in (result.error or "")
    assert len(runner.requests) == 1


async def test_validation_verdicts(settings: Settings) -> None:
    runner = FakeRunner(
        Answer("4"), Answer('{"is_valid": false, "reason": "should be four"}', echo_uuid=False)
    )
    result = await acc_execute(
        "2+2", validation_prompt="Is it right?", settings=settings, runner=runner
    )
    task_request, judge = runner.requests
    assert judge.prompt.startswith("Is it right?")
    assert "Result to judge:\n4" in judge.prompt
    assert MARKER_PREFIX not in judge.prompt
    assert result.validation is not None
    assert result.validation.is_valid is False
    assert result.validation.reason == "should be four"
    assert result.validation.execution_id == judge.execution_id
    assert task_request.execution_id == result.execution_id


@pytest.mark.parametrize(
    ("judge", "error_part"),
    [
        (Answer("boom", is_error=True, exit_code=1, state="failed"), "boom"),
        (Answer("I think it is fine"), "unreadable verdict"),
        (Answer('{"reason": "no flag"}'), "without is_valid"),
        (Answer("", raises=ServiceError("daemon gone")), "daemon gone"),
    ],
)
async def test_validation_errors_default_to_valid(
    settings: Settings, judge: Answer, error_part: str
) -> None:
    runner = FakeRunner(Answer("4"), judge)
    result = await acc_execute("2+2", validation_prompt="Judge", settings=settings, runner=runner)
    assert result.validation is not None
    assert result.validation.is_valid is True
    assert error_part in (result.validation.error or "")


async def test_amend_prompt_rules_and_claude_pass(settings: Settings) -> None:
    runner = FakeRunner(Answer("Write hello.txt; assume defaults."), Answer("ok"))
    result = await acc_execute(
        "claude -p 'Write hello.txt and ask me before overwriting'",
        amend_prompt=True,
        amend_with_claude=True,
        settings=settings,
        runner=runner,
    )
    amend_request, task_request = runner.requests
    assert "Write hello.txt and ask me before overwriting" in amend_request.prompt
    assert task_request.prompt.startswith("Write hello.txt; assume defaults.")
    assert result.amendments == ("unwrap_claude_command", "no_interactive_questions", "claude")
    assert result.task.startswith("claude -p")


async def test_amend_prompt_off_sends_the_task_verbatim(settings: Settings) -> None:
    runner = FakeRunner(Answer("ok"))
    result = await acc_execute("  ask me anything  ", settings=settings, runner=runner)
    assert runner.requests[0].prompt.startswith("  ask me anything  \n")
    assert result.amendments == ()


async def test_report_content(settings: Settings) -> None:
    runner = FakeRunner(Answer("It printed hi.", tools=[("Bash", {"command": "echo hi"}, "hi")]))
    result = await acc_execute(
        "Run echo hi", generate_report=True, settings=settings, runner=runner
    )
    report = read_text(result.report_path)
    assert report.startswith(f"# cc-executor report: {result.execution_id}")
    assert "Run echo hi" in report
    assert "## Prompt as sent" in report
    assert (result.uuid or "-") in report
    assert "### Bash (`toolu_0`)" in report
    assert '"command": "echo hi"' in report
    assert "It printed hi." in report
    assert "0.001000" in report  # cost
    assert "20 in / 10 out" in report
    assert "UUID echoed by Claude: yes" in report
    assert "tool_call: Bash" in report  # timeline


async def test_stream_yields_events_then_result(settings: Settings) -> None:
    runner = FakeRunner(Answer("4"))
    stream = await acc_execute("2+2", stream=True, settings=settings, runner=runner)
    items = [item async for item in stream]
    assert isinstance(items[-1], TaskResult)
    assert all(isinstance(i, TaskEvent) for i in items[:-1])
    assert next(i.method for i in items[:-1]) == "process.started"
    assert stream.result is items[-1]
    assert runner.exited == 1


async def test_stream_json_error_after_result(settings: Settings) -> None:
    runner = FakeRunner(Answer("nope"), Answer("nope again"))
    stream = await acc_execute("x", stream=True, json_mode=True, settings=settings, runner=runner)
    seen: list[object] = [item async for item in _until_error(stream)]
    assert isinstance(seen[-2], TaskResult)
    assert isinstance(seen[-1], JSONModeError)


async def test_stream_closed_early_exits_the_runner(settings: Settings) -> None:
    runner = FakeRunner(Answer("4"))
    async with await acc_execute("2+2", stream=True, settings=settings, runner=runner) as stream:
        first = await anext(stream)
        assert isinstance(first, TaskEvent)
    assert runner.exited == 1


async def test_progress_callbacks_sync_and_async(settings: Settings) -> None:
    seen: list[str] = []

    async def async_callback(event: TaskEvent) -> None:
        seen.append(f"async {event.method}")

    await acc_execute(
        "x", settings=settings, runner=FakeRunner(Answer("y")), progress_callback=async_callback
    )
    await acc_execute(
        "x",
        settings=settings,
        runner=FakeRunner(Answer("y")),
        progress_callback=lambda e: seen.append(str(e)),
    )
    assert seen[0] == "async process.started"
    assert any("assistant_text: y" in s for s in seen)


def test_cc_execute_sync(settings: Settings) -> None:
    calls: list[TaskEvent] = []
    result = cc_execute(
        "x", settings=settings, runner=FakeRunner(Answer("y")), progress_callback=calls.append
    )
    assert result.text == "y"
    assert calls
    assert calls[-1].method == "process.completed"


async def test_cc_execute_inside_a_loop_points_to_acc_execute(settings: Settings) -> None:
    with pytest.raises(RuntimeError, match=r"await acc_execute"):
        cc_execute("x", settings=settings, runner=FakeRunner())


async def test_unknown_options_are_refused(settings: Settings) -> None:
    with pytest.raises(InvalidParams, match="invalid Claude options"):
        await acc_execute("x", settings=settings, runner=FakeRunner(), no_such_option=1)


async def test_claude_options_and_model_reach_the_runner(settings: Settings) -> None:
    runner = FakeRunner(Answer("y"))
    await acc_execute(
        "x",
        settings=settings,
        runner=runner,
        model="claude-test",
        max_turns=3,
        cwd="/tmp",
        idle_timeout=7,
        env={"A": "1"},
    )
    (request,) = runner.requests
    assert request.options.model == "claude-test"
    assert request.options.max_turns == 3
    assert request.cwd == "/tmp"
    assert request.idle_timeout == 7
    assert request.env == {"A": "1"}
    assert request.metadata == {"cc_executor_api": "task"}


async def test_run_without_result(settings: Settings) -> None:
    runner = FakeRunner(Answer("", no_result=True, state="timeout", exit_code=None))
    result = await acc_execute("x", settings=settings, runner=runner)
    assert not result.success
    assert result.state == "timeout"
    assert "without a result" in (result.error or "")
