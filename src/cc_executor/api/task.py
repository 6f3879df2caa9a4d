"""One task, start to end, as an async generator of its events followed by a :class:`Done`.

The whole pipeline lives here, in order: amend the prompt (rules, then optionally Claude), add
the JSON instruction and the receipt UUID, run Claude (fresh process), parse JSON (one repair
run), write the receipt, validate (fresh process), write the report, record the result. Every
Claude process of a task goes through the :class:`~cc_executor.api.runners.Runner` seam, and
every event of every process is yielded as it arrives (for streams and progress callbacks).
"""

from __future__ import annotations

import time
import uuid as uuid_module
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cc_executor.agents import ClaudeOptions
from cc_executor.api import history
from cc_executor.api.amend import CLAUDE_AMEND_PROMPT, amend
from cc_executor.api.events import TaskEvent
from cc_executor.api.json_mode import JSON_INSTRUCTION, parse_json_answer, repair_prompt
from cc_executor.api.receipts import (
    marker_instruction,
    strip_marker,
    uuid_in,
    write_outcome_receipt,
)
from cc_executor.api.report import write_report
from cc_executor.api.result import RunOutcome, TaskResult, Validation, outcome_from_events
from cc_executor.api.runners import Runner, RunRequest
from cc_executor.api.validation import (
    failed_validation,
    validation_request,
    verdict_from_answer,
)
from cc_executor.errors import CCExecutorError

__all__ = ["Done", "TaskConfig", "run_task"]


@dataclass(frozen=True)
class TaskConfig:
    """Everything about how to run one task (built from ``cc_execute``'s keywords)."""

    reports_dir: Path
    options: ClaudeOptions = field(default_factory=ClaudeOptions)
    json_mode: bool = False
    generate_report: bool = False
    amend_prompt: bool = False
    amend_with_claude: bool = False
    validation_prompt: str | None = None
    timeout: float | None = None
    idle_timeout: float | None = None
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    home: str | None = None  # where the CLI keeps its transcripts (~/.claude)


@dataclass(frozen=True)
class Done:
    """The last item of :func:`run_task`: the result, and why JSON mode failed (if it did)."""

    result: TaskResult
    json_error: str | None = None


class _Run:
    """One Claude process of the task; collects its events while they are passed on."""

    def __init__(self, runner: Runner, config: TaskConfig, prompt: str, purpose: str) -> None:
        self.request = RunRequest(
            prompt=prompt,
            execution_id=str(uuid_module.uuid4()),
            options=config.options,
            timeout=config.timeout,
            idle_timeout=config.idle_timeout,
            cwd=config.cwd,
            env=config.env,
            metadata={"cc_executor_api": purpose},
        )
        self._runner = runner
        self.events: list[TaskEvent] = []

    async def events_live(self) -> AsyncIterator[TaskEvent]:
        async for event in self._runner.run(self.request):
            self.events.append(event)
            yield event

    @property
    def outcome(self) -> RunOutcome:
        return outcome_from_events(self.request.execution_id, self.events)


def _aux_options(options: ClaudeOptions) -> ClaudeOptions:
    """Options of the helper runs (repair, validation, amend): always a fresh session."""
    return options.model_copy(
        update={"resume": None, "continue_session": False, "session_id": None}
    )


