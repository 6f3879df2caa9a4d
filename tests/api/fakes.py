"""A scripted runner behind the task API's seam: no processes, events built from answers."""

from __future__ import annotations

import re
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from cc_executor.api import RunRequest, TaskEvent
from cc_executor.errors import CCExecutorError

_MARKER = re.compile(r"CC_EXECUTOR_RECEIPT: ([0-9a-f-]{36})")


@dataclass
class Answer:
    """What one fake Claude process does."""

    text: str
    echo_uuid: bool = True
    is_error: bool = False
    state: str = "completed"
    exit_code: int | None = 0
    cost: float = 0.001
    tools: list[tuple[str, dict[str, object], str]] = field(default_factory=list)
    raises: CCExecutorError | None = None
    no_result: bool = False


Script = Answer | Callable[[RunRequest], Answer]


def _event(eid: str, seq: int, method: str, **params: object) -> TaskEvent:
    return TaskEvent(eid, method, seq, {"execution_id": eid, "seq": seq, **params})


def events_for(request: RunRequest, answer: Answer, cwd: str = "/work") -> list[TaskEvent]:
    eid = request.execution_id
    session = str(uuid.uuid4())
    found = _MARKER.search(request.prompt)
    text = answer.text
    if answer.echo_uuid and found:
        text = f"{text}\nCC_EXECUTOR_RECEIPT: {found.group(1)}"
    items: list[tuple[str, dict[str, object]]] = [
        ("process.started", {"pid": 1, "pgid": 1, "command": "claude"}),
        ("agent.event", {"kind": "init", "session_id": session, "cwd": cwd, "raw": "{}"}),
    ]
    for index, (name, tool_input, output) in enumerate(answer.tools):
        tool_id = f"toolu_{index}"
        items.append(
            ("agent.event", {"kind": "tool_call", "id": tool_id, "name": name, "input": tool_input})
        )
        items.append(
            (
                "agent.event",
                {
                    "kind": "tool_result",
                    "tool_use_id": tool_id,
                    "content": output,
                    "is_error": False,
                },
            )
        )
    if not answer.no_result:
        items.append(("agent.event", {"kind": "assistant_text", "text": text, "raw": "{}"}))
        items.append(
            (
                "agent.event",
                {
                    "kind": "result",
                    "subtype": "success",
                    "is_error": answer.is_error,
                    "result": text,
                    "total_cost_usd": answer.cost,
                    "usage": {"input_tokens": 20, "output_tokens": 10},
                    "num_turns": 1 + len(answer.tools),
                    "duration_ms": 5,
                    "session_id": session,
                },
            )
        )
    items.append(
        (
            "process.completed",
            {"status": answer.state, "exit_code": answer.exit_code, "execution_time": 0.01},
        )
    )
    return [_event(eid, seq, method, **params) for seq, (method, params) in enumerate(items, 1)]


class FakeRunner:
    """Answers runs from a script, in order; records every request."""

    def __init__(self, *script: Script) -> None:
        self.script: deque[Script] = deque(script)
        self.requests: list[RunRequest] = []
        self.entered = 0
        self.exited = 0

    async def __aenter__(self) -> Self:
        self.entered += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.exited += 1

    async def run(self, request: RunRequest) -> AsyncIterator[TaskEvent]:
        self.requests.append(request)
        scripted = self.script.popleft() if self.script else Answer("script exhausted")
        answer = scripted(request) if callable(scripted) else scripted
        if answer.raises is not None:
            raise answer.raises
        for event in events_for(request, answer):
            yield event
