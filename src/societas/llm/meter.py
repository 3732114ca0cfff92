"""Counting what language-model calls cost, per purpose tag.

Every request through :class:`~societas.llm.client.LLM` ends in exactly one :class:`CallRecord`:
answered by the backend, answered from the cache (``cached=True``), or failed (``error`` set).
:class:`Meter` adds the records up per purpose and hands each one to its listeners, so the
simulation engine can write every call into its run store as an ``llm_call`` event.

Examples
--------
>>> meter = Meter()
>>> seen = []
>>> unsubscribe = meter.subscribe(seen.append)
>>> meter.record(CallRecord(purpose="plan", model_id="m", kind="chat", prompt_tokens=120,
...                         completion_tokens=30, backend_calls=1, latency_s=2.5))
>>> meter.record(CallRecord(purpose="plan", model_id="m", kind="chat", cached=True))
>>> totals = meter.snapshot().purposes["plan"]
>>> (totals.requests, totals.calls, totals.cache_hits, totals.total_tokens)
(2, 1, 1, 150)
>>> len(seen)
2
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

CallKind = Literal["chat", "complete", "embed"]
Listener = Callable[["CallRecord"], None]

_log = logging.getLogger(__name__)


class CallRecord(BaseModel):
    """One request through the LLM layer and what it cost.

    ``backend_calls`` counts the requests the backend answered or was asked to answer: 1 for a
    plain call, 2 when a repair request followed, 0 for a cache hit (or a request that joined an
    identical one already running). Retried attempts of the same request count in ``retries``.
    ``latency_s`` is the time spent inside backend calls (queueing and backoff excluded).
    ``repaired`` says a repair request was sent; ``invalid_answers`` counts the answers that
    failed validation (each led to a repair or a fresh ask); ``error`` is set when the request
    failed anyway.

    ``prompt_tokens`` counts the prompt tokens sent to the backend and ``reused_prompt_tokens``
    those of them the server did not read again because a slot or its prompt cache already held
    that prefix (llama.cpp and OpenAI-compatible servers report it as ``cached_tokens``). That is
    server prefix reuse, distinct from ``cached``: an answer from the response cache, which sends
    nothing at all.
    """

    model_config = ConfigDict(frozen=True)

    purpose: str
    model_id: str
    kind: CallKind
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    reused_prompt_tokens: int = Field(
        default=0,
        ge=0,
        validation_alias=AliasChoices("reused_prompt_tokens", "cached_prompt_tokens"),
    )
    cached: bool = False
    latency_s: float = Field(default=0.0, ge=0.0)
    retries: int = Field(default=0, ge=0)
    repaired: bool = False
    error: str | None = None
    backend_calls: int = Field(default=0, ge=0)
    invalid_answers: int = Field(default=0, ge=0)

    def event_data(self) -> dict[str, Any]:
        """The ``data`` of the run store's ``llm_call`` event for this record."""
        return {
            "purpose": self.purpose,
            "model": self.model_id,
            "prompt_tokens": self.prompt_tokens,
            "reused_prompt_tokens": self.reused_prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached": self.cached,
            "latency_s": round(self.latency_s, 4),
            "error": self.error,
            "retries": self.retries,
            "repaired": self.repaired,
            "backend_calls": self.backend_calls,
            "invalid_answers": self.invalid_answers,
        }


