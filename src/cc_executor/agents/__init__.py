"""How to run each kind of agent CLI: argv, environment, output parsing, failure modes.

Pure: no subprocesses, no ``os.environ``; the supervisor runs what these functions build.
"""

from __future__ import annotations

from cc_executor.agents.claude import (
    CLAUDE_PATH_SETTING,
    EXECUTION_ID_ENV,
    ClaudeAdapter,
    ClaudeOptions,
    PermissionMode,
    build_argv,
    child_env,
    find_claude,
)
from cc_executor.agents.claude_failures import (
    Failure,
    FailureKind,
    classify_failure,
    parse_reset_time,
)
from cc_executor.agents.claude_stream import AgentEvent, EventKind, StreamJsonParser
from cc_executor.agents.shell import (
    ClaudeCommand,
    is_claude_command,
    parse_claude_command,
    shell_argv,
)

__all__ = [
    "CLAUDE_PATH_SETTING",
    "EXECUTION_ID_ENV",
    "AgentEvent",
    "ClaudeAdapter",
    "ClaudeCommand",
    "ClaudeOptions",
    "EventKind",
    "Failure",
    "FailureKind",
    "PermissionMode",
    "StreamJsonParser",
    "build_argv",
    "child_env",
    "classify_failure",
    "find_claude",
    "is_claude_command",
    "parse_claude_command",
    "parse_reset_time",
    "shell_argv",
]
