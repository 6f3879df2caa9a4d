"""Anti-hallucination receipts: a UUID4 in every prompt, echoed back, checked against records.

Every task's prompt ends with an instruction to finish the answer with
``CC_EXECUTOR_RECEIPT: <uuid4>``. After the run, a receipt JSON is written to
``<reports_dir>/receipts/<execution_id>.json``: execution id, UUID, sha256 of the prompt as
sent, Claude's session id, the CLI's own transcript of the session (if present), whether the
UUID came back, and when.

:func:`verify` checks a receipt against what the model cannot forge by writing files in its
working directory: the execution's events as the supervisor recorded them (when this process ran
it) and the CLI's transcript, ``$HOME/.claude/projects/<cwd, every character other than
A-Z a-z 0-9 replaced by '-'>/<session_id>.jsonl`` (observed with CLI 2.1.332; the transcript
holds the prompt as a ``user`` record and each answer as an ``assistant`` record).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from cc_executor.api.events import TaskEvent

if TYPE_CHECKING:
    from cc_executor.api.result import RunOutcome

__all__ = [
    "MARKER_PREFIX",
    "Check",
    "Receipt",
    "Verification",
    "load_receipt",
    "marker_instruction",
    "new_receipt",
    "prompt_sha256",
    "receipt_path",
    "safe_file_name",
    "strip_marker",
    "transcript_path",
    "uuid_in",
    "verify",
    "write_outcome_receipt",
    "write_receipt",
]

MARKER_PREFIX = "CC_EXECUTOR_RECEIPT"
_PROJECT_NAME = re.compile(r"[^A-Za-z0-9]")
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
TRANSCRIPT_MAX_BYTES = 256 * 1024 * 1024  # a transcript larger than this is not read whole


def marker_instruction(uuid: str) -> str:
    """The text appended to every prompt."""
    return (
        "\n\n---\nExecution receipt: end your final answer with this line, exactly as written,"
        f" on a line of its own:\n{MARKER_PREFIX}: {uuid}"
    )


def uuid_in(texts: Iterable[str], uuid: str) -> bool:
    return any(uuid in text for text in texts)


def strip_marker(text: str, uuid: str) -> str:
    """The answer without the receipt line(s)."""
    lines = [line for line in text.splitlines() if uuid not in line]
    return "\n".join(lines).strip()


def prompt_sha256(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()


def transcript_path(session_id: str | None, *, cwd: str | None, home: str | None) -> Path | None:
    """The CLI's transcript of ``session_id`` under ``home``, if it exists."""
    if not session_id or not home:
        return None
    projects = Path(home) / ".claude" / "projects"
    if cwd:
        candidate = projects / _PROJECT_NAME.sub("-", cwd) / f"{session_id}.jsonl"
        if candidate.is_file():
            return candidate
    # The name scheme may change between CLI versions; the session id is unique anyway.
    return next(iter(sorted(projects.glob(f"*/{session_id}.jsonl"))), None)


@dataclass(frozen=True)
class Receipt:
    execution_id: str
    uuid: str
    prompt_sha256: str
    session_id: str | None
    transcript_path: str | None
    uuid_found: bool
    state: str
    created_at: float


def safe_file_name(name: str) -> str:
    """``name`` usable as a file name (ids are client-chosen and may hold ``/``)."""
    return _UNSAFE_FILE_CHARS.sub("_", name)


def receipt_path(reports_dir: Path, execution_id: str) -> Path:
    return reports_dir / "receipts" / f"{safe_file_name(execution_id)}.json"


def write_receipt(receipt: Receipt, reports_dir: Path) -> Path:
    path = receipt_path(reports_dir, receipt.execution_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(receipt), indent=2) + "\n", encoding="utf-8")
    return path


