"""Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, hosted APIs) as a ChatBackend.

The API key comes only from the environment (``SOCIETAS_API_KEY``, else ``OPENAI_API_KEY``; keyless
local servers get a placeholder) and never appears in a repr, a log line or an error message.
The openai client's own retries are off: ``societas.llm.client.LLM`` retries
:class:`BackendTransientError` with backoff.

Structured output: with ``json_schema_mode="auto"`` (default) the answer's schema is sent as
``response_format={"type": "json_schema", ...}``; if the server rejects that (HTTP 400/422 about
the response format), the backend sends plain requests for the rest of the session and sets
``supports_json_schema = False`` so the client validates and repairs answers instead. ``"on"``
turns such a rejection into an error; ``"off"`` never sends a schema.

Examples
--------
>>> backend = OpenAIBackend("qwen2.5-7b-instruct", base_url="http://127.0.0.1:8000/v1")
>>> backend.model_id
'openai:http://127.0.0.1:8000/v1:qwen2.5-7b-instruct'
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import openai

from societas.llm.ratelimit import parse_retry_after
from societas.llm.structured import with_schema_instructions
from societas.llm.types import (
    BackendTransientError,
    Completion,
    LLMConfigError,
    LLMError,
    Message,
    SamplingParams,
    Usage,
)

log = logging.getLogger(__name__)

API_KEY_VARIABLES = ("SOCIETAS_API_KEY", "OPENAI_API_KEY")
KEYLESS_PLACEHOLDER = "keyless-local-server"
JsonSchemaMode = Literal["auto", "on", "off"]

_FORMAT_WORDS = ("response_format", "response format", "json_schema", "json schema", "structured")


def api_key_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The API key from ``SOCIETAS_API_KEY``, else ``OPENAI_API_KEY``, else None."""
    source = os.environ if env is None else env
    for name in API_KEY_VARIABLES:
        value = source.get(name, "").strip()
        if value:
            return value
    return None


def api_key_from_variable(name: str, env: Mapping[str, str] | None = None) -> str:
    """The key in environment variable ``name``; unset or empty is an :class:`LLMConfigError`."""
    value = (os.environ if env is None else env).get(name, "").strip()
    if not value:
        raise LLMConfigError(f"environment variable {name} (the API key) is not set")
    return value


