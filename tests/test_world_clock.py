"""Game time: steps, conversions, and a state that restores exactly."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from societas.world.clock import GameClock
from societas.world.errors import WorldError

START = datetime(2026, 2, 13, 7, 0)


def test_advancing_moves_now_by_whole_steps() -> None:
    clock = GameClock(START, minutes_per_step=10)
    assert (clock.now, clock.step) == (START, 0)
    assert clock.advance() == datetime(2026, 2, 13, 7, 10)
    assert clock.advance(6) == datetime(2026, 2, 13, 8, 10)
    assert clock.advance(0) == datetime(2026, 2, 13, 8, 10)
    assert clock.step == 7
    assert clock.time_of_step(2) == datetime(2026, 2, 13, 7, 20)


def test_time_arithmetic() -> None:
    clock = GameClock(START, minutes_per_step=15)
    clock.advance(4)
    assert clock.hours_since(START) == 1.0
    assert clock.hours_since(datetime(2026, 2, 13, 9, 0)) == -1.0
    assert clock.steps_until(datetime(2026, 2, 13, 8, 20)) == 2  # 20 minutes: round up
    assert clock.steps_until(datetime(2026, 2, 13, 8, 30)) == 2
    assert clock.steps_until(START) == 0


def test_time_never_goes_backwards_and_steps_are_positive() -> None:
    with pytest.raises(WorldError, match="backwards"):
        GameClock(START).advance(-1)
    with pytest.raises(WorldError, match="minutes_per_step"):
        GameClock(START, minutes_per_step=0)


def test_state_round_trip_is_exact_and_independent() -> None:
    clock = GameClock(START, minutes_per_step=5)
    clock.advance(3)
    state = json.loads(json.dumps(clock.get_state()))
    copy = GameClock.from_state(state)
    assert copy == clock and copy.now == clock.now
    copy.advance()
    assert clock.step == 3
    other = GameClock(datetime(2000, 1, 1))
    other.set_state(state)
    assert other == clock


def test_bad_state_is_a_clear_error() -> None:
    with pytest.raises(WorldError, match="invalid clock state"):
        GameClock.from_state({"start": "yesterday", "minutes_per_step": 5, "step": 0})
