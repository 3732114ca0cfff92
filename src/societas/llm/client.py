"""The language-model facade: one object that every part of societas calls.

:class:`LLM` wraps a :class:`~societas.llm.types.ChatBackend` and an
:class:`~societas.llm.types.EmbeddingBackend` and adds, in order of a request's path:

1. default sampling parameters (per purpose, or overall) when a call gives none;
2. a persistent :class:`~societas.llm.cache.ResponseCache`: a hit returns the stored answer and
   calls no backend; identical requests running at the same time share one backend call;
3. bounded concurrency (a semaphore), a timeout on every backend call, and retries with
   exponential backoff and jitter for transient failures and timeouts;
4. structured output: the answer's JSON schema goes to the backend (constrained decoding) or,
   when the backend cannot take one, into the system message; the answer is extracted, validated
   into the pydantic model, and repaired once by asking the model to correct it;
5. a :class:`~societas.llm.meter.Meter` record of every request, tagged with its purpose.

Every failure reaches the caller as an :class:`~societas.llm.types.LLMError`:
``LLMUnavailableError`` (retries used up), ``LLMOutputError`` (no valid answer even after the
repair) or ``LLMError`` (anything unexpected). Only valid answers are cached.

Examples
--------
>>> import asyncio
>>> from pydantic import BaseModel
>>> from societas.llm.fake import HashEmbedder, ScriptedBackend
>>> from societas.llm.narrowing import AnswerSchema, json_schema_of
>>> from societas.llm.types import Message
>>> class Mood(BaseModel):
...     mood: str
>>> backend = ScriptedBackend(['{"mood": "calm"}'])
>>> llm = LLM(backend, HashEmbedder(), cache=ResponseCache(":memory:"))
>>> ask = [Message(role="user", content="How do you feel?")]
>>> asyncio.run(llm.generate(ask, Mood, purpose="mood")).mood
'calm'
>>> asyncio.run(llm.generate(ask, Mood, purpose="mood")).mood  # from the cache
'calm'
>>> backend.calls, llm.meter.snapshot().purposes["mood"].cache_hits
(1, 1)
>>> asyncio.run(llm.embed(["bread and coffee"])).shape
(1, 128)
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from pydantic import ValidationError

from societas.llm.affinity import affinity_scope
from societas.llm.cache import CachedAnswer, CacheError, CacheKind, ResponseCache, cache_key
from societas.llm.meter import CallRecord, Meter
from societas.llm.narrowing import AnswerSchema, json_schema_of
from societas.llm.structured import (
    InvalidAnswer,
    explain,
    repair_messages,
    summarise_errors,
    valid_json,
    with_schema_instructions,
)
from societas.llm.types import (
    BackendTransientError,
    ChatBackend,
    Completion,
    EmbeddingBackend,
    FloatMatrix,
    LLMConfigError,
    LLMError,
    LLMOutputError,
    LLMUnavailableError,
    Message,
    SamplingParams,
    SchemaT,
    TokenProbabilityBackend,
    Usage,
)

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass
class _Trace:
    """What one request cost on its way through the layer."""

    backend_calls: int = 0
    retries: int = 0
    backend_s: float = 0.0
    repaired: bool = False
    invalid_answers: int = 0
    from_cache: bool = False
    usage: Usage = field(default_factory=Usage)

    def add_usage(self, usage: Usage) -> None:
        self.usage = Usage(
            prompt_tokens=self.usage.prompt_tokens + usage.prompt_tokens,
            completion_tokens=self.usage.completion_tokens + usage.completion_tokens,
            cached_prompt_tokens=self.usage.cached_prompt_tokens + usage.cached_prompt_tokens,
        )


@dataclass(frozen=True)
class _Outcome(Generic[_T]):
    value: _T | None
    error: LLMError | None
    trace: _Trace


@dataclass(frozen=True)
class _Request:
    """Identity of a request for the cache, the meter and error messages."""

    key: str
    kind: CacheKind
    purpose: str
    model_id: str


class LLM:
    """Caching, metering, retrying, schema-validating facade over a chat and an embedding backend.

    Implements :class:`~societas.llm.types.LanguageModel`. Keyword options after the standard
    ones: ``default_params`` (used when a call gives no params), ``purpose_params`` (defaults per
    purpose tag, e.g. a small ``max_tokens`` for ratings), ``retry_base_s``/``retry_max_s`` (the
    wait before retry n is ``retry_base_s * 2**(n-1)``, capped at ``retry_max_s``, times a jitter
    in [0.5, 1]), ``rng`` (the jitter's seeded generator), ``embed_batch_size`` (texts per
    embedding backend call) and ``output_retries`` (how many times a structured request whose
    answer is still invalid after its repair is asked afresh; default 0: helps when answers are
    garbled on the way, not when a deterministic model repeats the same mistake).
    The cache is shared, not owned: :meth:`aclose` closes the backends but leaves the cache open.
    """

    def __init__(
        self,
        chat: ChatBackend,
        embedder: EmbeddingBackend,
        *,
        cache: ResponseCache | None = None,
        meter: Meter | None = None,
        max_concurrency: int = 4,
        timeout_s: float = 180.0,
        max_retries: int = 3,
        default_params: SamplingParams | None = None,
        purpose_params: Mapping[str, SamplingParams] | None = None,
        retry_base_s: float = 0.5,
        retry_max_s: float = 20.0,
        rng: random.Random | None = None,
        embed_batch_size: int = 64,
        output_retries: int = 0,
    ) -> None:
        _check_positive(max_concurrency=max_concurrency, timeout_s=timeout_s)
        _check_positive(embed_batch_size=embed_batch_size, retry_max_s=retry_max_s)
        if max_retries < 0 or retry_base_s < 0 or output_retries < 0:
            raise LLMConfigError(
                "max_retries, retry_base_s and output_retries must not be negative"
            )
        self.chat_backend = chat
        self.embedder = embedder
        self.cache = cache
        self.meter = meter if meter is not None else Meter()
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.output_retries = output_retries
        self.default_params = default_params or SamplingParams()
        self.purpose_params = dict(purpose_params or {})
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.embed_batch_size = embed_batch_size
        self._rng = rng if rng is not None else random.Random(0)
        self.max_concurrency = max_concurrency
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._inflight: dict[str, asyncio.Task[_Outcome[Any]]] = {}

    @property
    def model_id(self) -> str:
        """The chat backend's model id."""
        return self.chat_backend.model_id

    # -- the LanguageModel protocol --------------------------------------------------------------

    async def generate(
        self,
        messages: Sequence[Message],
        schema: AnswerSchema[SchemaT],
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
        affinity: str | None = None,
    ) -> SchemaT:
        """Ask for an answer following ``schema`` and return it validated.

        Raises :class:`LLMOutputError` (with ``raw``) when neither the answer nor its one repair
        is valid, :class:`LLMUnavailableError` when the backend keeps failing.
        """
        chosen = self._params(purpose, params)
        json_schema = json_schema_of(schema)
        request = self._request(
            "chat", purpose, self.model_id, messages, chosen, json_schema, sample_index
        )

        async def produce(trace: _Trace) -> str:
            sent = list(messages)
            return await self._structured(request, sent, schema, json_schema, chosen, trace)

        text = await self._shared(request, produce, affinity)
        try:  # every caller gets its own object
            return schema.model_validate_json(text)
        except ValidationError as error:  # only a twin schema with other validators gets here
            raise LLMOutputError(
                f"{purpose}: answer invalid: {summarise_errors(error)}", text
            ) from None

    async def chat_text(
        self,
        messages: Sequence[Message],
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
        affinity: str | None = None,
    ) -> str:
        """Free-text chat answer."""
        chosen = self._params(purpose, params)
        request = self._request(
            "chat", purpose, self.model_id, messages, chosen, None, sample_index
        )
        sent = list(messages)

        async def produce(trace: _Trace) -> str:
            return await self._text(request, lambda: self.chat_backend.chat(sent, chosen), trace)

        return await self._shared(request, produce, affinity)

    async def complete(
        self,
        prompt: str,
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
        affinity: str | None = None,
    ) -> str:
        """Raw text continuation of ``prompt``."""
        chosen = self._params(purpose, params)
        request = self._request(
            "complete", purpose, self.model_id, prompt, chosen, None, sample_index
        )

        async def produce(trace: _Trace) -> str:
            return await self._text(
                request, lambda: self.chat_backend.complete(prompt, chosen), trace
            )

        return await self._shared(request, produce, affinity)

    async def choice_probabilities(
        self,
        messages: Sequence[Message],
        choices: Sequence[str],
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
        top: int = 20,
    ) -> dict[str, float]:
        """The model's probability of answering each of ``choices`` (single-token labels such as
        option letters) as its first token, renormalised over ``choices``; cached like answers.

        Raises :class:`LLMConfigError` when the backend cannot report token probabilities and
        :class:`LLMOutputError` when no choice is among the ``top`` most likely first tokens.
        """
        backend = self.chat_backend
        if not isinstance(backend, TokenProbabilityBackend):
            raise LLMConfigError(
                f"{self.model_id} does not report token probabilities; use another answer mode"
            )
        chosen = self._params(purpose, params)
        marker = {"first_token_of": list(choices), "top": top}
        request = self._request(
            "chat", purpose, self.model_id, messages, chosen, marker, sample_index
        )
        sent = list(messages)

        async def produce(trace: _Trace) -> str:
            hit = await self._lookup(request)
            if hit is not None:
                trace.from_cache = True
                return hit.text
            completion = await self._backend_call(
                request, lambda: backend.chat_first_token(sent, choices, chosen, top), trace
            )
            text = json.dumps(completion.first_token_logprobs)
            await self._store(request, text, trace.usage, completion.finish_reason)
            return text

        return first_token_shares(json.loads(await self._shared(request, produce)), choices)

    async def embed(
        self, texts: Sequence[str], *, is_query: bool = False, purpose: str = "embed"
    ) -> FloatMatrix:
        """L2-normalised float32 rows, one per text; cached per text."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        marked = [("query:" if is_query else "doc:") + t for t in texts]
        request = self._request("embed", purpose, self.embedder.model_id, marked, None, None, 0)

        async def produce(trace: _Trace) -> FloatMatrix:
            return await self._embed_all(request, texts, is_query, trace)

        matrix = await self._shared(request, produce)
        return matrix.copy()

    async def aclose(self) -> None:
        """Stop requests in flight and close both backends (the cache stays open)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        problems: list[str] = []
        for backend in (self.chat_backend, self.embedder):
            try:
                await backend.aclose()
            except Exception as error:
                problems.append(f"{backend.model_id}: {type(error).__name__}: {error}")
        if problems:
            raise LLMError("closing backends failed: " + "; ".join(problems))

    # -- request plumbing ------------------------------------------------------------------------

    def _params(self, purpose: str, params: SamplingParams | None) -> SamplingParams:
        if params is not None:
            return params
        return self.purpose_params.get(purpose, self.default_params)

    @staticmethod
    def _request(
        kind: CacheKind,
        purpose: str,
        model_id: str,
        messages: Sequence[Message] | Sequence[str] | str,
        params: SamplingParams | None,
        json_schema: dict[str, Any] | None,
        sample_index: int,
    ) -> _Request:
        key = cache_key(
            model_id=model_id,
            kind=kind,
            messages=messages,
            params=params,
            json_schema=json_schema,
            sample_index=sample_index,
        )
        return _Request(key=key, kind=kind, purpose=purpose, model_id=model_id)

    async def _shared(
        self,
        request: _Request,
        produce: Callable[[_Trace], Awaitable[_T]],
        affinity: str | None = None,
    ) -> _T:
        """Run ``produce`` once per key at a time; identical concurrent requests join it.

        The task that does the work runs under ``affinity`` (or the caller's scope), where the
        backends look for it.
        """
        task = self._inflight.get(request.key)
        joined = task is not None
        if task is None:
            with affinity_scope(affinity):  # the task copies the context it is created in
                task = asyncio.create_task(self._settle(request, produce))
            self._inflight[request.key] = task
            task.add_done_callback(lambda done: self._forget(request.key, done))
        # Shielded: a cancelled caller must not cancel the answer other callers wait for.
        outcome: _Outcome[_T] = await asyncio.shield(task)
        if joined:  # the task itself recorded the cost of the work
            self._record(request, outcome, joined=True)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.value is not None  # an outcome holds a value or an error
        return outcome.value

    def _forget(self, key: str, done: asyncio.Task[_Outcome[Any]]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]

    async def _settle(
        self, request: _Request, produce: Callable[[_Trace], Awaitable[_T]]
    ) -> _Outcome[_T]:
        """Run ``produce`` to an outcome (never an exception) and record what it cost."""
        trace = _Trace()
        outcome: _Outcome[_T]
        try:
            outcome = _Outcome(await produce(trace), None, trace)
        except LLMError as error:
            outcome = _Outcome(None, error, trace)
        except Exception as error:
            _log.exception("unexpected failure in a %s request", request.purpose)
            wrapped = LLMError(f"{request.purpose}: unexpected {type(error).__name__}: {error}")
            wrapped.__cause__ = error
            outcome = _Outcome(None, wrapped, trace)
        self._record(request, outcome, joined=False)
        return outcome

    def _record(self, request: _Request, outcome: _Outcome[Any], joined: bool) -> None:
        trace = outcome.trace
        error = (
            None if outcome.error is None else f"{type(outcome.error).__name__}: {outcome.error}"
        )
        if joined:  # the request that did the work carries its cost
            record = CallRecord(
                purpose=request.purpose,
                model_id=request.model_id,
                kind=request.kind,
                cached=True,
                error=error,
            )
        else:
            record = CallRecord(
                purpose=request.purpose,
                model_id=request.model_id,
                kind=request.kind,
                prompt_tokens=trace.usage.prompt_tokens,
                completion_tokens=trace.usage.completion_tokens,
                reused_prompt_tokens=trace.usage.cached_prompt_tokens,
                cached=trace.from_cache,
                latency_s=trace.backend_s,
                retries=trace.retries,
                repaired=trace.repaired,
                error=error,
                backend_calls=trace.backend_calls,
                invalid_answers=trace.invalid_answers,
            )
        self.meter.record(record)

    # -- text and structured answers -------------------------------------------------------------

    async def _text(
        self, request: _Request, call: Callable[[], Awaitable[Completion]], trace: _Trace
    ) -> str:
        hit = await self._lookup(request)
        if hit is not None:
            trace.from_cache = True
            return hit.text
        completion = await self._backend_call(request, call, trace)
        await self._store(request, completion.text, trace.usage, completion.finish_reason)
        return completion.text

    async def _structured(
        self,
        request: _Request,
        messages: list[Message],
        schema: AnswerSchema[Any],
        json_schema: dict[str, Any],
        params: SamplingParams,
        trace: _Trace,
    ) -> str:
        hit = await self._lookup(request)
        if hit is not None:
            try:
                valid = valid_json(hit.text, schema, json_schema)
            except InvalidAnswer as problem:
                _log.warning("%s: stored answer no longer validates: %s", request.purpose, problem)
            else:
                trace.from_cache = True
                return valid
        valid, finish = await self._valid_answer(
            request, messages, schema, json_schema, params, trace
        )
        await self._store(request, valid, trace.usage, finish)
        return valid

    async def _valid_answer(
        self,
        request: _Request,
        messages: list[Message],
        schema: AnswerSchema[Any],
        json_schema: dict[str, Any],
        params: SamplingParams,
        trace: _Trace,
    ) -> tuple[str, str]:
        """A validated JSON answer and its finish reason, asking for one repair if needed.

        An answer still invalid after its repair is asked for afresh ``output_retries`` times.
        """
        for fresh_asks_left in range(self.output_retries, -1, -1):
            try:
                return await self._answer_or_repair(
                    request, messages, schema, json_schema, params, trace
                )
            except LLMOutputError:
                if not fresh_asks_left:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _answer_or_repair(
        self,
        request: _Request,
        messages: list[Message],
        schema: AnswerSchema[Any],
        json_schema: dict[str, Any],
        params: SamplingParams,
        trace: _Trace,
    ) -> tuple[str, str]:
        constrained = self.chat_backend.supports_json_schema
        sent = messages if constrained else with_schema_instructions(messages, json_schema)
        decode_schema = json_schema if constrained else None

        async def ask(conversation: list[Message], chosen: SamplingParams) -> Completion:
            return await self._backend_call(
                request, lambda: self.chat_backend.chat(conversation, chosen, decode_schema), trace
            )

        first = await ask(sent, params)
        try:
            return valid_json(first.text, schema, json_schema), first.finish_reason
        except InvalidAnswer as problem:
            trace.repaired = True
            trace.invalid_answers += 1
            repair = repair_messages(sent, first.text, explain(problem, first, params))
        # The fix should be the most likely correction, not a new sample.
        second = await ask(repair, params.model_copy(update={"temperature": 0.0}))
        try:
            return valid_json(second.text, schema, json_schema), second.finish_reason
        except InvalidAnswer as again:
            trace.invalid_answers += 1
            message = (
                f"{request.purpose}: answer invalid for {schema.__name__} after one repair: "
                f"{explain(again, second, params)}"
            )
            raise LLMOutputError(message, raw=second.text) from None

    # -- embeddings ------------------------------------------------------------------------------

    async def _embed_all(
        self, request: _Request, texts: list[str], is_query: bool, trace: _Trace
    ) -> FloatMatrix:
        model_id = self.embedder.model_id
        rows: list[Any] = [None] * len(texts)
        if self.cache is not None:
            try:
                rows = await self.cache.aget_embeddings(model_id, is_query, texts)
            except CacheError as error:
                _log.warning("embedding cache read failed, embedding afresh: %s", error)
        rows = [r if r is not None and r.shape == (self.embedder.dim,) else None for r in rows]
        missing = list(dict.fromkeys(t for t, r in zip(texts, rows, strict=True) if r is None))
        if not missing:
            trace.from_cache = True
        fresh: dict[str, Any] = {}
        for start in range(0, len(missing), self.embed_batch_size):
            batch = missing[start : start + self.embed_batch_size]
            vectors = await self._embed_batch(request, batch, is_query, trace)
            fresh.update(zip(batch, vectors, strict=True))
            if self.cache is not None:
                try:
                    await self.cache.aput_embeddings(model_id, is_query, batch, vectors)
                except CacheError as error:
                    _log.warning("embedding cache write failed: %s", error)
        matrix = [r if r is not None else fresh[t] for t, r in zip(texts, rows, strict=True)]
        return np.asarray(matrix, dtype=np.float32).reshape(len(texts), self.embedder.dim)

    async def _embed_batch(
        self, request: _Request, batch: list[str], is_query: bool, trace: _Trace
    ) -> FloatMatrix:
        matrix = await self._backend_call(
            request, lambda: self.embedder.embed(batch, is_query=is_query), trace
        )
        vectors = np.asarray(matrix, dtype=np.float32)
        if vectors.shape != (len(batch), self.embedder.dim):
            raise LLMError(
                f"embedder {self.embedder.model_id} returned shape {vectors.shape}, "
                f"expected {(len(batch), self.embedder.dim)}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)

    # -- backend calls ---------------------------------------------------------------------------

    async def _backend_call(
        self, request: _Request, call: Callable[[], Awaitable[_T]], trace: _Trace
    ) -> _T:
        """One backend request: bounded, timed out, retried; its usage is added to ``trace``."""
        trace.backend_calls += 1
        attempt = 0
        while True:
            server_wait: float | None = None
            try:
                result = await self._attempt(call, trace)
            except (BackendTransientError, TimeoutError) as error:
                # A rate-limited server says how long to wait (Retry-After); waiting less only
                # earns another refusal.
                server_wait = getattr(error, "retry_after_s", None)
                if attempt >= self.max_retries:
                    raise LLMUnavailableError(
                        f"{request.purpose}: {request.model_id} unavailable after "
                        f"{attempt + 1} attempts: {_describe(error, self.timeout_s)}"
                    ) from error
            except LLMError:
                raise
            except Exception as error:
                raise LLMError(
                    f"{request.purpose}: {request.model_id} failed: {type(error).__name__}: {error}"
                ) from error
            else:
                if isinstance(result, Completion):
                    trace.add_usage(result.usage)
                return result
            attempt += 1
            trace.retries += 1
            await asyncio.sleep(max(self._backoff(attempt), server_wait or 0.0))

    async def _attempt(self, call: Callable[[], Awaitable[_T]], trace: _Trace) -> _T:
        async with self._semaphore():
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await call()
            finally:
                trace.backend_s += time.perf_counter() - started

    def _semaphore(self) -> asyncio.Semaphore:
        # One per event loop: a semaphore that once waited is bound to its loop, and scripts may
        # call asyncio.run several times with the same LLM.
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.max_concurrency))
        return self._slots[1]

    def _backoff(self, attempt: int) -> float:
        delay = min(self.retry_base_s * 2.0 ** (attempt - 1), self.retry_max_s)
        return delay * self._rng.uniform(0.5, 1.0)

    # -- cache access (a failing cache degrades to no cache) ------------------------------------

    async def _lookup(self, request: _Request) -> CachedAnswer | None:
        if self.cache is None:
            return None
        try:
            return await self.cache.aget(request.key)
        except CacheError as error:
            _log.warning("%s: cache read failed, asking the model: %s", request.purpose, error)
            return None

    async def _store(self, request: _Request, text: str, usage: Usage, finish: str) -> None:
        if self.cache is None:
            return
        answer = CachedAnswer(text=text, usage=usage, finish_reason=finish)
        try:
            await self.cache.aput(
                request.key, model_id=request.model_id, kind=request.kind, answer=answer
            )
        except CacheError as error:
            _log.warning("%s: cache write failed: %s", request.purpose, error)


# -- helpers -------------------------------------------------------------------------------------


def first_token_shares(logprobs: dict[str, float], choices: Sequence[str]) -> dict[str, float]:
    """Probabilities of ``choices`` from first-token log probabilities, renormalised over them."""
    mass = dict.fromkeys(choices, 0.0)
    for token, logprob in logprobs.items():
        label = token.strip()
        if label in mass:
            mass[label] += math.exp(logprob)
    total = sum(mass.values())
    if total <= 0:
        raise LLMOutputError(
            f"no answer choice among the model's likeliest first tokens {sorted(logprobs)[:8]}",
            json.dumps(logprobs),
        )
    return {label: value / total for label, value in mass.items()}


def _describe(error: BaseException, timeout_s: float) -> str:
    if isinstance(error, TimeoutError) and not str(error):
        return f"no answer within {timeout_s:g} s"
    return f"{type(error).__name__}: {error}"


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise LLMConfigError(f"{name} must be positive, got {value}")
