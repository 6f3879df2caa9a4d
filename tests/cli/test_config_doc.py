"""docs/configuration.md is generated from Settings and must be current."""

from __future__ import annotations

from pathlib import Path

import pytest

from cc_executor.cli import config_doc
from cc_executor.cli.config_doc import describe_default, describe_type, render_markdown
from cc_executor.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"


def test_committed_configuration_doc_is_current() -> None:
    assert DOC.read_text() == render_markdown(), "run: python scripts/gen_config_doc.py"


def test_every_setting_has_one_row() -> None:
    text = render_markdown()
    for name in Settings.model_fields:
        assert text.count(f"| `CC_EXECUTOR_{name.upper()}`") == 1, name
    assert "`LOG_LEVEL`" in text  # the alias the log level also accepts


def test_a_setting_no_section_names_still_appears(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_doc, "SECTIONS", config_doc.SECTIONS[1:])  # drop "Network"
    text = render_markdown()
    other = text.split(f"## {config_doc.OTHER_SECTION}\n", 1)[1]
    for name in ("HOST", "PORT", "ALLOWED_HOSTS", "ALLOWED_ORIGINS"):
        assert f"| `CC_EXECUTOR_{name}`" in other


@pytest.mark.parametrize(
    ("name", "type_text", "default_text"),
    [
        ("port", "integer ≥ 0, ≤ 65535", "`8003`"),
        ("on_disconnect", "`keep` \\| `cancel`", "`keep`"),
        ("claude_idle_timeout_s", "number > 0", "*unset*"),
        ("event_log_memory_bytes", "integer ≥ 65536", "`8388608` (8 MiB)"),
        ("allowed_hosts", "list of strings (JSON)", "`[]`"),
        ("auth_required", "boolean", "`true`"),
        ("token", "secret string", "*unset*"),
        ("reports_dir", "path", "*unset*"),
        ("state_dir", "path", "$XDG_STATE_HOME/cc-executor or ~/.local/state/cc-executor"),
    ],
)
def test_types_and_defaults_read_from_the_model(
    name: str, type_text: str, default_text: str
) -> None:
    field = Settings.model_fields[name]
    assert describe_type(field) == type_text
    assert describe_default(name, field) == default_text
