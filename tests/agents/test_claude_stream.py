"""StreamJsonParser on recorded CLI output, arbitrary byte splits and hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cc_executor.agents.claude_stream import (
    TOOL_RESULT_SUMMARY_MAX_CHARS,
    AgentEvent,
    EventKind,
    StreamJsonParser,
)

FIXTURES = Path(__file__).parent / "fixtures"
ALL_FIXTURES = sorted(FIXTURES.glob("*.jsonl"))


def parse_all(data: bytes, chunks: list[int] | None = None) -> list[AgentEvent]:
    parser = StreamJsonParser()
    events: list[AgentEvent] = []
    if chunks is None:
        events += parser.feed(data)
    else:
        start = 0
        for cut in sorted(chunks):
            events += parser.feed(data[start:cut])
            start = cut
        events += parser.feed(data[start:])
    return events + parser.flush()


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.jsonl").read_bytes()


def kinds(events: list[AgentEvent]) -> list[str]:
    return [e.kind.value for e in events]


def test_plain_answer() -> None:
    events = parse_all(fixture("plain_answer"))
    assert kinds(events) == ["init", "assistant_text", "result"]
    init, text, result = events
    assert init.data["session_id"] == "cfeefb4c-3bcd-4420-ac39-1e3504b455c7"
    assert init.data["model"] == "claude-opus-5-5"
    assert init.data["cwd"] == "/work/project"
    assert "Bash" in init.data["tools"]  # type: ignore[operator]
    assert text.data["text"] == "2 + 2 = 4"
    assert result.data["is_error"] is False
    assert result.data["subtype"] == "success"
    assert result.data["result"] == "2 + 2 = 4"
    assert result.data["num_turns"] == 1
    assert result.data["terminal_reason"] == "completed"
    assert result.data["api_error_status"] is None
    assert isinstance(result.data["total_cost_usd"], float)
    assert isinstance(result.data["duration_ms"], int)
    assert isinstance(result.data["duration_api_ms"], int)
    assert isinstance(result.data["usage"], dict)


def test_bash_tool_turn() -> None:
    events = parse_all(fixture("bash_tool_turn"))
    assert kinds(events) == [
        "init",
        "assistant_text",
        "tool_call",
        "tool_result",
        "assistant_text",
        "result",
    ]
    call, result = events[2], events[3]
    assert call.data["name"] == "Bash"
    assert call.data["id"] == "toolu_fake000001"
    assert call.data["input"] == {
        "command": "echo hello-from-bash",
        "description": "Run a command",
    }
    assert result.data["tool_use_id"] == "toolu_fake000001"
    assert result.data["content"] == "hello-from-bash"
    assert result.data["is_error"] is False
    assert result.data["truncated"] is False
    assert events[-1].data["num_turns"] == 2


def test_api_retry_event() -> None:
    events = parse_all(fixture("retry_429_then_success"))
    retry = next(e for e in events if e.kind is EventKind.API_RETRY)
    assert retry.data == {
        "attempt": 1,
        "max_retries": 1,
        "retry_delay_ms": 1029,
        "error_status": 429,
        "error": "rate_limit",
    }


def test_api_error_message_is_marked() -> None:
    events = parse_all(fixture("overloaded_529"))
    text = next(e for e in events if e.kind is EventKind.ASSISTANT_TEXT)
    assert text.data["api_error"] is True
    assert text.data["api_error_status"] == 529
    assert text.data["api_error_type"] == "overloaded_error"
    assert events[-1].data["is_error"] is True
    assert events[-1].data["api_error_status"] == 529


def test_rate_limit_event() -> None:
    events = parse_all(fixture("synthetic_rate_limit_event"))
    limit = events[1]
    assert limit.kind is EventKind.RATE_LIMIT
    assert limit.data["status"] == "rejected"
    assert limit.data["resets_at"] == 1767225600
    assert limit.data["rate_limit_type"] == "five_hour"


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.stem)
def test_raw_is_the_original_line(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    events = parse_all(path.read_bytes())
    assert {e.raw for e in events} == set(lines)
    assert all(json.loads(e.raw) for e in events)


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.stem)
def test_to_dict_is_json(path: Path) -> None:
    for event in parse_all(path.read_bytes()):
        wire = event.to_dict()
        assert wire["kind"] == event.kind.value
        assert wire["raw"] == event.raw
        json.dumps(wire)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_byte_splits_give_the_same_events(data: st.DataObject) -> None:
    blob = b"".join(p.read_bytes() for p in ALL_FIXTURES)
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=40))
    assert parse_all(blob, cuts) == parse_all(blob)


def test_multibyte_characters_split_between_feeds() -> None:
    line = json.dumps({"type": "mystery", "text": "日本語 ✓"}, ensure_ascii=False).encode()
    parser = StreamJsonParser()
    events = [e for b in line + b"\n" for e in parser.feed(bytes([b]))]
    assert len(events) == 1
    assert events[0].raw == line.decode()


def test_ten_megabyte_line() -> None:
    big = "x" * (10 * 1024 * 1024)
    line = json.dumps(
        {
            "type": "user",
            "message": {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": big}],
            },
            "session_id": "s-big",
        }
    ).encode()
    parser = StreamJsonParser()
    events: list[AgentEvent] = []
    for start in range(0, len(line), 65536):
        events += parser.feed(line[start : start + 65536])
    assert events == []
    events += parser.feed(b"\n")
    assert len(events) == 1
    (event,) = events
    assert event.kind is EventKind.TOOL_RESULT
    assert event.data["truncated"] is True
    assert len(event.data["content"]) == TOOL_RESULT_SUMMARY_MAX_CHARS  # type: ignore[arg-type]
    assert len(event.raw) == len(line)
    assert parser.session_id == "s-big"


def test_invalid_and_unknown_lines_never_raise() -> None:
    data = (
        b'not json\n{"type":"brand_new","x":1}\n[1,2]\n\xff\xfe{\n\n  \r\n'
        b'{"type":"system","subtype":"hook"}\n'
    )
    events = parse_all(data)
    assert kinds(events) == ["invalid_json", "unknown", "unknown", "invalid_json", "unknown"]
    assert events[0].raw == "not json"
    assert events[1].data["type"] == "brand_new"
    assert "\ufffd" in events[3].raw


def test_last_line_without_newline_needs_flush() -> None:
    parser = StreamJsonParser()
    assert parser.feed(b'{"type":"result","is_error":false,"session_id":"s"}') == []
    (event,) = parser.flush()
    assert event.kind is EventKind.RESULT
    assert parser.flush() == []


def test_session_id_tracks_the_latest() -> None:
    parser = StreamJsonParser()
    assert parser.session_id is None
    parser.feed(b'{"type":"system","subtype":"init","session_id":"a"}\n')
    assert parser.session_id == "a"
    parser.feed(b'{"type":"result","session_id":"b"}\n')
    assert parser.session_id == "b"


def test_tool_result_with_blocks_and_error() -> None:
    line = {
        "type": "user",
        "message": {
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t9",
                    "is_error": True,
                    "content": [
                        {"type": "text", "text": "Exit code 1"},
                        {"type": "image", "source": {}},
                    ],
                },
                {"type": "text", "text": "not a tool result"},
            ]
        },
    }
    (event,) = parse_all(json.dumps(line).encode() + b"\n")
    assert event.data["is_error"] is True
    assert event.data["content"] == "Exit code 1\n[image]"


def test_assistant_with_several_blocks_gives_several_events() -> None:
    line = {
        "type": "assistant",
        "message": {
            "id": "m1",
            "content": [
                {"type": "thinking", "thinking": "hmm"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/a"}},
            ],
        },
    }
    events = parse_all(json.dumps(line).encode() + b"\n")
    assert kinds(events) == ["assistant_text", "tool_call"]
    assert all(e.data["message_id"] == "m1" for e in events)
