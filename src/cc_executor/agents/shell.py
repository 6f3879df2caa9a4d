"""Plain commands: the argv that runs a command string through a shell, and spotting Claude.

A ``command`` from ``execute`` is run as ``[shell, "-c", command]``; the shell (zsh or bash,
from settings) does the parsing, never Python. :func:`is_claude_command` tells whether such a
command runs the Claude CLI, so the daemon can parse its output as stream-json and apply the
Claude failure rules even when the caller sent a raw command line.

One exception: :func:`parse_claude_command` recognises the *simple* form, ``[VAR=value ...]
claude -p ...`` with nothing in it a shell would expand or interpret, whose words are therefore
the same under every POSIX shell. Such a command can run as an argv (no shell) with
``--output-format stream-json --verbose`` added, so it gets the same events and retries as an
agent run. Anything else returns ``None`` and runs through the shell unchanged: we never
rewrite shell syntax, because the user may rely on expansions, redirections or pipes we would
have to re-implement (and would get subtly wrong between zsh and bash).

The option table mirrors ``claude --help`` of CLI 2.1.332 (commander.js parsing, checked against
the real CLI, see ``docs/claude-cli.md``). It is used to find the prompt word, so a token-limit
retry can amend it; an option missing from the table only disables that retry.
"""

from __future__ import annotations

import enum
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "CLAUDE_SUBCOMMANDS",
    "STREAM_JSON_FLAGS",
    "ClaudeCommand",
    "is_claude_command",
    "parse_claude_command",
    "shell_argv",
]

