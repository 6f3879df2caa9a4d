"""The built-in ``builtin.receipt`` hook: the Claude adapter's UUID receipt check, after a run.

Owns only the adaptation of :mod:`cc_executor.api.receipts` to a ``post_execution`` hook: which
executions it applies to, the receipt it records when the daemon ran the prompt, and how the
verdict reads. The evidence and the verdict (:func:`~cc_executor.api.receipts.verify`: the
execution's recorded answer and the CLI's own transcript) stay in ``api.receipts``.

It applies to executions with ``agent == "claude"`` whose ``metadata`` carries
``receipt_uuid`` (the UUID the prompt asked Claude to echo; see
:func:`~cc_executor.api.receipts.marker_instruction`). When no receipt exists yet for the
execution in ``<reports_dir>/receipts/``, it writes one from the context (prompt as sent, session
id and answer from ``result``), then verifies. A verified receipt is reported in the hook's
message; an unverified one is a hook failure (a ``hook.warning``, never a block unless an
operator made the hook required, which built-ins are not).

``api`` sits above ``scheduler``; this module is imported lazily (by
:func:`~cc_executor.scheduler.hooks.runner.builtin_hooks`) so ``import cc_executor.scheduler``
never loads the Python task API.
"""

from __future__ import annotations

from pathlib import Path

from cc_executor.api.events import TaskEvent
from cc_executor.api.receipts import (
    load_receipt,
    new_receipt,
    transcript_path,
    uuid_in,
    verify,
    write_receipt,
)
from cc_executor.protocol.names import Notification
from cc_executor.scheduler.hooks.model import HookContext, HookError, HookEvent, HookResult

__all__ = ["CLAUDE_AGENT", "RECEIPT_HOOK_NAME", "RECEIPT_UUID_KEY", "ReceiptHook"]

RECEIPT_HOOK_NAME = "builtin.receipt"
RECEIPT_UUID_KEY = "receipt_uuid"  # metadata key: the UUID the prompt asked Claude to echo
CLAUDE_AGENT = "claude"
_UNKNOWN_STATE = "unknown"


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class ReceiptHook:
    """Verify the receipt of a finished Claude execution (sync: it reads and writes files)."""

    __name__ = "receipt"

    def __init__(self, reports_dir: Path, *, home: str | None) -> None:
        self.reports_dir = reports_dir
        self.home = home

    def __call__(self, ctx: HookContext) -> HookResult:
        receipt_uuid = _string(ctx.metadata.get(RECEIPT_UUID_KEY))
        if (
            ctx.event is not HookEvent.POST_EXECUTION
            or ctx.agent != CLAUDE_AGENT
            or receipt_uuid is None
            or ctx.execution_id is None
        ):
            return HookResult()
        execution_id = ctx.execution_id
        answer = _string((ctx.result or {}).get("text"))
        events = (
            None
            if answer is None
            else [
                TaskEvent(
                    execution_id,
                    Notification.AGENT_EVENT,
                    params={"kind": "result", "result": answer},
                )
            ]
        )
        if load_receipt(self.reports_dir, execution_id) is None:
            self._write(ctx, execution_id, receipt_uuid, answer)
        verification = verify(execution_id, self.reports_dir, events)
        if not verification.verified:
            raise HookError(f"receipt not verified: {verification.reason}")
        return HookResult(message=f"receipt verified: {verification.reason}")

    def _write(
        self, ctx: HookContext, execution_id: str, receipt_uuid: str, answer: str | None
    ) -> None:
        session_id = _string((ctx.result or {}).get("session_id"))
        receipt = new_receipt(
            execution_id=execution_id,
            uuid=receipt_uuid,
            prompt=ctx.prompt or "",
            session_id=session_id,
            transcript=transcript_path(session_id, cwd=ctx.cwd, home=self.home),
            uuid_found=answer is not None and uuid_in([answer], receipt_uuid),
            state=ctx.state or _UNKNOWN_STATE,
        )
        try:
            write_receipt(receipt, self.reports_dir)
        except OSError as exc:
            raise HookError(f"cannot write the receipt: {exc}") from exc
