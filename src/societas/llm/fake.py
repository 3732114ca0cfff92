"""The scripted stand-ins for a language model, and the ``fake:NAME`` model built on them.

Three levels, from the top:

- :class:`ScriptedLLM` implements :class:`~societas.llm.types.LanguageModel` directly: a responder
  function maps (purpose, messages, schema) to an answer (a pydantic object, a dict, or JSON
  text). Unit tests script their agents with it; :class:`SchemaFiller` answers any schema.
- :class:`ScriptedBackend` is a :class:`~societas.llm.types.ChatBackend` under the real
  :class:`~societas.llm.client.LLM` (cache, meter, retries). Each request takes the next item of
  its script: a text is the answer (well-formed, malformed or schema-violating JSON, prose,
  anything), a :class:`Fault` makes the request fail (transient error, hang past any timeout, or
  an unexpected exception). When the script is used up, ``responder`` answers. Token counts are
  words, and the prompt's common word prefix with the previous request counts as cached prompt
  tokens, which imitates the prefix reuse of a real server. :class:`ScriptedEmbedder` wraps
  :class:`HashEmbedder` (deterministic bag-of-words embeddings: texts sharing words are similar)
  the same way.
- :func:`fake_backends` makes the ``fake:NAME`` model specification: not a language model, but a
  scripted backend whose every answer only follows the request's JSON schema (filled by
  :class:`SchemaFiller`, re-seeded from the prompt, so the same request always gets the same
  answer); free-text requests get a fixed sentence. A whole town or experiment runs end to end in
  a second or two: tests use it to kill and resume runs, and benchmarks to time the engine
  without inference. ``NAME`` only labels the model (it is part of the cache key).

Examples
--------
>>> import asyncio
>>> from pydantic import BaseModel
>>> from societas.llm.types import Message, SamplingParams
>>> class Yes(BaseModel):
...     ok: bool
>>> llm = ScriptedLLM(lambda call: {"ok": True})
>>> asyncio.run(llm.generate([], Yes, purpose="test")).ok
True

>>> backend = ScriptedBackend(['{"ok": true}']).fail_transient(1)
>>> asyncio.run(backend.chat([Message(role="user", content="hi")], SamplingParams()))
Traceback (most recent call last):
...
societas.llm.types.BackendTransientError: scripted transient failure
>>> asyncio.run(backend.chat([Message(role="user", content="hi")], SamplingParams())).text
'{"ok": true}'

>>> chat, embedder = fake_backends("demo")
>>> schema = {"type": "object", "properties": {"mood": {"enum": ["calm", "glad"]}}}
>>> ask = [Message(role="user", content="How do you feel?")]
>>> first = asyncio.run(chat.chat(ask, SamplingParams(), schema)).text
>>> first == asyncio.run(chat.chat(ask, SamplingParams(), schema)).text
True
>>> chat.model_id
'fake:demo'
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import numpy as np
import numpy.typing as npt

from societas.llm.affinity import current_affinity
from societas.llm.narrowing import AnswerSchema, json_schema_of
from societas.llm.types import (
    BackendTransientError,
    Completion,
    FloatMatrix,
    LLMOutputError,
    Message,
    SamplingParams,
    SchemaT,
    Usage,
)


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


# Scripted backends: below the real client, and able to fail on cue.

FaultKind = Literal["transient", "hang", "crash"]


@dataclass(frozen=True)
class Fault:
    """A scripted failure.

    ``transient`` raises :class:`BackendTransientError` (worth retrying), ``hang`` never returns
    (until cancelled, e.g. by a timeout), ``crash`` raises a plain ``RuntimeError`` (a backend bug).
    """

    kind: FaultKind
    message: str = ""


TRANSIENT = Fault("transient")
HANG = Fault("hang")
CRASH = Fault("crash")


@dataclass(frozen=True)
class BackendRequest:
    """One request a scripted backend received."""

    kind: Literal["chat", "complete"]
    messages: tuple[Message, ...]
    prompt: str
    params: SamplingParams
    json_schema: dict[str, Any] | None
    affinity: str | None = None  # the affinity key the call was made under

    @property
    def prompt_text(self) -> str:
        """The request's text: the completion prompt, or the messages one per line."""
        if self.kind == "complete":
            return self.prompt
        return "\n".join(m.content for m in self.messages)

    @property
    def last_user(self) -> str:
        """The content of the last user message ('' when there is none)."""
        users = [m.content for m in self.messages if m.role == "user"]
        return users[-1] if users else self.prompt


Reply = str | Fault
BackendResponder = Callable[[BackendRequest], str]


