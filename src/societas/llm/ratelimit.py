"""Client-side rate limits for hosted APIs: requests and tokens per minute, and ``Retry-After``.

A :class:`RateLimiter` holds two token buckets, one counting requests (``rpm``) and one counting
tokens (``tpm``), each refilling continuously at its per-minute rate and holding at most
``burst_s`` seconds' worth. :meth:`RateLimiter.acquire` waits until both buckets can pay for the
request: one request, and the tokens estimated from the prompt before the call
(:func:`estimate_tokens`); the returned :class:`Reservation` corrects the token bucket with the
real count once the answer has come (:meth:`Reservation.settle`). :meth:`RateLimiter.pause` stops
every request until a server's ``Retry-After`` has passed.

Time comes from a :class:`Clock`, so tests run on a fake one and never sleep.

Examples
--------
>>> import asyncio
>>> clock = ManualClock()
>>> limiter = RateLimiter(rpm=60, burst_s=1.0, clock=clock)
>>> async def three() -> None:
...     for _ in range(3):
...         (await limiter.acquire()).settle(0)
>>> asyncio.run(three())
>>> clock.slept  # one request a second: the 2nd and the 3rd each waited a second
[1.0, 1.0]
>>> parse_retry_after("30")
30.0
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

from societas.llm.types import LLMConfigError, Message, SamplingParams

__all__ = [
    "Clock",
    "ManualClock",
    "MonotonicClock",
    "RateLimiter",
    "Reservation",
    "estimate_tokens",
    "parse_retry_after",
]

CHARS_PER_TOKEN = 4  # English text in BPE vocabularies; a rough, slightly generous estimate
MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators of one chat message
DEFAULT_BURST_S = 10.0


class Clock(Protocol):
    """Where a limiter reads the time (seconds, monotonic) and how it waits."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass
class ManualClock:
    """A fake clock for tests: ``sleep`` moves the time forward at once and records the wait."""

    time_s: float = 0.0
    slept: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.time_s

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.time_s += seconds
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass without anyone sleeping."""
        self.time_s += seconds


def estimate_tokens(request: Sequence[Message] | str, params: SamplingParams) -> int:
    """Tokens a request may use, before it is sent: its prompt estimated from the characters,
    plus ``max_tokens`` for the answer (hosted APIs count it the same way).

    >>> estimate_tokens("x" * 400, SamplingParams(max_tokens=50))
    150
    """
    if isinstance(request, str):
        prompt = math.ceil(len(request) / CHARS_PER_TOKEN)
    else:
        chars = sum(len(message.content) for message in request)
        prompt = math.ceil(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS * len(request)
    return prompt + params.max_tokens


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date.

    None when the header is missing or unreadable; never negative.

    >>> noon = datetime(2015, 10, 21, 12, 0, tzinfo=UTC)
    >>> parse_retry_after("Wed, 21 Oct 2015 12:00:30 GMT", noon)
    30.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


class _Bucket:
    """A token bucket refilling at ``per_minute / 60`` a second, holding up to ``capacity``.

    The level may go below zero: a request larger than the capacity, or a correction upwards,
    is paid for by waiting longer before the next one.
    """

    def __init__(self, per_minute: float, capacity: float, now: float) -> None:
        self.rate_s = per_minute / 60.0
        self.capacity = capacity
        self.level = capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate_s)
        self.updated = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` (at most a full bucket) is available."""
        self.refill(now)
        missing = min(amount, self.capacity) - self.level
        return 0.0 if missing <= 0 else missing / self.rate_s


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits of one endpoint, plus ``Retry-After``.

    ``rpm`` or ``tpm`` None means no limit of that kind (the limiter still honours
    :meth:`pause`). Waiters are served in arrival order.
    """

    def __init__(
        self,
        *,
        rpm: float | None = None,
        tpm: float | None = None,
        burst_s: float = DEFAULT_BURST_S,
        clock: Clock | None = None,
    ) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm), ("burst_s", burst_s)):
            if value is not None and not value > 0:
                raise LLMConfigError(f"{name} must be positive, got {value}")
        self.clock: Clock = clock or MonotonicClock()
        now = self.clock.now()
        # At least one whole request (and one token) fits, however low the rate.
        self._requests = (
            _Bucket(rpm, max(1.0, rpm * burst_s / 60.0), now) if rpm is not None else None
        )
        self._tokens = (
            _Bucket(tpm, max(1.0, tpm * burst_s / 60.0), now) if tpm is not None else None
        )
        self.rpm = rpm
        self.tpm = tpm
        self._paused_until = now
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def delay(self, tokens: int = 0) -> float:
        """Seconds a request of ``tokens`` would wait now (0 when it could go at once)."""
        now = self.clock.now()
        wait = self._paused_until - now
        if self._requests is not None:
            wait = max(wait, self._requests.wait_for(1, now))
        if self._tokens is not None:
            wait = max(wait, self._tokens.wait_for(tokens, now))
        return max(0.0, wait)

    async def acquire(self, tokens: int = 0) -> Reservation:
        """Wait until a request estimated at ``tokens`` may go, and pay for it."""
        async with self._serial():
            while (wait := self.delay(tokens)) > 0:
                await self.clock.sleep(wait)
            if self._requests is not None:
                self._requests.level -= 1
            if self._tokens is not None:
                self._tokens.level -= tokens
        return Reservation(self, tokens)

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` from now (a server's ``Retry-After``)."""
        self._paused_until = max(self._paused_until, self.clock.now() + max(0.0, seconds))

    def correct(self, estimated: int, actual: int) -> None:
        """Charge the token bucket the difference between a request's real and estimated use."""
        if self._tokens is not None:
            self._tokens.refill(self.clock.now())
            self._tokens.level -= actual - estimated

    def _serial(self) -> asyncio.Lock:
        # One lock per event loop: a lock that once waited is bound to its loop.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock


@dataclass
class Reservation:
    """What :meth:`RateLimiter.acquire` charged for one request; settle it with the real use."""

    limiter: RateLimiter
    estimated: int
    settled: bool = False

    def settle(self, actual_tokens: int) -> None:
        """Correct the token bucket to ``actual_tokens`` (0 when the request failed unanswered).

        Settling twice changes nothing.
        """
        if not self.settled:
            self.settled = True
            self.limiter.correct(self.estimated, actual_tokens)
