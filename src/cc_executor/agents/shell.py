"""Plain commands: the argv that runs a command string through a shell, and spotting Claude.

A ``command`` from ``execute`` is run as ``[shell, "-c", command]``; the shell (zsh or bash,
from settings) does the parsing, never Python. :func:`is_claude_command` tells whether such a
command runs the Claude CLI, so the daemon can parse its output as stream-json and apply the
Claude failure rules even when the caller sent a raw command line.
"""

from __future__ import annotations

import re
import shlex

__all__ = ["is_claude_command", "shell_argv"]

CLAUDE_PROGRAM = "claude"
# Words that run the next word as the program (`env FOO=1 claude`, `exec claude`, ...).
_WRAPPERS = frozenset({"env", "exec", "command", "nohup", "time", "nice", "stdbuf", "timeout"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def shell_argv(shell: str, command: str) -> list[str]:
    """``[shell, "-c", command]``: the shell parses the command, Python never does."""
    return [shell, "-c", command]


def _program(words: list[str]) -> str | None:
    """The program a simple command runs, after assignments, wrappers and their options."""
    index = 0
    while index < len(words):
        word = words[index]
        if _ASSIGNMENT.match(word) or word.startswith("-"):
            index += 1
            continue
        if word.rsplit("/", 1)[-1] in _WRAPPERS:
            index += 1
            # `timeout 60 claude`, `nice -n 5 claude`: skip the wrapper's numeric argument.
            while index < len(words) and (words[index].startswith("-") or words[index].isdigit()):
                index += 1
            continue
        return word
    return None


def is_claude_command(command: str) -> bool:
    """True when the command's program is ``claude`` or a path ending in ``/claude``."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:  # unbalanced quotes: the shell will refuse it too
        return False
    program = _program(words)
    if program is None:
        return False
    return program == CLAUDE_PROGRAM or program.endswith("/" + CLAUDE_PROGRAM)
