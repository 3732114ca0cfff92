"""The fault proxy's schedule: seeded, kinds in turn, and the sure faults come first."""

from __future__ import annotations

import pytest

from support.faultproxy import FAULT_KINDS, FaultProxy


def schedule(proxy: FaultProxy, requests: int) -> list[str | None]:
    try:
        return [proxy.next_fault() for _ in range(requests)]
    finally:
        proxy.close()


def test_sure_faults_cover_every_kind_before_the_rate_applies() -> None:
    proxy = FaultProxy("http://127.0.0.1:9", rate=0.0, sure_faults=len(FAULT_KINDS))
    faults = schedule(proxy, 30)
    assert faults[: len(FAULT_KINDS)] == list(FAULT_KINDS)
    assert faults[len(FAULT_KINDS) :] == [None] * (30 - len(FAULT_KINDS))
    assert proxy.requests == 30 and sum(proxy.faults.values()) == len(FAULT_KINDS)


def test_sure_faults_keep_the_seeded_draws_after_them() -> None:
    plain = schedule(FaultProxy("http://127.0.0.1:9", rate=0.3, seed=3), 60)
    sure = schedule(FaultProxy("http://127.0.0.1:9", rate=0.3, seed=3, sure_faults=4), 60)
    # The same requests fail after the first four; only which kind each gets may shift.
    assert [f is None for f in sure[4:]] == [f is None for f in plain[4:]]
    assert all(f is not None for f in sure[:4])


def test_a_negative_count_of_sure_faults_is_refused() -> None:
    with pytest.raises(ValueError, match="sure_faults"):
        FaultProxy("http://127.0.0.1:9", sure_faults=-1)
