"""Scripted stand-ins for a language model, for unit tests and replayed benchmarks.

:class:`ScriptedLLM` implements :class:`~societas.llm.types.LanguageModel` directly: a responder
function maps (purpose, messages, schema) to an answer (a pydantic object, a dict, or JSON text).
:class:`HashEmbedder` gives deterministic bag-of-words embeddings: texts sharing words are
similar.

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
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from societas.llm.affinity import current_affinity
from societas.llm.narrowing import AnswerSchema, json_schema_of
from societas.llm.types import FloatMatrix, LLMOutputError, Message, SamplingParams, SchemaT


@dataclass(frozen=True)
class ScriptedCall:
    """What a scripted responder sees for one call."""

    purpose: str
    messages: tuple[Message, ...]
    schema: AnswerSchema[Any] | None
    params: SamplingParams | None
    sample_index: int
    affinity: str | None = None

    @property
    def prompt_text(self) -> str:
        return "\n".join(m.content for m in self.messages)


Responder = Callable[[ScriptedCall], Any]


@dataclass
class ScriptedLLM:
    """A LanguageModel whose answers come from ``responder``; records every call in ``calls``
    (unless ``keep_calls`` is False, for runs too long to keep them) and counts them by purpose
    in ``counts``."""

    responder: Responder
    embedder: HashEmbedder = field(default_factory=lambda: HashEmbedder())
    calls: list[ScriptedCall] = field(default_factory=list)
    keep_calls: bool = True
    counts: Counter[str] = field(default_factory=Counter)

    def _record(self, call: ScriptedCall) -> ScriptedCall:
        self.counts[call.purpose] += 1
        if self.keep_calls:
            self.calls.append(call)
        return call

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
        key = affinity if affinity is not None else current_affinity()
        call = self._record(
            ScriptedCall(purpose, tuple(messages), schema, params, sample_index, key)
        )
        answer = self.responder(call)
        try:
            if isinstance(answer, str):
                return schema.model_validate_json(answer)
            return schema.model_validate(answer)
        except ValueError as error:
            raise LLMOutputError(
                f"scripted answer invalid for {schema.__name__}", str(answer)
            ) from error

    async def chat_text(
        self,
        messages: Sequence[Message],
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
        affinity: str | None = None,
    ) -> str:
        key = affinity if affinity is not None else current_affinity()
        call = self._record(ScriptedCall(purpose, tuple(messages), None, params, sample_index, key))
        return str(self.responder(call))

    async def complete(
        self,
        prompt: str,
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
        affinity: str | None = None,
    ) -> str:
        return await self.chat_text(
            [Message(role="user", content=prompt)],
            purpose=purpose,
            params=params,
            sample_index=sample_index,
            affinity=affinity,
        )

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
        """The responder returns ``{label: probability}``; renormalised over ``choices``."""
        call = self._record(ScriptedCall(purpose, tuple(messages), None, params, sample_index))
        given = self.responder(call)
        if not isinstance(given, dict):
            raise LLMOutputError("scripted token probabilities must be a dict", str(given))
        mass = {c: max(0.0, float(given.get(c, 0.0))) for c in choices}
        total = sum(mass.values())
        if total <= 0:
            raise LLMOutputError("no scripted probability for any choice", str(given))
        return {c: v / total for c, v in mass.items()}

    async def embed(
        self, texts: Sequence[str], *, is_query: bool = False, purpose: str = "embed"
    ) -> FloatMatrix:
        return await self.embedder.embed(texts, is_query=is_query)

    def purposes(self) -> list[str]:
        return [c.purpose for c in self.calls]


_WORD = re.compile(r"[a-z0-9']+")
_MAX_REMEMBERED_WORDS = 200_000
_MAX_REMEMBERED_TEXTS = 100_000


@dataclass
class HashEmbedder:
    """Deterministic hashed bag-of-words embeddings (an EmbeddingBackend with no model)."""

    dim: int = 128
    model_id: str = "hash-bow"
    # Word -> column; a town's vocabulary is small, and hashing every word of every memory again
    # was most of a replayed run's embedding time.
    _columns: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    # Text -> its vector: a run embeds the same observations and queries over and over (a real
    # run's embedding cache does the same for a real model).
    _rows: dict[str, npt.NDArray[np.float32]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    async def embed(self, texts: Sequence[str], *, is_query: bool = False) -> FloatMatrix:
        return self.embed_sync(texts)

    def embed_sync(self, texts: Sequence[str]) -> FloatMatrix:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        rows = self._rows
        fresh: dict[str, list[int]] = {}  # text -> where it goes in ``out``
        for row, text in enumerate(texts):
            known = rows.get(text)
            if known is None:
                fresh.setdefault(text, []).append(row)
            else:
                out[row] = known
        if fresh:
            vectors = self._vectors(list(fresh))
            if len(rows) + len(fresh) > _MAX_REMEMBERED_TEXTS:
                rows.clear()
            for vector, (text, places) in zip(vectors, fresh.items(), strict=True):
                out[places] = vector
                rows[text] = vector
        return out

    def _vectors(self, texts: Sequence[str]) -> FloatMatrix:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        columns = self._columns
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                column = columns.get(word)
                if column is None:
                    if len(columns) >= _MAX_REMEMBERED_WORDS:
                        columns.clear()
                    digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                    column = columns[word] = int.from_bytes(digest, "little") % self.dim
                out[row, column] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        out /= norms
        return out

    async def aclose(self) -> None:
        return None


def json_answer(obj: Any) -> str:
    """Serialise a scripted answer as the JSON text a model would emit."""
    return json.dumps(obj)


class SchemaFiller:
    """Builds a valid answer for any JSON schema: a stand-in model with no inference.

    Strings come from ``hints`` by field name, or by ``"Model.field"`` for one model's field only
    (a value, or a list cycled through within one answer), else a short placeholder; enums take
    a hinted value when allowed, else pick with the ``rng``; numbers take a hinted number in
    their range, else its midpoint; arrays get their minimum length (at least one item, or
    ``hints["field[]"]``).
    As a :meth:`responder`, each answer is a pure function of the call (the rng is re-seeded
    from the prompt), like a model behind a response cache.

    Used as a replayed model for engine tests and scale benchmarks, where what matters is the
    engine's work, not the words.

    >>> import random
    >>> from pydantic import BaseModel
    >>> class Answer(BaseModel):
    ...     mood: str
    >>> SchemaFiller(random.Random(0), {"mood": "calm"}).fill(Answer.model_json_schema())
    {'mood': 'calm'}
    """

    def __init__(self, rng: Any, hints: dict[str, Any] | None = None) -> None:
        self.rng = rng
        self.hints = hints or {}
        self._turn: dict[str, int] = {}

    def fill(self, schema: dict[str, Any]) -> Any:
        return self._value(schema, schema, "")

    def responder(self, call: ScriptedCall) -> Any:
        """A :data:`Responder` for :class:`ScriptedLLM` that fills each call's schema."""
        digest = hashlib.blake2b(f"{call.purpose}\n{call.prompt_text}".encode(), digest_size=8)
        self.rng.seed(int.from_bytes(digest.digest(), "little"))
        self._turn.clear()
        if call.schema is None:
            return self._hint("text") or "ok"
        return self.fill(json_schema_of(call.schema))

    def _value(self, node: dict[str, Any], root: dict[str, Any], field_name: str) -> Any:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return self._value(root["$defs"][name], root, field_name)
        for combinator in ("anyOf", "oneOf", "allOf"):
            if combinator in node:
                return self._value(node[combinator][0], root, field_name)
        if "enum" in node:
            hinted = self._hint(field_name)
            return hinted if hinted in node["enum"] else self.rng.choice(node["enum"])
        if "const" in node:
            return node["const"]
        kind = node.get("type", "object")
        if kind == "object":
            props = node.get("properties", {})
            title = node.get("title", "")
            return {
                key: self._value(
                    sub, root, f"{title}.{key}" if f"{title}.{key}" in self.hints else key
                )
                for key, sub in props.items()
            }
        if kind == "array":
            count = max(1, int(node.get("minItems", 1)))
            hinted = self.hints.get(f"{field_name}[]")
            if isinstance(hinted, int):
                count = max(count, min(hinted, int(node.get("maxItems", hinted))))
            return [self._value(node.get("items", {}), root, field_name) for _ in range(count)]
        if kind in ("integer", "number"):
            low = node.get("minimum", 1)
            high = node.get("maximum", low + 8)
            hinted_number = self.hints.get(field_name)
            if isinstance(hinted_number, int | float) and low <= hinted_number <= high:
                return int(hinted_number) if kind == "integer" else float(hinted_number)
            middle = (low + high) / 2
            return int(middle) if kind == "integer" else float(middle)
        if kind == "boolean":
            return False
        text = self._hint(field_name)
        if text is None:
            text = field_name or "text"
        limit = node.get("maxLength")
        return text[:limit] if limit else text

    def _hint(self, field_name: str) -> str | None:
        hint = self.hints.get(field_name)
        if hint is None:
            return None
        if isinstance(hint, list):
            index = self._turn.get(field_name, 0)
            self._turn[field_name] = index + 1
            return str(hint[index % len(hint)])
        return str(hint)
