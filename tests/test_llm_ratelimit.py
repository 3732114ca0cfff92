"""Token-bucket rate limits on an injected clock: nothing here sleeps for real."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import openai
import pytest

from societas.llm.openai_compat import mapped_openai_error
from societas.llm.ratelimit import ManualClock, RateLimiter, estimate_tokens, parse_retry_after
from societas.llm.types import BackendTransientError, LLMConfigError, Message, SamplingParams


async def acquire_many(limiter: RateLimiter, count: int, tokens: int = 0) -> None:
    for _ in range(count):
        (await limiter.acquire(tokens)).settle(tokens)


async def test_requests_per_minute_after_the_burst() -> None:
    clock = ManualClock()
    limiter = RateLimiter(rpm=120, burst_s=5.0, clock=clock)  # 2 a second, bursts of 10
    await acquire_many(limiter, 10)
    assert clock.slept == []
    await acquire_many(limiter, 3)
    assert clock.slept == [0.5, 0.5, 0.5]
    clock.advance(60)  # idle for a minute: the bucket is full again, but holds only 10
    clock.slept.clear()
    await acquire_many(limiter, 11)
    assert clock.slept == [0.5]


async def test_tokens_are_estimated_before_and_corrected_after() -> None:
    clock = ManualClock()
    limiter = RateLimiter(tpm=600, burst_s=10.0, clock=clock)  # 10 tokens a second, up to 100
    first = await limiter.acquire(100)
    assert clock.slept == [] and limiter.delay(100) == pytest.approx(10.0)
    first.settle(40)  # it used less than estimated: 60 tokens come back at once
    assert limiter.delay(60) == 0.0 and limiter.delay(100) == pytest.approx(4.0)
    second = await limiter.acquire(60)
    second.settle(160)  # it used more: the next request pays for the difference
    second.settle(0)  # settling again changes nothing
    assert limiter.delay(10) == pytest.approx(11.0)
    await limiter.acquire(10)
    assert clock.slept == [pytest.approx(11.0)]


async def test_a_request_larger_than_the_bucket_still_goes_and_is_paid_for_after() -> None:
    clock = ManualClock()
    limiter = RateLimiter(tpm=60, burst_s=10.0, clock=clock)  # 1 token a second, up to 10
    (await limiter.acquire(50)).settle(50)
    assert clock.slept == []
    await limiter.acquire(1)
    assert clock.slept == [pytest.approx(41.0)]  # from -40 back to 1


async def test_both_limits_apply_and_the_stricter_one_waits() -> None:
    clock = ManualClock()
    limiter = RateLimiter(rpm=60, tpm=60, burst_s=1.0, clock=clock)
    (await limiter.acquire(1)).settle(1)
    assert limiter.delay(1) == pytest.approx(1.0)
    (await limiter.acquire(0)).settle(5)  # five tokens more than estimated
    assert limiter.delay(1) == pytest.approx(5.0)  # 1 - (-4) tokens at 1 a second


async def test_retry_after_pauses_every_request() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)  # no limits, but a server asked for a pause
    await acquire_many(limiter, 3)
    limiter.pause(30)
    limiter.pause(5)  # a shorter pause never cuts a longer one short
    await acquire_many(limiter, 2)
    assert clock.slept == [30.0]


async def test_waiters_are_served_in_arrival_order() -> None:
    clock = ManualClock()
    limiter = RateLimiter(rpm=60, burst_s=1.0, clock=clock)
    served: list[int] = []

    async def request(number: int) -> None:
        await limiter.acquire()
        served.append(number)

    await asyncio.gather(*(request(n) for n in range(5)))
    assert served == [0, 1, 2, 3, 4]
    assert clock.now() == pytest.approx(4.0)


def test_limits_must_be_positive() -> None:
    with pytest.raises(LLMConfigError, match="rpm must be positive"):
        RateLimiter(rpm=0)
    with pytest.raises(LLMConfigError, match="tpm must be positive"):
        RateLimiter(tpm=-5)


def test_token_estimates_count_prompt_characters_and_the_answer_budget() -> None:
    params = SamplingParams(max_tokens=100)
    messages = [Message(role="system", content="a" * 40), Message(role="user", content="b" * 41)]
    assert estimate_tokens(messages, params) == 21 + 2 * 4 + 100
    assert estimate_tokens("", params) == 100


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("12", 12.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 12:01:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 11:00:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_headers(header: str | None, seconds: float | None) -> None:
    noon = datetime(2015, 10, 21, 12, 0, tzinfo=UTC)
    assert parse_retry_after(header, noon) == seconds


def test_a_429_carries_its_status_and_retry_after() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    response = httpx.Response(429, headers={"Retry-After": "20"}, request=request)
    error = openai.RateLimitError("slow down", response=response, body=None)
    mapped = mapped_openai_error(error, "http://127.0.0.1:1/v1")
    assert isinstance(mapped, BackendTransientError)
    assert (mapped.status, mapped.retry_after_s) == (429, 20.0)