class _Task:
    """The state of one task while its phases run; each phase yields its process's events."""

    def __init__(self, task: str, config: TaskConfig, runner: Runner) -> None:
        self.task = task
        self.config = config
        self.aux = replace(config, options=_aux_options(config.options))
        self.runner = runner
        self.started_at = time.time()
        self.prompt = task
        self.amendments: tuple[str, ...] = ()
        self.extra: list[str] = []
        self.data: object = None
        self.json_error: str | None = None
        self.validation: Validation | None = None

    def _aux_run(self, prompt: str, purpose: str) -> _Run:
        run = _Run(self.runner, self.aux, prompt, purpose)
        self.extra.append(run.request.execution_id)
        return run

    async def amend(self) -> AsyncIterator[TaskEvent]:
        amended = amend(self.task)
        self.prompt, self.amendments = amended.prompt, amended.applied
        if not self.config.amend_with_claude:
            return
        run = self._aux_run(CLAUDE_AMEND_PROMPT + self.prompt, "amend")
        async for event in run.events_live():
            yield event
        if run.outcome.success and run.outcome.text.strip():
            self.prompt = run.outcome.text.strip()
            self.amendments = (*self.amendments, "claude")

    async def parse_json(self, text: str, receipt_uuid: str) -> AsyncIterator[TaskEvent]:
        try:
            self.data = parse_json_answer(text)
            return
        except ValueError as first:
            run = self._aux_run(repair_prompt(text, str(first)), "json_repair")
        async for event in run.events_live():
            yield event
        try:
            self.data = parse_json_answer(strip_marker(run.outcome.text, receipt_uuid))
        except ValueError as second:
            self.json_error = f"{second} (after one repair attempt)"

    async def validate(self, prompt: str, text: str) -> AsyncIterator[TaskEvent]:
        judge = self._aux_run(validation_request(prompt, self.task, text), "validation")
        try:
            async for event in judge.events_live():
                yield event
        except CCExecutorError as exc:  # validation never blocks the task
            self.validation = failed_validation(str(exc), judge.request.execution_id)
            return
        verdict = judge.outcome
        self.validation = (
            verdict_from_answer(verdict.text, verdict.execution_id)
            if verdict.success
            else failed_validation(verdict.error or verdict.state, verdict.execution_id)
        )

    def write_receipt(self, outcome: RunOutcome, sent: str, receipt_uuid: str) -> Path:
        return write_outcome_receipt(
            outcome,
            prompt=sent,
            receipt_uuid=receipt_uuid,
            cwd=self.config.cwd,
            home=self.config.home,
            reports_dir=self.config.reports_dir,
        )

    def result(
        self, outcome: RunOutcome, sent: str, receipt_uuid: str, receipt: Path
    ) -> TaskResult:
        json_error = self.json_error
        return TaskResult(
            **outcome.result_fields(),
            task=self.task,
            prompt=sent,
            success=outcome.success and json_error is None,
            text=strip_marker(outcome.text, receipt_uuid),
            data=self.data,
            error=outcome.error or (f"JSON mode: {json_error}" if json_error else None),
            started_at=self.started_at,
            ended_at=time.time(),
            uuid=receipt_uuid,
            uuid_found=uuid_in(outcome.assistant_texts(), receipt_uuid),
            receipt_path=str(receipt),
            amendments=self.amendments,
            validation=self.validation,
            extra_execution_ids=tuple(self.extra),
        )


async def run_task(
    task: str, config: TaskConfig, runner: Runner
) -> AsyncIterator[TaskEvent | Done]:
    """Run one task; yield every event of every process, then :class:`Done`."""
    state = _Task(task, config, runner)
    if config.amend_prompt:
        async for event in state.amend():
            yield event
    receipt_uuid = str(uuid_module.uuid4())
    instruction = JSON_INSTRUCTION if config.json_mode else ""
    sent = state.prompt + instruction + marker_instruction(receipt_uuid)
    main = _Run(runner, config, sent, "task")
    async for event in main.events_live():
        yield event
    outcome = main.outcome
    text = strip_marker(outcome.text, receipt_uuid)
    if config.json_mode and outcome.success:
        async for event in state.parse_json(text, receipt_uuid):
            yield event
    receipt = state.write_receipt(outcome, sent, receipt_uuid)
    if config.validation_prompt and outcome.success and state.json_error is None:
        async for event in state.validate(config.validation_prompt, text):
            yield event
    result = state.result(outcome, sent, receipt_uuid, receipt)
    if config.generate_report:
        result = replace(result, report_path=str(write_report(result, config.reports_dir)))
    history.record(result)
    yield Done(result, state.json_error)
