"""Typed interfaces of the language-model layer.

Everything above the LLM layer (cognition, surveys, evaluation) talks to :class:`LanguageModel`
only; backends (embedded llama.cpp, OpenAI-compatible servers, scripted fakes) implement
:class:`ChatBackend` and :class:`EmbeddingBackend` and are wrapped by ``societas.llm.client.LLM``,
which adds caching, metering, retries, bounded concurrency and schema validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from societas.llm.narrowing import AnswerSchema

Role = Literal["system", "user", "assistant"]
FloatMatrix = npt.NDArray[np.float32]
SchemaT = TypeVar("SchemaT", bound=BaseModel)


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str


class SamplingParams(BaseModel):
    """Explicit sampling parameters; part of every cache key.

    ``seed`` makes a backend's sampling reproducible where it supports it; the cache makes reruns
    identical everywhere.
    """

    model_config = ConfigDict(frozen=True)

    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(default=512, ge=1, le=32768)
    seed: int = 0
    stop: tuple[str, ...] = ()


class Usage(BaseModel):
    """Token counts of one model call."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Completion(BaseModel):
    """What a backend returns for one call (before any schema validation)."""

    model_config = ConfigDict(frozen=True)

    text: str
    usage: Usage = Usage()
    finish_reason: str = "stop"
    first_token_logprobs: dict[str, float] = Field(default_factory=dict)
    """Log probabilities of the most likely first tokens (the model's own distribution, before
    any grammar), when the backend was asked for them; empty otherwise."""


class LLMError(Exception):
    """Base of every error the LLM layer raises; callers catch this one type."""


class LLMUnavailableError(LLMError):
    """The backend could not answer (timeouts, connection errors, 5xx) after all retries."""


class LLMOutputError(LLMError):
    """The model's answer did not parse or validate against the schema, even after one repair.

    ``raw`` holds the last answer so callers can log it; it is never used as if valid.
    """

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class BackendTransientError(LLMError):
    """A backend failure worth retrying: timeout, connection reset, HTTP 429/5xx.

    Backends raise this; the client retries with backoff and, when retries run out, raises
    :class:`LLMUnavailableError`. ``status`` is the HTTP status when there was one (429 means
    rate-limited, not broken) and ``retry_after_s`` the server's ``Retry-After`` wait, if given.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


class LLMConfigError(LLMError):
    """A model specification or backend setting is wrong (unknown model, missing weights...)."""


@runtime_checkable
class ChatBackend(Protocol):
    """A raw text-generation engine. Implementations: embedded llama.cpp, OpenAI-compatible, fakes.

    ``model_id`` identifies the exact weights (e.g. name plus file sha256) and is part of cache
    keys. ``supports_json_schema`` says whether ``json_schema`` constrains decoding; when False,
    the client validates and repairs instead.
    """

    model_id: str
    supports_json_schema: bool

    async def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion: ...

    async def complete(self, prompt: str, params: SamplingParams) -> Completion: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class TokenProbabilityBackend(Protocol):
    """A chat backend that can report the first answer token's probabilities (llama.cpp,
    OpenAI-compatible servers with ``logprobs``): ``chat_first_token`` answers with one of
    ``choices`` (single-token labels) and fills ``Completion.first_token_logprobs`` with the
    ``top`` most likely first tokens."""

    async def chat_first_token(
        self, messages: Sequence[Message], choices: Sequence[str], params: SamplingParams, top: int
    ) -> Completion: ...


@runtime_checkable
class EmbeddingBackend(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    model_id: str
    dim: int

    async def embed(self, texts: Sequence[str], *, is_query: bool = False) -> FloatMatrix: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class LanguageModel(Protocol):
    """The facade every other part of societas uses (implemented by ``societas.llm.client.LLM``).

    ``purpose`` tags each call for the meter (plan, reflect, converse, rate, survey...).
    ``sample_index`` distinguishes deliberate repeated samples of the same prompt in the cache.
    ``affinity`` names the group the call belongs to (an agent, an experiment arm) so a server
    can answer it where the group's common prompt prefix is still warm; it never changes the
    answer (see ``societas.llm.affinity``). Without it, the key of the enclosing
    ``affinity_scope`` applies.
    """

    async def generate(
        self,
        messages: Sequence[Message],
        schema: AnswerSchema[SchemaT],
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
        affinity: str | None = None,
    ) -> SchemaT: ...

    async def chat_text(
        self,
        messages: Sequence[Message],
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
        affinity: str | None = None,
    ) -> str: ...

    async def complete(
        self,
        prompt: str,
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
        affinity: str | None = None,
    ) -> str: ...

    async def embed(
        self, texts: Sequence[str], *, is_query: bool = False, purpose: str = "embed"
    ) -> FloatMatrix: ...


@runtime_checkable
class TokenProbabilityModel(Protocol):
    """A language model that can say how likely each single-token answer is (see
    ``societas.llm.client.LLM.choice_probabilities``); answer mode ``token`` needs one."""

    async def choice_probabilities(
        self,
        messages: Sequence[Message],
        choices: Sequence[str],
        *,
        purpose: str,
        params: SamplingParams | None = None,
        sample_index: int = 0,
        top: int = 20,
    ) -> dict[str, float]: ...
