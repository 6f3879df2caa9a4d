"""Every example in examples/ runs as a user would run it, and prints its real results.

Each example runs as a subprocess (``python examples/<name>/<script>.py ...``) with the real
Claude Code CLI (``scripts/install-claude.sh``) kept offline exactly as ``tests/e2e/claude_env``
keeps it: the CLI talks to :class:`FakeAnthropic` on loopback, which scripts the model's turns,
tool calls included. The tools themselves really run (files are written, pytest runs), and the
examples that need a daemon get a real one (``cc-executor server start`` in the background) on a
free loopback port. The assertions read what the example printed. Every run is bounded.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.claude_env import (
    CLAUDE,
    RECEIPT_LINE,
    REPO_ROOT,
    offline_env,
    requires_claude,
)
from tests.e2e.fake_anthropic import (
    EchoReply,
    FakeAnthropic,
    TextReply,
    ToolUseReply,
    prompt_text,
)
from tests.server.conftest import free_port

from cc_executor.config import Settings
from cc_executor.server import daemon

pytestmark = pytest.mark.e2e

EXAMPLES = REPO_ROOT / "examples"
EXAMPLE_TIMEOUT_S = 180.0  # a whole example; each Claude run against the fake takes ~1-2 s
DAEMON_START_TIMEOUT_S = 30.0


# --- the fake model's answers --------------------------------------------------------------------
def with_receipt(answer: str, prompt: str) -> str:
    """``answer`` plus the receipt line the task API asks for (when the prompt has a UUID)."""
    return EchoReply.uuid(answer, RECEIPT_LINE).make(prompt)


def last_tool_output(body: Any) -> str:
    """The text of the last ``tool_result`` block the CLI sent back to the model."""
    text = ""
    for message in body.get("messages", []) if isinstance(body, dict) else []:
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                inner = block.get("content")
                if isinstance(inner, list):
                    inner = "\n".join(str(b.get("text", "")) for b in inner if isinstance(b, dict))
                text = str(inner or "")
    return text


@dataclass(frozen=True)
class FromToolOutput(EchoReply):
    """A final answer the fake model derives from the real output of the tool it called."""

    def resolve(self, body: Any) -> TextReply:
        answer = self.make(last_tool_output(body))
        return TextReply(with_receipt(answer, prompt_text(body)), "end_turn", 20, 10)


def answers(table: dict[str, str]) -> Callable[[str], str]:
    """Answer by the first key the prompt contains: replies fit whichever run asks first."""

    def make(prompt: str) -> str:
        found = next((reply for key, reply in table.items() if key in prompt), "no idea")
        return with_receipt(found, prompt)

    return make


# --- running the examples ------------------------------------------------------------------------
@pytest.fixture
def api() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def env(tmp_path: Path, api: FakeAnthropic) -> dict[str, str]:
    """The example's environment: offline Claude, this test's state dir, nothing else."""
    home = tmp_path / "home"
    home.mkdir()
    assert CLAUDE is not None
    return {
        **offline_env(api.base_url, home),
        "CC_EXECUTOR_CLAUDE_PATH": CLAUDE,
        "CC_EXECUTOR_STATE_DIR": str(tmp_path / "state"),
    }


@pytest.fixture
def server(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real daemon on a free loopback port, sharing the example's state dir (its token)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the daemon hands its environment to Claude
    settings = Settings(
        host="127.0.0.1",
        port=free_port(),
        state_dir=tmp_path / "state",
        claude_path=CLAUDE,
        terminate_grace_s=1.0,
    )
    daemon.start_background(settings, timeout=DAEMON_START_TIMEOUT_S)
    try:
        yield f"ws://127.0.0.1:{settings.port}/ws/mcp"
    finally:
        daemon.stop(settings, timeout=DAEMON_START_TIMEOUT_S)


def run_example(script: str, *args: str, env: dict[str, str], cwd: Path) -> list[str]:
    """Run ``examples/<script>`` like a user; its stdout lines (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines()


def test_every_example_script_is_covered() -> None:
    scripts = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.glob("*/*.py")}
    assert scripts == {
        "quickstart/quickstart.py",
        "basic/run_example.py",
        "medium/concurrent_tasks.py",
        "advanced/run_example.py",
    }
    readme = (EXAMPLES / "README.md").read_text()
    for script in scripts:
        assert script in readme, f"examples/README.md does not mention {script}"


