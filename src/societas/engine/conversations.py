"""Conversations in the simulation loop: who may talk, how a talk is held, what it leaves behind.

A talk is held in rounds: in each round, the next speaker of every talk of the step writes their
line with their own call, on the shard that holds their memories (each speaker recalls by what
was just said to them), and every shard applies the lines in the same order, so they agree on
who speaks next and when a talk is over. Then each participant writes their takeaway with their
own call; the lines are logged (``conversation``, one ``utterance`` per line with its speaker,
listeners and text), news heard in them is traced (``news_heard``), each side remembers the talk
and adopts what it agreed to, and the talk occupies its participants for its length: their
action reads "talking with ..." (an ``action`` event, as the viewer shows it), after which they
resume what they were doing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from societas.agents.agent import Agent, minute_of_day
from societas.agents.cognition.dialogue import (
    Conversation,
    ConversationOutcome,
    Speaker,
    TalkState,
    finished,
    next_line,
    recall_query,
    take_away,
    view_of,
)
from societas.agents.cognition.planning import Action
from societas.agents.cognition.schemas import format_clock
from societas.engine.agent_turns import DAYS, RESULTS
from societas.llm.types import LLMOutputError
from societas.memory.records import MemoryKind
from societas.world.news_keywords import detect_news

if TYPE_CHECKING:
    from societas.engine.simulation import Simulation

TALKING = "talking with"
TALK_EMOJI = "💬"
TALK_IMPORTANCE = 4
MINUTES_PER_LINE = 1
"""Game minutes one line of a talk takes; a talk occupies its participants for whole steps."""
PLAN_LINES = 4
"""Blocks of today's plan (from now on) a speaker's prompt shows."""
MEMORIES_PER_LINE = 5
"""The most memories a speaker's line prompt holds (recalled afresh for every line)."""


@dataclass
class TalkRequest:
    """Two agents who will talk this step: ``initiator`` starts it, for ``reason``."""

    initiator: str
    partner: str
    reason: str

    @property
    def names(self) -> tuple[str, str]:
        return (self.initiator, self.partner)


def may_talk(agent: Agent, other: str, now: datetime, cooldown_hours: float) -> bool:
    """Whether ``agent`` may talk with ``other`` again (not within the talk cooldown)."""
    last = agent.last_talk_hours.get(other)
    return last is None or clock_hours(now) - last >= cooldown_hours


def is_talking(agent: Agent, now: datetime) -> bool:
    """Whether ``agent`` is still in a talk that occupies it at ``now``."""
    action = agent.current
    return (
        action is not None
        and action.description.startswith(TALKING)
        and action.start <= minute_of_day(now) < action.end
    )


def speaker_of(sim: Simulation, agent: Agent, others: tuple[str, ...]) -> Speaker:
    """``agent`` as its own calls see it: persona, how it sees ``others``, what it was doing
    and the rest of today's plan."""
    spec = sim.scenario.agent(agent.name)
    views = {
        other: view_of(other, spec.relationships.get(other, ""), agent.relationships.get(other, ""))
        for other in others
    }
    plan: tuple[str, ...] = ()
    if agent.plan is not None:
        minute = minute_of_day(sim.now)
        upcoming = [block for block in agent.plan.blocks if block.end > minute][:PLAN_LINES]
        plan = tuple(
            f"{format_clock(b.start)}-{format_clock(b.end)} {b.activity} at {b.place}"
            for b in upcoming
        )
    return Speaker(
        persona=agent.persona,
        views=views,
        activity=agent.current.description if agent.current else "",
        plan=plan,
    )


async def hold_conversations(sim: Simulation, requests: list[TalkRequest], now: datetime) -> None:
    """Hold this step's talks (an agent is in at most one) and settle what they leave behind."""
    if not requests:
        return
    config = sim.config
    talks = {r.initiator: TalkState(r.names, config.max_conversation_turns) for r in requests}
    reasons = {r.initiator: r.reason for r in requests}
    failed: dict[str, str] = {}
    speaking: dict[str, str] = {}  # this round: speaker -> the initiator of their talk

    async def say(agent: Agent) -> tuple[str, bool] | str:
        starter = speaking[agent.name]
        talk = talks[starter]
        others = tuple(n for n in talk.names if n != agent.name)
        memories = await agent.recall(
            sim.llm,
            recall_query(talk, agent.name, reasons[starter]),
            now,
            k=min(MEMORIES_PER_LINE, config.memories_per_prompt),
            weights=sim.weights,
        )
        try:
            return await next_line(
                sim.llm,
                speaker_of(sim, agent, others),
                talk,
                memories=memories,
                now=now,
                place=sim.world.describe_place(agent.current_place),
                reason=reasons[starter] if agent.name == starter else "",
            )
        except LLMOutputError as error:
            # The model could not write this line in a valid form: the talk ends here (an
            # unreachable model still stops the run).
            return str(error)[:300]

    while True:
        speaking.clear()
        for starter, talk in talks.items():
            if talk.next_speaker is not None:
                speaking[talk.next_speaker] = starter
        if not speaking:
            break
        lines = await sim.turns.for_each(say, only=sorted(speaking), share=RESULTS)
        for speaker in sorted(speaking):
            starter, line = speaking[speaker], lines[speaker]
            if isinstance(line, str):
                if not talks[starter].turns:
                    failed[starter] = line
                talks[starter].over = True
            else:
                talks[starter].add(*line)

    held = {s: t for s, t in talks.items() if s not in failed and t.turns}
    place_of = {s: sim.agents[s].current_place for s in talks}

    async def reflect_on(agent: Agent) -> ConversationOutcome:
        starter = next(s for s, t in held.items() if agent.name in t.names)
        talk = held[starter]
        others = tuple(n for n in talk.names if n != agent.name)
        try:
            return await take_away(
                sim.llm,
                speaker_of(sim, agent, others),
                talk,
                now=now,
                place=sim.world.describe_place(place_of[starter]),
                places=sim.choices.for_talk([sim.agents[n] for n in talk.names]),
            )
        except LLMOutputError:
            return ConversationOutcome(memory=f"I talked with {' and '.join(others)}.")

    talkers = sorted(name for talk in held.values() for name in talk.names)
    outcomes = await sim.turns.for_each(reflect_on, only=talkers, share=RESULTS)
    settled: dict[str, Conversation] = {}
    for request in requests:
        starter = request.initiator
        talk = talks[starter]
        if starter in failed or not talk.turns:
            _record_failure(sim, request, failed.get(starter, "nothing was said"), now)
            continue
        conversation = finished(
            talk, place_of[starter], {name: outcomes[name] for name in talk.names}
        )
        _record(sim, request, conversation, now)
        settled.update({name: conversation for name in talk.names})

    async def settle(agent: Agent) -> None:
        conversation = settled[agent.name]
        outcome = conversation.outcomes[agent.name]
        if config.memory:
            await agent.remember(
                sim.llm, [outcome.memory], MemoryKind.DIALOGUE, now, known=[outcome.importance]
            )
        # Without planning (an ablation) agreements never reshape the day.
        new = [c for c in outcome.commitments if c not in agent.commitments]
        if new and config.planning:
            partners = ", ".join(conversation.listeners_of(agent.name))
            reason = f"agreed with {partners}: " + "; ".join(c.line() for c in new)
            await agent.take_on(
                sim.llm, new, now, reason, sim.choices.planner(agent), config, sim.weights
            )

    await sim.turns.for_each(settle, only=sorted(settled), share=DAYS)
    for name in sorted(settled):
        conversation = settled[name]
        _occupy(sim, sim.agents[name], conversation, now)