CLAUDE_PROGRAM = "claude"
STREAM_JSON = "stream-json"
STREAM_JSON_FLAGS = ("--output-format", STREAM_JSON, "--verbose")
# Words that run the next word as the program (`env FOO=1 claude`, `exec claude`, ...).
_WRAPPERS = frozenset({"env", "exec", "command", "nohup", "time", "nice", "stdbuf", "timeout"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# Unquoted characters every POSIX shell (and zsh) takes literally. Anything else outside quotes
# (operators, globs, `~`, `{`, `#`, `\`, newlines, non-ASCII) sends the command to the shell.
_SAFE_UNQUOTED = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-"
)
_BLANKS = frozenset(" \t")
# `$` (parameter, command and arithmetic expansion) and backticks are refused anywhere, even
# inside single quotes where they are literal: a user writing them likely means expansion.
_EXPANSION_CHARS = frozenset("$`")
_OPERATOR_CHARS = frozenset("();<>|&")

# `claude <name>` runs a subcommand; a prompt spelled like one is left to the shell form.
CLAUDE_SUBCOMMANDS = frozenset(
    {
        "agents", "attach", "auth", "auto-mode", "doctor", "gateway", "import", "install",
        "kill", "logs", "mcp", "plugin", "plugins", "purge", "respawn", "rm", "setup-token",
        "stop", "ultrareview", "update", "upgrade",
    }
)  # fmt: skip


class _Arity(enum.Enum):
    FLAG = "flag"  # no value
    VALUE = "value"  # always takes the next word (even one starting with "-")
    OPTIONAL = "optional"  # takes the next word unless it starts with "-"
    VARIADIC = "variadic"  # takes every following word up to the next option


def _table(arity: _Arity, names: str) -> dict[str, _Arity]:
    return dict.fromkeys(names.split(), arity)


CLAUDE_OPTIONS: dict[str, _Arity] = {
    **_table(
        _Arity.FLAG,
        "-p --print -c --continue -h --help -v --version --verbose --bare --brief --chrome"
        " --no-chrome --ide --allow-dangerously-skip-permissions --dangerously-skip-permissions"
        " --ax-screen-reader --bg --background --desktop --disable-slash-commands"
        " --exclude-dynamic-system-prompt-sections --fork-session --forward-subagent-text"
        " --include-hook-events --include-partial-messages --no-session-persistence"
        " --replay-user-messages --restricted --safe-mode --strict-mcp-config",
    ),
    **_table(
        _Arity.VALUE,
        "--agent --agents --append-system-prompt --append-system-prompt-file --autocompact"
        " --debug-file --effort --environment --fallback-model --input-format --json-schema"
        " --max-budget-usd --max-turns --model -n --name --output-format --permission-mode"
        " --permission-prompt-tool --permission-prompts --plugin-dir --plugin-url"
        " --remote-control-session-name-prefix --session-id --setting-sources --settings"
        " --system-prompt --system-prompt-file --system-prompt-snapshot",
    ),
    **_table(
        _Arity.OPTIONAL,
        "--cloud -d --debug --from-pr --prompt-suggestions --remote-control -r --resume"
        " --teleport -w --worktree",
    ),
    **_table(
        _Arity.VARIADIC,
        "--add-dir --allowedTools --allowed-tools --betas --disallowedTools"
        " --disallowed-tools --file --mcp-config --tools",
    ),
}


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


def _is_claude(program: str) -> bool:
    return program == CLAUDE_PROGRAM or program.endswith("/" + CLAUDE_PROGRAM)


def is_claude_command(command: str) -> bool:
    """True when the command's program is ``claude`` or a path ending in ``/claude``."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:  # unbalanced quotes: the shell will refuse it too
        return False
    program = _program(words)
    return program is not None and _is_claude(program)


# --- the simple form -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaudeCommand:
    """A simple ``claude -p`` command line, as words: what runs and what we may add.

    ``argv`` is the user's words from the program on, in the user's order; ``prompt_index``
    the index in it of the word the CLI reads as the prompt, or ``None`` when it is not known
    (no prompt word, or an option we do not know, whose value it might be).
    """

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)  # leading VAR=value words
    prompt_index: int | None = None
    output_format: str | None = None  # the user's --output-format, None when not given
    verbose: bool = False

    @property
    def program(self) -> str:
        return self.argv[0]

    @property
    def prompt(self) -> str | None:
        return self.argv[self.prompt_index] if self.prompt_index is not None else None

    @property
    def stream_json(self) -> bool:
        """True when the run prints stream-json (the user asked for it, or for no format)."""
        return self.output_format in {None, STREAM_JSON}

    def added_flags(self) -> list[str]:
        """What :meth:`run_argv` puts right after the program name."""
        if self.output_format is None:
            return list(STREAM_JSON_FLAGS)
        if self.output_format == STREAM_JSON and not self.verbose:
            return ["--verbose"]  # the CLI refuses stream-json in print mode without it
        return []

    def run_argv(self, program: str | None = None, *, prompt: str | None = None) -> list[str]:
        """The argv to run: ``program`` (default: the user's), our flags, the user's words.

        Our flags go right after the program name, where no option of the user's can take
        them as its value and no positional can move. With ``prompt``, the prompt word is
        replaced (the token-limit retry); that needs a known ``prompt_index``.
        """
        words = list(self.argv)
        if prompt is not None:
            if self.prompt_index is None:
                raise ValueError("the prompt of this command is not known")
            words[self.prompt_index] = prompt
        return [program or words[0], *self.added_flags(), *words[1:]]


@dataclass(slots=True)
class _Scan:
    print_mode: bool = False
    output_format: str | None = None
    verbose: bool = False
    known: bool = True  # every option word was in CLAUDE_OPTIONS
    positionals: list[int] = field(default_factory=list)

    def record(self, name: str, value: str | None) -> None:
        if name in {"-p", "--print"}:
            self.print_mode = True
        elif name == "--verbose":
            self.verbose = True
        elif name == "--output-format":
            self.output_format = value  # the last one wins, as in the CLI


def _take_value(args: Sequence[str], index: int, arity: _Arity) -> int:
    """How many words after ``args[index]`` the option at ``index`` takes as its value."""
    rest = args[index + 1 :]
    if arity is _Arity.VALUE:
        return 1 if rest else 0
    if arity is _Arity.OPTIONAL:
        return 1 if rest and not rest[0].startswith("-") else 0
    if arity is _Arity.VARIADIC:
        taken = 0
        while taken < len(rest) and not rest[taken].startswith("-"):
            taken += 1
        return taken
    return 0


def _scan_long(args: Sequence[str], index: int, scan: _Scan) -> int:
    name, eq, inline = args[index].partition("=")
    arity = CLAUDE_OPTIONS.get(name)
    if arity is None:
        scan.known = False
        return 1
    if eq or arity is _Arity.FLAG:
        scan.record(name, inline if eq else None)
        return 1
    taken = _take_value(args, index, arity)
    scan.record(name, args[index + 1] if taken else None)
    return 1 + taken


def _scan_short(args: Sequence[str], index: int, scan: _Scan) -> int:
    """A cluster such as ``-p``, ``-pc`` or ``-dapi`` (``-d`` with value ``api``)."""
    word = args[index]
    for position in range(1, len(word)):
        name = "-" + word[position]
        arity = CLAUDE_OPTIONS.get(name)
        if arity is None:
            scan.known = False
            return 1
        if arity is _Arity.FLAG:
            scan.record(name, None)
            continue
        inline = word[position + 1 :]
        if inline:
            scan.record(name, inline)
            return 1
        taken = _take_value(args, index, arity)
        scan.record(name, args[index + 1] if taken else None)
        return 1 + taken
    return 1


def _scan_args(args: Sequence[str]) -> _Scan:
    """Read the CLI's arguments the way its parser does (commander.js, as observed)."""
    scan = _Scan()
    index = 0
    while index < len(args):
        word = args[index]
        if word == "--":
            scan.positionals.extend(range(index + 1, len(args)))
            break
        if word.startswith("--"):
            index += _scan_long(args, index, scan)
        elif word.startswith("-") and word != "-":
            index += _scan_short(args, index, scan)
        else:
            scan.positionals.append(index)
            index += 1
    return scan


@dataclass(slots=True)
class _Word:
    text: list[str] = field(default_factory=list)
    unquoted_prefix: bool = True  # no quote seen yet: `NAME=` here may be an assignment


def _simple_words(command: str) -> list[_Word] | None:
    """The words of ``command`` if nothing in it is special to a shell, else ``None``.

    Accepted: blanks between words, safe unquoted characters, ``'...'`` (anything), and
    ``"..."`` without ``\\``. A leading unquoted ``=`` is refused too (zsh expands ``=cmd``).
    """
    words: list[_Word] = []
    current: _Word | None = None
    index = 0
    while index < len(command):
        char = command[index]
        if char in _BLANKS:
            current = None
            index += 1
            continue
        if current is None:
            if char == "=":
                return None
            current = _Word()
            words.append(current)
        if char in "'\"":
            end = command.find(char, index + 1)
            if end < 0:
                return None
            quoted = command[index + 1 : end]
            if char == '"' and "\\" in quoted:
                return None
            if "=" not in "".join(current.text):
                current.unquoted_prefix = False  # `"A"=1` and `'A=1'` are not assignments
            current.text.append(quoted)
            index = end + 1
            continue
        if char not in _SAFE_UNQUOTED:
            return None
        current.text.append(char)
        index += 1
    return words


def _shlex_words(command: str) -> list[str] | None:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    if any(token and set(token) <= _OPERATOR_CHARS for token in tokens):
        return None
    return tokens


def parse_claude_command(command: str) -> ClaudeCommand | None:
    """The simple ``[VAR=value ...] claude ... -p ...`` form of ``command``, else ``None``.

    ``None`` (run it through the shell) when: anything a shell would expand or interpret is in
    it (operators, redirections, globs, ``~``, comments, backslashes, newlines, and ``$`` or a
    backtick anywhere, even quoted); the program is not ``claude``; it lacks ``-p``/``--print``;
    or its first positional word names a subcommand (``claude -p doctor``).
    """
    words = _words(command)
    if words is None:
        return None
    env: dict[str, str] = {}
    start = 0
    while start < len(words) and words[start][1] and _ASSIGNMENT.match(words[start][0]):
        name, _, value = words[start][0].partition("=")
        env[name] = value
        start += 1
    argv = tuple(word for word, _ in words[start:])
    if not argv or not _is_claude(argv[0]):
        return None
    scan = _scan_args(argv[1:])
    first = scan.positionals[0] + 1 if scan.positionals else None
    if not scan.print_mode or (first is not None and argv[first] in CLAUDE_SUBCOMMANDS):
        return None
    return ClaudeCommand(
        argv=argv,
        env=env,
        prompt_index=first if scan.known else None,
        output_format=scan.output_format,
        verbose=scan.verbose,
    )


def _words(command: str) -> list[tuple[str, bool]] | None:
    """``(word, may_be_assignment)`` pairs when both readings agree, else ``None``."""
    if _EXPANSION_CHARS & set(command):
        return None
    scanned = _simple_words(command)
    tokens = _shlex_words(command)
    if scanned is None or tokens is None:
        return None
    words = [("".join(word.text), word.unquoted_prefix) for word in scanned]
    if [word for word, _ in words] != tokens:  # two readings must agree; if not, the shell
        return None
    return words
