"""One model served by several OpenAI-compatible endpoints (vLLM replicas, hosted APIs).

:class:`EndpointPool` is a :class:`~societas.llm.types.ChatBackend` that spreads calls over its
endpoints:

- each endpoint takes at most ``max_concurrency`` requests at a time, and its
  :class:`~societas.llm.ratelimit.RateLimiter` keeps it under its requests and tokens per minute;
- a call goes to the least-loaded healthy endpoint (in-flight requests over capacity; one ready
  under its rate limits first; the earlier-listed one on a tie), except that a call made under an
  affinity key (``societas.llm.affinity``: an agent, an experiment arm) goes to its key's home
  endpoint whenever that one is healthy, free and under its rate limits, so the replica that
  holds the key's prompt prefix in its cache reads it again;
- a transient failure (connection error, timeout, HTTP 5xx or 429) moves the call to another
  endpoint; a 429 also pauses its endpoint for the server's ``Retry-After``;
- ``unhealthy_after`` consecutive failures set an endpoint aside; a background probe asks it for
  its model list (``GET /v1/models``) every ``probe_interval_s`` until it answers, then it takes
  calls again. When every endpoint is set aside, calls wait up to ``recovery_wait_s`` for one to
  come back.

Answers must not depend on which replica gave them, so the pool's ``model_id`` (part of every
cache key) names the model, never a URL: ``openai:NAME``. :meth:`EndpointPool.stats` reports
calls, failures, retries elsewhere and tokens per endpoint; URLs there and in logs carry no
credentials, and keys come only from the environment.

Examples
--------
>>> from societas.llm.endpoints import endpoints_from_urls
>>> pool = EndpointPool("qwen2.5-7b", endpoints_from_urls(["http://a:8000/v1", "http://b:8000/v1"]))
>>> pool.model_id, pool.total_concurrency
('openai:qwen2.5-7b', 16)
>>> [s.url for s in pool.stats()]
['http://a:8000/v1', 'http://b:8000/v1']
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from societas.llm.affinity import AffinityRouter, current_affinity
from societas.llm.endpoints import EndpointsConfig, EndpointSpec
from societas.llm.openai_compat import JsonSchemaMode, OpenAIBackend
from societas.llm.ratelimit import Clock, MonotonicClock, RateLimiter, estimate_tokens
from societas.llm.types import (
    BackendTransientError,
    Completion,
    LLMConfigError,
    LLMError,
    Message,
    SamplingParams,
)

__all__ = ["EndpointPool", "EndpointStats"]

log = logging.getLogger(__name__)

DEFAULT_RATE_LIMIT_PAUSE_S = 1.0  # a 429 without Retry-After
MAX_RETRY_AFTER_S = 300.0  # a longer Retry-After is taken as this

_Call = Callable[[OpenAIBackend], Awaitable[Completion]]


class EndpointStats(BaseModel):
    """What one endpoint of a pool has done so far (safe to log and store: no key)."""

    model_config = ConfigDict(frozen=True)

    url: str
    healthy: bool
    in_flight: int
    max_concurrency: int
    calls: int = 0
    failures: int = 0
    rate_limited: int = 0
    retried_elsewhere: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Endpoint:
    """One endpoint's backend, limits, health and counters."""

    def __init__(
        self, index: int, spec: EndpointSpec, backend: OpenAIBackend, limiter: RateLimiter
    ) -> None:
        self.index = index
        self.spec = spec
        self.url = spec.public_url
        self.backend = backend
        self.limiter = limiter
        self.in_flight = 0
        self.healthy = True
        self.consecutive_failures = 0
        self.counts = {name: 0 for name in _COUNTERS}
        self.probe: asyncio.Task[None] | None = None

    @property
    def load(self) -> float:
        return self.in_flight / self.spec.max_concurrency

    def stats(self) -> EndpointStats:
        return EndpointStats(
            url=self.url,
            healthy=self.healthy,
            in_flight=self.in_flight,
            max_concurrency=self.spec.max_concurrency,
            **self.counts,
        )


_COUNTERS = (
    "calls",
    "failures",
    "rate_limited",
    "retried_elsewhere",
    "prompt_tokens",
    "completion_tokens",
)


