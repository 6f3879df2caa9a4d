"""Where the real Claude CLI is for tests, and the environment that keeps it offline.

The CLI is installed by ``scripts/install-claude.sh`` into ``.tools/claude`` (or named by
``CC_EXECUTOR_CLAUDE_PATH``). Tests never install it themselves: that would reach the npm
registry, and tests talk to loopback only.

``offline_env`` is everything the CLI needs to run against :class:`FakeAnthropic` and nothing
else: with these variables version 2.1.332 makes exactly one kind of connection, to the base
URL (checked under ``strace -f -e trace=connect``, see ``docs/claude-cli.md``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cc_executor.api.receipts import MARKER_PREFIX

__all__ = [
    "CLAUDE",
    "RECEIPT_LINE",
    "REPO_ROOT",
    "RUN_TIMEOUT_S",
    "claude_path",
    "claude_version",
    "offline_env",
    "requires_claude",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_CLAUDE = REPO_ROOT / ".tools" / "claude" / "node_modules" / ".bin" / "claude"
VERSION_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 60.0  # one Claude run against the local fake takes about a second


def claude_path() -> str | None:
    """``CC_EXECUTOR_CLAUDE_PATH`` if set, else the project-local install, else ``None``."""
    configured = os.environ.get("CC_EXECUTOR_CLAUDE_PATH")
    candidate = Path(configured) if configured else LOCAL_CLAUDE
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def claude_version(path: str) -> str:
    done = subprocess.run(
        [path, "--version"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=VERSION_TIMEOUT_S,
        check=True,
    )
    return done.stdout.strip()


def offline_env(base_url: str, home: Path, *, max_retries: int = 1) -> dict[str, str]:
    """A clean environment: fresh HOME, fake API, no telemetry, updates or extra traffic."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "dummy-key-for-fake-api",
        # Without these the CLI resolves public hosts (telemetry, feature flags) and probes
        # HEAD /api/hello on the base URL.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        # Default is 10 retries with exponential backoff; one keeps failure tests fast.
        "CLAUDE_CODE_MAX_RETRIES": str(max_retries),
        # We run as root; --dangerously-skip-permissions refuses root unless sandboxed.
        "IS_SANDBOX": "1",
    }


CLAUDE = claude_path()
"""The CLI the e2e tests run, or ``None`` when it is not installed."""

requires_claude = pytest.mark.skipif(
    CLAUDE is None,
    reason="Claude CLI not installed: run scripts/install-claude.sh"
    " (or set CC_EXECUTOR_CLAUDE_PATH)",
)

RECEIPT_LINE = MARKER_PREFIX + ": {uuid}"
"""The receipt line a fake model answer ends with (``.format(uuid=...)``)."""
