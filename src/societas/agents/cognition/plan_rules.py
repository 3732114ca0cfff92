"""The rules every plan keeps, checked by code: the routine's day and what a plan may change.

:func:`routine_day` lays an agent's usual day from its :class:`~societas.world.routine.Routine`
(sleep outside wake-bedtime, meals at their times and places, work at the workplace, free time at
home in pieces of at most 3 hours). A plan the model changed is checked by :func:`check_plan`:

- ``meal_time``: a meal at a time no one eats it (dinner at 07:00);
- ``meal_repeat``: a meal twice (breakfast at 07:00, 10:30 and 13:00);
- ``meal_missing``: a routine meal left out, unless an appointment takes its place;
- ``work_place``: away from the workplace in work hours for more than a short break, unless a
  memory or appointment names where the agent goes instead;
- ``long_block``: one block over 4 hours, except sleep and work at the workplace;
- ``place``: a place the agent has no reason to be in (a neighbour's bedroom).

What still breaks a rule after the one repair request gets the routine's day back in the
violating slots (:func:`fall_back`).

>>> from societas.world.routine import Routine
>>> routine = Routine.model_validate({"wake": "07:00", "sleep": "22:00",
...     "meals": [{"meal": "dinner", "time": "19:00", "place": "home:living room"}]})
>>> [b.line() for b in routine_day(routine, "home:bed")]  # doctest: +NORMALIZE_WHITESPACE
['07:00-09:00 early morning at home @ home:bed', '09:00-12:00 morning at home @ home:living room',
 '12:00-14:30 early afternoon at home @ home:living room',
 '14:30-17:00 late afternoon at home @ home:living room',
 '17:00-19:00 evening at home @ home:living room', '19:00-20:00 dinner @ home:living room',
 '20:00-22:00 night at home @ home:living room']
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import pairwise

from societas.agents.cognition.planning import (
    FREE_TIME,
    SLEEPING,
    Commitment,
    Draft,
    PlanBlock,
    normalise_schedule,
    overlay,
)
from societas.agents.cognition.schemas import format_clock
from societas.world.routine import MEAL_MINUTES, MEAL_WINDOWS, Routine, clock_minutes

WORK = "work"
MAX_BLOCK_MINUTES = 4 * 60
SHORT_BREAK = 30
# Free time at home, by the hour it starts: distinct names keep the pieces apart (neighbours with
# one name merge) so that no piece of a free day runs over the 4-hour rule.
FREE_PERIODS: tuple[tuple[int, str], ...] = (
    (0, "early morning at home"),
    (9 * 60, "morning at home"),
    (12 * 60, "early afternoon at home"),
    (14 * 60 + 30, "late afternoon at home"),
    (17 * 60, "evening at home"),
    (20 * 60, "night at home"),
)
# Rooms of a home where waking free time is spent (the bedroom keeps sleep and the early morning).
_SITTING_ROOM_WORDS = ("living", "sitting", "lounge", "main room", "family room")
# Words of area names that say nothing about which place is meant.
_GENERIC_PLACE_WORDS = frozenset({"house", "home", "flat", "cottage", "street", "lane", "road"})
_MEAL_WORDS = {
    "breakfast": ("breakfast", "brunch"),
    "lunch": ("lunch", "luncheon"),
    "dinner": ("dinner", "supper"),
}


@dataclass(frozen=True)
class Violation:
    """A rule a plan breaks, in the slot ``[start, end)`` that falls back to the routine."""

    start: int
    end: int
    rule: str
    text: str

    def to_record(self) -> dict[str, str]:
        return {"start": format_clock(self.start), "end": format_clock(self.end), "rule": self.rule}


def meal_of(activity: str) -> str | None:
    """Which meal an activity is ("have a hearty breakfast" is breakfast), None when none."""
    words = set(re.findall(r"[a-z]+", activity.lower()))
    for meal, names in _MEAL_WORDS.items():
        if words.intersection(names):
            return meal
    return None


def routine_day(routine: Routine, home: str) -> tuple[PlanBlock, ...]:
    """The routine's day from wake-up to bedtime: meals, work (around the meals), free time."""
    wake, sleep = routine.wake_minute, routine.sleep_minute
    meals = [
        (clock_minutes(m.time), min(sleep, clock_minutes(m.time) + MEAL_MINUTES[m.meal]), m)
        for m in routine.meals
    ]
    drafts: list[Draft] = []
    if routine.work is not None:
        cursor, end = clock_minutes(routine.work.start), clock_minutes(routine.work.end)
        for meal_start, meal_end, _ in sorted(meals, key=lambda item: item[0]):
            if cursor < meal_start < end:
                drafts.append(Draft(cursor, meal_start, WORK, routine.work.place))
            if meal_start < end:
                cursor = max(cursor, meal_end)
        if cursor < end:
            drafts.append(Draft(cursor, end, WORK, routine.work.place))
    drafts += [Draft(start, end, meal.meal, meal.place) for start, end, meal in meals]
    blocks = normalise_schedule(drafts, start=wake, end=sleep, home=home)
    sitting = sitting_room(routine, home)
    return tuple(piece for block in blocks for piece in _free_pieces(block, sitting))


