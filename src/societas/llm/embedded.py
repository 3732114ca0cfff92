"""llama.cpp running inside this process (through ``xllamacpp``) as a :class:`ChatBackend`.

The server runs continuous batching over ``parallel`` slots with prompt-prefix caching, so calls
sharing a stable prefix (persona, instructions) skip re-reading it. Requests go straight to the
server's Python API (no HTTP hop); its HTTP endpoint still listens on a random 127.0.0.1 port,
protected by a random API key, for tools that want to connect (:attr:`http_base_url`,
:attr:`api_key`).

Structured output is constrained by a llguidance grammar built from the answer's JSON schema:
objects get ``additionalProperties: false`` unless they say otherwise (so the model cannot ramble
extra keys) and JSON is emitted compactly (``", "``/``": "`` separators, no newlines), which
saves a third or more of the answer's tokens on small models.

With ``slot_affinity`` the backend hands out the slots itself (``id_slot``, see
``societas.llm.slots``): a call made under an affinity key (``societas.llm.affinity``: an agent,
an experiment arm) takes the idle slot that last answered that key, where its persona and
instructions still are, else the least recently used idle slot. Without it (the default) llama.cpp
chooses: the idle slot whose cached prompt is most similar, with its prompt cache in RAM.

Each request is streamed inside a worker thread; when the caller is cancelled or times out, the
stream is stopped at the next token, freeing the slot at once.

Examples
--------
>>> import asyncio
>>> from societas.llm.catalog import get_entry
>>> from societas.llm.types import Message, SamplingParams
>>> async def demo() -> str:
...     backend = EmbeddedBackend.for_entry(get_entry("smollm2-135m"))
...     try:
...         answer = await backend.chat(
...             [Message(role="user", content="Pick a colour.")],
...             SamplingParams(max_tokens=20),
...             json_schema={"type": "object", "properties": {"c": {"enum": ["red", "blue"]}}},
...         )
...     finally:
...         await backend.aclose()
...     return answer.text
>>> asyncio.run(demo())  # doctest: +SKIP
'{"c": "blue"}'
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import xllamacpp

from societas.llm.affinity import current_affinity
from societas.llm.catalog import ModelEntry
from societas.llm.slots import SlotScheduler
from societas.llm.types import (
    BackendTransientError,
    Completion,
    LLMConfigError,
    LLMError,
    Message,
    SamplingParams,
    Usage,
)
from societas.llm.weights import ensure_weights, external_gguf_sha256

RequestKind = Literal["chat", "completion"]

_COMPACT_JSON = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
# Keys of a JSON schema whose values are schemas, lists of schemas, or maps of name -> schema.
_SCHEMA_KEYS = ("items", "additionalProperties", "not", "contains")
_SCHEMA_LIST_KEYS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMA_MAP_KEYS = ("properties", "$defs", "definitions", "patternProperties")


THREADS_VARIABLE = "SOCIETAS_LLM_THREADS"


def machine_threads() -> int:
    """CPU cores this process may run on (respects affinity masks and container limits)."""
    return len(os.sched_getaffinity(0))


def default_threads() -> int:
    """Threads for llama.cpp: ``$SOCIETAS_LLM_THREADS`` if set, else every core.

    Measured with Qwen2.5-Coder-1.5B on a quiet 2-core machine: 2 threads read prompts at 81
    tokens/s and write at 12.8 tokens/s, against 34 and 6.8 with one thread. llama.cpp's threads
    wait for each other after every step, though, so when other busy programs share the cores
    one descheduled thread stalls the rest (0.3 tokens/s with 2 threads on 2 loaded cores): set
    ``SOCIETAS_LLM_THREADS`` below the core count on a shared machine.
    """
    raw = os.environ.get(THREADS_VARIABLE, "").strip()
    if not raw:
        return machine_threads()
    try:
        threads = int(raw)
    except ValueError:
        raise LLMConfigError(f"{THREADS_VARIABLE} must be a whole number, not {raw!r}") from None
    if threads < 1:
        raise LLMConfigError(f"{THREADS_VARIABLE} must be at least 1, got {threads}")
    return threads


class EmbeddedBackend:
    """A :class:`~societas.llm.types.ChatBackend` on an in-process llama.cpp server.

    ``weights`` returns the GGUF path; it runs (in a worker thread) when the server starts, so
    assembling and verifying weights happens on first use, not at construction. ``ctx_per_slot``
    is the context (prompt plus answer) of each of the ``parallel`` slots. ``threads`` defaults
    to :func:`default_threads`. The chat template comes from the GGUF metadata.
    ``slot_affinity`` hands out slots by affinity key (:attr:`slots`); off by default.
    """

    supports_json_schema: bool = True

    def __init__(
        self,
        weights: Callable[[], Path],
        *,
        model_id: str,
        parallel: int = 4,
        ctx_per_slot: int = 4096,
        threads: int | None = None,
        cache_ram_mib: int = 1024,
        request_timeout_s: float = 600.0,
        slot_affinity: bool = False,
    ) -> None:
        if parallel < 1 or ctx_per_slot < 256:
            raise LLMConfigError(
                f"embedded server needs parallel >= 1 and ctx_per_slot >= 256 "
                f"(got parallel={parallel}, ctx_per_slot={ctx_per_slot})"
            )
        self.model_id = model_id
        self.parallel = parallel
        self.ctx_per_slot = ctx_per_slot
        self.threads = threads or default_threads()
        self.cache_ram_mib = cache_ram_mib
        self.request_timeout_s = request_timeout_s
        self.slot_affinity = slot_affinity
        self.slots = SlotScheduler(parallel)
        self._weights = weights
        self._api_key = secrets.token_urlsafe(32)
        self._server: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._start_lock = threading.Lock()
        self._active: set[threading.Event] = set()

    @classmethod
    def for_entry(
        cls, entry: ModelEntry, *, parallel: int | None = None, ctx_per_slot: int | None = None
    ) -> EmbeddedBackend:
        """A backend for a catalog model, with the catalog's recommended slots and context."""
        return cls(
            lambda: ensure_weights(entry),
            model_id=entry.model_id,
            parallel=parallel or entry.parallel,
            ctx_per_slot=ctx_per_slot or entry.ctx_per_slot,
        )

    @classmethod
    def for_gguf(
        cls, path: Path, *, parallel: int = 4, ctx_per_slot: int = 4096
    ) -> EmbeddedBackend:
        """A backend for any local GGUF file; hashes it (once) so its ``model_id`` is exact."""
        sha = external_gguf_sha256(path)
        return cls(
            lambda: path,
            model_id=f"gguf:{path.stem}@{sha[:16]}",
            parallel=parallel,
            ctx_per_slot=ctx_per_slot,
        )

    def __repr__(self) -> str:
        state = "running" if self._server is not None else "stopped"
        return f"EmbeddedBackend({self.model_id!r}, parallel={self.parallel}, {state})"

    @property
    def api_key(self) -> str:
        """The random key the HTTP endpoint requires (``Authorization: Bearer <key>``)."""
        return self._api_key

    @property
    def http_base_url(self) -> str:
        """The server's loopback address, e.g. ``http://127.0.0.1:41234`` (after start)."""
        if self._server is None:
            raise LLMError("the embedded server is not running; call start() first")
        return str(self._server.listening_address)

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Load the model and start the server; calling it again (or concurrently) is harmless."""
        if self._server is None:
            await asyncio.to_thread(self._start_sync)

    async def aclose(self) -> None:
        """Stop the server and free the model; a later call starts it again."""
        # The lock may be held by a model still loading, so it is taken off the event loop.
        server, executor = await asyncio.to_thread(self._detach)
        if executor is not None:
            executor.shutdown(wait=False)
        if server is not None:
            # Dropping the last reference stops the HTTP listener and frees the model; it may
            # block until stopped streams return, so it happens in a worker thread.
            holder = [server]
            del server
            await asyncio.to_thread(holder.clear)

    async def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            **_sampling_fields(params, constrained=json_schema is not None),
        }
        if json_schema is not None:
            body["grammar"] = json_grammar(json_schema)
        return await self._request("chat", body)

    async def complete(self, prompt: str, params: SamplingParams) -> Completion:
        body = {"prompt": prompt, **_sampling_fields(params, constrained=False)}
        return await self._request("completion", body)

    async def chat_first_token(
        self, messages: Sequence[Message], choices: Sequence[str], params: SamplingParams, top: int
    ) -> Completion:
        """One token, one of ``choices``, with the ``top`` first-token log probabilities (the
        server reports them before the grammar narrows the choice)."""
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            **_sampling_fields(params.model_copy(update={"max_tokens": 1}), constrained=True),
            "logprobs": True,
            "top_logprobs": top,
            "grammar": "root ::= " + " | ".join(json.dumps(c) for c in choices),
        }
        return await self._request("chat", body)

    # --- internals --------------------------------------------------------------------------

    def _start_sync(self) -> None:
        with self._start_lock:
            if self._server is not None:
                return
            path = self._weights()
            try:
                self._server = xllamacpp.Server(self._server_params(path))
            except Exception as error:
                raise LLMConfigError(f"llama.cpp could not load {path}: {error}") from error
            self._executor = ThreadPoolExecutor(
                max_workers=2 * self.parallel, thread_name_prefix="llama-request"
            )

    def _detach(self) -> tuple[Any, ThreadPoolExecutor | None]:
        """Take the server and executor out of service and stop requests in flight."""
        with self._start_lock:
            server, self._server = self._server, None
            executor, self._executor = self._executor, None
            for stop in list(self._active):
                stop.set()
        return server, executor

    def _server_params(self, path: Path) -> Any:
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_parallel = self.parallel
        params.n_ctx = self.ctx_per_slot * self.parallel
        params.cont_batching = True
        params.cache_prompt = True
        params.cache_ram_mib = self.cache_ram_mib
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        # Sleep rather than spin while waiting for work: spinning threads steal the cores that the
        # embedder, the simulation and a stalled sibling thread need.
        params.cpuparams.poll = 0
        params.cpuparams_batch.poll = 0
        # Loopback only, a random port, a random key; no browser UI, slot dumps or CORS from
        # other origins.
        params.hostnames = ["127.0.0.1"]
        params.port = 0
        params.api_keys = [self._api_key]
        params.cors_origins = "http://127.0.0.1"
        params.cors_credentials = False
        params.ui = False
        params.endpoint_slots = False
        params.endpoint_metrics = False
        params.endpoint_props = False
        params.n_threads_http = 2
        params.offline = True
        params.verbosity = 0
        return params

    async def _request(self, kind: RequestKind, body: dict[str, Any]) -> Completion:
        if not self.slot_affinity:
            return await self._request_on(kind, body)
        key = current_affinity()
        slot = await self.slots.acquire(key)
        try:
            return await self._request_on(kind, {**body, "id_slot": slot})
        finally:
            self.slots.release(slot, key)

    async def _request_on(self, kind: RequestKind, body: dict[str, Any]) -> Completion:
        await self.start()
        executor = self._executor
        if executor is None:
            raise BackendTransientError("the embedded server was closed during the request")
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(executor, self._stream, kind, body, stop)
        try:
            outcome = await asyncio.wait_for(future, self.request_timeout_s)
        except TimeoutError:
            stop.set()
            raise BackendTransientError(
                f"embedded model gave no answer within {self.request_timeout_s:.0f} s"
            ) from None
        except asyncio.CancelledError:
            stop.set()
            raise
        return outcome.completion()

    def _stream(self, kind: RequestKind, body: dict[str, Any], stop: threading.Event) -> _Outcome:
        server = self._server
        if server is None:
            raise BackendTransientError("the embedded server is not running")
        outcome = _Outcome(kind)
        self._active.add(stop)
        try:
            handler = (
                server.handle_chat_completions if kind == "chat" else server.handle_completions
            )
            handler(body, lambda chunk: outcome.absorb(chunk) or stop.is_set())
        except (ValueError, TypeError, KeyError) as error:
            raise LLMError(f"llama.cpp rejected the request: {error}") from error
        except Exception as error:
            raise BackendTransientError(f"llama.cpp failed: {error}") from error
        finally:
            self._active.discard(stop)
        if stop.is_set() and outcome.finish_reason is None:
            raise BackendTransientError("the request was stopped before it finished")
        return outcome


@dataclass
class _Outcome:
    """Accumulates one streamed answer."""

    kind: RequestKind
    pieces: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    first_token: dict[str, float] = field(default_factory=dict)

    def absorb(self, chunk: Any) -> bool:
        """Take one streamed chunk; True asks the server to stop (after an error)."""
        if not isinstance(chunk, dict):
            return False
        if "error" in chunk:
            self.error = chunk["error"] if isinstance(chunk["error"], dict) else {}
            return True
        for choice in chunk.get("choices") or ():
            if self.kind == "chat":
                piece = (choice.get("delta") or {}).get("content")
            else:
                piece = choice.get("text")
            if piece:
                self.pieces.append(piece)
            self.take_logprobs(choice.get("logprobs"))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        return False

    def take_logprobs(self, logprobs: Any) -> None:
        """Keep the first generated token's top alternatives (asked for by chat_first_token)."""
        if self.first_token or not isinstance(logprobs, dict):
            return
        for entry in logprobs.get("content") or ():
            for option in entry.get("top_logprobs") or ():
                self.first_token[str(option.get("token"))] = float(option.get("logprob"))
            break

    def completion(self) -> Completion:
        if self.error is not None:
            raise _mapped_error(self.error)
        details = self.usage.get("prompt_tokens_details") or {}
        usage = Usage(
            prompt_tokens=int(self.usage.get("prompt_tokens", 0)),
            completion_tokens=int(self.usage.get("completion_tokens", 0)),
            cached_prompt_tokens=int(details.get("cached_tokens", 0)),
        )
        return Completion(
            text="".join(self.pieces),
            usage=usage,
            finish_reason=self.finish_reason or "stop",
            first_token_logprobs=self.first_token,
        )


