"""Running awaitables together when one failure must stop them all.

>>> import asyncio
>>> async def double(x: int) -> int:
...     return 2 * x
>>> asyncio.run(all_or_first_error([double(1), double(2)]))
[2, 4]
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar

T = TypeVar("T")


async def all_or_first_error(work: Sequence[Awaitable[T]]) -> list[T]:
    """The results of ``work`` run concurrently, in order; on the first failure the rest are
    cancelled (and awaited) and that failure is raised. Unlike ``asyncio.gather``, nothing is
    left waiting for a partner that has failed."""
    tasks = [asyncio.ensure_future(item) for item in work]
    if not tasks:
        return []
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if (error := task.exception()) is not None:
            raise error
    return [task.result() for task in tasks]
