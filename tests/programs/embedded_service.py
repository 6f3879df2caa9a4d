"""An embedded ExecutionService (another program sharing the store): starts ``argv`` under owner
``sys.argv[2]`` (``auto``: a real embedded owner id, with this pid) on the SQLite file
``sys.argv[1]``, prints the execution id, then waits forever. The test kills it with SIGKILL to
play an embedded user that died."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from cc_executor.protocol import ExecuteParams
from cc_executor.scheduler.service import ExecutionService, embedded_owner
from cc_executor.storage.sqlite import SqliteStore
from cc_executor.supervisor import Supervisor


async def main() -> None:
    store = SqliteStore(Path(sys.argv[1]))
    service = ExecutionService(
        supervisor=Supervisor(shell="/bin/sh"),
        store=store,
        owner=embedded_owner() if sys.argv[2] == "auto" else sys.argv[2],
    )
    async with service:
        execution = await service.execute(ExecuteParams(argv=sys.argv[3:]))
        await service.recorder.drain()
        sys.stdout.write(execution.id + "\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


asyncio.run(main())
