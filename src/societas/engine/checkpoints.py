"""What a checkpoint saves of each agent's memory: only the rows the run store does not hold yet.

Memory streams only grow, so :class:`StreamSaver` remembers, per agent, how many rows of its
stream the store already has and hands the store the rest as an appended part (see
:mod:`societas.engine.segments`) beside the stream's small changing head. The store puts the
whole stream back when a checkpoint is read, so readers see the same state as
:meth:`~societas.memory.stream.MemoryStream.get_state` gives.

A stream the saver has not seen (a new simulation, a resumed or forked one, a stream replaced
by another) is saved whole, under a new key named after the agent and the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from societas.engine.segments import appended
from societas.memory.stream import MemoryStream


@dataclass(frozen=True)
class _Saved:
    stream: MemoryStream
    key: str
    rows: int


class StreamSaver:
    """Rows of each agent's memory stream already in the run store.

    Call :meth:`part` for every agent while building a checkpoint, then :meth:`committed` once
    the store has it (or :meth:`discard` when the commit failed, so nothing is taken as saved).
    """

    def __init__(self) -> None:
        self._saved: dict[str, _Saved] = {}
        self._pending: dict[str, _Saved] = {}

    def part(self, agent: str, stream: MemoryStream, step: int) -> dict[str, Any]:
        """The checkpoint's part for ``agent``'s ``stream``: its head and its unsaved rows."""
        saved = self._saved.get(agent)
        if saved is None or saved.stream is not stream or saved.rows > len(stream):
            saved = _Saved(stream, f"{agent}@{step}", 0)
        size = len(stream)
        self._pending[agent] = _Saved(stream, saved.key, size)
        return appended(
            saved.key,
            first=saved.rows,
            count=size - saved.rows,
            columns=stream.rows_state(saved.rows),
            head=stream.head_state(),
        )

    def committed(self) -> None:
        self._saved.update(self._pending)
        self._pending.clear()

    def discard(self) -> None:
        self._pending.clear()
