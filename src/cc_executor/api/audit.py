"""After the fact: ``verify_execution`` (receipts) and ``export_execution_history``.

``export_execution_history`` lives in :mod:`cc_executor.api.history`; it is re-exported here.
"""

from __future__ import annotations

from pathlib import Path

from cc_executor.api import history
from cc_executor.api.execute import reports_dir_of, settings_or_default
from cc_executor.api.history import export_execution_history
from cc_executor.api.receipts import Verification, verify
from cc_executor.config import Settings

__all__ = ["export_execution_history", "verify_execution"]


def verify_execution(
    execution_id: str,
    *,
    reports_dir: str | Path | None = None,
    settings: Settings | None = None,
) -> Verification:
    """Check that ``execution_id`` really ran and echoed its receipt UUID.

    Reads the receipt from the reports dir, then checks the UUID against the events this
    process recorded for the execution (when it ran here) and against the Claude CLI's own
    transcript of the session (the prompt's sha256 and the UUID in an assistant answer). Files
    the model could have written in its working directory are never evidence.
    ``verified`` is true when at least one check passed and none failed.
    """
    folder = (
        Path(reports_dir)
        if reports_dir is not None
        else reports_dir_of(settings_or_default(settings))
    )
    result = history.find_result(execution_id)
    events = result.events if result is not None and result.execution_id == execution_id else None
    return verify(execution_id, folder, events)