def _record_failure(sim: Simulation, request: TalkRequest, error: str, now: datetime) -> None:
    _note_talk(sim, request.names, now)
    sim.recorder.emit(
        request.initiator,
        "conversation_failed",
        {
            "participants": list(request.names),
            "place": sim.agents[request.initiator].current_place,
            "error": error,
        },
    )


def _record(
    sim: Simulation, request: TalkRequest, conversation: Conversation, now: datetime
) -> None:
    """Log a talk line by line, pass on its news and each side's note about the other."""
    _note_talk(sim, request.names, now)
    conversation_id = f"{sim.step_index}:{request.initiator}:{request.partner}"
    names = list(conversation.participants)
    sim.recorder.emit(
        request.initiator,
        "conversation",
        {
            "id": conversation_id,
            "participants": names,
            "place": conversation.place,
            "summary": conversation.summary,
        },
    )
    for turn in conversation.turns:
        listeners = conversation.listeners_of(turn.speaker)
        sim.recorder.emit(
            turn.speaker,
            "utterance",
            {
                "conversation_id": conversation_id,
                "speaker": turn.speaker,
                "listeners": listeners,
                "text": turn.text,
            },
        )
        spread_news(sim, turn.speaker, listeners, turn.text, conversation_id)
    if not sim.config.memory:
        return
    for name in names:  # a relationship note is a memory too
        for other, note in sorted(conversation.outcomes[name].relationships.items()):
            if other != name and note:
                sim.agents[name].relationships[other] = note
                sim.recorder.emit(name, "relationship", {"other": other, "summary": note})


def _note_talk(sim: Simulation, names: tuple[str, ...], now: datetime) -> None:
    hours_now = clock_hours(now)
    for name in names:
        for other in names:
            if other != name:
                sim.agents[name].last_talk_hours[other] = hours_now


def _occupy(sim: Simulation, agent: Agent, conversation: Conversation, now: datetime) -> None:
    """Make the talk ``agent``'s action for its length (whole steps from ``now``); what it was
    doing resumes afterwards."""
    step = sim.world.clock.minutes_per_step
    lines = len(conversation.turns) * MINUTES_PER_LINE
    start = minute_of_day(now)
    talking = Action(
        start=start,
        minutes=max(1, -(-lines // step)) * step,
        description=f"{TALKING} {' and '.join(conversation.listeners_of(agent.name))}",
        emoji=TALK_EMOJI,
        importance=TALK_IMPORTANCE,
    )
    before = agent.current
    if before is not None and before.end > talking.end and not is_talking(agent, now):
        rest = before.model_copy(update={"start": talking.end, "minutes": before.end - talking.end})
        agent.actions.insert(0, rest)
    agent.current = talking
    sim.world.set_activity(agent.name, talking.description, talking.emoji)
    sim.recorder.emit(
        agent.name,
        "action",
        {
            "description": talking.description,
            "emoji": talking.emoji,
            "place": agent.current_place,
            "object": None,
            "start": now.replace(second=0, microsecond=0).isoformat(),
            "minutes": talking.minutes,
        },
    )


def spread_news(
    sim: Simulation, speaker: str, listeners: list[str], text: str, conversation_id: str
) -> None:
    """Trace the news items ``text`` mentions to the ``listeners`` who had not heard them."""
    for news in sim.scenario.news:
        if not detect_news(text, news.keywords):
            continue
        known = sim.knowers.setdefault(news.id, set())
        for listener in listeners:
            if listener not in known:
                known.add(listener)
                sim.recorder.emit(
                    listener,
                    "news_heard",
                    {
                        "news_id": news.id,
                        "source": speaker,
                        "conversation_id": conversation_id,
                        "source_knew": speaker in known,
                    },
                )


def clock_hours(moment: datetime) -> float:
    """``moment`` in hours, as agents note when they last talked with (or weighed) someone."""
    return moment.timestamp() / 3600.0
