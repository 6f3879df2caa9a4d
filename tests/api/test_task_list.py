"""Task lists: fresh process per task, stop or continue, per-task options."""

from __future__ import annotations

import pytest
from tests.api.fakes import Answer, FakeRunner

from cc_executor.api import acc_execute_list, cc_execute_list, cc_execute_task_list
from cc_executor.config import Settings
from cc_executor.errors import InvalidParams, ServiceError

FAIL = Answer("API Error", is_error=True, state="failed", exit_code=1)


async def test_each_task_runs_in_a_fresh_process(settings: Settings) -> None:
    runner = FakeRunner(Answer("one"), Answer("two"))
    results = await acc_execute_list(
        ["Task 1", {"task": "Task 2", "timeout": 9}],
        settings=settings,
        runner=runner,
        timeout_per_task=5,
    )
    assert [r.text for r in results] == ["one", "two"]
    first, second = runner.requests
    assert first.execution_id != second.execution_id
    assert (first.timeout, second.timeout) == (5, 9)
    assert first.options.resume is None
    assert not second.options.continue_session
    assert results[0].session_id != results[1].session_id
    assert runner.entered == 1  # one supervisor (or connection) for the whole list


async def test_stop_marks_the_rest_skipped(settings: Settings) -> None:
    runner = FakeRunner(Answer("ok"), FAIL, Answer("never"))
    results = await acc_execute_list(["a", "b", "c", "d"], settings=settings, runner=runner)
    assert [r.state for r in results] == ["completed", "failed", "skipped", "skipped"]
    assert results[2].skipped
    assert not results[2].success
    assert "task 2 failed" in (results[3].error or "")
    assert len(runner.requests) == 2


async def test_continue_runs_every_task(settings: Settings) -> None:
    runner = FakeRunner(FAIL, Answer("ok"))
    results = await acc_execute_list(
        ["a", "b"], settings=settings, runner=runner, on_failure="continue"
    )
    assert [r.success for r in results] == [False, True]


async def test_errors_become_failed_results(settings: Settings) -> None:
    runner = FakeRunner(Answer("", raises=ServiceError("Claude Code CLI not found")), Answer("x"))
    results = await acc_execute_list(
        ["a", "b", {"task": "c", "no_such_option": 1}],
        settings=settings,
        runner=runner,
        on_failure="continue",
    )
    assert results[0].state == "failed"
    assert "Claude Code CLI not found" in (results[0].error or "")
    assert results[1].success
    assert "invalid Claude options" in (results[2].error or "")


async def test_json_mode_failure_in_a_list_is_a_failed_task(settings: Settings) -> None:
    runner = FakeRunner(Answer("no"), Answer("still no"), Answer("{}"))
    results = await acc_execute_list(
        [{"task": "a", "json_mode": True}, "b"], settings=settings, runner=runner
    )
    assert not results[0].success
    assert "JSON mode" in (results[0].error or "")
    assert results[1].skipped


async def test_bad_arguments(settings: Settings) -> None:
    with pytest.raises(InvalidParams):
        await acc_execute_list(["a"], settings=settings, runner=FakeRunner(), on_failure="maybe")  # type: ignore[arg-type]
    with pytest.raises(InvalidParams, match="'task' string"):
        await acc_execute_list([{"prompt": "a"}], settings=settings, runner=FakeRunner())


def test_sync_names(settings: Settings) -> None:
    assert cc_execute_task_list is cc_execute_list
    results = cc_execute_list(
        ["a"], settings=settings, runner=FakeRunner(Answer("x")), reports_dir=settings.state_dir
    )
    assert results[0].text == "x"
    assert str(settings.state_dir) in (results[0].receipt_path or "")
