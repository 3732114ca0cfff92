"""Plan blocks into actions: one call breaks the block under way into 2-6 timed steps.

The model writes each step's minutes, a few words of what the agent does and the room object it
uses (an enum of the room's objects, named without their room to save tokens). The steps are
rescaled to fill what is left of the block exactly (:func:`fit_durations`), their texts made to
read right where the agent is (:func:`step_text`), and their emoji chosen by embedding. The answer
model, :class:`~societas.agents.cognition.planning.DecompositionAnswer`, stays with the other
plan answers.

Examples
--------
>>> import asyncio
>>> from societas.llm.fake import ScriptedLLM
>>> steps = [{"mins": 20, "do": "knead the dough", "obj": "table"},
...          {"mins": 40, "do": "bake the bread", "obj": "oven"}]
>>> llm = ScriptedLLM(lambda call: {"steps": steps, "imp": 3})
>>> block = PlanBlock(start=600, end=660, activity="baking", place="bakery:kitchen")
>>> actions = asyncio.run(decompose_block(llm, Persona(name="Ada", age=30), block,
...                                       objects=["bakery:kitchen:oven", "bakery:kitchen:table"]))
>>> [(a.start, a.minutes, a.description) for a in actions]
[(600, 20, 'knead the dough'), (620, 40, 'bake the bread')]
>>> actions[1].object
'bakery:kitchen:oven'
"""

from __future__ import annotations

from collections.abc import Sequence

from societas.agents.cognition.emoji import EmojiMemo, emoji_for
from societas.agents.cognition.planning import Action, DecompositionAnswer, PlanBlock
from societas.agents.cognition.schemas import (
    NONE,
    ask,
    bullet_list,
    choice_or_none,
    format_clock,
    model_text,
    persona_variables,
)
from societas.agents.persona import Persona
from societas.llm.narrowing import Narrowed, narrow
from societas.llm.types import LanguageModel, SamplingParams
from societas.world.phrasing import one_script, whole_words, without_other_rooms

DECOMPOSE_MAX_TOKENS = 240
STEP_CHARS = 50


def decomposition_answer(objects: tuple[str, ...]) -> Narrowed[DecompositionAnswer]:
    """``DecompositionAnswer`` with ``obj`` restricted to ``objects`` and ``"none"``; the
    objects are named as in the prompt, without their room (:func:`object_names`)."""
    return narrow(DecompositionAnswer, {"steps.obj": (*objects, NONE)})


async def decompose_block(
    llm: LanguageModel,
    persona: Persona,
    block: PlanBlock,
    *,
    objects: Sequence[str],
    start: int | None = None,
    memories: Sequence[str] = (),
    params: SamplingParams | None = None,
    emoji_memo: EmojiMemo | None = None,
    rooms: Sequence[str] = (),
) -> tuple[Action, ...]:
    """Break a plan block into 2-6 actions in ONE call; the actions fill the block exactly.

    Each step's text is kept whole (no cut words), in one script, and without naming a room of
    ``rooms`` other than the block's own (:func:`step_text`).

    ``objects`` are the block's room objects (addresses or names, returned as given; the prompt
    names them without their room); ``start`` (minute of day, default the block's start) refines
    only what is left of a block under way. Durations are rescaled to fill ``[start, block.end)``;
    when it is too short for every step, the first steps are kept. Each action's emoji is the
    nearest by embedding (one request for texts ``emoji_memo`` does not know, none otherwise).
    """
    begin = block.start if start is None else max(block.start, min(start, block.end - 1))
    named = object_names(block.place, objects)
    answer = await ask(
        llm,
        decomposition_answer(tuple(named)),
        "decompose",
        dict(
            **persona_variables(persona),
            place=block.place,
            objects=", ".join(named) or NONE,
            memories=bullet_list(memories),
            activity=block.activity,
            start=format_clock(begin),
            end=format_clock(block.end),
            minutes=block.end - begin,
        ),
        purpose="decompose",
        max_tokens=DECOMPOSE_MAX_TOKENS,
        params=params,
    )
    steps = [s for s in answer.steps if model_text(s.do)] or list(answer.steps)
    durations = fit_durations([s.mins for s in steps], block.end - begin)
    steps = steps[: len(durations)]
    descriptions = [step_text(s.do, block, rooms) for s in steps]
    emoji = await emoji_for(llm, descriptions, emoji_memo)
    actions: list[Action] = []
    cursor = begin
    for step, description, symbol, minutes in zip(
        steps, descriptions, emoji, durations, strict=True
    ):
        target = named.get(choice_or_none(step.obj) or "")
        actions.append(
            Action(
                start=cursor,
                minutes=minutes,
                description=description,
                object=target,
                emoji=symbol,
                object_state=description if target else "",
                importance=answer.imp,
            )
        )
        cursor += minutes
    return tuple(actions)


def step_text(text: str, block: PlanBlock, rooms: Sequence[str]) -> str:
    """A step as the model wrote it, made to read right where the agent is: one script, whole
    words, no other room named ("get dressed in the bedroom" at the market is "get dressed");
    the block's activity when nothing is left.

    >>> block = PlanBlock(start=600, end=660, activity="work", place="Market:shop floor")
    >>> step_text("get dressed in the bedroom", block, ["Home:bedroom", "Market:shop floor"])
    'get dressed'
    """
    cleaned = whole_words(one_script(model_text(text)), STEP_CHARS)
    return without_other_rooms(cleaned, block.place, list(rooms)) or block.activity


def object_names(room: str, objects: Sequence[str]) -> dict[str, str]:
    """Each object's name for a prompt, mapped to the object as given: an address in ``room``
    loses the room (``"home:kitchen:stove"`` is ``"stove"``), which saves prompt and answer
    tokens; a name that would then be ambiguous keeps its address.

    >>> object_names("home:kitchen", ["home:kitchen:stove", "sink", "none"])
    {'stove': 'home:kitchen:stove', 'sink': 'sink'}
    """
    given = [o for o in dict.fromkeys(objects) if o and o != NONE]
    prefix = room + ":"
    short = [
        o[len(prefix) :] if o.startswith(prefix) and len(o) > len(prefix) else o for o in given
    ]
    clashes = {name for name in short if short.count(name) > 1 or name == NONE}
    return {(o if name in clashes else name): o for o, name in zip(given, short, strict=True)}


def fit_durations(weights: Sequence[int], total: int) -> list[int]:
    """Split ``total`` minutes in proportion to ``weights``, in 5-minute units where possible.

    Every part gets at least one unit; when there are more weights than units, only the first
    ones get a share (the returned list is then shorter). The parts always sum to ``total``.

    >>> fit_durations([10, 10, 20], 60), fit_durations([5, 5, 5], 7)
    ([15, 15, 30], [3, 2, 2])
    """
    if total <= 0:
        raise ValueError(f"nothing to fill: {total} minutes")
    unit = 5 if total % 5 == 0 else 1
    units = total // unit
    kept = [max(1, w) for w in weights][:units] or [1]
    spare = units - len(kept)
    shares = [w * spare / sum(kept) for w in kept]
    extra = [int(s) for s in shares]
    by_remainder = sorted(range(len(kept)), key=lambda i: extra[i] - shares[i])
    for index in by_remainder[: spare - sum(extra)]:
        extra[index] += 1
    return [(1 + e) * unit for e in extra]
