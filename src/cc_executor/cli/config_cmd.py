"""``cc-executor config show``: every setting and its value (the token masked)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from pydantic import SecretStr
from rich.table import Table

from cc_executor.cli.console import build_settings, console
from cc_executor.config import Settings

__all__ = ["config_app", "settings_table"]

config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)

MASK = "********"


def _shown(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, list | dict | bool | int | float) or value is None:
        return value
    return str(value)


def settings_table(settings: Settings) -> dict[str, Any]:
    """Every field (and the derived file paths), JSON-ready, with secrets masked."""
    shown = {name: _shown(getattr(settings, name)) for name in type(settings).model_fields}
    shown["token_file"] = str(settings.token_file)
    shown["pid_file"] = str(settings.pid_file)
    shown["log_file"] = str(settings.log_file)
    return shown


@config_app.command()
def show(
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print every setting (from CC_EXECUTOR_* variables, .env and defaults)."""
    shown = settings_table(build_settings())
    if json_output:
        console.out(orjson.dumps(shown).decode(), highlight=False)
        return
    table = Table("setting", "value", "variable")
    for column in table.columns:
        column.overflow = "fold"
    fields = Settings.model_fields
    for name, value in shown.items():
        variable = f"CC_EXECUTOR_{name.upper()}" if name in fields else "(derived)"
        table.add_row(name, "-" if value is None else str(value), variable)
    console.print(table)
