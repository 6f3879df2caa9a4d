"""``validation_prompt``: a second, fresh Claude run judges the first one's result.

The judge is asked for ``{"is_valid": bool, "reason": str}``. Following the earlier tool,
validation never blocks: when the judge fails or answers something unreadable, the verdict is
``is_valid=True`` with the error recorded (``Validation.error``); the caller decides what to retry.
"""

from __future__ import annotations

from cc_executor.api.json_mode import parse_json_answer
from cc_executor.api.result import Validation

__all__ = ["RESULT_MAX_CHARS", "failed_validation", "validation_request", "verdict_from_answer"]

RESULT_MAX_CHARS = 100_000  # the judged result goes into a prompt; keep it bounded


def validation_request(validation_prompt: str, task: str, result_text: str) -> str:
    return (
        f"{validation_prompt.strip()}\n\n"
        f"Task that was given:\n{task}\n\n"
        f"Result to judge:\n{result_text[:RESULT_MAX_CHARS]}\n\n"
        'Answer with JSON only: {"is_valid": true or false, "reason": "one sentence"}'
    )


def verdict_from_answer(answer: str, execution_id: str | None) -> Validation:
    try:
        value = parse_json_answer(answer)
    except ValueError as exc:
        return Validation(True, "", execution_id, error=f"unreadable verdict: {exc}")
    if not isinstance(value, dict) or not isinstance(value.get("is_valid"), bool):
        return Validation(True, "", execution_id, error=f"verdict without is_valid: {answer!r}")
    reason = value.get("reason")
    return Validation(value["is_valid"], reason if isinstance(reason, str) else "", execution_id)


def failed_validation(error: str, execution_id: str | None) -> Validation:
    """The judge could not run: valid by default, the error kept."""
    return Validation(True, "", execution_id, error=error)
