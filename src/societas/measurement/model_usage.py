"""What the language model cost a run, read from its ``llm_call`` events.

One event is one request through the LLM layer; :class:`RecordedCallTotals` sums a set of them.
The live :class:`~societas.llm.meter.Meter` keeps its own
:class:`~societas.llm.meter.RequestTotals` while a process runs; a run's figures come from its
recorded events, which survive a resume and a restart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from societas.engine.events import Event
from societas.llm.meter import reuse_share


class RecordedCallTotals(BaseModel):
    """Model calls and tokens of a set of ``llm_call`` events (one event per request).

    ``calls`` counts the recorded requests, those answered from the response cache included: what
    the live meter calls ``requests`` (its ``calls`` are the backend calls the requests took).

    ``reused_prompt_tokens`` are the prompt tokens the server did not read again (a warm slot or
    prompt cache); ``reuse_share`` is their share of ``prompt_tokens``, None when no prompt was
    sent. ``cache_hits`` are requests answered from the response cache, which send no prompt.
    """

    calls: int = 0
    cache_hits: int = 0
    errors: int = 0
    retries: int = 0
    repaired: int = 0
    prompt_tokens: int = 0
    reused_prompt_tokens: int = 0
    reuse_share: float | None = None
    completion_tokens: int = 0
    total_tokens: int = 0
    latency_s: float = 0.0


class ModelUsage(BaseModel):
    """The run's model cost, overall, per purpose and per agent per simulated hour.

    ``total`` and the per-agent-hour rates count language-model calls (text generation); the
    embedding requests, which cost no generated tokens, are counted apart in ``embeddings``.
    """

    total: RecordedCallTotals
    embeddings: RecordedCallTotals
    by_purpose: dict[str, RecordedCallTotals]
    agents: int
    hours: float
    calls_per_agent_hour: float | None
    tokens_per_agent_hour: float | None
    prompt_tokens_per_agent_hour: float | None
    completion_tokens_per_agent_hour: float | None


@dataclass
class _CallTally:
    calls: int = 0
    cache_hits: int = 0
    errors: int = 0
    retries: int = 0
    repaired: int = 0
    prompt_tokens: int = 0
    reused_prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0

    def add(self, data: Mapping[str, Any]) -> None:
        self.calls += 1
        self.cache_hits += bool(data.get("cached"))
        self.errors += data.get("error") is not None
        self.retries += int(data.get("retries") or 0)
        self.repaired += bool(data.get("repaired"))
        self.prompt_tokens += int(data.get("prompt_tokens") or 0)
        self.reused_prompt_tokens += int(data.get("reused_prompt_tokens") or 0)
        self.completion_tokens += int(data.get("completion_tokens") or 0)
        self.latency_s += float(data.get("latency_s") or 0.0)

    def totals(self) -> RecordedCallTotals:
        return RecordedCallTotals(
            calls=self.calls,
            cache_hits=self.cache_hits,
            errors=self.errors,
            retries=self.retries,
            repaired=self.repaired,
            prompt_tokens=self.prompt_tokens,
            reused_prompt_tokens=self.reused_prompt_tokens,
            reuse_share=_rounded(reuse_share(self.reused_prompt_tokens, self.prompt_tokens)),
            completion_tokens=self.completion_tokens,
            total_tokens=self.prompt_tokens + self.completion_tokens,
            latency_s=round(self.latency_s, 3),
        )


def call_totals(events: Iterable[Event]) -> RecordedCallTotals:
    """The totals of every ``llm_call`` event in ``events``, embedding requests included."""
    tally = _CallTally()
    for event in events:
        if event.kind == "llm_call":
            tally.add(event.data)
    return tally.totals()


def calls_by_purpose(events: Iterable[Event]) -> dict[str, RecordedCallTotals]:
    """The totals of the ``llm_call`` events of each purpose (sorted by name), as in
    :attr:`ModelUsage.by_purpose`.
    """
    by_purpose: dict[str, _CallTally] = defaultdict(_CallTally)
    for event in events:
        if event.kind == "llm_call":
            by_purpose[_purpose(event)].add(event.data)
    return {purpose: tally.totals() for purpose, tally in sorted(by_purpose.items())}


def _purpose(event: Event) -> str:
    return str(event.data.get("purpose") or "unknown")


def _rounded(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def reuse_text(totals: RecordedCallTotals, *, short: bool = False) -> str:
    """How much of the prompts the server reused, e.g. "4,210 of 9,800 ... (43%)"."""
    share = "n/a" if totals.reuse_share is None else f"{totals.reuse_share:.0%}"
    if short:
        return f"prompt reused: {share}"
    return (
        f"{totals.reused_prompt_tokens:,} of {totals.prompt_tokens:,} prompt tokens reused by the "
        f"server ({share})"
    )


EMBED_PURPOSE = "embed"


def model_usage(events: Iterable[Event], *, agents: int, hours: float) -> ModelUsage:
    """Sum the ``llm_call`` events; rates per agent-hour need ``agents`` and ``hours`` > 0.

    Every recorded call counts, cached ones included (``cache_hits`` says how many were free).
    """
    total = _CallTally()
    embeddings = _CallTally()
    by_purpose: dict[str, _CallTally] = defaultdict(_CallTally)
    for event in events:
        if event.kind == "llm_call":
            purpose = _purpose(event)
            (embeddings if purpose == EMBED_PURPOSE else total).add(event.data)
            by_purpose[purpose].add(event.data)
    agent_hours = agents * hours if agents > 0 and hours > 0 else None

    def rate(value: int) -> float | None:
        return None if agent_hours is None else round(value / agent_hours, 3)

    return ModelUsage(
        total=total.totals(),
        embeddings=embeddings.totals(),
        by_purpose={purpose: tally.totals() for purpose, tally in sorted(by_purpose.items())},
        agents=agents,
        hours=hours,
        calls_per_agent_hour=rate(total.calls),
        tokens_per_agent_hour=rate(total.prompt_tokens + total.completion_tokens),
        prompt_tokens_per_agent_hour=rate(total.prompt_tokens),
        completion_tokens_per_agent_hour=rate(total.completion_tokens),
    )


class HourlyBackendCost(BaseModel):
    """The backend calls and tokens the model spent in one game hour (0: the first hour)."""

    hour: int
    calls: int = 0
    tokens: int = 0


def backend_cost_by_hour(events: Iterable[Event], *, start: datetime) -> list[HourlyBackendCost]:
    """Backend calls and tokens of the language-model requests per game hour since ``start``.

    This is the cost the live meter counts (:attr:`~societas.llm.meter.RequestTotals.calls`:
    backend calls, a repair counting twice), not the recorded requests of
    :class:`RecordedCallTotals`: requests answered from the response cache cost nothing and
    embedding requests are left out. Hours without a backend call are absent.
    """
    hours: dict[int, HourlyBackendCost] = {}
    for event in events:
        data = event.data
        if event.kind != "llm_call" or data.get("cached") or data.get("purpose") == EMBED_PURPOSE:
            continue
        hour = int((event.time - start).total_seconds() // 3600)
        cost = hours.setdefault(hour, HourlyBackendCost(hour=hour))
        cost.calls += int(data.get("backend_calls", 1) or 0)
        cost.tokens += int(data["prompt_tokens"]) + int(data["completion_tokens"])
    return [hours[hour] for hour in sorted(hours)]
