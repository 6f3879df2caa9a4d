"""The ``cc-executor`` command line: one module per command group, all thin.

Commands parse options, build :class:`~cc_executor.config.Settings`, call the client or the
daemon lifecycle, and render with rich (or ``--json``). No business logic lives here.
"""

from __future__ import annotations

__all__: list[str] = []
