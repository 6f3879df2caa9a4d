"""``generate_report=True``: a Markdown report of one task, written to the reports dir.

Sections: summary table (execution, state, session, cost, tokens, timings), prompt (as sent),
timeline of events (time offsets are not on the wire; events are listed by ``seq``), tool calls
with their results, the answer, verification (receipt, UUID) and validation.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cc_executor.api.receipts import safe_file_name
from cc_executor.api.result import TaskResult

__all__ = ["report_markdown", "report_path", "write_report"]

TOOL_IO_MAX_CHARS = 2000  # inputs and results of tool calls are cut in the report
TIMELINE_MAX_EVENTS = 500  # a report of a huge run stays readable


def _fence(text: str, lang: str = "") -> str:
    ticks = "````" if "```" in text else "```"
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _cut(text: str, limit: int = TOOL_IO_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more chars)"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "—"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


def _summary(result: TaskResult) -> list[str]:
    usage = result.usage
    tokens = (
        f"{usage.get('input_tokens', '—')} in / {usage.get('output_tokens', '—')} out"
        if usage
        else "—"
    )
    rows = [
        ("Execution", f"`{result.execution_id}`"),
        ("State", f"{result.state} (exit code {result.exit_code})"),
        ("Success", "yes" if result.success else "no"),
        ("Session", f"`{result.session_id}`" if result.session_id else "—"),
        ("Cost (USD)", f"{result.cost_usd:.6f}" if result.cost_usd is not None else "—"),
        ("Tokens", tokens),
        ("Turns", str(result.num_turns) if result.num_turns is not None else "—"),
        ("Started", _when(result.started_at)),
        ("Ended", _when(result.ended_at)),
        (
            "Duration",
            f"{result.execution_time:.2f} s" if result.execution_time is not None else "—",
        ),
    ]
    if result.error:
        rows.append(("Error", result.error.replace("|", "\\|").replace("\n", " ")))
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def _timeline(result: TaskResult) -> list[str]:
    lines = [f"{len(result.events)} events."]
    for event in result.events[:TIMELINE_MAX_EVENTS]:
        if event.method == "process.output":
            continue
        seq = event.seq if event.seq is not None else "·"
        lines.append(f"- `{seq}` {event.summary()}")
    if len(result.events) > TIMELINE_MAX_EVENTS:
        lines.append(f"- … {len(result.events) - TIMELINE_MAX_EVENTS} more")
    return lines


def _tool_calls(result: TaskResult) -> list[str]:
    results = {e.text("tool_use_id"): e for e in result.events if e.kind == "tool_result"}
    lines: list[str] = []
    for call in (e for e in result.events if e.kind == "tool_call"):
        lines.append(f"### {call.text('name')} (`{call.text('id')}`)")
        lines.append(_fence(_cut(json.dumps(call.get("input"), indent=2)), "json"))
        answer = results.get(call.text("id"))
        if answer is not None:
            status = "error" if answer.get("is_error") else "result"
            lines.append(f"{status}:")
            lines.append(_fence(_cut(answer.text("content"))))
        lines.append("")
    return lines or ["None."]


def _verification(result: TaskResult) -> list[str]:
    lines = [
        f"- UUID: `{result.uuid}`",
        f"- UUID echoed by Claude: {'yes' if result.uuid_found else 'no'}",
        f"- Receipt: `{result.receipt_path}`" if result.receipt_path else "- Receipt: —",
    ]
    if result.amendments:
        lines.append(f"- Prompt amendments: {', '.join(result.amendments)}")
    validation = result.validation
    if validation is not None:
        verdict = "valid" if validation.is_valid else "NOT valid"
        lines.append(f"- Validation: {verdict}; {validation.reason or '—'}")
        if validation.error:
            lines.append(f"- Validation error: {validation.error}")
    return lines


def report_markdown(result: TaskResult) -> str:
    parts = [
        f"# cc-executor report: {result.execution_id}",
        "",
        *_summary(result),
        "",
        "## Task",
        _fence(result.task),
        "",
        "## Prompt as sent",
        _fence(result.prompt),
        "",
        "## Timeline",
        *_timeline(result),
        "",
        "## Tool calls",
        *_tool_calls(result),
        "",
        "## Result",
        _fence(result.text or "(empty)"),
        "",
        "## Verification",
        *_verification(result),
        "",
    ]
    return "\n".join(parts)


def report_path(reports_dir: Path, execution_id: str) -> Path:
    return reports_dir / f"{safe_file_name(execution_id)}.md"


def write_report(result: TaskResult, reports_dir: Path) -> Path:
    path = report_path(reports_dir, result.execution_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_markdown(result), encoding="utf-8")
    return path
