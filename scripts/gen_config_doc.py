"""Write docs/configuration.md from `Settings`: every setting, its variable, type and default.

Run `python scripts/gen_config_doc.py` from the repository root (or `--check` to only compare);
tests/cli/test_config_doc.py checks the committed file is current. The text comes from
`cc_executor.cli.config_doc`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cc_executor.cli.config_doc import render_markdown

__all__ = ["TARGET", "render_markdown"]

TARGET = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

if __name__ == "__main__":
    text = render_markdown()
    if "--check" in sys.argv[1:]:
        current = TARGET.read_text() if TARGET.exists() else ""
        sys.exit(0 if current == text else f"{TARGET} is stale: run scripts/gen_config_doc.py")
    TARGET.write_text(text)