class ScriptedBackend:
    """A chat backend answering from a script, then from ``responder``.

    ``delay_s`` makes every answer take that long (to let concurrent requests overlap);
    ``requests`` lists every request received, ``max_active`` the most that ran at once.
    """

    def __init__(
        self,
        script: Iterable[Reply] = (),
        *,
        responder: BackendResponder | None = None,
        model_id: str = "scripted-chat",
        supports_json_schema: bool = True,
        delay_s: float = 0.0,
    ) -> None:
        self.model_id = model_id
        self.supports_json_schema = supports_json_schema
        self.responder = responder
        self.delay_s = delay_s
        self.requests: list[BackendRequest] = []
        self.active = 0
        self.max_active = 0
        self.closed = False
        self._script: deque[Reply] = deque(script)
        self._previous_prompt: list[str] = []

    def queue(self, *replies: Reply) -> ScriptedBackend:
        """Append replies to the script; returns the backend for chaining."""
        self._script.extend(replies)
        return self

    def fail_transient(self, times: int) -> ScriptedBackend:
        """Make the next ``times`` requests raise :class:`BackendTransientError`."""
        self._script.extendleft([TRANSIENT] * times)
        return self

    def hang(self, times: int) -> ScriptedBackend:
        """Make the next ``times`` requests hang until cancelled."""
        self._script.extendleft([HANG] * times)
        return self

    @property
    def calls(self) -> int:
        """How many requests were received (failed ones included)."""
        return len(self.requests)

    @property
    def pending(self) -> int:
        """How many script items are left."""
        return len(self._script)

    async def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        request = BackendRequest(
            "chat", tuple(messages), "", params, json_schema, current_affinity()
        )
        return await self._answer(request)

    async def complete(self, prompt: str, params: SamplingParams) -> Completion:
        return await self._answer(
            BackendRequest("complete", (), prompt, params, None, current_affinity())
        )

    async def aclose(self) -> None:
        self.closed = True

    async def _answer(self, request: BackendRequest) -> Completion:
        if self.closed:
            raise RuntimeError(f"backend {self.model_id} is closed")
        self.requests.append(request)
        reply = self._script.popleft() if self._script else None
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if isinstance(reply, Fault):
                await _fail(reply)
            if reply is None:
                if self.responder is None:
                    raise RuntimeError(f"script of {self.model_id} is used up and has no responder")
                reply = self.responder(request)
            return self._completion(request, reply)
        finally:
            self.active -= 1

    def _completion(self, request: BackendRequest, reply: str) -> Completion:
        prompt_words = request.prompt_text.split()
        reused = _common_prefix(prompt_words, self._previous_prompt)
        self._previous_prompt = prompt_words
        reply_words = reply.split()
        finish = "stop"
        if len(reply_words) > request.params.max_tokens:
            reply = " ".join(reply_words[: request.params.max_tokens])
            reply_words = reply_words[: request.params.max_tokens]
            finish = "length"
        usage = Usage(
            prompt_tokens=len(prompt_words),
            completion_tokens=len(reply_words),
            cached_prompt_tokens=reused,
        )
        return Completion(text=reply, usage=usage, finish_reason=finish)


class ScriptedEmbedder:
    """An embedding backend (hashed bag of words) that can fail on cue like ScriptedBackend."""

    def __init__(
        self,
        faults: Iterable[Fault] = (),
        *,
        dim: int = 64,
        model_id: str = "scripted-embed",
        delay_s: float = 0.0,
    ) -> None:
        self.model_id = model_id
        self.dim = dim
        self.delay_s = delay_s
        self.requests: list[tuple[tuple[str, ...], bool]] = []
        self.closed = False
        self._faults: deque[Fault] = deque(faults)
        self._hasher = HashEmbedder(dim=dim, model_id=model_id)

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def embed(self, texts: Sequence[str], *, is_query: bool = False) -> FloatMatrix:
        if self.closed:
            raise RuntimeError(f"embedder {self.model_id} is closed")
        self.requests.append((tuple(texts), is_query))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self._faults:
            await _fail(self._faults.popleft())
        return self._hasher.embed_sync(texts)

    async def aclose(self) -> None:
        self.closed = True


async def _fail(fault: Fault) -> NoReturn:
    if fault.kind == "hang":
        await asyncio.Event().wait()
    if fault.kind == "transient":
        raise BackendTransientError(fault.message or "scripted transient failure")
    raise RuntimeError(fault.message or "scripted backend crash")


def _common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    count = 0
    for left, right in zip(a, b, strict=False):
        if left != right:
            break
        count += 1
    return count


# The ``fake:NAME`` model.

FAKE_PREFIX = "fake"
FREE_TEXT_ANSWER = "I am a testing model and say nothing of substance."
# Plausible clock times and a few whole plan blocks, so that simulated days have some shape.
HINTS: dict[str, object] = {
    "wake": "07:00",
    "sleep": "22:00",
    "start": ["08:30", "10:00", "12:00", "15:00"],
    "end": ["10:00", "12:00", "15:00", "22:00"],
    "time": "15:00",
    "blocks[]": 4,
    # People who meet talk (when "talk" is among the choices), so fake runs hold conversations.
    "ReactionAnswer.do": "talk",
}


class SchemaAnswers:
    """A responder for :class:`ScriptedBackend`: a schema-shaped answer, a pure function of the
    request (purpose-free: the prompt and the schema decide it)."""

    def __init__(self, hints: dict[str, object] | None = None) -> None:
        self._hints = dict(HINTS if hints is None else hints)

    def __call__(self, request: BackendRequest) -> str:
        schema = request.json_schema
        seed_text = request.prompt_text + "\n" + json.dumps(schema, sort_keys=True)
        digest = hashlib.blake2b(seed_text.encode("utf-8"), digest_size=8).digest()
        if schema is None:
            return FREE_TEXT_ANSWER
        # A fresh filler per answer: its cycling hints must not carry over between requests.
        filler = SchemaFiller(random.Random(int.from_bytes(digest, "little")), self._hints)
        return json.dumps(filler.fill(schema), ensure_ascii=False)


def fake_backends(name: str) -> tuple[ScriptedBackend, HashEmbedder]:
    """The chat and embedding backends of the ``fake:NAME`` testing model."""
    chat = ScriptedBackend(responder=SchemaAnswers(), model_id=f"{FAKE_PREFIX}:{name}")
    return chat, HashEmbedder(model_id=f"{FAKE_PREFIX}:{name}:hash-bow")
