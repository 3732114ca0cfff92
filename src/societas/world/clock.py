"""Game time: a start time and a whole number of fixed-length steps since then.

Examples
--------
>>> from datetime import datetime
>>> clock = GameClock(datetime(2026, 2, 13, 7, 0), minutes_per_step=10)
>>> clock.advance(3)
datetime.datetime(2026, 2, 13, 7, 30)
>>> clock.step, clock.hours_since(datetime(2026, 2, 13, 6, 0))
(3, 1.5)
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from societas.world.errors import WorldError


class GameClock:
    """The world's time; ``now`` is always ``start + step * minutes_per_step``."""

    def __init__(self, start: datetime, minutes_per_step: int = 10, step: int = 0) -> None:
        if minutes_per_step < 1:
            raise WorldError(f"minutes_per_step must be at least 1, got {minutes_per_step}")
        if step < 0:
            raise WorldError(f"step must not be negative, got {step}")
        self._start = start
        self._minutes_per_step = minutes_per_step
        self._step = step

    @property
    def start(self) -> datetime:
        return self._start

    @property
    def minutes_per_step(self) -> int:
        return self._minutes_per_step

    @property
    def step_length(self) -> timedelta:
        return timedelta(minutes=self._minutes_per_step)

    @property
    def step(self) -> int:
        """Steps taken since the start."""
        return self._step

    @property
    def now(self) -> datetime:
        return self.time_of_step(self._step)

    def advance(self, steps: int = 1) -> datetime:
        """Move time forward by ``steps`` (0 or more) and return the new ``now``."""
        if steps < 0:
            raise WorldError(f"time cannot go backwards (advance({steps}))")
        self._step += steps
        return self.now

    def time_of_step(self, step: int) -> datetime:
        return self._start + step * self.step_length

    def steps_until(self, time: datetime) -> int:
        """Whole steps from now until ``time`` is reached or passed (0 if already there)."""
        minutes = (time - self.now) / timedelta(minutes=1)
        return max(0, math.ceil(minutes / self._minutes_per_step))

    def hours_since(self, time: datetime) -> float:
        """Hours from ``time`` until now (negative when ``time`` is in the future)."""
        return (self.now - time) / timedelta(hours=1)

    def get_state(self) -> dict[str, Any]:
        return {
            "start": self._start.isoformat(),
            "minutes_per_step": self._minutes_per_step,
            "step": self._step,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        restored = GameClock.from_state(state)
        self._start, self._minutes_per_step = restored.start, restored.minutes_per_step
        self._step = restored.step

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GameClock:
        try:
            start = datetime.fromisoformat(str(state["start"]))
            return cls(start, int(state["minutes_per_step"]), int(state["step"]))
        except (KeyError, TypeError, ValueError) as error:
            raise WorldError(f"invalid clock state {state!r}: {error}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GameClock):
            return NotImplemented
        return self.get_state() == other.get_state()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"GameClock(now={self.now.isoformat()}, step={self._step})"