def load_receipt(reports_dir: Path, execution_id: str) -> Receipt | None:
    path = receipt_path(reports_dir, execution_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Receipt(**data)
    except (OSError, ValueError, TypeError) as exc:
        logger.debug("receipt {} unreadable: {}", path, exc)
        return None


@dataclass(frozen=True)
class Check:
    """One piece of evidence: ``passed`` is ``None`` when it could not be looked at."""

    name: str
    passed: bool | None
    detail: str


@dataclass(frozen=True)
class Verification:
    execution_id: str
    verified: bool
    reason: str
    checks: tuple[Check, ...] = ()
    receipt_path: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _events_check(receipt: Receipt, events: Iterable[TaskEvent] | None) -> Check:
    if events is None:
        return Check("events", None, "this process did not run the execution")
    texts = [
        e.text("text") if e.kind == "assistant_text" else e.text("result")
        for e in events
        if e.kind in ("assistant_text", "result")
    ]
    if not texts:
        return Check("events", False, "no assistant text in the recorded events")
    if uuid_in(texts, receipt.uuid):
        return Check("events", True, "the UUID is in Claude's recorded answer")
    return Check("events", False, "the recorded answer does not contain the UUID")


def _record_texts(record: dict[str, object]) -> list[str]:
    message = record.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            str(block.get("text", ""))
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        ]
    return []


def _transcript_checks(receipt: Receipt) -> list[Check]:
    if receipt.transcript_path is None:
        return [Check("transcript", None, "no transcript was found for the session")]
    path = Path(receipt.transcript_path)
    try:
        if path.stat().st_size > TRANSCRIPT_MAX_BYTES:
            return [Check("transcript", None, f"{path} is too large to read")]
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return [Check("transcript", False, f"transcript unreadable: {exc}")]
    prompt_seen = answer_seen = False
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("sessionId") not in (None, receipt.session_id):
            continue
        texts = _record_texts(record)
        if record.get("type") == "user":
            prompt_seen = prompt_seen or any(
                prompt_sha256(t) == receipt.prompt_sha256 for t in texts
            )
        elif record.get("type") == "assistant":
            answer_seen = answer_seen or uuid_in(texts, receipt.uuid)
    return [
        Check(
            "transcript_prompt",
            prompt_seen,
            "the transcript holds the prompt with the recorded sha256"
            if prompt_seen
            else "no prompt with the recorded sha256 in the transcript",
        ),
        Check(
            "transcript_answer",
            answer_seen,
            "the transcript's assistant answer contains the UUID"
            if answer_seen
            else "no assistant answer with the UUID in the transcript",
        ),
    ]


def verify(
    execution_id: str, reports_dir: Path, events: Iterable[TaskEvent] | None = None
) -> Verification:
    """Check the receipt of ``execution_id`` against its events and the CLI's transcript."""
    path = receipt_path(reports_dir, execution_id)
    receipt = load_receipt(reports_dir, execution_id)
    if receipt is None:
        return Verification(execution_id, False, f"no readable receipt at {path}")
    checks = (_events_check(receipt, events), *_transcript_checks(receipt))
    failed = [c for c in checks if c.passed is False]
    passed = [c for c in checks if c.passed]
    if failed:
        reason = "; ".join(c.detail for c in failed)
    elif passed:
        reason = "; ".join(c.detail for c in passed)
    else:
        reason = "no evidence could be checked (no events, no transcript)"
    verified = bool(passed) and not failed
    return Verification(execution_id, verified, reason, checks, str(path))


def new_receipt(
    *,
    execution_id: str,
    uuid: str,
    prompt: str,
    session_id: str | None,
    transcript: Path | None,
    uuid_found: bool,
    state: str,
) -> Receipt:
    return Receipt(
        execution_id=execution_id,
        uuid=uuid,
        prompt_sha256=prompt_sha256(prompt),
        session_id=session_id,
        transcript_path=str(transcript) if transcript is not None else None,
        uuid_found=uuid_found,
        state=state,
        created_at=time.time(),
    )


def write_outcome_receipt(
    outcome: RunOutcome,
    *,
    prompt: str,
    receipt_uuid: str,
    cwd: str | None,
    home: str | None,
    reports_dir: Path,
) -> Path:
    """Write the receipt of a finished Claude run (``prompt`` as sent). The transcript is looked
    up where the CLI's own ``init`` event says it ran, else in ``cwd``."""
    init_cwd = next((e.text("cwd") for e in outcome.events if e.kind == "init"), None)
    transcript = transcript_path(outcome.session_id, cwd=init_cwd or cwd, home=home)
    receipt = new_receipt(
        execution_id=outcome.execution_id,
        uuid=receipt_uuid,
        prompt=prompt,
        session_id=outcome.session_id,
        transcript=transcript,
        uuid_found=uuid_in(outcome.assistant_texts(), receipt_uuid),
        state=outcome.state,
    )
    return write_receipt(receipt, reports_dir)
