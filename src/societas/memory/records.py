"""What one memory is: its kind, its fields, and how game time is stored.

A memory stream keeps its records column by column (see :mod:`societas.memory.stream`); a
:class:`MemoryRecord` is the read-only view of one row that callers get back.

Game time is stored as float hours since :data:`EPOCH` (naive datetimes, the simulation's clock).

Examples
--------
>>> MemoryKind.parse("reflection")
<MemoryKind.REFLECTION: 1>
>>> from_hours(to_hours(datetime(2024, 2, 13, 7, 30)))
datetime.datetime(2024, 2, 13, 7, 30)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

import numpy as np
import numpy.typing as npt

EPOCH = datetime(2000, 1, 1)
"""Origin of the stored game time; any naive datetime after 1900 round-trips to the microsecond."""

_SECONDS_PER_HOUR = 3600.0


class MemoryKind(IntEnum):
    """The kinds of memory; the integer is the code stored in the kind column."""

    OBSERVATION = 0
    REFLECTION = 1
    PLAN = 2
    DIALOGUE = 3

    @property
    def label(self) -> str:
        """The lower-case name used in events and saved state, e.g. ``"observation"``."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: KindLike) -> MemoryKind:
        """Accept a kind, its label or its code; anything else is a clear error."""
        if isinstance(value, MemoryKind):
            return value
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise ValueError(
                    f"unknown memory kind {value!r}; expected one of {LABELS}"
                ) from None
        if isinstance(value, int | np.integer) and not isinstance(value, bool):
            try:
                return cls(int(value))
            except ValueError:
                raise ValueError(f"unknown memory kind code {value!r}") from None
        raise ValueError(f"unknown memory kind {value!r}; expected one of {LABELS}")


KindLike = MemoryKind | str | int
LABELS = tuple(kind.label for kind in MemoryKind)


def to_hours(moment: datetime) -> float:
    """Game time as float hours since :data:`EPOCH`; naive datetimes only."""
    if moment.tzinfo is not None:
        raise ValueError(
            f"game times are naive datetimes; got {moment.isoformat()} with a timezone"
        )
    return (moment - EPOCH).total_seconds() / _SECONDS_PER_HOUR


def from_hours(hours: float) -> datetime:
    """Inverse of :func:`to_hours`, rounded to the microsecond."""
    return EPOCH + timedelta(microseconds=round(float(hours) * _SECONDS_PER_HOUR * 1e6))


@dataclass(frozen=True, eq=False)
class MemoryRecord:
    """One memory, as read from a stream.

    ``importance`` is 1-10; ``evidence`` holds the ids a reflection rests on; ``depth`` is 0 for
    everything but reflections, which sit one level above the deepest record they cite.
    ``embedding`` is a read-only copy of the stored (L2-normalised) vector.
    """

    id: int
    kind: MemoryKind
    text: str
    created: datetime
    last_access: datetime
    importance: float
    evidence: tuple[int, ...]
    depth: int
    embedding: npt.NDArray[np.float32]
