"""Scripted backends: deterministic stand-ins for a model server that can also fail on cue.

:class:`ScriptedBackend` is a :class:`~societas.llm.types.ChatBackend`. Each request takes the next
item of its script: a text is the answer (well-formed, malformed or schema-violating JSON, prose,
anything), a :class:`Fault` makes the request fail (transient error, hang past any timeout, or an
unexpected exception). When the script is used up, ``responder`` answers. Token counts are words,
and the prompt's common word prefix with the previous request counts as cached prompt tokens,
which imitates the prefix reuse of a real server.

:class:`ScriptedEmbedder` wraps :class:`~societas.llm.fake.HashEmbedder` the same way.

Examples
--------
>>> import asyncio
>>> from societas.llm.types import Message, SamplingParams
>>> backend = ScriptedBackend(['{"ok": true}']).fail_transient(1)
>>> asyncio.run(backend.chat([Message(role="user", content="hi")], SamplingParams()))
Traceback (most recent call last):
...
societas.llm.types.BackendTransientError: scripted transient failure
>>> asyncio.run(backend.chat([Message(role="user", content="hi")], SamplingParams())).text
'{"ok": true}'
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from societas.llm.affinity import current_affinity
from societas.llm.fake import HashEmbedder
from societas.llm.types import (
    BackendTransientError,
    Completion,
    FloatMatrix,
    Message,
    SamplingParams,
    Usage,
)

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
Responder = Callable[[BackendRequest], str]


class ScriptedBackend:
    """A chat backend answering from a script, then from ``responder``.

    ``delay_s`` makes every answer take that long (to let concurrent requests overlap);
    ``requests`` lists every request received, ``max_active`` the most that ran at once.
    """

    def __init__(
        self,
        script: Iterable[Reply] = (),
        *,
        responder: Responder | None = None,
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
