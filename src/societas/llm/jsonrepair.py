"""Finding the JSON in a model's answer when decoding was not constrained by a schema.

Small models wrap JSON in code fences, add a sentence before or after it, or leave a trailing
comma. :func:`extract_json` undoes exactly those habits and nothing more: it never closes a
truncated answer, never quotes bare words and never fills in a missing value, because an invented
value would pass as the model's own.

Examples
--------
>>> extract_json('Sure!\\n```json\\n{"mood": "calm", "tags": ["a", "b",],}\\n```')
'{"mood": "calm", "tags": ["a", "b"]}'
>>> extract_json('{"mood": "ca')
Traceback (most recent call last):
...
societas.llm.jsonrepair.JSONExtractionError: answer is cut off: '{' at offset 0 is never closed
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

Expect = Literal["object", "array", "any"]

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)
_CLOSER = {"{": "}", "[": "]"}
_OPENERS = {"object": "{", "array": "[", "any": "{["}


class JSONExtractionError(ValueError):
    """No usable JSON value could be found in the text."""


def extract_json(text: str, expect: Expect = "any") -> str:
    """Return the JSON text of the first complete ``{...}`` (or ``[...]``) in ``text``.

    Fenced code blocks are searched first. ``expect`` restricts the value to an object or an
    array, so prose such as "see [1]" is not mistaken for the answer. Trailing commas are removed.
    Raises :class:`JSONExtractionError` naming what was wrong.
    """
    problems: list[str] = []
    for region in [*_fenced_blocks(text), text]:
        try:
            return _first_json_value(region, expect)
        except JSONExtractionError as error:
            problems.append(str(error))
    raise JSONExtractionError(problems[-1])


def loads_lenient(text: str, expect: Expect = "any") -> Any:
    """Parse the value :func:`extract_json` finds."""
    return json.loads(extract_json(text, expect))


def remove_trailing_commas(candidate: str) -> str:
    """Drop commas that directly precede a closing bracket, leaving string contents alone."""
    out: list[str] = []
    in_string = False
    escaped = False
    for index, char in enumerate(candidate):
        if in_string:
            in_string, escaped = _string_step(char, escaped)
        elif char == '"':
            in_string = True
        elif char == "," and _next_significant(candidate, index + 1) in ("}", "]"):
            continue
        out.append(char)
    return "".join(out)


def _fenced_blocks(text: str) -> list[str]:
    return [match.group(1) for match in _FENCE.finditer(text)]


def _first_json_value(region: str, expect: Expect) -> str:
    openers = _OPENERS[expect]
    position = 0
    problem = f"no JSON {'value' if expect == 'any' else expect} found"
    while True:
        start = _find_any(region, openers, position)
        if start < 0:
            raise JSONExtractionError(problem)
        end = _balanced_end(region, start)
        if end < 0:
            raise JSONExtractionError(
                f"answer is cut off: {region[start]!r} at offset {start} is never closed"
            )
        if end == start:  # a closer that does not match: not JSON, look further on
            position = start + 1
            continue
        candidate = remove_trailing_commas(region[start : end + 1])
        try:
            json.loads(candidate)
        except json.JSONDecodeError as error:
            problem = f"invalid JSON: {error}"
            # Skip the whole block: values nested inside a broken answer are not the answer.
            position = end + 1
            continue
        return candidate


def _find_any(text: str, chars: str, start: int) -> int:
    hits = [i for i in (text.find(c, start) for c in chars) if i >= 0]
    return min(hits) if hits else -1


def _balanced_end(text: str, start: int) -> int:
    """Index of the bracket closing ``text[start]``; ``start`` on a mismatch, -1 if never closed."""
    stack: list[str] = []
    in_string = False
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            in_string, escaped = _string_step(char, escaped)
        elif char == '"':
            in_string = True
        elif char in _CLOSER:
            stack.append(_CLOSER[char])
        elif char in "}]":
            if char != stack.pop():
                return start
            if not stack:
                return index
    return -1


def _string_step(char: str, escaped: bool) -> tuple[bool, bool]:
    """Advance the (in_string, escaped) state by one character inside a JSON string."""
    if escaped:
        return True, False
    if char == "\\":
        return True, True
    return char != '"', False


def _next_significant(text: str, start: int) -> str:
    for char in text[start:]:
        if not char.isspace():
            return char
    return ""
