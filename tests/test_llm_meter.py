"""The meter: totals per purpose, listeners, merging and state."""

from __future__ import annotations

import json

import pytest

from societas.llm.meter import CallRecord, Meter, MeterSnapshot, RequestTotals


def _call(purpose: str, **fields: object) -> CallRecord:
    base: dict[str, object] = {"purpose": purpose, "model_id": "m", "kind": "chat"}
    return CallRecord.model_validate(base | fields)


def _filled_meter() -> Meter:
    meter = Meter()
    meter.record(
        _call("plan", prompt_tokens=100, completion_tokens=20, backend_calls=1, latency_s=1.5)
    )
    meter.record(
        _call(
            "plan",
            prompt_tokens=80,
            completion_tokens=10,
            reused_prompt_tokens=60,
            backend_calls=2,
            repaired=True,
            retries=1,
            latency_s=0.5,
        )
    )
    meter.record(_call("plan", cached=True))
    meter.record(_call("rate", backend_calls=1, retries=3, error="LLMUnavailableError: down"))
    return meter


def test_totals_per_purpose_and_overall() -> None:
    snapshot = _filled_meter().snapshot()
    plan = snapshot.purposes["plan"]
    assert (plan.requests, plan.calls, plan.cache_hits) == (3, 3, 1)
    assert (plan.prompt_tokens, plan.completion_tokens, plan.reused_prompt_tokens) == (180, 30, 60)
    assert plan.total_tokens == 210
    assert plan.wall_s == pytest.approx(2.0)
    assert (plan.retries, plan.repairs, plan.errors) == (1, 1, 0)
    rate = snapshot.purposes["rate"]
    assert (rate.requests, rate.errors, rate.retries) == (1, 1, 3)
    assert snapshot.total.requests == 4
    assert snapshot.total.calls == 4
    assert snapshot.total.errors == 1
    assert list(snapshot.purposes) == ["plan", "rate"]


def test_listeners_get_every_record_until_unsubscribed() -> None:
    meter = Meter()
    seen: list[CallRecord] = []
    unsubscribe = meter.subscribe(seen.append)
    first = _call("plan", backend_calls=1)
    meter.record(first)
    unsubscribe()
    meter.record(_call("plan"))
    assert seen == [first]
    assert meter.snapshot().purposes["plan"].requests == 2


def test_a_failing_listener_does_not_break_recording() -> None:
    meter = Meter()
    seen: list[str] = []

    def broken(record: CallRecord) -> None:
        raise RuntimeError("store offline")

    meter.subscribe(broken)
    meter.subscribe(lambda record: seen.append(record.purpose))
    meter.record(_call("talk"))
    assert seen == ["talk"]
    assert meter.snapshot().total.requests == 1


def test_merge_adds_meters_and_snapshots() -> None:
    left = _filled_meter()
    right = Meter()
    right.record(_call("plan", prompt_tokens=5, backend_calls=1))
    right.record(_call("survey", completion_tokens=7, backend_calls=1))
    left.merge(right)
    left.merge(right.snapshot())
    snapshot = left.snapshot()
    assert snapshot.purposes["plan"].prompt_tokens == 190
    assert snapshot.purposes["survey"].completion_tokens == 14
    assert snapshot.total.requests == 8


def test_reset_clears_totals_but_keeps_listeners() -> None:
    meter = _filled_meter()
    seen: list[CallRecord] = []
    meter.subscribe(seen.append)
    meter.reset()
    assert meter.snapshot() == MeterSnapshot()
    meter.record(_call("plan"))
    assert len(seen) == 1


def test_to_json_round_trips_to_a_snapshot() -> None:
    meter = _filled_meter()
    parsed = MeterSnapshot.model_validate(json.loads(meter.to_json()))
    assert parsed == meter.snapshot()


def test_state_round_trip_gives_an_independent_copy() -> None:
    meter = _filled_meter()
    state = meter.get_state()
    json.dumps(state)  # JSON-serialisable
    copy = Meter.from_state(state)
    assert copy.snapshot() == meter.snapshot()
    copy.record(_call("plan", prompt_tokens=1000))
    assert meter.snapshot().purposes["plan"].prompt_tokens == 180
    state["purposes"]["plan"]["prompt_tokens"] = 0
    assert copy.snapshot().purposes["plan"].prompt_tokens == 1180


def test_bad_state_is_rejected_with_a_clear_error() -> None:
    meter = Meter()
    with pytest.raises(ValueError, match="meter state"):
        meter.set_state({"purposes": {"plan": {"calls": -1}}})
    with pytest.raises(ValueError, match="meter state"):
        meter.set_state({"totals": {}})


def test_event_data_follows_the_llm_call_event_contract() -> None:
    record = _call(
        "converse",
        prompt_tokens=12,
        completion_tokens=3,
        reused_prompt_tokens=8,
        cached=False,
        latency_s=0.123456,
        retries=1,
        repaired=True,
        error=None,
    )
    data = record.event_data()
    assert data == {
        "purpose": "converse",
        "model": "m",
        "prompt_tokens": 12,
        "reused_prompt_tokens": 8,
        "completion_tokens": 3,
        "cached": False,
        "latency_s": 0.1235,
        "error": None,
        "retries": 1,
        "repaired": True,
        "backend_calls": 0,
        "invalid_answers": 0,
    }


def test_usage_totals_of_a_record() -> None:
    totals = RequestTotals.of(_call("x", cached=True, error="boom", repaired=True))
    assert (totals.requests, totals.cache_hits, totals.errors, totals.repairs) == (1, 1, 1, 1)
