"""Log sinks for the two entry points that own a process: the CLI and the daemon.

Library code only does ``from loguru import logger`` and never adds sinks; this module is called
once, at the edge, to choose where logs go: a human format on a TTY, JSON lines otherwise (one
flat object per record, encoded by orjson: see :func:`_json_line`). The stdlib ``logging``
records of uvicorn and friends are routed into loguru so there is one stream, one format. The
token is never logged: no code logs it, and as a second line of defence
:func:`configure_logging` can mask a known secret in every message.
"""

from __future__ import annotations

import inspect
import logging
import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Literal, TextIO

import orjson
from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

__all__ = ["HUMAN_FORMAT", "InterceptHandler", "LogFormat", "configure_logging"]

LogFormat = Literal["auto", "human", "json"]

HUMAN_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <8}</level> "
    "<cyan>{name}</cyan> {message}"
)
# stdlib loggers routed into loguru (uvicorn's own, plus whatever libraries use the root).
_STDLIB_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "websockets")
_MASK = "***"
_JSON_KEY = "_json"  # where _json_line leaves the encoded record for the sink's template


def _json_line(record: Record) -> str:
    """A loguru ``format`` function: the record as one flat JSON object.

    ``time`` (ISO 8601 with offset), ``level``, ``name``, ``function``, ``line``, ``message``,
    and ``exception`` (the formatted traceback) and ``extra`` when there are any. loguru's own
    ``serialize=True`` nests the whole record (process, thread, file, elapsed, level icon...)
    under ``record`` beside the formatted ``text`` and encodes it with the stdlib ``json``:
    ~90 us a record against ~5 us here, paid on the event loop for every line written. The
    encoded line is stashed in the record's own ``extra`` (a per-record copy) and the template
    returned only refers to it, so no brace in a message is ever read as a field.
    """
    line: dict[str, object] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "name": record["name"],
        "function": record["function"],
        "line": record["line"],
        "message": record["message"],
    }
    exception = record["exception"]
    if exception is not None:
        line["exception"] = "".join(
            traceback.format_exception(exception.type, exception.value, exception.traceback)
        )
    extra = record["extra"]
    if extra:
        line["extra"] = extra
    extra[_JSON_KEY] = orjson.dumps(line, default=str).decode()
    return "{extra[" + _JSON_KEY + "]}\n"


class InterceptHandler(logging.Handler):
    """A stdlib ``logging`` handler that re-emits every record through loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        # Find the caller outside the logging module, so loguru reports the real origin.
        frame: FrameType | None = inspect.currentframe()
        depth = 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def _is_tty(sink: TextIO | Path) -> bool:
    if isinstance(sink, Path):
        return False
    isatty = getattr(sink, "isatty", None)
    return bool(isatty and isatty())


def configure_logging(
    level: str = "INFO",
    fmt: LogFormat = "auto",
    sink: TextIO | Path | str | None = None,
    *,
    secrets: tuple[str, ...] = (),
) -> None:
    """Replace every loguru sink with one: ``sink`` (default ``sys.stderr``) at ``level``.

    ``fmt="auto"`` is human on a TTY and JSON lines otherwise. ``secrets`` are masked in every
    message (defence in depth: nothing should log them in the first place).
    """
    target: TextIO | Path = (
        sys.stderr if sink is None else sink if not isinstance(sink, str) else Path(sink)
    )
    human = fmt == "human" or (fmt == "auto" and _is_tty(target))
    masked = tuple(s for s in secrets if s)

    def mask(record: Record) -> bool:
        for secret in masked:
            if secret in record["message"]:
                record["message"] = record["message"].replace(secret, _MASK)
        return True

    logger.remove()
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
    logger.add(
        target,
        level=level.upper(),
        format=HUMAN_FORMAT if human else _json_line,
        filter=mask if masked else None,
        colorize=human and _is_tty(target),  # never for a file: _is_tty(Path) is False
    )
    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
    for name in _STDLIB_LOGGERS:
        stdlib_logger = logging.getLogger(name)
        stdlib_logger.handlers = []
        stdlib_logger.propagate = True
