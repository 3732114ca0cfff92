"""Which llama.cpp slot answers a call, so that a call finds its own prefix still there.

Each slot of the embedded server keeps the prompt it last read; a call whose prompt starts the
same way reads only the rest. :class:`SlotScheduler` hands out the slots itself (every request is
pinned with ``id_slot``), so it knows which slots are idle and whose prompt each one holds:

- a call waits until some slot is idle (never queues behind a busy slot while another idles);
- it takes the idle slot that last answered its affinity key (``societas.llm.affinity``), where
  its persona and instructions still are;
- otherwise the idle slot used least recently, which keeps the other keys' prefixes longest
  (llama.cpp's prompt cache in RAM may still bring this key's prefix back there).

Examples
--------
>>> import asyncio
>>> async def demo() -> list[int]:
...     slots = SlotScheduler(2)
...     order = []
...     for key in ("ada", "bo", "ada", "cy", "bo"):
...         slot = await slots.acquire(key)
...         order.append(slot)
...         slots.release(slot, key)
...     return order
>>> asyncio.run(demo())
[0, 1, 0, 1, 0]
"""

from __future__ import annotations

import asyncio
import itertools


class SlotScheduler:
    """Idle-slot bookkeeping for ``slots`` slots; used from one event loop at a time (the
    state is plain data: no lock is needed between awaits)."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"a slot scheduler needs at least one slot, got {slots}")
        self.slots = slots
        self.busy = [False] * slots
        self.last_key: list[str | None] = [None] * slots
        self._last_used = [0] * slots
        self._clock = itertools.count(1)
        self._waiters: list[asyncio.Future[None]] = []

    def choose(self, key: str | None) -> int | None:
        """The slot a call with ``key`` would take now (None: every slot is busy)."""
        idle = [slot for slot in range(self.slots) if not self.busy[slot]]
        if not idle:
            return None
        warm = [slot for slot in idle if key is not None and self.last_key[slot] == key]
        if warm:
            return warm[0]
        return min(idle, key=lambda slot: (self._last_used[slot], slot))

    async def acquire(self, key: str | None) -> int:
        """Wait for an idle slot and take the best one for ``key`` (see the module doc)."""
        slot = self.choose(key)
        while slot is None:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            slot = self.choose(key)
        self.busy[slot] = True
        return slot

    def release(self, slot: int, key: str | None) -> None:
        """``slot`` answered a call with ``key`` and is idle again: every waiting call looks."""
        self.busy[slot] = False
        self.last_key[slot] = key
        self._last_used[slot] = next(self._clock)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
