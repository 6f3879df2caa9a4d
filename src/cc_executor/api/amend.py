"""``amend_prompt=True``: deterministic rewrites that keep a prompt from stalling a headless run.

A Claude run started by cc-executor has nobody at the keyboard: a prompt that asks for
confirmation, opens an editor or starts a server in the foreground waits until a timeout kills
it. Each rule below detects one such pattern and rewrites the prompt; the names of the rules that
fired are recorded in the result (``TaskResult.amendments``). Rules run in the order listed
(``RULES``), each on the previous one's output. Documented one by one in ``docs/python-api.md``.

An optional Claude pass (``amend_with_claude=True``) is done by the caller, after these rules.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CLAUDE_AMEND_PROMPT", "RULES", "AmendRule", "Amended", "amend"]


@dataclass(frozen=True)
class AmendRule:
    name: str
    description: str
    apply: Callable[[str], str | None]  # the rewritten prompt, or None when the rule does not fit


@dataclass(frozen=True)
class Amended:
    prompt: str
    applied: tuple[str, ...]


def _normalize_whitespace(prompt: str) -> str | None:
    cleaned = prompt.replace("\r\n", "\n").replace("\r", "\n").strip()
    return cleaned if cleaned != prompt else None


_PRINT_FLAGS = frozenset({"-p", "--print"})


def _unwrap_claude_command(prompt: str) -> str | None:
    """``claude -p 'What is 2+2?'`` (a command line given as the task) -> ``What is 2+2?``."""
    try:
        words = shlex.split(prompt)
    except ValueError:
        return None
    if len(words) < 3 or words[0].rsplit("/", 1)[-1] != "claude":
        return None
    if not _PRINT_FLAGS & set(words[1:]):
        return None
    if "--" in words:
        rest = words[words.index("--") + 1 :]
        return " ".join(rest) if rest else None
    last = words[-1]
    return None if last.startswith("-") else last


_PRINT_IN_TEXT = re.compile(r"\bclaude\s+--print\b")


def _print_flag(prompt: str) -> str | None:
    """``claude --print`` mentioned in a prompt becomes ``claude -p`` (the earlier tool's rule)."""
    rewritten = _PRINT_IN_TEXT.sub("claude -p", prompt)
    return rewritten if rewritten != prompt else None


_INTERACTIVE = re.compile(
    r"\b(ask\s+(me|the\s+user)|wait\s+for\s+(my|the\s+user'?s?|user|your)?\s*"
    r"(input|confirmation|approval|answer|response|go-ahead)|confirm\s+with\s+me|"
    r"check\s+with\s+me|prompt\s+me|let\s+me\s+know\s+before|get\s+my\s+(approval|ok|okay)|"
    r"before\s+(proceeding|continuing),?\s+ask)\b",
    re.IGNORECASE,
)
NO_QUESTIONS = (
    "Run non-interactively: nobody will answer questions or confirm anything. Do not ask and "
    "do not wait for input; make reasonable assumptions, state them, and finish the task."
)


def _no_questions(prompt: str) -> str | None:
    if not _INTERACTIVE.search(prompt) or NO_QUESTIONS in prompt:
        return None
    return f"{prompt}\n\n{NO_QUESTIONS}"


_INTERACTIVE_PROGRAM = re.compile(
    r"(\b(vim?|nano|emacs|pico|less|more|top|htop)\s+\S|\bgit\s+(rebase|add)\s+(-i|-p|"
    r"--interactive|--patch)\b|\bpython3?\s+-i\b|\binteractive(ly)?\s+(mode|shell|session)\b)",
    re.IGNORECASE,
)
NON_INTERACTIVE_COMMANDS = (
    "Use only non-interactive commands: no editors (vim, nano), pagers (less, more), or "
    "interactive flags (-i, --patch); edit files with your file tools, and use options such as "
    "--no-edit, --yes and `git --no-pager`."
)


def _non_interactive_commands(prompt: str) -> str | None:
    if not _INTERACTIVE_PROGRAM.search(prompt) or NON_INTERACTIVE_COMMANDS in prompt:
        return None
    return f"{prompt}\n\n{NON_INTERACTIVE_COMMANDS}"


_UNBOUNDED = re.compile(
    r"(\btail\s+-f\b|--watch\b|\bwatch\s+mode\b|\bnpm\s+(run\s+)?(dev|start)\b|"
    r"\bkeep\s+(it|the\s+\w+)\s+running\b|\brun\s+forever\b|\bserve\s+forever\b)",
    re.IGNORECASE,
)
BOUNDED_COMMANDS = (
    "Every command must end on its own: run servers and watchers in the background with a time "
    "limit (for example `timeout 30 ...`) and stop them before you finish."
)


def _bounded_commands(prompt: str) -> str | None:
    if not _UNBOUNDED.search(prompt) or BOUNDED_COMMANDS in prompt:
        return None
    return f"{prompt}\n\n{BOUNDED_COMMANDS}"


RULES: tuple[AmendRule, ...] = (
    AmendRule(
        "normalize_whitespace",
        "CRLF/CR become LF; leading and trailing whitespace is removed.",
        _normalize_whitespace,
    ),
    AmendRule(
        "unwrap_claude_command",
        "A task that is itself a `claude -p '...'` / `claude --print ...` command line is "
        "replaced by its prompt: cc-executor starts Claude itself.",
        _unwrap_claude_command,
    ),
    AmendRule(
        "print_flag",
        "`claude --print` mentioned in the prompt becomes `claude -p`.",
        _print_flag,
    ),
    AmendRule(
        "no_interactive_questions",
        "Asking for input or confirmation ('ask me', 'wait for my approval', 'confirm with "
        "me', ...) gets an instruction to decide, state assumptions and finish.",
        _no_questions,
    ),
    AmendRule(
        "non_interactive_commands",
        "Editors, pagers and interactive flags (vim, nano, less, git rebase -i, python -i, "
        "interactive mode) get an instruction to use non-interactive equivalents.",
        _non_interactive_commands,
    ),
    AmendRule(
        "bounded_commands",
        "Commands that never end (tail -f, --watch, npm run dev, 'keep it running') get an "
        "instruction to run them in the background with a time limit.",
        _bounded_commands,
    ),
)

CLAUDE_AMEND_PROMPT = (
    "Rewrite the task below so that an AI coding agent can complete it in one non-interactive "
    "run: nobody can answer questions, confirm steps or use an editor. Keep its meaning and every "
    "concrete detail. Reply with the rewritten task only, no preamble.\n\nTask:\n"
)


def amend(prompt: str, rules: tuple[AmendRule, ...] = RULES) -> Amended:
    """Apply every rule in order; return the prompt and the names of the rules that fired."""
    applied: list[str] = []
    for rule in rules:
        rewritten = rule.apply(prompt)
        if rewritten is not None and rewritten.strip():
            prompt = rewritten
            applied.append(rule.name)
    return Amended(prompt, tuple(applied))
