"""cc-executor: run Claude Code and plain commands as supervised, observable, stoppable jobs."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
