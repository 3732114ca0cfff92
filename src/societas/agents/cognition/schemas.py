"""Shared pieces of the cognition calls' answer schemas and prompts.

Answer models are declared once as static pydantic classes with plain ``str`` fields (what the
prompt templates name) and narrowed per call with :func:`societas.llm.narrowing.narrow` to the
values allowed *now* (visible agents, rooms, objects), so llama.cpp's JSON-schema grammar can only
produce those values; no class is built per call.

:func:`ask` renders a template of ``prompts/`` and makes the ONE bounded model call each cognition
step is allowed.

Clock times travel as ``"HH:MM"`` strings (no regex patterns in schemas) and are parsed here after
the call with one repair rule: lenient parsing, round to the nearest 5 minutes, clamp to the day.

Examples
--------
>>> parse_clock("7:32 pm"), parse_clock("24:00"), parse_clock("later")
(1170, 1440, None)
>>> format_clock(1170)
'19:30'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from societas.agents.persona import Persona
from societas.llm.narrowing import AnswerSchema
from societas.llm.types import LanguageModel, Message, SamplingParams
from societas.prompts import load_prompt

ModelT = TypeVar("ModelT", bound=BaseModel)

NONE = "none"
"""The enum value that stands for 'no value' (schemas avoid nullable unions)."""

MINUTES_PER_DAY = 24 * 60
CLOCK_STEP = 5
_CLOCK = re.compile(r"^\s*(\d{1,2})(?:\s*[:.h]\s*(\d{1,2}))?\s*([ap])?\.?\s*m?\.?\s*$", re.I)


def choice_or_none(value: str) -> str | None:
    """Map the schema's ``"none"`` sentinel to None."""
    return None if value == NONE else value


def parse_clock(text: str) -> int | None:
    """Minutes since midnight of a ``"HH:MM"``-like text, rounded to 5 minutes; None if unreadable.

    Accepts "7", "7:5", "07.30", "7h30", "7:30 pm"; hours above 24 or minutes above 59 are
    unreadable; the result is clamped to 0..1440 (24:00 is the end of the day).
    """
    match = _CLOCK.match(text)
    if match is None:
        return None
    hours, minutes = int(match.group(1)), int(match.group(2) or 0)
    meridiem = (match.group(3) or "").lower()
    if hours > 24 or minutes > 59 or (meridiem and not 1 <= hours <= 12):
        return None
    if meridiem == "p" and hours != 12:
        hours += 12
    elif meridiem == "a" and hours == 12:
        hours = 0
    return clamp_minutes(round_to_step(hours * 60 + minutes))


def round_to_step(minutes: int, step: int = CLOCK_STEP) -> int:
    """Round to the nearest multiple of ``step`` (halves round up)."""
    return ((minutes + step // 2) // step) * step


def clamp_minutes(minutes: int, low: int = 0, high: int = MINUTES_PER_DAY) -> int:
    return max(low, min(high, minutes))


def format_clock(minutes: int) -> str:
    """``"HH:MM"`` of minutes since midnight (1440 is ``"24:00"``)."""
    if not 0 <= minutes <= MINUTES_PER_DAY:
        raise ValueError(f"minute of day out of range: {minutes}")
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def bounded_params(
    params: SamplingParams | None, max_tokens: int, temperature: float = 0.7
) -> SamplingParams:
    """The caller's sampling parameters (or defaults) with ``max_tokens`` set to the answer's bound.

    Every cognition call knows how long its grammar-bounded answer can get: a smaller cap would
    cut the JSON short, a larger one only lets a rambling model waste time. Callers choose
    temperature, top_p, seed and stop; the call chooses ``max_tokens``.
    """
    if params is None:
        return SamplingParams(temperature=temperature, max_tokens=max_tokens)
    return params.model_copy(update={"max_tokens": max_tokens})


def one_line(text: str) -> str:
    """``text`` on one line with single spaces (for prompts and stored answers)."""
    return " ".join(text.split())


def model_text(text: str) -> str:
    """A model's free text on one line; empty when it holds no letter or digit.

    Small models copy placeholders such as "..." from a prompt's example; those count as blank.

    >>> model_text("  going   to the fair "), model_text("..."), model_text("☕")
    ('going to the fair', '', '')
    """
    line = one_line(text)
    return line if any(char.isalnum() for char in line) else ""


def bullet_list(lines: Sequence[str], empty: str = "(nothing)") -> str:
    """Prompt text of a list: one ``- item`` per line, or ``empty``."""
    cleaned = [one_line(line) for line in lines if line.strip()]
    return "\n".join(f"- {line}" for line in cleaned) if cleaned else empty


PROMPTS_PACKAGE = "societas.agents.cognition"


def render_prompt(template: str, /, **variables: Any) -> list[Message]:
    """Render the cognition template ``prompts/<template>.yaml`` with ``variables``."""
    return load_prompt(PROMPTS_PACKAGE, template).render(**variables)


def persona_variables(persona: Persona) -> dict[str, str]:
    """The variables every per-agent template starts with (its stable prefix)."""
    return {"name": persona.name, "persona": persona.summary()}


async def ask(
    llm: LanguageModel,
    schema: AnswerSchema[ModelT],
    template: str,
    variables: Mapping[str, Any],
    *,
    purpose: str,
    max_tokens: int,
    params: SamplingParams | None = None,
    sample_index: int = 0,
) -> ModelT:
    """Render ``prompts/<template>.yaml`` and get its answer as ``schema`` in ONE bounded call."""
    return await llm.generate(
        render_prompt(template, **variables),
        schema,
        purpose=purpose,
        params=bounded_params(params, max_tokens),
        sample_index=sample_index,
    )


def day_text(day: date) -> str:
    """How a date reads in prompts, e.g. ``Monday 13 February 2023``."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def moment_text(moment: datetime) -> str:
    """How a game time reads in prompts, e.g. ``Monday 13 February 2023, 14:05``."""
    return f"{day_text(moment.date())}, {moment:%H:%M}"


def minute_of_day(moment: datetime) -> int:
    return moment.hour * 60 + moment.minute