def _mapped_error(error: dict[str, Any]) -> LLMError:
    code = int(error.get("code") or 500)
    message = f"llama.cpp error {code} ({error.get('type', 'unknown')}): {error.get('message', '')}"
    if code >= 500 or code == 429:
        return BackendTransientError(message)
    return LLMError(message)


def _sampling_fields(params: SamplingParams, *, constrained: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
        "seed": params.seed,
        "cache_prompt": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    # The grammar decides where a structured answer ends; a stop string could cut it mid-JSON.
    if params.stop and not constrained:
        fields["stop"] = list(params.stop)
    return fields


def json_grammar(schema: dict[str, Any]) -> str:
    """A llguidance grammar accepting compact JSON that follows ``schema``.

    >>> json_grammar({"type": "object", "properties": {"a": {"type": "integer"}}})[:30]
    '%llguidance {}\\nstart: %json {"'
    """
    closed = closed_schema(schema)
    closed["x-guidance"] = dict(_COMPACT_JSON)
    return "%llguidance {}\nstart: %json " + json.dumps(closed)


def closed_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` where objects that list properties allow no other keys.

    JSON Schema allows unlisted keys by default and a grammar follows the letter of it; closing
    objects keeps a model from spending tokens on keys the answer model would drop anyway.
    """
    copy: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_KEYS and isinstance(value, dict):
            copy[key] = closed_schema(value)
        elif key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            copy[key] = [closed_schema(v) if isinstance(v, dict) else v for v in value]
        elif key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            copy[key] = {
                k: closed_schema(v) if isinstance(v, dict) else v for k, v in value.items()
            }
        else:
            copy[key] = value
    if "properties" in copy and "additionalProperties" not in copy:
        copy["additionalProperties"] = False
    return copy
