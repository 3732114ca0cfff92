"""An agent's usual day: when it wakes and sleeps, where and when it works, its meals.

Code carries the routine so that a small model cannot put dinner at 07:00 or the workday in a
neighbour's bedroom: the day plan starts from it and the model only writes what today changes.
A scenario may give each agent a ``routine:`` (see ``docs/scenarios.md``); where it does not, one
is read from the agent's ``lifestyle`` and ``occupation`` (:func:`routine_from_lifestyle`).

Times are ``"HH:MM"`` strings on a 24-hour clock; places are world addresses ("Area" or
"Area:room"). Sleep may be "24:00" (midnight) but must come after waking.

>>> routine = Routine.model_validate({"wake": "6:30", "sleep": "22:00",
...     "work": {"place": "Shop", "start": "08:00", "end": "16:00"},
...     "meals": [{"meal": "dinner", "time": "19:00", "place": "Home:kitchen"}]})
>>> routine.wake, routine.minutes("dinner")
('06:30', 1140)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MealName = Literal["breakfast", "lunch", "dinner"]
MEALS: tuple[MealName, ...] = ("breakfast", "lunch", "dinner")
# When each meal may start (minutes of the day, end exclusive): what a person would call sensible.
MEAL_WINDOWS: dict[str, tuple[int, int]] = {
    "breakfast": (5 * 60, 11 * 60),
    "lunch": (11 * 60, 15 * 60 + 30),
    "dinner": (17 * 60, 22 * 60 + 30),
}
MEAL_MINUTES: dict[str, int] = {"breakfast": 30, "lunch": 45, "dinner": 60}
DAY_MINUTES = 24 * 60


def clock_minutes(text: str) -> int:
    """Minutes since midnight of ``"HH:MM"`` (``"24:00"`` is midnight at the day's end)."""
    hours, _, minutes = text.partition(":")
    return int(hours) * 60 + int(minutes)


def clock_text(minutes: int) -> str:
    """``"HH:MM"`` of minutes since midnight."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _clock(value: str) -> str:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value)
    if match is None:
        raise ValueError(f"{value!r} is not a time 'HH:MM' (24-hour clock)")
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{value!r} is not a time of day (00:00 to 24:00)")
    return clock_text(hours * 60 + minutes)


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WorkHours(_Spec):
    """Where and when the agent works."""

    place: str = Field(min_length=1, description="Area or room address of the workplace.")
    start: str
    end: str

    _times = field_validator("start", "end")(_clock)

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if clock_minutes(self.end) <= clock_minutes(self.start):
            raise ValueError(f"work ends ({self.end}) before it starts ({self.start})")
        return self


class Meal(_Spec):
    """A usual meal: which, when it starts, where."""

    meal: MealName
    time: str
    place: str = Field(min_length=1, description="Area or room address.")

    _time = field_validator("time")(_clock)

    @model_validator(mode="after")
    def _sensible_time(self) -> Self:
        low, high = MEAL_WINDOWS[self.meal]
        if not low <= clock_minutes(self.time) < high:
            raise ValueError(
                f"{self.meal} at {self.time} is not a sensible time "
                f"({clock_text(low)} to {clock_text(high)})"
            )
        return self


class Routine(_Spec):
    """An agent's usual day. ``source`` says whether the scenario gave it or it was derived."""

    wake: str
    sleep: str
    work: WorkHours | None = None
    meals: list[Meal] = Field(default_factory=list, max_length=3)
    source: Literal["scenario", "derived"] = "scenario"

    _times = field_validator("wake", "sleep")(_clock)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        wake, sleep = clock_minutes(self.wake), clock_minutes(self.sleep)
        if sleep <= wake:
            raise ValueError(f"sleep ({self.sleep}) must come after wake ({self.wake})")
        names = [meal.meal for meal in self.meals]
        if len(set(names)) != len(names):
            raise ValueError(f"each meal at most once, got {names}")
        for meal in self.meals:
            if not wake <= clock_minutes(meal.time) < sleep:
                raise ValueError(f"{meal.meal} at {meal.time} is outside waking hours")
        if self.work is not None and not (
            wake <= clock_minutes(self.work.start) and clock_minutes(self.work.end) <= sleep
        ):
            raise ValueError("work hours must lie between wake and sleep")
        return self

    def minutes(self, meal: str) -> int | None:
        """When ``meal`` starts (minutes of the day), None when the routine has no such meal."""
        for item in self.meals:
            if item.meal == meal:
                return clock_minutes(item.time)
        return None

    @property
    def wake_minute(self) -> int:
        return clock_minutes(self.wake)

    @property
    def sleep_minute(self) -> int:
        return clock_minutes(self.sleep)

    def places(self) -> list[str]:
        """Every address the routine names (workplace, meal places)."""
        found = [self.work.place] if self.work else []
        return list(dict.fromkeys([*found, *(meal.place for meal in self.meals)]))

    def in_rooms(self, first_room: Callable[[str], str]) -> Routine:
        """The routine with every area address (no ":") replaced by ``first_room(area)``."""

        def room(address: str) -> str:
            return address if ":" in address else first_room(address)

        work = self.work.model_copy(update={"place": room(self.work.place)}) if self.work else None
        meals = [meal.model_copy(update={"place": room(meal.place)}) for meal in self.meals]
        return self.model_copy(update={"work": work, "meals": meals})

    def to_record(self) -> dict[str, object]:
        """The routine as the run's ``routine`` event records it."""
        return self.model_dump(mode="json")


# -- reading a routine from a lifestyle sentence -----------------------------------------------

_TIME = r"(\d{1,2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?"
_NOON = {"noon": "12", "midday": "12"}


def _hour(match: re.Match[str], offset: int, *, afternoon: bool) -> int | None:
    """Minutes of a time matched by ``_TIME`` at group ``offset``; bare hours under 7 are read as
    afternoon when ``afternoon`` (closing times, "home by 4:30")."""
    hours = int(match[offset])
    minutes = int(match[offset + 1] or 0)
    suffix = (match[offset + 2] or "").replace(".", "")
    if hours > 24 or minutes > 59:
        return None
    if suffix == "pm" and hours < 12:
        hours += 12
    elif suffix == "am" and hours == 12:
        hours = 0
    elif not suffix and afternoon and hours < 8:
        hours += 12
    return hours * 60 + minutes


def _find(patterns: list[str], text: str, *, afternoon: bool) -> int | None:
    for pattern in patterns:
        match = re.search(pattern.replace("T", _TIME), text)
        if match is not None:
            return _hour(match, 1, afternoon=afternoon)
    return None


def routine_from_lifestyle(
    lifestyle: str, occupation: str, *, home: str, rooms: list[str]
) -> tuple[Routine, list[str]]:
    """A routine read from ``lifestyle`` and ``occupation``, and what had to be assumed.

    The workplace is an area named in the occupation or lifestyle ("owner of Alvarez Market");
    times come from phrases like "wakes at 6", "up at 6:30", "works 8 to 4", "opens ... at 8,
    closes at 6pm", "from 8", "until 4:30". What the text does not say is assumed (wake 07:00,
    sleep 22:30, work 09:00-17:00, meals at home) and listed in the second value.

    >>> routine, assumed = routine_from_lifestyle("Up at 6:30, works 8 to 4.", "carpenter",
    ...     home="Home:bedroom", rooms=["Home:bedroom", "Workshop:bench"])
    >>> routine.wake, routine.work, assumed
    ('06:30', None, ['sleep', 'workplace'])
    """
    areas = list(dict.fromkeys(room.split(":", 1)[0] for room in rooms))
    text = " ".join(lifestyle.lower().replace("noon", "12pm").replace("midday", "12pm").split())
    assumed: list[str] = []
    wake = _find(
        [r"\b(?:wakes?|gets? up|rises?|up)\s+(?:at\s+|by\s+)?T", r"\bsleeps? (?:in )?until\s+T"],
        text,
        afternoon=False,
    )
    if wake is None:
        wake = 7 * 60
        assumed.append("wake")
    sleep = _find([r"\b(?:bed|sleeps?|asleep)\s+(?:at|by|around)\s+T"], text, afternoon=False)
    if sleep is None:
        sleep = 22 * 60 + 30
        assumed.append("sleep")
    elif sleep < 12 * 60:  # "in bed by 11" is at night; after midnight counts as midnight
        sleep = min(DAY_MINUTES, sleep + 12 * 60)
    if sleep <= wake + 8 * 60:
        sleep = min(DAY_MINUTES, max(22 * 60 + 30, wake + 14 * 60))
    workplace = _named_area(f"{occupation} {lifestyle}", areas, home)
    span = re.search(r"\bworks?\b[^.;]*?\b" + _TIME + r"\s*(?:to|-|until)\s*" + _TIME, text)
    if span is not None:
        start, end = _hour(span, 1, afternoon=False), _hour(span, 4, afternoon=True)
    else:
        start = _find(
            [r"\bopens?\b[^.;,]*?\bat\s+T", r"\bfrom\s+T", r"(?<!home )\bby\s+T"],
            text,
            afternoon=False,
        )
        end = _find(
            [r"\bcloses?\b[^.;,]*?\bat\s+T", r"\buntil\s+T", r"\bhome\s+by\s+T"],
            text,
            afternoon=True,
        )
    work: WorkHours | None = None
    if workplace is None:
        assumed.append("workplace")
    else:
        if start is None:
            start = 9 * 60
            assumed.append("work start")
        if end is None or end <= start:
            end = min(sleep, start + 8 * 60)
            assumed.append("work end")
        start, end = max(start, wake), min(end, sleep)
        if end > start:
            work = WorkHours(place=workplace, start=clock_text(start), end=clock_text(end))
    meals = _usual_meals(text, wake, sleep, work, _home_table(home, rooms), areas)
    routine = Routine(
        wake=clock_text(wake),
        sleep=clock_text(sleep),
        work=work,
        meals=meals,
        source="derived",
    )
    return routine, assumed


def _named_area(text: str, areas: list[str], home: str) -> str | None:
    """The first area (other than the home's) whose name appears in ``text``."""
    home_area = home.split(":", 1)[0]
    lowered = text.lower()
    found = [
        (lowered.index(area.lower()), area)
        for area in areas
        if area != home_area and area.lower() in lowered
    ]
    return min(found)[1] if found else None


def _home_table(home: str, rooms: list[str]) -> str:
    """Where meals at home happen: the home's kitchen or dining room when it has one."""
    area = home.split(":", 1)[0]
    for word in ("dining", "kitchen", "living"):
        for room in rooms:
            if room.startswith(area + ":") and word in room.split(":", 1)[1].lower():
                return room
    return home


def _usual_meals(
    text: str, wake: int, sleep: int, work: WorkHours | None, home: str, areas: list[str]
) -> list[Meal]:
    """Breakfast after waking, lunch at noon (at work when working then), dinner at 18:30 or
    when the lifestyle says ("dinner at 7"), each inside waking hours and its sensible window."""
    said = _find([r"\b(?:dinner|supper)\s+(?:\w+\s+){0,3}?at\s+T"], text, afternoon=True)
    wanted = {
        "breakfast": wake + 15,
        "lunch": _find([r"\blunch\s+(?:\w+\s+){0,4}?at\s+T"], text, afternoon=True) or 12 * 60,
        "dinner": said or 18 * 60 + 30,
    }
    meals: list[Meal] = []
    for meal, minute in wanted.items():
        low, high = MEAL_WINDOWS[meal]
        minute = max(low, minute, wake)
        if minute >= min(high, sleep - 15):
            continue
        clause = next((c for c in re.split(r"[,.;]", text) if meal in c), "")
        named = [area for area in areas if area.lower() in clause]
        place = named[0] if named else home
        if (
            not named
            and work is not None
            and clock_minutes(work.start) <= minute < clock_minutes(work.end)
        ):
            place = work.place
        meals.append(Meal(meal=meal, time=clock_text(minute - minute % 5), place=place))
    return meals
