"""Simulations collect garbage less often while they run, and leave the collector as they
found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from societas.engine.gc_thresholds import SIMULATION_THRESHOLDS, fewer_collections


@pytest.fixture(autouse=True)
def restore_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_thresholds_rise_within_runs_and_come_back_after_the_last_one() -> None:
    gc.set_threshold(700, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == SIMULATION_THRESHOLDS
        with fewer_collections():  # a second run at the same time
            assert gc.get_threshold() == SIMULATION_THRESHOLDS
        assert gc.get_threshold() == SIMULATION_THRESHOLDS
    assert gc.get_threshold() == (700, 10, 10)


def test_a_callers_own_settings_are_kept_where_they_collect_less() -> None:
    gc.set_threshold(100_000, 5, 50)
    with fewer_collections():
        assert gc.get_threshold() == (100_000, SIMULATION_THRESHOLDS[1], 50)
    gc.set_threshold(0, 10, 10)  # automatic collection off
    with fewer_collections():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold() == (0, 10, 10)


def test_thresholds_come_back_when_a_run_fails() -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the model went away")
    assert gc.get_threshold() == (700, 10, 10)