def sitting_room(routine: Routine, home: str) -> str:
    """Where the agent spends waking free time at home: the home's living room (found among the
    routine's meal places at home) when it has one, else ``home``.

    >>> routine = Routine.model_validate({"wake": "07:00", "sleep": "22:00", "meals": [
    ...     {"meal": "dinner", "time": "19:00", "place": "Home:living room"}]})
    >>> sitting_room(routine, "Home:bedroom"), sitting_room(routine, "Flat:bedroom")
    ('Home:living room', 'Flat:bedroom')
    """
    area = home.split(":", 1)[0]
    for meal in routine.meals:
        place_area, _, room = meal.place.partition(":")
        if place_area == area and any(word in room.lower() for word in _SITTING_ROOM_WORDS):
            return meal.place
    return home


def _free_pieces(block: PlanBlock, sitting: str) -> list[PlanBlock]:
    """Free time at home split at the period boundaries and named after its period; the early
    morning stays where the agent woke, later pieces go to the sitting room."""
    if block.activity != FREE_TIME:
        return [block]
    pieces: list[PlanBlock] = []
    cuts = [start for start, _ in FREE_PERIODS if block.start < start < block.end]
    bounds = [block.start, *cuts, block.end]
    for start, end in pairwise(bounds):
        index = max(i for i, (begin, _) in enumerate(FREE_PERIODS) if begin <= start)
        place = block.place if index == 0 else sitting
        update = {"start": start, "end": end, "activity": FREE_PERIODS[index][1], "place": place}
        pieces.append(block.model_copy(update=update))
    return pieces


def is_free_time(activity: str) -> bool:
    """Whether ``activity`` is one of the routine's free-time pieces (the model may fill it)."""
    return activity == FREE_TIME or activity in {label for _, label in FREE_PERIODS}


def check_plan(
    blocks: Sequence[PlanBlock],
    routine: Routine,
    *,
    allowed: Collection[str],
    reasons: Sequence[str] = (),
    commitments: Sequence[Commitment] = (),
    since: int = 0,
) -> list[Violation]:
    """Every rule ``blocks`` break from minute ``since`` on (earlier blocks are the past)."""
    ahead = [b for b in blocks if b.end > since]
    found: list[Violation] = []
    found += _meal_violations(ahead, routine, commitments, since)
    found += _work_violations(ahead, routine, reasons, commitments)
    for block in ahead:
        if block.minutes > MAX_BLOCK_MINUTES and not _exempt_from_length(block, routine):
            found.append(
                Violation(
                    block.start,
                    block.end,
                    "long_block",
                    f"{block.line()} lasts {block.minutes // 60} hours; split it (4 at most)",
                )
            )
        if block.place not in allowed and not _is_appointment(block, commitments):
            found.append(
                Violation(
                    block.start,
                    block.end,
                    "place",
                    f"{block.line()}: you have no reason to be at {block.place}",
                )
            )
    return sorted(found, key=lambda v: (v.start, v.rule))


