"""The ``fake:NAME`` model: a testing stand-in that answers instantly and deterministically.

It is not a language model. Each answer only follows the request's JSON schema (filled by
:class:`~societas.llm.fake.SchemaFiller`, re-seeded from the prompt, so the same request always
gets the same answer), free-text requests get a fixed sentence, and embeddings are hashed bags
of words. It goes through the real :class:`~societas.llm.client.LLM` (cache, meter, retries), so
a whole town or experiment runs end to end in a second or two: tests use it to kill and resume
runs, and benchmarks to time the engine without inference. ``NAME`` only labels the model
(it is part of the cache key).

Examples
--------
>>> import asyncio
>>> from societas.llm.types import Message, SamplingParams
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

import hashlib
import json
import random

from societas.llm.fake import HashEmbedder, SchemaFiller
from societas.llm.fake_backend import BackendRequest, ScriptedBackend

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
