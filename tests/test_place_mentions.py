"""The household-mention index answers exactly as a scan of every household would."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from societas.engine.place_mentions import HouseholdMentions, SubstringIndex
from societas.scenarios.gridtown import grid_town
from societas.scenarios.scenario import load_scenario

_INVITED = re.compile(
    r"\b(invited me|invites me|asked me over|come over|came over|drop by|stop by"
    r"|at (?:his|her|their) (?:place|house|home))",
    re.IGNORECASE,
)


def _scan(residents: dict[str, list[str]], memories: Sequence[str]) -> set[str]:
    """The rule written plainly: every household against every memory."""

    def brings_up(memory: str, area: str, names: Sequence[str]) -> bool:
        if area.lower() in memory.lower():
            return True
        named = [n for n in names if re.search(rf"\b{re.escape(n)}\b", memory)]
        if not named:
            return False
        if _INVITED.search(memory):
            return True
        return any(re.search(rf"\bvisit\w*\s+{re.escape(n)}\b", memory) for n in named)

    found = set()
    for area, people in residents.items():
        names = [part for person in people for part in (person, person.split()[0])]
        if any(brings_up(memory, area, names) for memory in memories):
            found.add(area)
    return found


def _residents(homes: dict[str, str]) -> dict[str, list[str]]:
    residents: dict[str, list[str]] = {}
    for name, home in sorted(homes.items()):
        residents.setdefault(home.split(":", 1)[0], []).append(name)
    return residents


def _memories(residents: dict[str, list[str]], rng: random.Random, count: int) -> list[str]:
    people = [p for group in residents.values() for p in group]
    areas = list(residents)
    templates = [
        "{p} invited me over for tea.",
        "I want to visit {p} tomorrow.",
        "I will be visiting {f} after work.",
        "I want to invite {p} to my party at the cafe.",
        "Dinner at {a} tonight.",
        "dinner at {al} tonight",
        "{f}x said hello.",
        "Come over, said {f}.",
        "Saw {p} at the shop.",
        "We talked about {a}0 and more.",
        "{f}'s dog barked; visit {f}?",
        "Nothing much happened.",
        "VISIT {p}",
    ]
    out = []
    for _ in range(count):
        person = rng.choice(people)
        area = rng.choice(areas)
        text = rng.choice(templates).format(p=person, f=person.split()[0], a=area, al=area.lower())
        out.append(text)
    return out


def test_the_index_finds_the_households_a_scan_finds_in_the_town() -> None:
    town = load_scenario("town")
    residents = _residents({a.name: a.home for a in town.agents})
    mentions = HouseholdMentions(residents)
    rng = random.Random(3)
    memories = _memories(residents, rng, 400)
    assert any(_scan(residents, [m]) for m in memories)
    for memory in memories:
        assert mentions.brought_up([memory]) == _scan(residents, [memory]), memory
    assert mentions.brought_up(memories[:20]) == _scan(residents, memories[:20])
    assert mentions.brought_up([]) == set()


def test_the_index_finds_the_households_a_scan_finds_in_a_grid_town() -> None:
    town = grid_town(300, random.Random(1))
    residents = _residents({a.name: a.home for a in town.agents})
    mentions = HouseholdMentions(residents)
    memories = _memories(residents, random.Random(5), 300)
    hits = 0
    for memory in memories:
        expected = _scan(residents, [memory])
        hits += bool(expected)
        assert mentions.brought_up([memory]) == expected, memory
    assert hits > 50  # the memories do bring households up


def test_a_substring_index_finds_every_occurrence_short_keys_included() -> None:
    index = SubstringIndex(["home 1", "home 10", "ab", "", "cafe"])
    found = set(index.occurring("at home 10, a cab"))
    assert found == {"home 1", "home 10", "ab", ""}
