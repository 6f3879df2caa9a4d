"""Log sinks for the two entry points that own a process: the CLI and the daemon.

Library code only does ``from loguru import logger`` and never adds sinks; this module is called
once, at the edge, to choose where logs go: a human format on a TTY, JSON lines
(``serialize=True``) otherwise. The stdlib ``logging`` records of uvicorn and friends are routed
into loguru so there is one stream, one format. The token is never logged: no code logs it, and
as a second line of defence :func:`configure_logging` can mask a known secret in every message.
"""

from __future__ import annotations

import inspect
import logging
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Literal, TextIO

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
        format=HUMAN_FORMAT,
        serialize=not human,
        filter=mask,
        colorize=human and _is_tty(target),  # never for a file: _is_tty(Path) is False
    )
    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
    for name in _STDLIB_LOGGERS:
        stdlib_logger = logging.getLogger(name)
        stdlib_logger.handlers = []
        stdlib_logger.propagate = True
