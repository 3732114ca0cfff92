"""Budgets: stop a run cleanly when its model tokens, model calls or wall time are used up.

A :class:`Budget` holds the limits (None: no limit). A :class:`BudgetGuard` adds up what a run
spends: what earlier invocations spent (kept in the run's metadata as :class:`Spent`), plus the
model calls of this process (it listens to the LLM's meter) and the wall time since it was made.
:meth:`Simulation.run <societas.engine.simulation.Simulation.run>` asks the guard before every
step; when a limit is reached it writes a checkpoint and raises :class:`BudgetExhausted`, so the
run stops at a step boundary and resumes from there (with a larger budget). A run on world
shards (:class:`~societas.engine.sharded_run.ShardedRun`) does the same with a guard that has no
meter: the shards' model use reaches it through :meth:`BudgetGuard.add`.

Tokens and calls count what reached a chat model: prompt plus completion tokens, and backend
calls (repairs included, retried attempts not). Cached answers and embeddings cost nothing here.

Examples
--------
>>> from societas.llm.meter import CallRecord, Meter
>>> meter = Meter()
>>> guard = BudgetGuard(Budget(max_tokens=100), meter, spent_before=Spent(tokens=60))
>>> guard.exceeded() is None
True
>>> meter.record(CallRecord(purpose="plan", model_id="m", kind="chat", prompt_tokens=30,
...                         completion_tokens=15, backend_calls=1))
>>> guard.spent().tokens
105
>>> print(guard.exceeded())
token budget used up: 105 tokens spent, the limit is 100
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from societas.llm.meter import CallRecord, Meter

Clock = Callable[[], float]


@dataclass(frozen=True)
class Budget:
    """Limits of a run over all its invocations; None means no limit."""

    max_tokens: int | None = None
    max_calls: int | None = None
    max_wall_s: float | None = None

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and value <= 0:
                raise ValueError(f"budget {item.name} must be positive (got {value})")

    @property
    def limited(self) -> bool:
        """Whether any limit is set."""
        return any(getattr(self, item.name) is not None for item in fields(self))

    def overridden(self, other: Budget) -> Budget:
        """This budget with every limit that ``other`` sets replaced by ``other``'s.

        >>> Budget(max_tokens=10, max_calls=5).overridden(Budget(max_tokens=20))
        Budget(max_tokens=20, max_calls=5, max_wall_s=None)
        """
        changes = {f.name: getattr(other, f.name) for f in fields(other)}
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_meta(self) -> dict[str, Any]:
        """The limits as JSON data for the run's metadata."""
        return asdict(self)

    @classmethod
    def from_meta(cls, data: Mapping[str, Any] | None) -> Budget:
        """The budget saved by :meth:`to_meta` (no limits when ``data`` is None)."""
        if not data:
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Spent:
    """What a run has spent: chat-model tokens and calls, and wall seconds."""

    tokens: int = 0
    calls: int = 0
    wall_s: float = 0.0

    def to_meta(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "calls": self.calls, "wall_s": round(self.wall_s, 3)}

    @classmethod
    def from_meta(cls, data: Mapping[str, Any] | None) -> Spent:
        if not data:
            return cls()
        return cls(
            tokens=int(data.get("tokens", 0)),
            calls=int(data.get("calls", 0)),
            wall_s=float(data.get("wall_s", 0.0)),
        )


def chat_cost(record: CallRecord) -> tuple[int, int]:
    """What a call costs a budget: (tokens, backend calls) of a chat model; embeddings are free."""
    if record.kind == "embed":
        return 0, 0
    return record.prompt_tokens + record.completion_tokens, record.backend_calls


class BudgetExhausted(Exception):
    """A run stopped because a limit of its budget was reached (it holds a checkpoint)."""

    def __init__(self, reason: str, spent: Spent) -> None:
        super().__init__(reason)
        self.reason = reason
        self.spent = spent


class BudgetGuard:
    """Adds up what a run spends against its :class:`Budget`.

    ``spent_before`` is what earlier invocations of the run spent; this process's chat-model
    calls come from ``meter`` (from now on) and its wall time from ``clock`` (since now).
    Call :meth:`close` to stop listening to the meter. Without a meter, calls are counted
    only through :meth:`add`.
    """

    def __init__(
        self,
        budget: Budget,
        meter: Meter | None,
        *,
        spent_before: Spent | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.budget = budget
        self._before = spent_before or Spent()
        self._clock = clock
        self._started = clock()
        self._tokens = 0
        self._calls = 0
        self._unsubscribe: Callable[[], None] | None = (
            meter.subscribe(self._count) if meter is not None else None
        )

    def _count(self, record: CallRecord) -> None:
        self.add(*chat_cost(record))

    def add(self, tokens: int, calls: int) -> None:
        """Count model use made where no meter of this process sees it (on world shards)."""
        self._tokens += tokens
        self._calls += calls

    def spent(self) -> Spent:
        """Everything spent so far, earlier invocations included."""
        return Spent(
            tokens=self._before.tokens + self._tokens,
            calls=self._before.calls + self._calls,
            wall_s=self._before.wall_s + (self._clock() - self._started),
        )

    def exceeded(self) -> str | None:
        """Why the run must stop (the first limit reached), or None while within budget."""
        spent, budget = self.spent(), self.budget
        if budget.max_tokens is not None and spent.tokens >= budget.max_tokens:
            return (
                f"token budget used up: {spent.tokens} tokens spent, "
                f"the limit is {budget.max_tokens}"
            )
        if budget.max_calls is not None and spent.calls >= budget.max_calls:
            return (
                f"model-call budget used up: {spent.calls} calls made, "
                f"the limit is {budget.max_calls}"
            )
        if budget.max_wall_s is not None and spent.wall_s >= budget.max_wall_s:
            return (
                f"time budget used up: {spent.wall_s:.1f} s of wall time spent, "
                f"the limit is {budget.max_wall_s:g} s"
            )
        return None

    def check(self) -> None:
        """Raise :class:`BudgetExhausted` if a limit is reached."""
        reason = self.exceeded()
        if reason is not None:
            raise BudgetExhausted(reason, self.spent())

    def close(self) -> None:
        """Stop counting model calls (idempotent)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
