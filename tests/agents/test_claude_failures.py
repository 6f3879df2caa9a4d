"""classify_failure and parse_reset_time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cc_executor.agents.claude_failures import FailureKind, classify_failure, parse_reset_time
from cc_executor.agents.claude_stream import AgentEvent, EventKind, StreamJsonParser

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 13:00 in Paris


def events_of(name: str) -> list[AgentEvent]:
    parser = StreamJsonParser()
    return parser.feed((FIXTURES / f"{name}.jsonl").read_bytes()) + parser.flush()


@pytest.mark.parametrize(
    "name", ["plain_answer", "bash_tool_turn", "retry_429_then_success", "max_tokens_recovered"]
)
def test_successful_runs_have_no_failure(name: str) -> None:
    assert classify_failure(events_of(name), now=NOW) is None


@pytest.mark.parametrize(
    ("name", "kind", "status"),
    [
        ("overloaded_529", FailureKind.OVERLOADED, 529),
        ("stream_error_overloaded", FailureKind.OVERLOADED, 529),
        ("max_tokens_exhausted", FailureKind.OUTPUT_TOKEN_LIMIT, None),
        ("api_error_prompt_too_long", FailureKind.CONTEXT_LIMIT, 400),
        ("api_error_billing", FailureKind.OTHER, 400),
        ("usage_limit_429", FailureKind.USAGE_LIMIT, 429),
        ("synthetic_rate_limit_event", FailureKind.USAGE_LIMIT, 429),
    ],
)
def test_recorded_failures(name: str, kind: FailureKind, status: int | None) -> None:
    failure = classify_failure(events_of(name), now=NOW)
    assert failure is not None
    assert failure.kind is kind
    assert failure.api_error_status == status
    assert failure.message


def test_usage_limit_epoch_from_the_bar_form() -> None:
    failure = classify_failure(events_of("usage_limit_429"), now=NOW)
    assert failure is not None
    assert failure.resets_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_rate_limit_after_retries() -> None:
    result = AgentEvent(
        EventKind.RESULT,
        "{}",
        {"is_error": True, "api_error_status": 429, "result": "API Error: Request rejected (429)"},
    )
    failure = classify_failure([result], now=NOW)
    assert failure is not None
    assert failure.kind is FailureKind.RATE_LIMIT
    assert failure.resets_at is None


def test_rejected_rate_limit_event_wins_even_without_error_result() -> None:
    event = AgentEvent(EventKind.RATE_LIMIT, "{}", {"status": "rejected", "resets_at": 1767225600})
    failure = classify_failure([event], now=NOW)
    assert failure is not None
    assert failure.kind is FailureKind.USAGE_LIMIT
    assert failure.resets_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_warning_rate_limit_event_is_not_a_failure() -> None:
    events = [
        AgentEvent(EventKind.RATE_LIMIT, "{}", {"status": "allowed_warning"}),
        AgentEvent(EventKind.RESULT, "{}", {"is_error": False}),
    ]
    assert classify_failure(events, now=NOW) is None


def test_no_result_uses_stderr() -> None:
    failure = classify_failure([], "Error: something broke\nat line 3", now=NOW)
    assert failure is not None
    assert failure.kind is FailureKind.OTHER
    assert failure.message == "Error: something broke"
    failure = classify_failure([], "", now=NOW)
    assert failure is not None
    assert failure.message == "claude exited without a result"


def test_stderr_usage_limit_text() -> None:
    failure = classify_failure(
        [], "Claude usage limit reached. Your limit will reset at 5pm (Europe/Warsaw).", now=NOW
    )
    assert failure is not None
    assert failure.kind is FailureKind.USAGE_LIMIT
    assert failure.resets_at == datetime(2026, 3, 10, 17, 0, tzinfo=ZoneInfo("Europe/Warsaw"))


def test_max_turns_is_other() -> None:
    result = AgentEvent(
        EventKind.RESULT,
        "{}",
        {
            "is_error": True,
            "subtype": "error_max_turns",
            "errors": ["Reached maximum number of turns (1)"],
        },
    )
    failure = classify_failure([result], now=NOW)
    assert failure is not None
    assert failure.kind is FailureKind.OTHER
    assert "maximum number of turns" in failure.message


PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Claude AI usage limit reached|1762952400", datetime.fromtimestamp(1762952400, UTC)),
        ("Claude AI usage limit reached|1762952400000", datetime.fromtimestamp(1762952400, UTC)),
        # 13:00 in Paris now: 3pm is later today, 11am is tomorrow.
        (
            "You've hit your limit · resets 3pm (Europe/Paris)",
            datetime(2026, 3, 10, 15, tzinfo=PARIS),
        ),
        (
            "You\u2019ve hit your limit · resets 11am (Europe/Paris)",
            datetime(2026, 3, 11, 11, tzinfo=PARIS),
        ),
        (
            "limit reached ... resets 3:30 PM (Europe/Paris)",
            datetime(2026, 3, 10, 15, 30, tzinfo=PARIS),
        ),
        ("Your limit will reset at 12am (Europe/Paris).", datetime(2026, 3, 11, 0, tzinfo=PARIS)),
        ("Your limit will reset at 12pm (Europe/Paris).", datetime(2026, 3, 11, 12, tzinfo=PARIS)),
        ("Your limit will reset at Oct 6, 6pm.", datetime(2026, 10, 6, 18, tzinfo=UTC)),
        ("Your limit will reset at Jan 2, 6pm.", datetime(2027, 1, 2, 18, tzinfo=UTC)),
        # 07:00 in Etc/GMT+5 now (POSIX sign: UTC-5), so 9am is still today.
        ("resets 9am (Etc/GMT+5)", datetime(2026, 3, 10, 9, tzinfo=ZoneInfo("Etc/GMT+5"))),
        ("resets 9am (Not/AZone)", datetime(2026, 3, 11, 9, tzinfo=UTC)),
        ("Limits will reset at 9:30 AM.", datetime(2026, 3, 11, 9, 30, tzinfo=UTC)),
        ("usage limit reached", None),
        ("resets 13pm", None),
        ("resets at Feb 30, 1pm", None),
    ],
)
def test_parse_reset_time(text: str, expected: datetime | None) -> None:
    got = parse_reset_time(text, now=NOW)
    assert got == expected
    if got is not None:
        assert got.tzinfo is not None
        assert got - NOW < timedelta(days=366)


def test_parse_reset_time_uses_local_tz_without_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")  # 21:00 there now
    assert parse_reset_time("resets 10pm", now=NOW, local_tz=tokyo) == datetime(
        2026, 3, 10, 22, tzinfo=tokyo
    )
