"""The acquaintance network as the agents state it: "whom do you know, and how?".

The engine's "knows" network is the scenario's relationships plus every conversation; it says who
*could* know whom. This one asks each agent once at the end of a run, with a schema whose names
can only be the town's other agents, and reports the density of the named ties beside it, with
how many agents answered (an agent whose call failed names nobody: the failure counts against the
density instead of vanishing from its denominator).

Examples
--------
>>> stated = stated_network(
...     {"Ada": [Acquaintance(name="Bo", how="my neighbour")], "Bo": None, "Cy": []},
...     agents=["Ada", "Bo", "Cy"], known_edges={("Ada", "Bo"), ("Bo", "Ada")})
>>> stated.edges, stated.answered, stated.failed, round(stated.density, 3)
(1, 2, ['Bo'], 0.167)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from societas.agents.agent import Agent
from societas.agents.cognition.schemas import (
    bounded_params,
    bullet_list,
    moment_text,
    persona_variables,
)
from societas.llm.narrowing import Count, OneOf, narrow
from societas.llm.types import LanguageModel
from societas.memory.retrieval import RetrievalWeights
from societas.prompts import load_prompt

ACQUAINTANCE_PURPOSE = "acquaintances"
MAX_NAMED = 20  # the answer's length bound; a town of more agents caps each list here
MEMORIES = 8
TOKENS_PER_NAME = 30


class Acquaintance(BaseModel):
    name: str
    how: str = Field(max_length=80)


class AcquaintanceList(BaseModel):
    """The answer of ``acquaintances.yaml`` (names narrowed to the town's other agents)."""

    people: list[Acquaintance]


async def ask_acquaintances(
    llm: LanguageModel, agent: Agent, population: Sequence[str], now: datetime
) -> list[Acquaintance]:
    """One schema-constrained call: whom ``agent`` knows among ``population``, and how."""
    others = tuple(name for name in population if name != agent.name)
    if not others:
        return []
    memories = await agent.recall(
        llm, "people I know in town", now, k=MEMORIES, weights=RetrievalWeights(), touch=False
    )
    notes = [f"{other}: {note}" for other, note in sorted(agent.relationships.items())]
    limit = min(len(others), MAX_NAMED)
    schema = narrow(AcquaintanceList, {"people.name": OneOf(others), "people": Count(max=limit)})
    messages = load_prompt("societas.measurement", "acquaintances").render(
        **persona_variables(agent.persona),
        now=moment_text(now),
        memories=bullet_list([*notes, *memories]),
        people=bullet_list(list(others)),
    )
    answer = await llm.generate(
        messages,
        schema,
        purpose=ACQUAINTANCE_PURPOSE,
        params=bounded_params(None, 16 + TOKENS_PER_NAME * limit, temperature=0.0),
    )
    named: dict[str, Acquaintance] = {}
    for person in answer.people:
        named.setdefault(person.name, person)  # a name listed twice is one tie
    return list(named.values())


class StatedNetwork(BaseModel):
    """Directed ties the agents named, density |E| / (n(n-1)) over every agent of the run."""

    agents: int
    answered: int
    failed: list[str] = Field(description="agents whose question failed (they name nobody)")
    edges: int
    density: float
    in_known_network: int = Field(
        description="named ties that the scenario's relationships or a conversation support"
    )
    unsupported: list[tuple[str, str]] = Field(
        description="named ties with no relationship in the scenario and no conversation"
    )
    ties: dict[str, list[Acquaintance]]


def stated_network(
    answers: Mapping[str, Sequence[Acquaintance] | None],
    *,
    agents: Sequence[str],
    known_edges: Collection[tuple[str, str]],
) -> StatedNetwork:
    """The network of ``answers`` (agent -> named people; None: the question failed)."""
    members = set(agents)
    ties = {
        name: [p for p in people if p.name in members and p.name != name]
        for name, people in answers.items()
        if people is not None and name in members
    }
    edges = {(name, person.name) for name, people in ties.items() for person in people}
    possible = len(members) * (len(members) - 1)
    supported = edges & set(known_edges)
    failed = sorted(name for name in members if answers.get(name) is None)
    return StatedNetwork(
        agents=len(members),
        answered=len(members) - len(failed),
        failed=failed,
        edges=len(edges),
        density=len(edges) / possible if possible else 0.0,
        in_known_network=len(supported),
        unsupported=sorted(edges - supported),
        ties={name: ties[name] for name in sorted(ties)},
    )
