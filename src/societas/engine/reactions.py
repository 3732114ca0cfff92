"""How agents react to the people they see: carry on, talk, or change course.

Agents who noticed something new decide what to do about the people in view they have not
talked with lately. All of those count as weighed (none comes up again within the react
cooldown), but the prompt lists only the ``max_perceived`` nearest, so a reaction in a crowd
costs what one among a few people does. A talk becomes a :class:`TalkRequest` for this step's
conversations; a change of course is a detour to a place at once, or a new plan.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from societas.agents.agent import Agent
from societas.agents.cognition.reaction import Reaction, SeenAgent, decide_reaction
from societas.engine.agent_turns import DAYS, RESULTS
from societas.engine.conversations import TalkRequest, clock_hours, is_talking, may_talk
from societas.engine.perception import Sights

if TYPE_CHECKING:
    from societas.engine.simulation import Simulation


async def react(sim: Simulation, seen: Sights, now: datetime) -> list[TalkRequest]:
    """Each agent who saw something new reacts to the people in view; the talks this causes."""
    config = sim.config
    candidates: dict[str, list[str]] = {}
    for name in sim.turns.mine:
        agent = sim.agents[name]
        if agent.is_asleep(now) or is_talking(agent, now) or not seen.get(name):
            continue
        others = [
            other
            for other in sim.world.agents_near(name, config.vision_radius)
            if not sim.agents[other].is_asleep(now)
            and not is_talking(sim.agents[other], now)
            and may_talk(agent, other, now, config.talk_cooldown_hours)
            and _may_react(sim, name, other, now)
        ]
        if others:
            candidates[name] = others
    hours_now = clock_hours(now)
    for name, others in candidates.items():
        for other in others:
            sim.agents[name].last_react_hours[other] = hours_now

    async def decide(agent: Agent) -> Any:
        others = candidates[agent.name][: config.max_perceived]
        recalled = await agent.recall_each(sim.llm, others, now, k=3, weights=sim.weights)
        visible = [
            SeenAgent(name=other, activity=sim.world.activity(other), memories=tuple(texts))
            for other, texts in zip(others, recalled, strict=True)
        ]
        return await decide_reaction(
            sim.llm,
            agent.persona,
            now=now,
            activity=agent.current.description if agent.current else "",
            observation="; ".join(text for text, _ in seen[agent.name]),
            visible=visible,
            place=sim.world.describe_place(agent.current_place),
            places=sim.choices.detour(agent),
        )

    reactions = await sim.turns.for_each(decide, only=sorted(candidates), share=RESULTS)
    busy: set[str] = set()
    conversations: list[TalkRequest] = []
    changes: dict[str, Reaction] = {}
    for name in sorted(reactions):
        reaction = reactions[name]
        sim.recorder.emit(name, "reaction", reaction.to_record())
        if (
            reaction.choice == "talk"
            and reaction.target
            and name not in busy
            and reaction.target not in busy
        ):
            busy.update({name, reaction.target})
            conversations.append(TalkRequest(name, reaction.target, reaction.reason))
        elif reaction.choice == "replan":
            changes[name] = reaction

    async def change_course(agent: Agent) -> None:
        reaction = changes[agent.name]
        if reaction.detour and _take_detour(agent, reaction, now):
            return
        await agent.replan(
            sim.llm,
            now,
            reaction.reason or "something came up",
            sim.choices.planner(agent),
            config,
            sim.weights,
        )

    await sim.turns.for_each(change_course, only=sorted(changes), share=DAYS)
    return conversations


def _may_react(sim: Simulation, name: str, other: str, now: datetime) -> bool:
    """Whether ``name`` may weigh reacting to ``other`` again (one call per pair per while)."""
    last = sim.agents[name].last_react_hours.get(other)
    return last is None or clock_hours(now) - last >= sim.config.react_cooldown_hours


def _take_detour(agent: Agent, reaction: Reaction, now: datetime) -> bool:
    if reaction.place is None:
        return False
    return agent.take_detour(
        reaction.detour, reaction.place, reaction.minutes, now, reaction.reason
    )
