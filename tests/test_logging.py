"""Log sinks: JSON lines off a TTY, secrets masked, stdlib (uvicorn) records routed into loguru."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from loguru import logger

from cc_executor.logging import configure_logging


def test_json_lines_to_a_file_with_secrets_masked(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "daemon.log"
    configure_logging("INFO", "auto", path, secrets=("s3cret-token",))
    logger.info("started with s3cret-token in a message")
    logger.debug("below the level")
    logging.getLogger("uvicorn.error").warning("from the stdlib")
    logger.complete()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    messages = [r["message"] for r in records]
    assert messages == ["started with *** in a message", "from the stdlib"]
    assert [r["level"] for r in records] == ["INFO", "WARNING"]
    assert records[0]["name"] == __name__
    assert records[0]["function"] == "test_json_lines_to_a_file_with_secrets_masked"


def test_json_line_keeps_braces_extra_and_the_traceback() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    logger.bind(execution_id="e1").info("a {literal} brace and a <red>tag</red>")
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        logger.exception("failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "a {literal} brace and a <red>tag</red>"
    assert first["extra"] == {"execution_id": "e1"}
    assert "exception" not in first
    assert second["level"] == "ERROR"
    assert "ZeroDivisionError: boom" in second["exception"]
    assert "extra" not in second


def test_human_format_when_asked() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "human", stream)
    logger.debug("hello")
    line = stream.getvalue()
    assert "DEBUG" in line
    assert "hello" in line
    assert not line.lstrip().startswith("{")