def _meal_violations(
    blocks: Sequence[PlanBlock],
    routine: Routine,
    commitments: Sequence[Commitment],
    since: int,
) -> list[Violation]:
    found: list[Violation] = []
    seen: dict[str, list[PlanBlock]] = {}
    for block in blocks:
        meal = meal_of(block.activity)
        if meal is None:
            continue
        low, high = MEAL_WINDOWS[meal]
        if not low <= block.start < high:
            found.append(
                Violation(
                    block.start,
                    block.end,
                    "meal_time",
                    f"{block.line()}: {meal} at {format_clock(block.start)} is not a time for "
                    f"{meal} ({format_clock(low)}-{format_clock(high)})",
                )
            )
        else:
            seen.setdefault(meal, []).append(block)
    for meal, eaten in seen.items():
        usual = routine.minutes(meal)
        keep = min(eaten, key=lambda b: abs(b.start - usual) if usual is not None else b.start)
        for block in eaten:
            if block is not keep:
                found.append(
                    Violation(
                        block.start,
                        block.end,
                        "meal_repeat",
                        f"{block.line()}: you already have {meal} at {format_clock(keep.start)}",
                    )
                )
    for item in routine.meals:
        start = clock_minutes(item.time)
        end = min(routine.sleep_minute, start + MEAL_MINUTES[item.meal])
        if start < since or item.meal in seen:
            continue
        if any(
            _overlaps(c.start, (c.start or 0) + c.minutes, start, end) for c in _fixed(commitments)
        ):
            continue  # eating at the party, or later: the appointment takes the meal's place
        found.append(
            Violation(
                start, end, "meal_missing", f"no {item.meal}; you usually have it at {item.time}"
            )
        )
    return found


def _work_violations(
    blocks: Sequence[PlanBlock],
    routine: Routine,
    reasons: Sequence[str],
    commitments: Sequence[Commitment],
) -> list[Violation]:
    work = routine.work
    if work is None:
        return []
    start, end = clock_minutes(work.start), clock_minutes(work.end)
    # Runs of consecutive blocks away from work: a short break is one run of 30 minutes at most,
    # however many blocks it is written in.
    runs: list[list[PlanBlock]] = [[]]
    for block in blocks:
        away = block.place != work.place and meal_of(block.activity) is None
        if away and _overlaps(block.start, block.end, start, end):
            runs[-1].append(block)
        elif runs[-1]:
            runs.append([])
    found: list[Violation] = []
    for run in runs:
        minutes = sum(min(b.end, end) - max(b.start, start) for b in run)
        if minutes <= SHORT_BREAK:
            continue
        for block in run:
            if _is_appointment(block, commitments) or _has_reason(block, reasons):
                continue
            found.append(
                Violation(
                    max(block.start, start),
                    min(block.end, end),
                    "work_place",
                    f"{block.line()}: you work at {work.place} from {work.start} to {work.end}",
                )
            )
    return found


def _exempt_from_length(block: PlanBlock, routine: Routine) -> bool:
    if block.activity == SLEEPING:
        return True
    work = routine.work
    return work is not None and block.place == work.place and block.activity == WORK


def _fixed(commitments: Sequence[Commitment]) -> list[Commitment]:
    return [c for c in commitments if c.fixed]


def _is_appointment(block: PlanBlock, commitments: Sequence[Commitment]) -> bool:
    """A block at an appointment's place while the appointment is under way."""
    return any(
        c.start is not None
        and c.place == block.place
        and _overlaps(block.start, block.end, c.start, c.start + c.minutes)
        for c in _fixed(commitments)
    )


def _has_reason(block: PlanBlock, reasons: Sequence[str]) -> bool:
    """Whether a memory or habit names where the block goes: its area ("the Town Hall office"
    for "Town Hall:office") or a distinctive word of it ("a coffee at the cafe" for "Corner
    Cafe:counter")."""
    area = block.place.partition(":")[0]
    text = " ".join(reasons)
    if area.lower() in text.lower():
        return True
    # A common noun as written in lower case ("the cafe"), not a name ("Noah Bell" for "Bell
    # House").
    words = set(re.findall(r"\b[a-z]+\b", text))
    return any(w in words for w in re.findall(r"[a-z]+", area.lower()) if _distinctive(w))


def _distinctive(word: str) -> bool:
    return len(word) >= 4 and word not in _GENERIC_PLACE_WORDS


def _overlaps(a_start: int | None, a_end: int | None, b_start: int, b_end: int) -> bool:
    if a_start is None or a_end is None:
        return False
    return a_start < b_end and b_start < a_end


def fall_back(
    blocks: Sequence[PlanBlock],
    usual: Sequence[PlanBlock],
    violations: Sequence[Violation],
    *,
    home: str,
) -> tuple[PlanBlock, ...]:
    """``blocks`` with the routine's day (``usual``) back in every violating slot."""
    result = list(blocks)
    for violation in violations:
        for block in usual:
            start, end = max(block.start, violation.start), min(block.end, violation.end)
            if end > start:
                result = overlay(result, block.model_copy(update={"start": start, "end": end}))
    start, end = min(b.start for b in result), max(b.end for b in result)
    drafts = [Draft(b.start, b.end, b.activity, b.place) for b in result]
    return normalise_schedule(drafts, start=start, end=end, home=home)