# --- quickstart ----------------------------------------------------------------------------------
@requires_claude
def test_quickstart(api: FakeAnthropic, env: dict[str, str], work: Path) -> None:
    api.enqueue(EchoReply.uuid("2 + 2 = 4.", RECEIPT_LINE))
    lines = run_example("quickstart/quickstart.py", env=env, cwd=work)
    assert lines[0] == "answer: 2 + 2 = 4."
    assert "state: completed" in lines
    assert re.fullmatch(r"cost: \$0\.\d+", lines[2]), lines
    assert re.fullmatch(r"session: [0-9a-f-]{36}", lines[3]), lines
    assert lines[4].startswith("receipt UUID echoed: True ("), lines
    (request,) = api.conversation_requests()
    assert "What is 2+2?" in prompt_text(request.body)


# --- basic: a task list whose tools really run ---------------------------------------------------
FIB_PY = """def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
"""
TEST_FIB_PY = """from fib import fib


def test_start():
    assert fib(0) == 0
    assert fib(1) == 1


def test_tenth():
    assert fib(10) == 55


def test_grows():
    assert fib(20) > fib(19)
"""


@requires_claude
def test_basic_task_list(api: FakeAnthropic, env: dict[str, str], work: Path) -> None:
    demo = work / "demo"
    pytest_command = f"{sys.executable} -m pytest -q -p no:cacheprovider test_fib.py"
    api.enqueue(
        ToolUseReply(name="Write", input={"file_path": str(demo / "fib.py"), "content": FIB_PY}),
        EchoReply.uuid("Created fib.py.", RECEIPT_LINE),
        ToolUseReply(
            name="Write", input={"file_path": str(demo / "test_fib.py"), "content": TEST_FIB_PY}
        ),
        EchoReply.uuid("Added test_fib.py with three tests.", RECEIPT_LINE),
        ToolUseReply.bash(pytest_command, "Run the tests"),
        FromToolOutput(lambda output: output.strip().splitlines()[-1]),
    )
    lines = run_example("basic/run_example.py", "--workdir", str(demo), env=env, cwd=work)

    assert lines[0] == f"working in {demo}"
    headers = [i for i, line in enumerate(lines) if line.startswith("--- task ")]
    assert [lines[i].split(" (")[0] for i in headers] == [
        "--- task 1: completed",
        "--- task 2: completed",
        "--- task 3: completed",
    ]
    assert lines[headers[0] + 1] == "Created fib.py."
    assert lines[headers[1] + 1] == "Added test_fib.py with three tests."
    assert re.match(r"3 passed in [\d.]+s", lines[headers[2] + 1]), lines  # pytest's own words
    assert lines[-1] == "files: fib.py, test_fib.py"
    # The real CLI wrote the files and ran pytest; the fake only asked it to.
    assert (demo / "fib.py").read_text() == FIB_PY
    assert (demo / "test_fib.py").read_text() == TEST_FIB_PY
    conversations = [r for r in api.conversation_requests() if not r.tool_results()]
    assert len(conversations) == 3
    # Fresh context: each task's conversation starts with its own task and nothing earlier.
    for index, request in enumerate(conversations, 1):
        prompt = prompt_text(request.body)
        assert f"Task {index}:" in prompt
        assert all(f"Task {other}:" not in prompt for other in (1, 2, 3) if other != index)


