"""Scripted models that give the built-in scenarios' agents a day with some shape.

:class:`~societas.llm.fake.SchemaFiller` answers any schema; its hints choose the values that
matter for a scenario (clock times, activities, places, people, lines said), so a scripted run
plans, moves, meets and talks like a real one, only without a model.
"""

from __future__ import annotations

import random
from typing import Any

from societas.llm.fake import SchemaFiller, ScriptedCall, ScriptedLLM
from societas.scenarios.gridtown import district_places, grid_town
from societas.scenarios.scenario import Scenario

# The duo scenario (Iris Vance and Noah Bell): a day at the cafe and a book club invitation.
DUO_HINTS: dict[str, Any] = {
    "wake": "07:00",
    "sleep": "22:00",
    "start": ["08:30", "10:00", "12:00", "15:00"],
    "end": ["10:00", "12:00", "15:00", "22:00"],
    "act": ["work at the cafe", "coffee break", "lunch", "reading"],
    "do": "talk",
    "who": ["Iris Vance", "Noah Bell"],
    "say": [
        "Noah, I'm starting a book club at the cafe on Sunday at 3pm. Will you come?",
        "A book club on Sunday? I'd love to come.",
    ],
    "what": "book club at the cafe",
    "time": "15:00",
    "place": ["Corner Cafe:counter", "Bell House:main room"],
    "PlanAnswer.place": "Corner Cafe:counter",
    "memory": "Iris invited me to her book club on Sunday at the cafe.",
    "gist": "Iris invited Noah to her book club.",
    "mins": 15,
    "obj": "coffee machine",
    "blocks[]": 4,
}

# A grid town's first district (``grid_town``): three blocks a morning, and news of a festival.
GRID_PLACES = district_places("District 0-0 Home 1:home")
GRID_HINTS: dict[str, Any] = {
    "wake": "07:00",
    "sleep": "22:00",
    "start": ["07:30", "09:00", "10:00"],
    "end": ["09:00", "10:00", "11:30"],
    "act": ["work", "coffee", "a walk"],
    "place": [GRID_PLACES[0], GRID_PLACES[2], GRID_PLACES[1]],
    "blocks[]": 3,
    "do": "talk",
    "say": ["Have you heard of the festival in the park on Saturday?", "Yes, I'll come."],
    "PlanAnswer.what": "",
}


def grid_scenario(agents: int = 24) -> Scenario:
    """The grid town ``GRID_HINTS`` fits: four people a home, four homes a district (24 people
    make two districts side by side, joined by a street, so people of both meet)."""
    return grid_town(agents, random.Random(5), residents_per_home=4, homes=4)


def scripted_llm(seed: int = 0, hints: dict[str, Any] | None = None) -> ScriptedLLM:
    """A model whose every answer fills the schema, guided by ``hints`` (the duo's by default)."""
    return ScriptedLLM(
        SchemaFiller(random.Random(seed), DUO_HINTS if hints is None else hints).responder
    )


def lines_said(call: ScriptedCall) -> int:
    """How many lines the conversation in a ``converse_line`` prompt holds so far."""
    talk = call.messages[-1].content.split("<talk>\n", 1)[1].split("\n</talk>", 1)[0]
    return 0 if talk.startswith("(") else len(talk.splitlines())
