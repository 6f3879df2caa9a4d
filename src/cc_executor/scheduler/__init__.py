"""Policy above the supervisor: which failure gets which wait or retry, and agent run specs.

``retry`` (backoff via tenacity, usage-limit waits, the adaptive prompt), ``agent_run`` (the
Claude run policy the supervisor calls per attempt) and ``agent_spec`` (``execute`` request ->
``ExecutionSpec``). Imports ``supervisor``, ``agents`` and ``protocol``; nothing imports it but
the doors (``server``, the Python API).
"""

from __future__ import annotations

from cc_executor.scheduler.agent_run import ClaudeRunPolicy, LimitConfig, normalize_result
from cc_executor.scheduler.agent_spec import (
    CLI_MAX_RETRIES,
    CLI_MAX_RETRIES_ENV,
    KNOWN_AGENTS,
    ClaudeRunConfig,
    build_execute_spec,
    claude_command_spec,
    claude_spec,
)
from cc_executor.scheduler.retry import (
    BackoffConfig,
    backoff_wait,
    concise_prompt,
    usage_limit_wait,
)

__all__ = [
    "CLI_MAX_RETRIES",
    "CLI_MAX_RETRIES_ENV",
    "KNOWN_AGENTS",
    "BackoffConfig",
    "ClaudeRunConfig",
    "ClaudeRunPolicy",
    "LimitConfig",
    "backoff_wait",
    "build_execute_spec",
    "claude_command_spec",
    "claude_spec",
    "concise_prompt",
    "normalize_result",
    "usage_limit_wait",
]

# --- hooks (see scheduler/hooks/) ----------------------------------------------------------------
from cc_executor.scheduler.hooks import (
    HookContext,
    HookEvent,
    HookOutcome,
    HookResult,
    HookRunner,
    hook,
    install_reload_signal,
)

__all__ += [
    "HookContext",
    "HookEvent",
    "HookOutcome",
    "HookResult",
    "HookRunner",
    "hook",
    "install_reload_signal",
]
