"""The JSON Schema appendix of docs/protocol.md is generated from the models and kept in sync."""

from __future__ import annotations

from pathlib import Path

from cc_executor.protocol.models import METHOD_PARAMS, NOTIFICATION_PARAMS
from cc_executor.protocol.schema import protocol_schema, render_schema_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
BEGIN = "<!-- BEGIN GENERATED SCHEMA -->\n"
END = "<!-- END GENERATED SCHEMA -->"


def test_schema_covers_every_method_and_notification() -> None:
    schema = protocol_schema()
    assert set(schema["methods"]) == {str(m) for m in METHOD_PARAMS}
    assert set(schema["notifications"]) == {str(n) for n in NOTIFICATION_PARAMS}
    execute = schema["methods"]["execute"]["params"]
    assert execute["additionalProperties"] is False
    assert "argv" in execute["properties"]


def test_docs_appendix_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    appendix = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert appendix == render_schema_markdown(), "run scripts/gen_protocol_schema.py"
