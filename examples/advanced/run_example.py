"""Validation, report, verification and history, in-process or on a daemon. Needs Claude."""

from __future__ import annotations

import argparse
import asyncio

from cc_executor import export_execution_history, verify_execution
from cc_executor.api import acc_execute


async def main(server_url: str | None) -> None:
    result = await acc_execute(
        "Explain in two sentences why fresh context per task helps long workflows. Ask me "
        "if anything is unclear.",
        amend_prompt=True,
        validation_prompt="Is this explanation correct and at most two sentences?",
        generate_report=True,
        server_url=server_url,
        timeout=180,
    )
    print(result.text)
    print(f"amendments: {result.amendments}")
    if result.validation is not None:
        print(f"valid: {result.validation.is_valid} ({result.validation.reason})")
    print(f"report: {result.report_path}")
    verdict = verify_execution(result.execution_id)
    print(f"verified: {verdict.verified}: {verdict.reason}")
    print(await export_execution_history(format="csv", limit=5))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", help="daemon URL, e.g. ws://127.0.0.1:8003/ws/mcp")
    asyncio.run(main(parser.parse_args().server))
