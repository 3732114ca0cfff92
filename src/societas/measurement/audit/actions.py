"""Checks of executed actions: an action that names a room or place other than its own."""

from __future__ import annotations

import re

from societas.measurement.audit.plans import sector
from societas.measurement.audit.reader import Action, RunRecord
from societas.measurement.audit.report import CheckResult, Finding, check_result

FAMILY = "actions"
# Rooms a description may name even when the map has none of that name.
COMMON_ROOMS = ("bedroom", "kitchen", "bathroom", "living room", "dining room", "garden")
# "walk to the kitchen" names where the agent is going, not where it is.
_HEADING = re.compile(
    r"\b(?:to|towards?|into|from|leave|leaving|left)\s+(?:the\s+|my\s+|her\s+|his\s+)?$"
)


def action_checks(record: RunRecord) -> list[CheckResult]:
    rooms, areas = _place_names(record)
    findings = []
    for action in record.actions:
        named = _named_elsewhere(action, rooms, areas)
        if named is not None:
            findings.append(
                Finding(
                    agent=action.agent,
                    when=f"{action.time:%Y-%m-%d %H:%M}",
                    detail=f"{action.description!r} names {named!r} at {action.place}",
                )
            )
    return [
        check_result(
            "action_rooms",
            FAMILY,
            "actions naming a room or place other than where they happen",
            "actions",
            findings,
            len(record.actions),
        )
    ]


def _place_names(record: RunRecord) -> tuple[list[str], list[str]]:
    """Room names (the part after the area) and area names of the map, longest first so
    "living room" is found before "room"."""
    places = record.scenario.places
    rooms = {room.split(":", 1)[1].strip().lower() for room in places.rooms()} | set(COMMON_ROOMS)
    areas = {area.strip().lower() for area in places.areas()}
    return sorted(rooms - areas, key=len, reverse=True), sorted(areas, key=len, reverse=True)


def _named_elsewhere(action: Action, rooms: list[str], areas: list[str]) -> str | None:
    """The first room or area the description names that the action's place is not in."""
    text = action.description.lower()
    where = action.place.lower()
    here_room = where.split(":", 1)[1] if ":" in where else ""
    for name in areas:
        if _mentions(text, name) and name != sector(where):
            return name
    for name in rooms:
        if _mentions(text, name) and name not in here_room:
            return name
    return None


def _mentions(text: str, name: str) -> bool:
    """Whether ``text`` names ``name`` as where the action is (not as where it is heading)."""
    for match in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", text):
        if not _HEADING.search(text[: match.start()]):
            return True
    return False
