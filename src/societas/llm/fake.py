"""Scripted stand-ins for a language model, for unit tests and replayed benchmarks.

:class:`ScriptedLLM` implements :class:`~societas.llm.types.LanguageModel` directly: a responder
function maps (purpose, messages, schema) to an answer (a pydantic object, a dict, or JSON text).
:class:`HashEmbedder` gives deterministic bag-of-words embeddings, so texts sharing words are similar.

Examples
--------
>>> import asyncio
>>> from pydantic import BaseModel
>>> class Yes(BaseModel):
...     ok: bool
>>> llm = ScriptedLLM(lambda call: {"ok": True})
>>> asyncio.run(llm.generate([], Yes, purpose="test")).ok
True
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from societas.llm.types import FloatMatrix, LLMOutputError, Message, SamplingParams, SchemaT


@dataclass(frozen=True)
class ScriptedCall:
    """What a scripted responder sees for one call."""

    purpose: str
    messages: tuple[Message, ...]
    schema: type[BaseModel] | None
    params: SamplingParams | None
    sample_index: int

    @property
    def prompt_text(self) -> str:
        return "\n".join(m.content for m in self.messages)


Responder = Callable[[ScriptedCall], Any]


@dataclass
class ScriptedLLM:
    """A LanguageModel whose answers come from ``responder``; records every call in ``calls``."""

    responder: Responder
    embedder: HashEmbedder = field(default_factory=lambda: HashEmbedder())
    calls: list[ScriptedCall] = field(default_factory=list)

    async def generate(
        self,
        messages: Sequence[Message],
        schema: type[SchemaT],
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
    ) -> SchemaT:
        call = ScriptedCall(purpose, tuple(messages), schema, params, sample_index)
        self.calls.append(call)
        answer = self.responder(call)
        if isinstance(answer, schema):
            return answer
        try:
            if isinstance(answer, str):
                return schema.model_validate_json(answer)
            return schema.model_validate(answer)
        except ValueError as error:
            raise LLMOutputError(f"scripted answer invalid for {schema.__name__}", str(answer)) from error

    async def chat_text(
        self,
        messages: Sequence[Message],
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
    ) -> str:
        call = ScriptedCall(purpose, tuple(messages), None, params, sample_index)
        self.calls.append(call)
        return str(self.responder(call))

    async def complete(
        self,
        prompt: str,
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
    ) -> str:
        return await self.chat_text(
            [Message(role="user", content=prompt)],
            purpose=purpose,
            params=params,
            sample_index=sample_index,
        )

    async def embed(
        self, texts: Sequence[str], *, is_query: bool = False, purpose: str = "embed"
    ) -> FloatMatrix:
        return await self.embedder.embed(texts, is_query=is_query)

    def purposes(self) -> list[str]:
        return [c.purpose for c in self.calls]


_WORD = re.compile(r"[a-z0-9']+")


@dataclass
class HashEmbedder:
    """Deterministic hashed bag-of-words embeddings (an EmbeddingBackend with no model)."""

    dim: int = 128
    model_id: str = "hash-bow"

    async def embed(self, texts: Sequence[str], *, is_query: bool = False) -> FloatMatrix:
        return self.embed_sync(texts)

    def embed_sync(self, texts: Sequence[str]) -> FloatMatrix:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    async def aclose(self) -> None:
        return None


def json_answer(obj: Any) -> str:
    """Serialise a scripted answer as the JSON text a model would emit."""
    return json.dumps(obj)