class EndpointPool:
    """A :class:`~societas.llm.types.ChatBackend` for ``model`` on every endpoint of ``config``.

    ``request_timeout_s`` bounds one attempt on one endpoint (keep it below the client's
    ``timeout_s`` so a hung replica leaves time to fail over). ``max_attempts`` bounds the
    attempts of one call (default: twice the number of endpoints); each endpoint is tried at most
    once per call, except one that answered 429, which is tried again after its wait. Both
    default to the endpoints file's fields of the same names.
    ``clock`` drives the rate limits (tests pass a fake one).
    """

    def __init__(
        self,
        model: str,
        config: EndpointsConfig,
        *,
        json_schema_mode: JsonSchemaMode = "auto",
        request_timeout_s: float | None = None,
        probe_timeout_s: float = 10.0,
        recovery_wait_s: float = 30.0,
        max_attempts: int | None = None,
        model_id: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not config.endpoints:
            raise LLMConfigError("an endpoint pool needs at least one endpoint")
        self.model = model
        self.model_id = model_id or f"openai:{model}"
        self.config = config
        self.probe_timeout_s = probe_timeout_s
        self.recovery_wait_s = recovery_wait_s
        self.max_attempts = max_attempts or config.max_attempts or 2 * len(config.endpoints)
        request_timeout_s = request_timeout_s or config.request_timeout_s
        self.clock: Clock = clock or MonotonicClock()
        self._endpoints: list[_Endpoint] = []
        try:
            for index, spec in enumerate(config.endpoints):
                backend = OpenAIBackend(
                    model,
                    base_url=spec.url,
                    json_schema_mode=json_schema_mode,
                    request_timeout_s=request_timeout_s,
                    api_key_env=spec.api_key_env,
                )
                limiter = RateLimiter(rpm=spec.rpm, tpm=spec.tpm, clock=self.clock)
                self._endpoints.append(_Endpoint(index, spec, backend, limiter))
        except LLMConfigError as error:
            raise LLMConfigError(f"endpoint {spec.public_url}: {error}") from None
        self.supports_json_schema = json_schema_mode != "off"
        self.homes = AffinityRouter(len(self._endpoints))
        self._waiters: list[asyncio.Future[None]] = []

    def __repr__(self) -> str:
        urls = ", ".join(endpoint.url for endpoint in self._endpoints)
        return f"EndpointPool({self.model!r}, [{urls}])"

    @property
    def total_concurrency(self) -> int:
        """The sum of the endpoints' ``max_concurrency``: how many calls the pool runs at once."""
        return sum(endpoint.spec.max_concurrency for endpoint in self._endpoints)

    def stats(self) -> list[EndpointStats]:
        """Per-endpoint counts, in the order the endpoints were given."""
        return [endpoint.stats() for endpoint in self._endpoints]

    # -- the ChatBackend protocol ----------------------------------------------------------------

    async def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        estimate = estimate_tokens(list(messages), params)
        completion = await self._call(
            lambda backend: backend.chat(messages, params, json_schema), estimate
        )
        # A server that refused response_format makes the whole pool validate instead.
        self.supports_json_schema = all(e.backend.supports_json_schema for e in self._endpoints)
        return completion

    async def complete(self, prompt: str, params: SamplingParams) -> Completion:
        return await self._call(
            lambda backend: backend.complete(prompt, params), estimate_tokens(prompt, params)
        )

    async def aclose(self) -> None:
        probes = [e.probe for e in self._endpoints if e.probe is not None]
        for probe in probes:
            probe.cancel()
        await asyncio.gather(*probes, return_exceptions=True)
        for endpoint in self._endpoints:
            endpoint.probe = None
            await endpoint.backend.aclose()

    # -- routing ---------------------------------------------------------------------------------

    async def _call(self, call: _Call, estimate: int) -> Completion:
        """Try endpoints until one answers; the last transient error when none does."""
        failed: set[int] = set()
        previous: _Endpoint | None = None
        last_error: BackendTransientError | None = None
        for _ in range(self.max_attempts):
            endpoint = await self._claim(failed, estimate, last_error)
            if previous is not None and endpoint is not previous:
                previous.counts["retried_elsewhere"] += 1
            try:
                return await self._attempt(endpoint, call, estimate)
            except BackendTransientError as error:
                last_error = error
                if error.status != 429:
                    failed.add(endpoint.index)
                previous = endpoint
            finally:
                endpoint.in_flight -= 1
                self._wake()
        assert last_error is not None  # max_attempts >= 1, and every miss sets it
        raise last_error

    async def _attempt(self, endpoint: _Endpoint, call: _Call, estimate: int) -> Completion:
        reservation = await endpoint.limiter.acquire(estimate)
        endpoint.counts["calls"] += 1
        try:
            completion = await call(endpoint.backend)
        except BackendTransientError as error:
            reservation.settle(0)  # unanswered: only the request counts against the limits
            self._failed(endpoint, error)
            raise
        except LLMError:
            reservation.settle(0)
            endpoint.counts["failures"] += 1
            raise
        usage = completion.usage
        reservation.settle(usage.total_tokens)
        endpoint.counts["prompt_tokens"] += usage.prompt_tokens
        endpoint.counts["completion_tokens"] += usage.completion_tokens
        endpoint.consecutive_failures = 0
        return completion

    async def _claim(
        self, failed: set[int], estimate: int, last_error: BackendTransientError | None
    ) -> _Endpoint:
        """Reserve a slot on the best endpoint, waiting for a free slot or a recovery."""
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            candidates = [e for e in self._endpoints if e.index not in failed]
            if not candidates and last_error is not None:
                raise last_error
            healthy = [e for e in candidates if e.healthy]
            free = [e for e in healthy if e.in_flight < e.spec.max_concurrency]
            if free:
                best = self._home(free, estimate) or min(
                    free, key=lambda e: (e.limiter.delay(estimate) > 0, e.load, e.index)
                )
                best.in_flight += 1
                return best
            timeout: float | None = None
            if not healthy:  # every endpoint is set aside: wait a while for a probe to succeed
                deadline = deadline if deadline is not None else loop.time() + self.recovery_wait_s
                timeout = deadline - loop.time()
                if timeout <= 0:
                    raise last_error or BackendTransientError(
                        f"no healthy endpoint for {self.model}: all {len(self._endpoints)} are "
                        "failing health probes"
                    )
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter, timeout)
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _home(self, free: list[_Endpoint], estimate: int) -> _Endpoint | None:
        """The call's affinity home among ``free`` when it can take the call now, else None."""
        key = current_affinity()
        if key is None:
            return None
        home = self.homes.place_of(key)
        for endpoint in free:
            if endpoint.index == home and endpoint.limiter.delay(estimate) <= 0:
                return endpoint
        return None

    def _wake(self) -> None:
        """Let every waiting call look again (a slot was freed or an endpoint recovered)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- health ----------------------------------------------------------------------------------

    def _failed(self, endpoint: _Endpoint, error: BackendTransientError) -> None:
        endpoint.counts["failures"] += 1
        if error.status == 429:  # rate-limited, not broken
            endpoint.counts["rate_limited"] += 1
            wait = error.retry_after_s
            wait = DEFAULT_RATE_LIMIT_PAUSE_S if wait is None else min(wait, MAX_RETRY_AFTER_S)
            endpoint.limiter.pause(wait)
            return
        endpoint.consecutive_failures += 1
        if endpoint.healthy and endpoint.consecutive_failures >= self.config.unhealthy_after:
            endpoint.healthy = False
            log.warning(
                "%s set aside after %d consecutive failures (last: %s); probing it every %g s",
                endpoint.url,
                endpoint.consecutive_failures,
                error,
                self.config.probe_interval_s,
            )
            endpoint.probe = asyncio.get_running_loop().create_task(self._probe(endpoint))
            self._wake()

    async def _probe(self, endpoint: _Endpoint) -> None:
        while not endpoint.healthy:
            await asyncio.sleep(self.config.probe_interval_s)
            try:
                await endpoint.backend.ping(self.probe_timeout_s)
            except Exception as error:  # whatever went wrong, the endpoint is not back yet
                log.debug("%s still failing its health probe: %s", endpoint.url, error)
                continue
            endpoint.healthy = True
            endpoint.consecutive_failures = 0
            log.info("%s answers its health probe again; it takes calls again", endpoint.url)
            self._wake()
        endpoint.probe = None


def endpoint_stats(llm: object) -> list[dict[str, Any]] | None:
    """Per-endpoint counts of the pool behind ``llm`` (an :class:`~societas.llm.client.LLM`), as
    JSON-ready dicts; None when its chat backend is not a pool."""
    backend = getattr(llm, "chat_backend", None)
    if not isinstance(backend, EndpointPool):
        return None
    return [stats.model_dump(mode="json") for stats in backend.stats()]
