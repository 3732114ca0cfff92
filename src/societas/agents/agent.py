"""One generative agent: persona, memory stream, plan and what it is doing now.

The agent holds its own state and knows how to think (plan, refine, remember, reflect, answer);
the engine decides *when* it thinks and applies what it does to the world. Everything the agent
does that the run store should record goes to its ``outbox`` as ``(kind, data)`` pairs, which the
engine drains into events each step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from societas.agents.cognition.appointments import (
    appointment_memory,
    decide_commitment,
    same_appointment,
    without_appointment,
)
from societas.agents.cognition.day_planning import (
    check_agreement,
    plan_from_routine,
    replan_from_routine,
)
from societas.agents.cognition.decomposition import decompose_block
from societas.agents.cognition.emoji import EmojiMemo, emoji_for
from societas.agents.cognition.importance import ImportanceMemo, rate_importance
from societas.agents.cognition.plan_rules import check_plan
from societas.agents.cognition.planning import (
    SLEEPING,
    Action,
    Commitment,
    DayPlan,
    PlanBlock,
    plan_day,
    revise_plan,
    with_commitments,
    with_detour,
)
from societas.agents.cognition.reflection import reflect, should_reflect
from societas.agents.config import CognitionSettings
from societas.agents.persona import Persona
from societas.llm.types import LanguageModel
from societas.memory.records import MemoryKind
from societas.memory.retrieval import RetrievalWeights, retrieve, retrieve_each
from societas.memory.stream import MemoryStream
from societas.world.routine import Routine

MINUTES_PER_DAY = 24 * 60
# How long before an appointment its agent decides whether it still goes (time to walk there).
DECIDE_AHEAD_MINUTES = 30
# The legitimate places of a planning call, given the memories it sees (see engine.places).
PlacesFor = Callable[[Sequence[str]], Sequence[str]]
SLEEP_EMOJI = "😴"


def minute_of_day(moment: datetime) -> int:
    return moment.hour * 60 + moment.minute


@dataclass
class Agent:
    """A persona with a memory stream, a day plan and a current action."""

    persona: Persona
    home: str
    memory: MemoryStream = field(default_factory=MemoryStream)
    importance_memo: ImportanceMemo = field(default_factory=ImportanceMemo)
    emoji_memo: EmojiMemo = field(default_factory=EmojiMemo)
    relationships: dict[str, str] = field(default_factory=dict)
    plan: DayPlan | None = None
    actions: list[Action] = field(default_factory=list)
    current: Action | None = None
    current_place: str = ""
    commitments: list[Commitment] = field(default_factory=list)
    # The agent's usual day (from the scenario or derived once at the start of a run): the day
    # plan starts from it and falls back to it where the model's changes break the rules.
    routine: Routine | None = None
    last_talk_hours: dict[str, float] = field(default_factory=dict)
    # When (game hours) the agent last weighed reacting to each person; gates reaction calls.
    last_react_hours: dict[str, float] = field(default_factory=dict)
    last_seen: dict[str, str] = field(default_factory=dict)
    outbox: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.persona.name

    # ------------------------------------------------------------------------------ memory

    async def remember(
        self,
        llm: LanguageModel,
        texts: Sequence[str],
        kind: MemoryKind,
        now: datetime,
        *,
        known: Sequence[int | None] | None = None,
        evidence: Sequence[Sequence[int]] | None = None,
    ) -> list[int]:
        """Store memories: one embedding call, and at most one batched rating call.

        ``known`` gives importances already known (e.g. estimated by the planning call) and
        None where the model (or a routine rule) must rate the text.
        """
        if not texts:
            return []
        importances = await rate_importance(
            llm, self.persona, texts, memo=self.importance_memo, known=known
        )
        embeddings = await llm.embed(texts)
        ids = self.memory.add_many(kind, list(texts), now, list(importances), embeddings, evidence)
        for memory_id in ids:
            self._record_memory(memory_id)
        return ids

    def _record_memory(self, memory_id: int) -> None:
        """Queue the run store's ``memory`` event for a stored record."""
        kind, importance = self.memory.kind_and_importance(memory_id)
        self.outbox.append(
            (
                "memory",
                {
                    "id": memory_id,
                    "memory_kind": kind.label,
                    "text": self.memory.texts([memory_id])[0],
                    "importance": int(importance),
                    "evidence": list(self.memory.evidence_of(memory_id)),
                },
            )
        )

    async def recall(
        self,
        llm: LanguageModel,
        query: str,
        now: datetime,
        *,
        k: int,
        weights: RetrievalWeights,
        touch: bool = True,
    ) -> list[str]:
        """The texts of the ``k`` memories that best match ``query``.

        ``touch`` refreshes their last access (recalling keeps a memory fresh); interviews from
        outside the world pass False so asking does not change the agent.
        """
        return (await self.recall_each(llm, [query], now, k=k, weights=weights, touch=touch))[0]

    async def recall_each(
        self,
        llm: LanguageModel,
        queries: Sequence[str],
        now: datetime,
        *,
        k: int,
        weights: RetrievalWeights,
        touch: bool = True,
    ) -> list[list[str]]:
        """:meth:`recall` for several queries at the same moment: embedded in one request and
        scored in one pass (what one query brings to mind does not freshen it for the next)."""
        if not queries or k == 0 or len(self.memory) == 0:
            return [[] for _ in queries]
        vectors = await llm.embed(list(queries), is_query=True)
        if len(queries) == 1:
            found = [retrieve(self.memory, vectors[0], now, k=k, weights=weights, touch=touch)]
        else:
            found = retrieve_each(self.memory, vectors, now, k=k, weights=weights, touch=touch)
        return [self.memory.texts(ids) for ids in found]

    async def maybe_reflect(
        self,
        llm: LanguageModel,
        now: datetime,
        config: CognitionSettings,
        weights: RetrievalWeights,
    ) -> list[int]:
        """Reflect when enough important things have happened since the last reflection."""
        if not self.reflection_due(config):
            return []
        ids = await reflect(llm, self.persona, self.memory, now, weights=weights)
        for memory_id in ids:
            self._record_memory(memory_id)
        return ids

    def reflection_due(self, config: CognitionSettings) -> bool:
        """True when :meth:`maybe_reflect` would reflect now."""
        return config.reflection and should_reflect(self.memory, config.reflection_threshold)

    # ---------------------------------------------------------------------------- planning

    def needs_plan(self, now: datetime) -> bool:
        """True when :meth:`ensure_plan` would plan: the agent has no plan for ``now``'s day."""
        return self.plan is None or self.plan.day != now.date()

    def needs_action(self, now: datetime) -> bool:
        """True when :meth:`ensure_action` would pick a new action: none covers ``now``."""
        minute = minute_of_day(now)
        return self.current is None or not self.current.start <= minute < self.current.end

    def is_asleep(self, now: datetime) -> bool:
        return self.current is not None and self.current.description == SLEEPING

    async def ensure_plan(
        self,
        llm: LanguageModel,
        now: datetime,
        places: PlacesFor,
        config: CognitionSettings,
        weights: RetrievalWeights,
    ) -> None:
        """Make today's plan (one call, one more to repair it) when the agent has none for today.

        ``places`` gives the legitimate places for the memories the call sees. Appointments of
        past days are dropped (none is carried into a later day); only today's are planned.
        """
        if not self.needs_plan(now):
            return
        self.commitments = [
            c for c in self.commitments if c.day is not None and c.day >= now.date()
        ]
        if not config.planning:
            self.plan = _unplanned_day(now, self.home)
        else:
            memories = await self.recall(
                llm,
                f"{self.persona.first_name}'s plans, appointments and commitments for today",
                now,
                k=config.memories_per_prompt,
                weights=weights,
            )
            fixed = [c for c in self.commitments if c.fixed and c.day == now.date()]
            if self.routine is None:  # a run saved before routines: the whole day from the model
                self.plan = await plan_day(
                    llm,
                    self.persona,
                    day=now.date(),
                    places=places(memories),
                    home=self.home,
                    memories=memories,
                    commitments=fixed,
                )
            else:
                self.plan, check = await plan_from_routine(
                    llm,
                    self.persona,
                    self.routine,
                    day=now.date(),
                    home=self.home,
                    places=places(memories),
                    memories=memories,
                    commitments=fixed,
                )
                self.outbox.append(("plan_check", check.to_record()))
        self.actions = []
        self.current = None
        self._record_plan("new day")

    async def replan(
        self,
        llm: LanguageModel,
        now: datetime,
        reason: str,
        places: PlacesFor,
        config: CognitionSettings,
        weights: RetrievalWeights,
    ) -> None:
        """Change the rest of today's plan (one call, one more to repair it) after a reaction or
        a vague agreement."""
        if self.plan is None or not config.planning:
            return
        if minute_of_day(now) >= self.plan.sleep - 15:
            return
        memories = await self.recall(
            llm, reason, now, k=min(4, config.memories_per_prompt), weights=weights
        )
        ahead = [
            c
            for c in self.commitments
            if c.day in (None, now.date()) and (c.start is None or c.start >= minute_of_day(now))
        ]
        if self.routine is None:
            self.plan = await revise_plan(
                llm,
                self.persona,
                self.plan,
                now=now,
                reason=reason,
                places=places(memories),
                commitments=ahead,
                memories=memories,
            )
        else:
            self.plan, check = await replan_from_routine(
                llm,
                self.persona,
                self.routine,
                self.plan,
                now=now,
                reason=reason,
                places=places(memories),
                memories=memories,
                commitments=ahead,
            )
            self.outbox.append(("plan_check", check.to_record()))
        self.actions = []
        self.current = None
        self._record_plan(reason)

    async def take_on(
        self,
        llm: LanguageModel,
        commitments: Sequence[Commitment],
        now: datetime,
        reason: str,
        places: PlacesFor,
        config: CognitionSettings,
        weights: RetrievalWeights,
    ) -> None:
        """Adopt what the agent agreed to, remember each appointment as a plan, and replan when
        a vague one needs the model to find it a time."""
        known = list(self.commitments)
        needs_replan = self.adopt_commitments(commitments, now, reason)
        fresh = [c for c in self.commitments if c not in known]
        if fresh and config.memory:
            texts = [appointment_memory(c) for c in fresh]
            await self.remember(llm, texts, MemoryKind.PLAN, now, known=[5] * len(texts))
        if needs_replan:
            await self.replan(llm, now, reason, places, config, weights)

    def adopt_commitments(
        self, commitments: Sequence[Commitment], now: datetime, reason: str
    ) -> bool:
        """Take on agreed commitments for today; True when a model replan is still needed.

        Each is dated today (unless it has a date) and one whose time has passed is dropped.
        Commitments with a time and a place go straight into the plan (no model call), which is
        then checked like any plan; a vague one ("let's meet some time") asks for a replan.
        Before the time comes the agent decides whether it still goes
        (:meth:`decide_commitment`).
        """
        minute = minute_of_day(now)
        # Agreed to within the deciding window: the agreement itself is the decision.
        commitments = [
            c.model_copy(update={"decided": True})
            if c.start is not None and c.start - minute <= DECIDE_AHEAD_MINUTES
            else c
            for c in commitments
        ]
        dated = [
            c if c.day is not None else c.model_copy(update={"day": now.date()})
            for c in commitments
        ]
        fresh = [
            c
            for c in dated
            if not any(same_appointment(c, known) for known in self.commitments)
            and not (c.day == now.date() and c.start is not None and c.start + c.minutes <= minute)
        ]
        self.commitments.extend(fresh)
        if self.plan is None or not fresh:
            return False
        if any(not c.fixed for c in fresh):
            return True
        today = [c for c in fresh if c.day == self.plan.day]
        before = self.plan.block_at(minute)
        if self.routine is None:
            updated = with_commitments(self.plan, today, now)
        else:
            updated, check = check_agreement(self.plan, self.routine, today, now=now)
            if check.violations:
                self.outbox.append(("plan_check", check.to_record()))
        if updated == self.plan:
            return False
        self.plan = updated
        if self.plan.block_at(minute) != before:
            self.actions = []
            self.current = None
        self._record_plan(reason)
        return False

    def commitment_due(self, now: datetime, ahead_minutes: int) -> Commitment | None:
        """Today's first undecided appointment starting within ``ahead_minutes`` of ``now``."""
        minute = minute_of_day(now)
        due = [
            c
            for c in self.commitments
            if c.fixed
            and not c.decided
            and c.day == now.date()
            and c.start is not None
            and minute <= c.start <= minute + ahead_minutes
        ]
        return min(due, key=lambda c: c.start or 0) if due else None

    async def decide_commitment(
        self,
        llm: LanguageModel,
        now: datetime,
        config: CognitionSettings,
        weights: RetrievalWeights,
        ahead_minutes: int,
    ) -> None:
        """Shortly before an appointment, decide from one's own memories whether to still go
        (one short call). Going keeps it in the plan; declining gives its slot back to the
        routine (or to what was planned before) and is remembered."""
        commitment = self.commitment_due(now, ahead_minutes)
        if commitment is None or self.plan is None:
            return
        memories = await self.recall(
            llm, commitment.description, now, k=min(4, config.memories_per_prompt), weights=weights
        )
        decision = await decide_commitment(
            llm,
            self.persona,
            commitment,
            now=now,
            memories=memories,
            routine=self.routine,
            home=self.home,
        )
        index = self.commitments.index(commitment)
        self.commitments[index] = commitment.model_copy(update={"decided": True})
        self.outbox.append(("commitment_decision", decision.to_record(commitment)))
        if decision.go:
            return
        del self.commitments[index]
        self.plan = without_appointment(self.plan, commitment, self.routine, now)
        self.actions = []
        self.current = None
        self._record_plan(f"decided not to go: {commitment.description}")
        await self.remember(llm, [decision.memory(commitment)], MemoryKind.PLAN, now, known=[4])

    def take_detour(
        self, activity: str, place: str, minutes: int, now: datetime, reason: str
    ) -> bool:
        """Lay a reaction's detour ("check the boiler for 30 min") over the plan, no model call.

        The rest of the day resumes after it, so a reaction that changes the next hour does not
        need a model call to rewrite the whole day. False when there is no plan to change, or when
        the detour would break a rule of the routine the plan kept (cut a meal in two, skip
        work without a reason): the caller then asks for a checked replan instead.
        """
        if self.plan is None:
            return False
        updated = with_detour(self.plan, activity, place, minutes, now)
        if updated == self.plan or self._breaks_rules(updated, now, [reason, activity]):
            return False
        self.plan = updated
        self.actions = []
        self.current = None
        self._record_plan(reason or activity)
        return True

    def _breaks_rules(self, updated: DayPlan, now: datetime, reasons: list[str]) -> bool:
        """Whether ``updated`` breaks a plan rule the current plan keeps (the whole day is
        compared: a detour that cuts the meal under way in two leaves a second one ahead)."""
        routine, current = self.routine, self.plan
        if routine is None or current is None:
            return False
        places = {block.place for block in (*current.blocks, *updated.blocks)}
        fixed = [c for c in self.commitments if c.fixed and c.day == now.date()]

        def rules(plan: DayPlan) -> list[str]:
            return [
                v.rule
                for v in check_plan(
                    plan.blocks,
                    routine,
                    allowed=places,
                    reasons=reasons,
                    commitments=fixed,
                )
            ]

        before, after = rules(current), rules(updated)
        return any(after.count(rule) > before.count(rule) for rule in set(after))

    def _record_plan(self, reason: str) -> None:
        assert self.plan is not None
        self.outbox.append(
            (
                "plan",
                {
                    "date": self.plan.day.isoformat(),
                    "blocks": self.plan.to_records(),
                    "reason": reason,
                },
            )
        )

    async def ensure_action(
        self,
        llm: LanguageModel,
        now: datetime,
        objects_of: dict[str, list[str]],
        config: CognitionSettings,
        weights: RetrievalWeights,
    ) -> bool:
        """Make sure an action covers ``now``; refine the current block lazily (one call).

        Returns True when the action changed (the engine then moves the agent and records it).
        """
        assert self.plan is not None
        if not self.needs_action(now):
            return False
        minute = minute_of_day(now)
        self.actions = [a for a in self.actions if a.end > minute]
        if not self.actions:
            block = self.plan.block_at(minute)
            self.current_place = block.place
            self.actions = list(
                await self._refine(llm, block, minute, now, objects_of, config, weights)
            )
        else:
            self.current_place = self.plan.block_at(minute).place
        self.current = self.actions.pop(0)
        return True

    async def _refine(
        self,
        llm: LanguageModel,
        block: PlanBlock,
        minute: int,
        now: datetime,
        objects_of: dict[str, list[str]],
        config: CognitionSettings,
        weights: RetrievalWeights,
    ) -> Sequence[Action]:
        if block.activity == SLEEPING:
            return [_whole_block(block, minute)]
        if not config.planning or block.end - minute < 10:
            (emoji,) = await emoji_for(llm, [block.activity], self.emoji_memo)
            return [_whole_block(block, minute).model_copy(update={"emoji": emoji})]
        memories = await self.recall(
            llm, block.activity, now, k=min(4, config.memories_per_prompt), weights=weights
        )
        return await decompose_block(
            llm,
            self.persona,
            block,
            objects=objects_of.get(block.place, []),
            start=minute,
            memories=memories,
            emoji_memo=self.emoji_memo,
            rooms=list(objects_of),
        )

    # ------------------------------------------------------------------------------- state

    def get_state(self, *, memory: dict[str, Any] | None = None) -> dict[str, Any]:
        """The agent's whole state; ``memory`` stands in for the memory stream's own state (a
        checkpoint passes the part of it the run store does not hold yet)."""
        return {
            "persona": self.persona.model_dump(mode="json"),
            "home": self.home,
            "memory": self.memory.get_state() if memory is None else memory,
            "importance_memo": self.importance_memo.get_state(),
            "emoji_memo": self.emoji_memo.get_state(),
            "relationships": dict(self.relationships),
            "plan": self.plan.model_dump(mode="json") if self.plan else None,
            "actions": [a.model_dump(mode="json") for a in self.actions],
            "current": self.current.model_dump(mode="json") if self.current else None,
            "current_place": self.current_place,
            "commitments": [c.model_dump(mode="json") for c in self.commitments],
            "routine": self.routine.model_dump(mode="json") if self.routine else None,
            "last_talk_hours": dict(self.last_talk_hours),
            "last_react_hours": dict(self.last_react_hours),
            "last_seen": dict(self.last_seen),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Agent:
        return cls(
            persona=Persona.model_validate(state["persona"]),
            home=state["home"],
            memory=MemoryStream.from_state(state["memory"]),
            importance_memo=ImportanceMemo.from_state(state["importance_memo"]),
            emoji_memo=(
                EmojiMemo.from_state(state["emoji_memo"]) if "emoji_memo" in state else EmojiMemo()
            ),
            relationships=dict(state["relationships"]),
            plan=DayPlan.model_validate(state["plan"]) if state["plan"] else None,
            actions=[Action.model_validate(a) for a in state["actions"]],
            current=Action.model_validate(state["current"]) if state["current"] else None,
            current_place=state["current_place"],
            commitments=[Commitment.model_validate(c) for c in state["commitments"]],
            routine=Routine.model_validate(state["routine"]) if state.get("routine") else None,
            last_talk_hours={k: float(v) for k, v in state["last_talk_hours"].items()},
            last_react_hours={k: float(v) for k, v in state.get("last_react_hours", {}).items()},
            last_seen=dict(state["last_seen"]),
        )


def _whole_block(block: PlanBlock, minute: int) -> Action:
    start = max(block.start, minute)
    return Action(
        start=start,
        minutes=max(1, block.end - start),
        description=block.activity,
        emoji=SLEEP_EMOJI if block.activity == SLEEPING else "",
        importance=1 if block.activity == SLEEPING else 3,
    )


def _unplanned_day(now: datetime, home: str) -> DayPlan:
    """Without planning (an ablation) the agent just spends its waking day at home."""
    return DayPlan(
        day=now.date(),
        wake=7 * 60,
        sleep=22 * 60,
        home=home,
        blocks=(PlanBlock(start=7 * 60, end=22 * 60, activity="free time at home", place=home),),
    )
