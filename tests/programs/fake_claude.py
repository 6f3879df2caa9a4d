#!/usr/bin/env python3
"""A stand-in for ``claude -p --output-format stream-json --verbose``: prints scripted lines.

``FAKE_CLAUDE_SCRIPT`` is a comma-separated list of behaviours, one per attempt (the last one
repeats); ``FAKE_CLAUDE_STATE`` names a file where each run appends its argv as one JSON line,
which also counts the attempts. Behaviours:

``ok``          init, an answer, a success result; exit 0
``hang``        like ok, then hangs without exiting (the real CLI is known to do this)
``429``/``529`` an API error result with that status; exit 1
``maxtok``      the output-token-limit error result; exit 1
``usage:S``     "Claude AI usage limit reached|<now + S>" (429); exit 1
``big:N``       a Bash tool call whose tool_result holds N bytes, then ok
``silent``      no output at all, sleeps
``crash``       a line on stderr, exit 3, no result
``text``        a plain text answer (no stream-json); exit 0
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

SESSION = "00000000-0000-4000-8000-00000000fa4e"
HANG_S = 3600.0  # "for ever": the test's watchdog ends it long before


def emit(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def init() -> None:
    emit({"type": "system", "subtype": "init", "session_id": SESSION, "model": "fake", "tools": []})


def text(message: str) -> None:
    emit(
        {
            "type": "assistant",
            "message": {
                "id": "msg_1",
                "model": "fake",
                "content": [{"type": "text", "text": message}],
            },
            "session_id": SESSION,
        }
    )


def api_error(message: str, status: int | None, error: str) -> None:
    emit(
        {
            "type": "assistant",
            "message": {
                "id": "msg_e",
                "model": "<synthetic>",
                "content": [{"type": "text", "text": message}],
            },
            "is_api_error_message": True,
            "error": error,
            "api_error_status": status,
            "session_id": SESSION,
        }
    )
    result(message, is_error=True, status=status)


def result(message: str, *, is_error: bool = False, status: int | None = None) -> None:
    emit(
        {
            "type": "result",
            "subtype": "success",
            "is_error": is_error,
            "result": message,
            "total_cost_usd": 0.0123,
            "usage": {"input_tokens": 10, "output_tokens": 5},
            "num_turns": 1,
            "duration_ms": 12,
            "terminal_reason": "api_error" if is_error else "completed",
            "api_error_status": status,
            "session_id": SESSION,
        }
    )


def behaviour(script: list[str], attempt: int) -> str:
    return script[min(attempt, len(script) - 1)]


def main() -> int:  # noqa: PLR0911, PLR0912 (one branch per behaviour)
    state = os.environ.get("FAKE_CLAUDE_STATE")
    attempt = 0
    if state:
        if os.path.exists(state):
            with open(state, encoding="utf-8") as f:
                attempt = sum(1 for _ in f)
        with open(state, "a", encoding="utf-8") as f:
            f.write(json.dumps(sys.argv[1:]) + "\n")
    what = behaviour(os.environ.get("FAKE_CLAUDE_SCRIPT", "ok").split(","), attempt)
    prompt = sys.argv[-1] if len(sys.argv) > 1 else ""
    kind, _, arg = what.partition(":")
    if kind == "silent":
        threading.Event().wait(HANG_S)
        return 0
    if kind == "crash":
        sys.stderr.write("fake claude: boom\n")
        return 3
    if kind == "text":
        sys.stdout.write("a plain answer\n")
        return 0
    init()
    if kind in ("ok", "hang"):
        text(f"answer to: {prompt[:40]}")
        result("the answer")
        if kind == "hang":
            threading.Event().wait(HANG_S)
        return 0
    if kind == "429":
        api_error("API Error: Request rejected (429) · rate limited", 429, "rate_limit")
    elif kind == "529":
        api_error("API Error: 529 Overloaded.", 529, "server_error")
    elif kind == "maxtok":
        api_error(
            "API Error: Claude's response exceeded the 128000 output token maximum.",
            None,
            "max_output_tokens",
        )
    elif kind == "usage":
        reset = int(time.time() + float(arg or "2"))
        api_error(
            f"API Error: Request rejected (429) · Claude AI usage limit reached|{reset}",
            429,
            "rate_limit",
        )
    elif kind == "big":
        size = int(arg)
        tool = {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "big"}}
        emit(
            {
                "type": "assistant",
                "message": {"id": "msg_2", "content": [tool]},
                "session_id": SESSION,
            }
        )
        block = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x" * size}
        emit({"type": "user", "message": {"content": [block]}, "session_id": SESSION})
        text("done")
        result("done")
        return 0
    else:
        sys.stderr.write(f"fake claude: unknown behaviour {what!r}\n")
        return 2
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
