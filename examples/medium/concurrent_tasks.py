"""Concurrent tasks, a live event stream and JSON mode. Needs the Claude Code CLI."""

from __future__ import annotations

import asyncio

from cc_executor.api import TaskResult, acc_execute

QUESTIONS = ["Name a prime above 100.", "Name a sorting algorithm.", "Name a Linux signal."]


async def main() -> None:
    answers = await asyncio.gather(*(acc_execute(q, timeout=120) for q in QUESTIONS))
    for question, answer in zip(QUESTIONS, answers, strict=True):
        print(f"{question} -> {answer.text}")

    stream = await acc_execute("Count from 1 to 3, one number per line.", stream=True)
    async for item in stream:
        if isinstance(item, TaskResult):
            print(f"result: {item.text!r} (${item.cost_usd})")
        else:
            print(f"  event: {item.summary()}")

    data = await acc_execute(
        'Give three primary colours as {"colours": [...]}.', json_mode=True, timeout=120
    )
    print(data["colours"])


if __name__ == "__main__":
    asyncio.run(main())
