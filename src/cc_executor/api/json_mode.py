"""``json_mode=True``: ask for JSON, parse the answer, repair once, or fail clearly.

Parsing is lenient about packaging, strict about content: the answer may be wrapped in a
Markdown fence (```json ... ```) or surrounded by a sentence; the first complete JSON value
in it is taken. When there is none, the caller asks Claude once more, in a fresh process, to
turn the text into JSON (:func:`repair_prompt`); if that fails too, :class:`JSONModeError`.
"""

from __future__ import annotations

import json
import re

from cc_executor.errors import ServiceError

__all__ = ["JSON_INSTRUCTION", "JSONModeError", "parse_json_answer", "repair_prompt"]

JSON_INSTRUCTION = (
    "\n\nRespond with a single valid JSON value (an object unless the task asks otherwise), "
    "with no Markdown fences and no text before or after it."
)
REPAIR_TEXT_MAX_CHARS = 100_000  # the text to repair goes into a prompt; keep it bounded

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n(.*?)\n?```", re.DOTALL)


class JSONModeError(ServiceError):
    """Claude's answer was not JSON, even after one repair attempt.

    ``data`` carries ``execution_id``, ``text`` (the last answer) and ``error``.
    """


def _candidates(text: str) -> list[str]:
    stripped = text.strip()
    found = [m.group(1).strip() for m in _FENCE.finditer(stripped)]
    return [*found, stripped]


def parse_json_answer(text: str) -> object:
    """The JSON value in ``text``; raises ``ValueError`` (with the reason) when there is none."""
    decoder = json.JSONDecoder()
    last_error = "empty answer"
    for candidate in _candidates(text):
        if not candidate:
            continue
        try:
            return json.loads(candidate)
        except ValueError as exc:
            last_error = str(exc)
        for start, char in enumerate(candidate):
            if char in "{[":
                try:
                    value, _ = decoder.raw_decode(candidate, start)
                except ValueError:
                    continue
                return value
    raise ValueError(f"no JSON value in the answer: {last_error}")


def repair_prompt(text: str, error: str) -> str:
    """The prompt of the one repair attempt."""
    return (
        "The text below was meant to be a single valid JSON value but it is not "
        f"({error}). Reply with the corrected JSON only, keeping all of its content, with no "
        "Markdown fences and no other text.\n\nText:\n" + text[:REPAIR_TEXT_MAX_CHARS]
    )
