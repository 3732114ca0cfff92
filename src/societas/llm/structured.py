"""Structured answers: the schema in the prompt, validation of the reply, and the repair request.

:class:`~societas.llm.client.LLM` sends an answer's JSON schema to a backend that can constrain
decoding with it, or else appends it to the system message (:func:`with_schema_instructions`).
Either way the reply is extracted and validated into the pydantic model (:func:`valid_json`); an
invalid one is quoted back once with what is wrong (:func:`repair_messages`, :func:`explain`).

Examples
--------
>>> from pydantic import BaseModel
>>> class Mood(BaseModel):
...     mood: str
>>> compact_schema(Mood.model_json_schema())
'{"properties":{"mood":{"type":"string"}},"required":["mood"],"type":"object"}'
>>> valid_json('Sure! {"mood": "calm"}', Mood, Mood.model_json_schema())
'{"mood": "calm"}'
>>> valid_json('{"feeling": "calm"}', Mood, Mood.model_json_schema())
Traceback (most recent call last):
...
societas.llm.structured.InvalidAnswer: mood: Field required
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from societas.llm.jsonrepair import Expect, JSONExtractionError, extract_json
from societas.llm.narrowing import AnswerSchema
from societas.llm.types import Completion, Message, SamplingParams

REPAIR_ECHO_CHARS = 1200  # how much of a bad answer the repair request quotes back
ERROR_LINES = 3  # validation problems named in a repair request


class InvalidAnswer(Exception):
    """An answer that did not parse or validate; the message says why, for a repair request."""


def compact_schema(json_schema: dict[str, Any]) -> str:
    """The schema as short JSON for a prompt: no titles, no spaces."""
    return json.dumps(_without_titles(json_schema), separators=(",", ":"), ensure_ascii=False)


def with_schema_instructions(
    messages: Sequence[Message], json_schema: dict[str, Any]
) -> list[Message]:
    """Messages whose system message ends with the answer's schema (added when there is none).

    The schema goes at the end of the system message, which is stable across calls with the same
    prompt template, so prompt-prefix reuse still works.
    """
    instruction = (
        "Reply with one JSON object only, no other text. It must match this JSON schema:\n"
        + compact_schema(json_schema)
    )
    out = list(messages)
    for index, message in enumerate(out):
        if message.role == "system":
            content = f"{message.content}\n\n{instruction}"
            out[index] = Message(role="system", content=content)
            return out
    return [Message(role="system", content=instruction), *out]


def repair_messages(messages: Sequence[Message], bad_answer: str, problem: str) -> list[Message]:
    """The conversation, the invalid answer, and a request to correct it."""
    echoed = bad_answer if len(bad_answer) <= REPAIR_ECHO_CHARS else bad_answer[:REPAIR_ECHO_CHARS]
    request = f"That answer is invalid: {problem}. Reply with the corrected JSON only."
    return [
        *messages,
        Message(role="assistant", content=echoed),
        Message(role="user", content=request),
    ]


def valid_json(text: str, schema: AnswerSchema[Any], json_schema: dict[str, Any]) -> str:
    """The answer's JSON text if it validates against ``schema``; raises InvalidAnswer."""
    shape = json_schema.get("type")
    expect: Expect = shape if shape in ("object", "array") else "any"
    try:
        extracted = extract_json(text, expect)
        schema.model_validate_json(extracted)
    except JSONExtractionError as error:
        raise InvalidAnswer(str(error)) from None
    except ValidationError as error:
        raise InvalidAnswer(summarise_errors(error)) from None
    return extracted


def summarise_errors(error: ValidationError) -> str:
    """The first ``ERROR_LINES`` validation problems, each with where it is, on one line."""
    problems = error.errors(include_url=False)
    parts = []
    for item in problems[:ERROR_LINES]:
        where = ".".join(str(part) for part in item["loc"]) or "answer"
        parts.append(f"{where}: {item['msg']}")
    if len(problems) > ERROR_LINES:
        parts.append(f"{len(problems) - ERROR_LINES} more")
    return "; ".join(parts)


def explain(problem: InvalidAnswer, completion: Completion, params: SamplingParams) -> str:
    if completion.finish_reason == "length":
        return f"{problem} (cut off at max_tokens={params.max_tokens})"
    return str(problem)


def _without_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                {name: _without_titles(sub) for name, sub in value.items()}
                if key in ("properties", "$defs") and isinstance(value, dict)
                else _without_titles(value)
            )
            for key, value in node.items()
            if key != "title"
        }
    if isinstance(node, list):
        return [_without_titles(item) for item in node]
    return node