def openai_client(
    base_url: str | None, timeout_s: float, api_key: str | None = None
) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client with ``api_key``, else the environment's key (or a placeholder), and
    no retries."""
    return openai.AsyncOpenAI(
        api_key=api_key or api_key_from_env() or KEYLESS_PLACEHOLDER,
        base_url=base_url,
        max_retries=0,
        timeout=timeout_s,
    )


def mapped_openai_error(
    error: openai.OpenAIError, base_url: str, secret: str | None = None
) -> LLMError:
    """Our error for an openai exception: transient (retry) or final, never quoting the key
    (the environment's, or ``secret``)."""
    if isinstance(error, openai.APITimeoutError):
        return BackendTransientError(f"{base_url} did not answer in time")
    if isinstance(error, openai.APIConnectionError):
        reason = _scrubbed(str(error.__cause__ or error), secret)
        return BackendTransientError(f"cannot reach {base_url}: {reason}")
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        if status in (401, 403):
            # Servers echo (parts of) a rejected key in their message; report none of it.
            return LLMConfigError(
                f"{base_url} refused the API key (HTTP {status}); set SOCIETAS_API_KEY or "
                "OPENAI_API_KEY"
            )
        message = f"{base_url} answered HTTP {status}: {_scrubbed(error.message, secret)}"
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(error.response.headers.get("retry-after"))
            return BackendTransientError(message, status=status, retry_after_s=retry_after)
        return LLMError(message)
    return LLMError(f"request to {base_url} failed: {_scrubbed(str(error), secret)}")


def _scrubbed(text: str, secret: str | None = None) -> str:
    for key in (api_key_from_env(), secret):
        if key:
            text = text.replace(key, "***")
    return text


class OpenAIBackend:
    """A :class:`~societas.llm.types.ChatBackend` for ``model`` on an OpenAI-compatible server.

    ``base_url`` None means the openai client's default (api.openai.com). ``api_key_env`` names
    the environment variable holding this server's key (default: ``SOCIETAS_API_KEY``, else
    ``OPENAI_API_KEY``).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        json_schema_mode: JsonSchemaMode = "auto",
        request_timeout_s: float = 180.0,
        api_key_env: str | None = None,
    ) -> None:
        if json_schema_mode not in ("auto", "on", "off"):
            raise LLMConfigError(
                f"json_schema_mode must be 'auto', 'on' or 'off', not {json_schema_mode!r}"
            )
        self.model = model
        self.request_timeout_s = request_timeout_s
        self._secret = api_key_from_variable(api_key_env) if api_key_env else None
        self._client = openai_client(base_url, request_timeout_s, self._secret)
        self.base_url = str(self._client.base_url).rstrip("/")
        self.model_id = f"openai:{self.base_url}:{model}"
        self.json_schema_mode: JsonSchemaMode = json_schema_mode
        self.supports_json_schema = json_schema_mode != "off"

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.model!r}, base_url={self.base_url!r})"

    async def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            **_sampling_fields(params, constrained=json_schema is not None),
        }
        if json_schema is not None and self.supports_json_schema:
            try:
                return await self._chat(
                    {**request, "response_format": response_format(json_schema)}
                )
            except _FormatRejectedError as rejected:
                if self.json_schema_mode == "on":
                    raise LLMConfigError(
                        f"{self.base_url} does not accept JSON-schema response formats "
                        f"({rejected}); use json_schema_mode='auto' to validate answers instead"
                    ) from None
                log.warning(
                    "%s rejected response_format json_schema (%s); answers are validated "
                    "and repaired instead for the rest of this session",
                    self.base_url,
                    rejected,
                )
                self.supports_json_schema = False
                # Later calls get the schema in their prompt from the client; this one needs it too.
                request["messages"] = [
                    {"role": m.role, "content": m.content}
                    for m in with_schema_instructions(messages, json_schema)
                ]
        return await self._chat(request)

    async def chat_first_token(
        self, messages: Sequence[Message], choices: Sequence[str], params: SamplingParams, top: int
    ) -> Completion:
        """One token with the ``top`` most likely first tokens (``logprobs``/``top_logprobs``;
        OpenAI allows at most 20). The server is not constrained to ``choices``; the caller
        renormalises over them."""
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            **_sampling_fields(params.model_copy(update={"max_tokens": 1}), constrained=True),
            "logprobs": True,
            "top_logprobs": min(top, 20),
        }
        return await self._chat(request)

    async def complete(self, prompt: str, params: SamplingParams) -> Completion:
        request = {
            "model": self.model,
            "prompt": prompt,
            **_sampling_fields(params, constrained=False),
        }
        try:
            response = await self._client.completions.create(**request)
        except openai.OpenAIError as error:
            raise mapped_openai_error(error, self.base_url, self._secret) from None
        except ValueError as error:  # a garbled body: the openai client lets JSON errors out
            raise BackendTransientError(f"{self.base_url} sent bad JSON: {error}") from None
        if not response.choices:
            raise LLMError(f"{self.base_url} returned no completion choices")
        choice = response.choices[0]
        self._last_logprobs = first_token_logprobs(choice)
        return Completion(
            text=choice.text or "",
            usage=_usage(response.usage),
            finish_reason=choice.finish_reason or "stop",
        )

    async def ping(self, timeout_s: float = 10.0) -> None:
        """Ask the server for its model list (``GET /models``); raises an :class:`LLMError` if it
        does not answer with success within ``timeout_s``."""
        try:
            await self._client.models.list(timeout=timeout_s)
        except openai.OpenAIError as error:
            raise mapped_openai_error(error, self.base_url, self._secret) from None

    async def aclose(self) -> None:
        await self._client.close()

    async def _chat(self, request: dict[str, Any]) -> Completion:
        try:
            response = await self._client.chat.completions.create(**request)
        except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
            if "response_format" in request and _is_format_rejection(error):
                raise _FormatRejectedError(_scrubbed(error.message, self._secret)) from None
            raise mapped_openai_error(error, self.base_url, self._secret) from None
        except openai.OpenAIError as error:
            raise mapped_openai_error(error, self.base_url, self._secret) from None
        except ValueError as error:  # a garbled body: the openai client lets JSON errors out
            raise BackendTransientError(f"{self.base_url} sent bad JSON: {error}") from None
        if not response.choices:
            raise LLMError(f"{self.base_url} returned no chat choices")
        choice = response.choices[0]
        return Completion(
            text=choice.message.content or "",
            usage=_usage(response.usage),
            finish_reason=choice.finish_reason or "stop",
            first_token_logprobs=first_token_logprobs(choice),
        )


def first_token_logprobs(choice: Any) -> dict[str, float]:
    """The first generated token's top alternatives, when the server sent ``logprobs``."""
    content = getattr(getattr(choice, "logprobs", None), "content", None) or []
    if not content:
        return {}
    return {str(t.token): float(t.logprob) for t in (content[0].top_logprobs or [])}


class _FormatRejectedError(Exception):
    """The server refused the ``response_format`` field."""


def response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI ``response_format`` object carrying ``schema``.

    >>> response_format({"title": "Day plan", "type": "object"})["json_schema"]["name"]
    'Day_plan'
    """
    title = str(schema.get("title") or "answer")
    name = re.sub(r"[^A-Za-z0-9_-]", "_", title)[:64] or "answer"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


def _is_format_rejection(error: openai.APIStatusError) -> bool:
    text = f"{error.message} {error.body}".lower()
    return any(word in text for word in _FORMAT_WORDS)


def _sampling_fields(params: SamplingParams, *, constrained: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
        "seed": params.seed,
    }
    # A stop string could cut a structured answer mid-JSON; the schema decides where it ends.
    if params.stop and not constrained:
        fields["stop"] = list(params.stop)
    return fields


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    return Usage(
        prompt_tokens=usage.prompt_tokens or 0,
        completion_tokens=usage.completion_tokens or 0,
        cached_prompt_tokens=cached or 0,
    )
