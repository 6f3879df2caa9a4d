"""JSON Schema of the wire contract, generated from :mod:`cc_executor.protocol.models`.

Owns the rendering only: the models are the single source, and ``scripts/gen_protocol_schema.py``
writes :func:`render_schema_markdown` into the appendix of ``docs/protocol.md`` (a test keeps the
two in sync). :func:`protocol_schema` can also be served by a door that wants to publish it.
"""

from __future__ import annotations

import json

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, JsonSchemaValue

from cc_executor.protocol.models import (
    METHOD_PARAMS,
    METHOD_RESULTS,
    NOTIFICATION_PARAMS,
    PROTOCOL_VERSION,
)

__all__ = ["protocol_schema", "render_schema_markdown"]


def _schema(model: type[BaseModel], mode: JsonSchemaMode) -> JsonSchemaValue:
    # Params are what a client sends (validation), results what it receives (serialization).
    schema = model.model_json_schema(mode=mode)
    title = schema.get("title")
    schema = _without_titles(schema)
    return {"title": title, **schema} if title else schema


def _without_titles(node: JsonSchemaValue) -> JsonSchemaValue:
    """Drop pydantic's derived ``title`` keys ("Execution Id"): noise next to the field name."""
    cleaned: JsonSchemaValue = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "properties" and isinstance(value, dict):
            cleaned[key] = {name: _without_titles(prop) for name, prop in value.items()}
        elif isinstance(value, dict):
            cleaned[key] = _without_titles(value)
        elif isinstance(value, list):
            cleaned[key] = [_without_titles(v) if isinstance(v, dict) else v for v in value]
        else:
            cleaned[key] = value
    return cleaned


def protocol_schema() -> dict[str, JsonSchemaValue]:
    """``{"methods": {name: {params, result}}, "notifications": {name: params}}``."""
    methods: dict[str, JsonSchemaValue] = {}
    for method, params_model in METHOD_PARAMS.items():
        result_model = METHOD_RESULTS[method]
        methods[str(method)] = {
            "params": _schema(params_model, "validation"),
            "result": (
                _schema(result_model, "serialization")
                if result_model is not None
                else {"type": "object"}
            ),
        }
    notifications = {
        str(name): _schema(model, "serialization") for name, model in NOTIFICATION_PARAMS.items()
    }
    return {
        "protocol_version": {"const": PROTOCOL_VERSION},
        "methods": methods,
        "notifications": notifications,
    }


def _block(schema: JsonSchemaValue) -> str:
    return "```json\n" + json.dumps(schema, indent=2, sort_keys=True) + "\n```\n"


def render_schema_markdown() -> str:
    """The appendix text: one section per method (params, result) and per notification."""
    schema = protocol_schema()
    parts = [
        f"Generated from `cc_executor.protocol.models` (protocol {PROTOCOL_VERSION}) by "
        "`scripts/gen_protocol_schema.py`; do not edit by hand.\n",
    ]
    for name, entry in schema["methods"].items():
        parts.append(f"\n### Method `{name}`\n\nParams:\n\n{_block(entry['params'])}")
        parts.append(f"\nResult:\n\n{_block(entry['result'])}")
    for name, params in schema["notifications"].items():
        parts.append(f"\n### Notification `{name}`\n\n{_block(params)}")
    return "".join(parts)