# --- medium: concurrency, a stream and JSON, on a daemon -----------------------------------------
@requires_claude
def test_medium_concurrent_tasks_on_a_daemon(
    api: FakeAnthropic, env: dict[str, str], work: Path, server: str
) -> None:
    make = answers(
        {
            "prime above 100": "101",
            "sorting algorithm": "Merge sort",
            "Linux signal": "SIGTERM",
            "Count from 1 to 3": "1\n2\n3",
            "primary colours": '```json\n{"colours": ["red", "yellow", "blue"]}\n```',
        }
    )
    api.enqueue(*(EchoReply(make) for _ in range(5)))
    lines = run_example("medium/concurrent_tasks.py", "--server", server, env=env, cwd=work)

    assert re.fullmatch(r"3 tasks at once in [\d.]+s:", lines[0]), lines
    assert lines[1:5] == [
        "  Name a prime above 100 -> 101 [completed]",
        "  Name a sorting algorithm -> Merge sort [completed]",
        "  Name a Linux signal -> SIGTERM [completed]",
        "  separate Claude sessions: 3",
    ]
    assert lines[5] == "streamed:"
    events = [line for line in lines if line.startswith("  event: ")]
    assert any("init" in line for line in events), events
    assert any("assistant_text" in line for line in events), events
    assert any(re.fullmatch(r"  result: '1\\n2\\n3' \(\$0\.\d+\)", line) for line in lines), lines
    assert lines[-1] == "json: colours = ['red', 'yellow', 'blue']"
    assert api.exhausted == 0
    assert len(api.conversation_requests()) == 5


# --- advanced: a mixed task list, pause/resume, reattach -----------------------------------------
def sorted_words(read_output: str) -> str:
    """What the fake model answers after Read: the file's words (after line numbers), sorted."""
    words = [m.group(1) for m in re.finditer(r"([a-z]+)\s*$", read_output, re.MULTILINE)]
    return " ".join(sorted(words))


@requires_claude
def test_advanced_task_list_pause_resume_reattach(
    api: FakeAnthropic, env: dict[str, str], work: Path, server: str
) -> None:
    demo = work / "demo"
    api.enqueue(
        ToolUseReply(name="Read", input={"file_path": str(demo / "words.txt")}),
        FromToolOutput(sorted_words),
    )
    lines = run_example(
        "advanced/run_example.py", "--server", server, "--workdir", str(demo), env=env, cwd=work
    )
    text = "\n".join(lines)

    assert re.search(r"^created task list [0-9a-f]{32} with 3 tasks$", text, re.M), text
    assert "paused: queue_paused=True" in lines
    assert re.search(r"^while paused: [123] task\(s\) wait, 0 run$", text, re.M), text
    assert "resumed: queue_paused=False" in lines
    # Task 0 (shell) wrote the file; task 1 (Claude) really read it through the CLI's Read tool.
    assert "[task 0] 4" in lines
    assert (demo / "words.txt").read_text() == "delta\nalpha\ncharlie\nbravo\n"
    assert any(line.startswith("[task 1] claude calls Read: ") for line in lines), text
    assert re.search(
        r"^\[task 1\] claude answers: alpha bravo charlie delta \(\$0\.\d+\)$", text, re.M
    )
    # The watcher saw each step exactly once across its dropped and its new connection.
    watched = [line.split(" (seq")[0] for line in lines if line.startswith("[watcher] step")]
    assert watched == ["[watcher] step 1 of 3", "[watcher] step 2 of 3", "[watcher] step 3 of 3"]
    drop = lines.index("[watcher] dropping the connection")
    assert lines[drop - 1].startswith("[watcher] step 1 of 3 (seq ")
    assert lines[drop + 1].startswith("[watcher] reattached after seq ")
    assert "[watcher] completed, nothing missed, nothing twice" in lines
    # The orchestrator's own connection streamed the same task too, and saw the list end.
    assert [line for line in lines if line.startswith("[task 2] step")] == [
        "[task 2] step 1 of 3",
        "[task 2] step 2 of 3",
        "[task 2] step 3 of 3",
    ]
    assert "task list completed: {'completed': 3}" in lines
    list_id = re.search(r"created task list ([0-9a-f]{32})", text)
    assert list_id is not None
    assert lines[-3:] == [f"  task {i}: completed ({list_id.group(1)}.{i}.1)" for i in range(3)]