class RequestTotals(BaseModel):
    """Sums over a set of call records: requests, the backend calls they took and their tokens.

    ``requests`` counts records; ``calls`` counts backend calls (see :class:`CallRecord`);
    ``wall_s`` sums the time spent in backend calls, so concurrent calls add up.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests: int = Field(default=0, ge=0)
    calls: int = Field(default=0, ge=0)
    cache_hits: int = Field(default=0, ge=0)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    # Saved meters from before the rename call it cached_prompt_tokens.
    reused_prompt_tokens: int = Field(
        default=0,
        ge=0,
        validation_alias=AliasChoices("reused_prompt_tokens", "cached_prompt_tokens"),
    )
    wall_s: float = Field(default=0.0, ge=0.0)
    errors: int = Field(default=0, ge=0)
    retries: int = Field(default=0, ge=0)
    repairs: int = Field(default=0, ge=0)
    invalid_answers: int = Field(default=0, ge=0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def reuse_share(self) -> float | None:
        """Reused prompt tokens over prompt tokens sent; None when no prompt was sent."""
        return reuse_share(self.reused_prompt_tokens, self.prompt_tokens)

    @classmethod
    def of(cls, record: CallRecord) -> RequestTotals:
        """The totals of a single record."""
        return cls(
            requests=1,
            calls=record.backend_calls,
            cache_hits=int(record.cached),
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            reused_prompt_tokens=record.reused_prompt_tokens,
            wall_s=record.latency_s,
            errors=int(record.error is not None),
            retries=record.retries,
            repairs=int(record.repaired),
            invalid_answers=record.invalid_answers,
        )

    def plus(self, other: RequestTotals) -> RequestTotals:
        """Field-wise sum of two totals."""
        return RequestTotals(
            **{
                name: getattr(self, name) + getattr(other, name)
                for name in RequestTotals.model_fields
            }
        )


def reuse_share(reused_prompt_tokens: int, prompt_tokens: int) -> float | None:
    """The share of prompt tokens the server reused (0 to 1); None when no prompt was sent.

    >>> reuse_share(60, 240), reuse_share(0, 0)
    (0.25, None)
    """
    return reused_prompt_tokens / prompt_tokens if prompt_tokens > 0 else None


class MeterSnapshot(BaseModel):
    """A frozen copy of a meter: the grand total and the totals of each purpose tag."""

    model_config = ConfigDict(frozen=True)

    total: RequestTotals = RequestTotals()
    purposes: dict[str, RequestTotals] = Field(default_factory=dict)


class Meter:
    """Adds up :class:`CallRecord` s per purpose and forwards each record to listeners.

    A listener that raises is logged and skipped: bookkeeping never breaks a model call.
    The meter's state (its totals) can be saved and restored; listeners are runtime wiring and are
    not part of the state.
    """

    def __init__(self) -> None:
        self._purposes: dict[str, RequestTotals] = {}
        self._listeners: list[Listener] = []

    def record(self, record: CallRecord) -> None:
        """Count one record and pass it to every listener."""
        current = self._purposes.get(record.purpose, RequestTotals())
        self._purposes[record.purpose] = current.plus(RequestTotals.of(record))
        for listener in list(self._listeners):
            try:
                listener(record)
            except Exception:
                _log.exception("meter listener %r failed on a %s record", listener, record.purpose)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every future record; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def snapshot(self) -> MeterSnapshot:
        """Totals per purpose (sorted by name) and overall."""
        total = RequestTotals()
        for totals in self._purposes.values():
            total = total.plus(totals)
        return MeterSnapshot(total=total, purposes=dict(sorted(self._purposes.items())))

    def to_json(self) -> str:
        """The snapshot as JSON text."""
        return self.snapshot().model_dump_json()

    def merge(self, other: Meter | MeterSnapshot) -> None:
        """Add another meter's (or snapshot's) totals into this one; listeners are not called."""
        purposes = other.snapshot().purposes if isinstance(other, Meter) else other.purposes
        for purpose, totals in purposes.items():
            self._purposes[purpose] = self._purposes.get(purpose, RequestTotals()).plus(totals)

    def reset(self) -> None:
        """Forget all totals (listeners stay subscribed)."""
        self._purposes = {}

    def get_state(self) -> dict[str, Any]:
        """The totals as JSON-serialisable data."""
        return {"purposes": {p: t.model_dump() for p, t in sorted(self._purposes.items())}}

    def set_state(self, state: dict[str, Any]) -> None:
        """Replace the totals with those of ``state`` (from :meth:`get_state`)."""
        try:
            raw = state["purposes"]
            purposes = {str(p): RequestTotals.model_validate(t) for p, t in raw.items()}
        except (KeyError, AttributeError, TypeError, ValidationError) as error:
            raise ValueError(f"invalid meter state: {error}") from error
        self._purposes = purposes

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Meter:
        """A new meter holding the totals of ``state``."""
        meter = cls()
        meter.set_state(state)
        return meter
