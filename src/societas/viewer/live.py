"""Server-sent events that let a page follow a run while the simulation writes it.

The server polls the store for new event ids (cheap: ``MAX(id)`` on the primary key and two meta
rows) and sends a ``progress`` message whenever something changed. The stream ends once the run
is no longer running, after telling the page so.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict

import anyio.to_thread

from societas.viewer.store import Progress, RunView

RETRY_MS = 3000


def sse_message(event: str, data: object, event_id: int | None = None) -> str:
    """One server-sent event in wire format.

    >>> sse_message("progress", {"a": 1}, 7)
    'id: 7\\nevent: progress\\ndata: {"a": 1}\\n\\n'
    """
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


async def progress_stream(
    reader: RunView,
    is_disconnected: Callable[[], Awaitable[bool]],
    *,
    after_id: int,
    poll_s: float,
    heartbeat_s: float,
) -> AsyncIterator[str]:
    """Yield ``progress`` messages as the run grows; a comment line keeps idle streams open.

    The first message goes out at once when the store already holds events after ``after_id``
    or the run is not running; later ones whenever the last event id or the status changes.
    """
    yield f"retry: {RETRY_MS}\n\n"
    sent: Progress | None = None
    last_write = time.monotonic()
    while not await is_disconnected():
        progress = await anyio.to_thread.run_sync(reader.read_progress)
        changed = progress != sent and (
            sent is not None or progress.last_event_id > after_id or progress.status != "running"
        )
        if changed:
            yield sse_message("progress", asdict(progress), progress.last_event_id)
            sent, last_write = progress, time.monotonic()
        elif sent is None:
            sent = progress
        if progress.status != "running":
            return
        if time.monotonic() - last_write >= heartbeat_s:
            yield ": keep-alive\n\n"
            last_write = time.monotonic()
        await anyio.sleep(poll_s)
