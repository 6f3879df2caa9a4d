"""Hooks: user code and programs that run before and after executions and tasks.

Python hooks come from ``*.py`` files of the hooks directory (a module-level ``HOOKS`` mapping)
and from entry points of group ``cc_executor.hooks``; command hooks from ``<hooks dir>/hooks.json``;
one built-in (``builtin.receipt``) checks Claude's UUID receipts. :class:`HookRunner` is the one
object the daemon uses: ``load``/``reload``, ``run(event, ctx) -> HookOutcome``, ``status()``.
Modules: ``model`` (events, context, results), ``python_hooks``, ``command_hooks``, ``receipt``
(imported lazily: it depends on the Python task API) and ``runner``. See ``docs/hooks.md``.
"""

from __future__ import annotations

from cc_executor.scheduler.hooks.command_hooks import HOOKS_FILE, CommandHookConfig
from cc_executor.scheduler.hooks.model import (
    DeclaredHook,
    HookCallable,
    HookContext,
    HookError,
    HookEvent,
    HookOutcome,
    HookResult,
    HookSpec,
    hook,
)
from cc_executor.scheduler.hooks.python_hooks import ENTRY_POINT_GROUP, HOOKS_ATTRIBUTE, LoadError
from cc_executor.scheduler.hooks.runner import (
    DEFAULT_HOOK_TIMEOUT_S,
    HookRunner,
    NotifyCallback,
    RecordCallback,
    builtin_hooks,
    install_reload_signal,
)

__all__ = [
    "DEFAULT_HOOK_TIMEOUT_S",
    "ENTRY_POINT_GROUP",
    "HOOKS_ATTRIBUTE",
    "HOOKS_FILE",
    "CommandHookConfig",
    "DeclaredHook",
    "HookCallable",
    "HookContext",
    "HookError",
    "HookEvent",
    "HookOutcome",
    "HookResult",
    "HookRunner",
    "HookSpec",
    "LoadError",
    "NotifyCallback",
    "RecordCallback",
    "builtin_hooks",
    "hook",
    "install_reload_signal",
]
