"""Fail points: a process SIGKILLs itself at a named spot when ``SOCIETAS_KILL_AT`` says so.

Reliability tests need kills at exact moments (after a given step is committed, in the middle of
a checkpoint write, after an experiment unit is saved) rather than at a random wall-clock time.
Production code that must survive a crash calls :func:`kill_point` at such a spot; a normal run
leaves the variable unset and every point returns at once. The variable holds ``POINT:N``:

- ``commit:N``: after the run store commits a step >= N;
- ``in-commit:N``: inside the transaction of a step >= N, before it commits;
- ``in-checkpoint:N``: inside the transaction of a step >= N that writes a checkpoint;
- ``unit:N``: after this process saved its N-th experiment unit;
- ``created:N``: after a run store is created (before its first commit), N ignored.

Examples
--------
>>> import os
>>> os.environ.pop(KILL_VARIABLE, None) and None
>>> kill_point("commit", 3)  # not armed: returns
>>> parse_kill_spec("in-checkpoint:12")
KillSpec(point='in-checkpoint', at=12)
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Literal, get_args

KILL_VARIABLE = "SOCIETAS_KILL_AT"
KillPointName = Literal["commit", "in-commit", "in-checkpoint", "unit", "created"]
_NAMES: tuple[str, ...] = get_args(KillPointName)

# Counted points ("unit") count calls in this process.
_counts: dict[str, int] = {}


@dataclass(frozen=True)
class KillSpec:
    """Where to die: the point's name and its threshold (a step, or a count of units)."""

    point: str
    at: int


def parse_kill_spec(text: str) -> KillSpec:
    """``"POINT:N"`` as a :class:`KillSpec`; ValueError naming the variable if malformed."""
    point, _, number = text.strip().partition(":")
    if point not in _NAMES or not number.strip().isdigit():
        raise ValueError(
            f"{KILL_VARIABLE}={text!r}: expected POINT:N with POINT one of {', '.join(_NAMES)}"
        )
    return KillSpec(point, int(number))


def armed() -> KillSpec | None:
    """The kill spec from the environment, or None when the variable is unset or empty."""
    text = os.environ.get(KILL_VARIABLE, "").strip()
    return parse_kill_spec(text) if text else None


def kill_point(point: KillPointName, value: int | None = None) -> None:
    """SIGKILL this process if ``SOCIETAS_KILL_AT`` names ``point`` and its threshold is reached.

    ``value`` is the step for the store's points; counted points (``unit``) pass None.
    """
    spec = armed()
    if spec is None or spec.point != point:
        return
    if value is None:
        _counts[point] = value = _counts.get(point, 0) + 1
    if value >= spec.at:
        os.kill(os.getpid(), signal.SIGKILL)
