"""A real Supervisor and a fake ``claude`` (tests/programs/fake_claude.py) with fast limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from cc_executor.scheduler import BackoffConfig, ClaudeRunConfig, LimitConfig

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
# Small waits so retries take milliseconds; the logic is the same as with the defaults.
FAST_LIMITS = LimitConfig(
    result_grace_s=0.3,
    backoff=BackoffConfig(attempts=3, min_wait_s=0.05, max_wait_s=0.2),
    token_limit_retries=2,
    usage_limit_max_wait_s=30.0,
)


@pytest.fixture
def fake_claude(tmp_path: Path) -> Path:
    """An executable named ``claude`` running the fake (so ``is_claude_command`` sees it)."""
    source = PROGRAMS / "fake_claude.py"
    source.chmod(0o755)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    link = bindir / "claude"
    link.symlink_to(source)
    return link


@pytest.fixture
def claude_config(fake_claude: Path) -> ClaudeRunConfig:
    return ClaudeRunConfig(claude_path=str(fake_claude), limits=FAST_LIMITS)
