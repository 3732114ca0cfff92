"""The simulation loop: perceive -> remember -> decide -> act -> record, one game step at a time.

A step is ``minutes_per_step`` of game time (10 minutes in the shipped town). Most steps make no
model call: agents refine a plan block only when the previous one is used up, react only to
people they have not talked with recently, and rate only observations no rule covers. All model
calls of one phase of a step run concurrently; their results are applied in a fixed order, so a run
is reproducible from its seed and the response cache.

Everything that happens is written to the run store, step by step, in one transaction per step,
with a checkpoint of the whole world every few steps (memories the store already holds are not
saved again: see :mod:`societas.engine.checkpoints`); ``Simulation.resume`` continues a run that
was killed from its last checkpoint and ends with the same log as an uninterrupted run.

A world too big for one process can be split over shards that step in lockstep, each owning
some of the agents (:mod:`societas.engine.sharding`, :mod:`societas.engine.sharded_run`); the
same loop runs on every shard, and the shards' records merge into this one's.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from societas.agents.agent import DECIDE_AHEAD_MINUTES, Agent, minute_of_day
from societas.agents.cognition.importance import ImportanceMemo
from societas.agents.cognition.reaction import Reaction, SeenAgent, decide_reaction
from societas.engine.budget import BudgetExhausted, BudgetGuard, chat_cost
from societas.engine.checkpoints import StreamSaver
from societas.engine.config import SimulationConfig
from societas.engine.conversations import (
    TalkRequest,
    hold_conversations,
    is_talking,
    may_talk,
    spread_news,
)
from societas.engine.events import CALL_KEY, Event, EventKey, in_stable_order, order_key
from societas.engine.gc_thresholds import fewer_collections
from societas.engine.interventions import check_intervention, deliveries
from societas.engine.places import PlaceChoices
from societas.engine.run_directory import SCENARIO_COPY
from societas.engine.runstore import RunStore, encode_event
from societas.engine.sharding import LEAD, AgentExchange, Shipment
from societas.llm.affinity import affinity_scope
from societas.llm.endpoint_pool import endpoint_stats
from societas.llm.meter import CallRecord, Meter
from societas.llm.types import LanguageModel, LLMError
from societas.memory.records import MemoryKind
from societas.memory.retrieval import RetrievalWeights
from societas.memory.stream import MemoryStream
from societas.prompts import prompt_versions
from societas.world.phrasing import doing
from societas.world.scenario import Scenario
from societas.world.state import World

T = TypeVar("T")
STATE_VERSION = 1
ROUTINE_IMPORTANCE = 2
# What the shards of a world share after a phase (see _for_each_agent): (results, days).
Share = tuple[bool, bool]
EVERYTHING: Share = (True, True)
RESULTS: Share = (True, False)
DAYS: Share = (False, True)
MINDS_ONLY: Share = (False, False)  # the work changed only each agent's own memories

# Which agent a model call is made for, so the run store can attribute each call.
_acting_agent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "societas_acting_agent", default=None
)

StepCallback = Callable[["Simulation"], None]


def acting_agent() -> str | None:
    """The agent the current model call is made for (None outside an agent's turn).

    Backends may use it to route an agent's calls to one place (see ``societas.distributed``).
    """
    return _acting_agent.get()


class Simulation:
    """A world, its agents and the loop that moves them, writing everything to a run store.

    Examples
    --------
    >>> # doctest: +SKIP
    >>> llm = await open_llm("smollm2-135m")
    >>> sim = await Simulation.start(load_scenario("duo"), "runs/duo", llm)
    >>> await sim.run(hours=1)
    >>> sim.close()
    """

    def __init__(
        self,
        scenario: Scenario,
        world: World,
        agents: dict[str, Agent],
        llm: LanguageModel,
        store: RunStore | None,
        config: SimulationConfig,
        *,
        knowers: dict[str, set[str]] | None = None,
        meter: Meter | None = None,
        exchange: AgentExchange | None = None,
    ) -> None:
        if exchange is not None and store is not None:
            raise ValueError("a shard ships its records to the driver; it has no run store")
        self.scenario = scenario
        self.world = world
        self.agents = agents
        self.llm = llm
        self.store = store
        self.config = config
        self.weights = RetrievalWeights()
        self.knowers = knowers if knowers is not None else _initial_knowers(scenario)
        self._events: list[tuple[EventKey, Event]] = []
        # Events are keyed so that shards' logs merge into the order one process writes: code
        # every shard runs counts each event (recorded here or not), and a per-agent pass that
        # only owners run keys its events by agent (see _emit).
        self._emitted = 0
        self._pass_agent: str | None = None
        self._pass_index = 0
        # Sharded (see societas.engine.sharding): the agents this shard owns, and what it
        # would have committed, for the driver to collect.
        self.exchange = exchange
        self._owned = exchange.owned if exchange is not None else None
        # The agents this simulation steps, in name order (every agent, unless it is a shard).
        self._mine = sorted(self.agents if self._owned is None else self._owned)
        self.shipments: list[Shipment] = []
        # Agents whose action changed in the current step (set by the think phase).
        self._changed: set[str] = set()
        # The newest checkpoint holds the state *before* the current step (start, fork, end of
        # run), not after one; the next step must then checkpoint too (see ``step``).
        self._checkpoint_before_step = False
        self._saver = StreamSaver()
        self.choices = PlaceChoices(
            world,
            scenario.name,
            {name: agent.home for name, agent in agents.items()},
            config.max_plan_places,
        )
        self._objects_of = _objects_by_room(world, self.choices.rooms)
        self._unsubscribe: Callable[[], None] | None = None
        # Chat-model use this simulation recorded (what a budget counts; see chat_cost).
        self.tokens_spent = 0
        self.calls_spent = 0
        if meter is not None:
            self._unsubscribe = meter.subscribe(self._on_call)

    # ------------------------------------------------------------------ construction

    @classmethod
    async def start(
        cls,
        scenario: Scenario,
        out_dir: str | Path | None,
        llm: LanguageModel,
        config: SimulationConfig | None = None,
        *,
        meter: Meter | None = None,
        meta: dict[str, Any] | None = None,
        exchange: AgentExchange | None = None,
    ) -> Simulation:
        """Create the world and agents from ``scenario`` and a new run store in ``out_dir``.

        With ``out_dir=None`` nothing is recorded (experiments use throwaway forks this way).
        Initial memories are stored (embedded and rated) before the first step. With an
        ``exchange`` the simulation is one shard of a world (``out_dir`` must be None).
        """
        config = config or SimulationConfig()
        world = World.from_scenario(scenario)
        agents = {
            spec.persona.name: Agent(
                persona=spec.persona,
                home=spec.home,
                relationships=dict(spec.relationships),
                routine=scenario.routine_of(spec.name),
            )
            for spec in scenario.agent_specs()
        }
        store = None
        if out_dir is not None:
            store = RunStore.create(
                out_dir,
                run_meta(scenario, world, config, meta or {}),
                companions={SCENARIO_COPY: scenario.source_text},
            )
        sim = cls(scenario, world, agents, llm, store, config, meter=meter, exchange=exchange)
        now = world.clock.now
        # Without memory (an ablation) agents start from their persona alone.
        initial = scenario.initial_memories if config.memory else (lambda name: [])
        await sim._for_each_agent(
            lambda agent: agent.remember(llm, initial(agent.name), MemoryKind.OBSERVATION, now),
            share=MINDS_ONLY,
        )
        for name in sim._pass_over(sim._mine):
            routine = sim.agents[name].routine
            if routine is not None:  # what the audit checks the day's anchors against
                sim._emit(name, "routine", routine.to_record())
        sim._drain_outboxes()
        sim._commit(checkpoint=True)
        return sim

    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        llm: LanguageModel,
        scenario: Scenario,
        *,
        meter: Meter | None = None,
    ) -> Simulation:
        """Reopen a run at its last checkpoint, dropping anything recorded after it."""
        store, checkpoint = RunStore.reopen_at_checkpoint(run_dir)
        return cls.from_state(
            scenario, checkpoint.state, llm, store, meter=meter, checkpoint_step=checkpoint.step
        )

    @classmethod
    def from_state(
        cls,
        scenario: Scenario,
        state: dict[str, Any],
        llm: LanguageModel,
        store: RunStore | None,
        *,
        meter: Meter | None = None,
        exchange: AgentExchange | None = None,
        checkpoint_step: int | None = None,
    ) -> Simulation:
        """Rebuild a simulation from :meth:`get_state` (shares nothing with the original).

        A shard (``exchange``) needs the whole state; it keeps the memories of its own agents.
        ``checkpoint_step`` is the step of the run-store checkpoint the state comes from, when
        a run resumes from one.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported simulation state version {state.get('version')}")
        world = World.from_state(scenario, state["world"])
        owned = exchange.owned if exchange is not None else None
        agents = {
            name: Agent.from_state(a) if owned is None or name in owned else _shadow(a)
            for name, a in state["agents"].items()
        }
        config = SimulationConfig.model_validate(state["config"])
        knowers = {news: set(names) for news, names in state["knowers"].items()}
        sim = cls(
            scenario,
            world,
            agents,
            llm,
            store,
            config,
            knowers=knowers,
            meter=meter,
            exchange=exchange,
        )
        # A checkpoint of the state before a step (not after one) is taken again with that step.
        sim._checkpoint_before_step = sim.step_index == checkpoint_step
        return sim

    def get_state(self) -> dict[str, Any]:
        """The complete state of the simulation (JSON-serialisable)."""
        return self._state()

    def _state(self, saver: StreamSaver | None = None, step: int = 0) -> dict[str, Any]:
        """The state; with a ``saver``, memory streams as the parts its run store lacks.

        A shard gives its own agents only, and the world (and who knows the news) only on the
        lead shard: :func:`~societas.engine.sharding.merge_states` joins the parts.
        """
        agents = {
            name: agent.get_state(
                memory=None if saver is None else saver.part(name, agent.memory, step)
            )
            for name, agent in sorted(self.agents.items())
            if self._owns(name)
        }
        whole = self.exchange is None or self.exchange.index == LEAD
        return {
            "version": STATE_VERSION,
            "world": self.world.get_state() if whole else None,
            "agents": agents,
            "config": self.config.model_dump(mode="json"),
            "knowers": (
                {news: sorted(names) for news, names in sorted(self.knowers.items())}
                if whole
                else None
            ),
        }

    def fork(
        self, out_dir: str | Path | None = None, *, llm: LanguageModel | None = None
    ) -> Simulation:
        """An independent copy of the whole world now; ``out_dir`` gives it its own run store."""
        if self.exchange is not None:
            raise RuntimeError("a shard holds only its own agents' memories: fork the run instead")
        store = None
        if out_dir is not None:
            meta = dict(self.store.meta()) if self.store else {}
            meta["forked_from"] = str(self.store.directory) if self.store else None
            store = RunStore.create(out_dir, meta)
        twin = Simulation.from_state(self.scenario, self.get_state(), llm or self.llm, store)
        if store is not None:
            twin._commit(checkpoint=True)
        return twin

    def close(self, status: str = "stopped") -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.store is not None:
            store, self.store = self.store, None
            try:
                if (endpoints := endpoint_stats(self.llm)) is not None:
                    store.set_meta("endpoints", endpoints)
                store.set_meta("status", status)
            finally:
                store.close()

    # ------------------------------------------------------------------------ running

    @property
    def now(self) -> datetime:
        return self.world.clock.now

    @property
    def step_index(self) -> int:
        return self.world.clock.step

    async def run(
        self,
        *,
        hours: float | None = None,
        until: datetime | None = None,
        on_step: StepCallback | None = None,
        budget: BudgetGuard | None = None,
    ) -> None:
        """Step until ``until`` (or ``hours`` of game time from now); checkpoints at the end.

        With a ``budget``, it is checked before every step; when used up, the run checkpoints
        and raises :class:`~societas.engine.budget.BudgetExhausted` (resume it from there).
        """
        if until is None:
            if hours is None:
                raise ValueError("give hours or until")
            until = self.now + timedelta(hours=hours)
        with fewer_collections():
            while self.now < until:
                if budget is not None and (reason := budget.exceeded()) is not None:
                    self.checkpoint()
                    raise BudgetExhausted(reason, budget.spent())
                try:
                    await self.step()
                except LLMError:
                    self._record_failed_calls()
                    raise
                if on_step is not None:
                    on_step(self)
            self.checkpoint()

    def checkpoint(self) -> None:
        """Save the whole state where the run stands (the end of a run, or a pause)."""
        self._commit(checkpoint=True, force_empty=True)

    def schedule_intervention(self, time: datetime, kind: str, data: dict[str, Any]) -> None:
        """Inject an intervention (see :mod:`societas.engine.interventions`) at game ``time``.

        It is part of the world's state, so it survives checkpoints and is copied into forks
        made before it happens (fork first, then schedule it in one branch only).
        """
        check_intervention(kind, data, sorted(self.agents))
        self.world.schedule(time, kind, data)

    async def step(self) -> None:
        """Advance the world by one step (or over a stretch where every agent sleeps)."""
        now = self.now
        await self._apply_interventions(now)
        await self._think(now)
        self._act(now)
        seen = self._perceive(now)
        await self._remember_observations(seen, now)
        conversations = await self._react(seen, now)
        await hold_conversations(self, conversations, now)
        await self._for_each_agent(
            lambda agent: agent.maybe_reflect(self.llm, now, self.config, self.weights),
            only=[n for n in self._mine if self.agents[n].reflection_due(self.config)],
            share=MINDS_ONLY,
        )
        self._drain_outboxes()
        step, checkpoint = (
            self.step_index,
            (self.step_index + 1) % self.config.checkpoint_every == 0
            # Replace a checkpoint taken before this step, in the same transaction as the
            # step's events: else a resume from it would replay the step over its own events.
            or self._checkpoint_before_step,
        )
        # The checkpoint holds the state after the step, so a resumed run starts at the next one.
        self.world.clock.advance(self._steps_to_skip())
        self._commit(checkpoint=checkpoint, step=step, time=now)

    # ------------------------------------------------------------------------- phases

    async def _apply_interventions(self, now: datetime) -> None:
        due = self.world.pop_due()
        if not due:
            return
        memories: dict[str, list[tuple[str, int, MemoryKind]]] = {}
        for event in due:
            self._emit(None, "intervention", {"kind": event.kind, **event.data})
            if event.kind == "object_state":
                self.world.set_object_state(event.data["object"], event.data["state"])
                self._emit(None, "object_state", dict(event.data))
                continue
            for delivery in deliveries(event.kind, event.data, sorted(self.agents)):
                kind = MemoryKind.parse(delivery.kind)
                memories.setdefault(delivery.agent, []).append(
                    (delivery.text, delivery.importance, kind)
                )
                source = str(event.data.get("sender") or event.kind)
                spread_news(
                    self, source, [delivery.agent], delivery.text, f"intervention:{event.seq}"
                )
        if not self.config.memory:
            return

        async def remember(agent: Agent) -> None:
            for text, importance, kind in memories.get(agent.name, []):
                await agent.remember(self.llm, [text], kind, now, known=[importance])

        await self._for_each_agent(remember, only=sorted(memories), share=MINDS_ONLY)

    async def _think(self, now: datetime) -> None:
        # Only agents with something to do get a task: most keep their plan and action.
        await self._for_each_agent(
            lambda agent: agent.ensure_plan(
                self.llm, now, self._plan_places(agent), self.config, self.weights
            ),
            only=[n for n in self._mine if self.agents[n].needs_plan(now)],
            share=DAYS,
        )
        # Shortly before an appointment, each agent decides for itself whether it still goes.
        await self._for_each_agent(
            lambda agent: agent.decide_commitment(
                self.llm, now, self.config, self.weights, DECIDE_AHEAD_MINUTES
            ),
            only=[
                n
                for n in self._mine
                if self.agents[n].commitment_due(now, DECIDE_AHEAD_MINUTES) is not None
            ],
            share=DAYS,
        )
        changed = await self._for_each_agent(
            lambda agent: agent.ensure_action(
                self.llm, now, self._objects_of, self.config, self.weights
            ),
            only=[n for n in self._mine if self.agents[n].needs_action(now)],
        )
        self._changed = {name for name, did in changed.items() if did}

    def _act(self, now: datetime) -> None:
        budget = int(self.config.walk_tiles_per_minute * self.world.clock.minutes_per_step)
        for name in sorted(self.agents):
            agent = self.agents[name]
            action = agent.current
            assert action is not None
            place = action.object if action.object else agent.current_place
            moved = self.world.walk(name, place, max_tiles=budget)
            if moved:
                self._emit(
                    name,
                    "move",
                    {"tile": list(self.world.position(name)), "place": self.world.place_of(name)},
                )
            self.world.set_activity(name, action.description, action.emoji)
            if name not in self._changed:
                continue
            self._emit(
                name,
                "action",
                {
                    "description": action.description,
                    "emoji": action.emoji,
                    "place": agent.current_place,
                    "object": action.object,
                    "start": _at_minute(now, action.start).isoformat(),
                    "minutes": action.minutes,
                },
            )
            if action.object and action.object_state:
                self.world.set_object_state(action.object, action.object_state)
                self._emit(
                    None, "object_state", {"object": action.object, "state": action.object_state}
                )

    def _perceive(self, now: datetime) -> dict[str, list[tuple[str, int]]]:
        """New things each agent notices this step, with their importance.

        Seeing someone do something is remembered with the importance the actor's own planning
        call gave that action, and a changed object is routine, so perception costs no model call.
        """
        seen: dict[str, list[tuple[str, int]]] = {}
        for name in self._pass_over(self._mine):  # on a shard, each agent's owner looks for it
            agent = self.agents[name]
            if agent.is_asleep(now):
                seen[name] = []
                continue
            perception = self.world.perceive(
                name, radius=self.config.vision_radius, limit=self.config.max_perceived
            )
            fresh: list[tuple[str, int]] = []
            for key, text in perception.items(limit=self.config.max_perceived):
                if agent.last_seen.get(key) != text:
                    agent.last_seen[key] = text
                    fresh.append((text, self._importance_of_sight(key)))
            seen[name] = fresh
            for text, _ in fresh:
                self._emit(name, "observation", {"text": text})
        return seen

    def _importance_of_sight(self, key: str) -> int:
        kind, _, subject = key.partition(":")
        other = self.agents.get(subject) if kind == "agent" else None
        if other is not None and other.current is not None:
            return other.current.importance
        return ROUTINE_IMPORTANCE

    async def _remember_observations(
        self, seen: dict[str, list[tuple[str, int]]], now: datetime
    ) -> None:
        if not self.config.memory:
            return

        async def remember(agent: Agent) -> None:
            sights = list(seen.get(agent.name, []))
            if agent.name in self._changed and agent.current is not None:
                sights.append(
                    (doing(agent.name, agent.current.description), agent.current.importance)
                )
            await agent.remember(
                self.llm,
                [text for text, _ in sights],
                MemoryKind.OBSERVATION,
                now,
                known=[importance for _, importance in sights],
            )

        noticed = [n for n in sorted(self.agents) if seen.get(n) or n in self._changed]
        await self._for_each_agent(remember, only=noticed, share=MINDS_ONLY)

    async def _react(
        self, seen: dict[str, list[tuple[str, int]]], now: datetime
    ) -> list[TalkRequest]:
        """Agents who noticed something new decide what to do about the people in view they have
        not talked with lately. All of those count as weighed (none comes up again within the
        react cooldown), but the prompt lists only the ``max_perceived`` nearest, so a reaction
        in a crowd costs what one among a few people does."""
        candidates: dict[str, list[str]] = {}
        for name in self._mine:
            agent = self.agents[name]
            if agent.is_asleep(now) or is_talking(agent, now) or not seen.get(name):
                continue
            others = [
                other
                for other in self.world.agents_near(name, self.config.vision_radius)
                if not self.agents[other].is_asleep(now)
                and not is_talking(self.agents[other], now)
                and may_talk(agent, other, now, self.config.talk_cooldown_hours)
                and self._may_react(name, other, now)
            ]
            if others:
                candidates[name] = others
        hours_now = _hours(now)
        for name, others in candidates.items():
            for other in others:
                self.agents[name].last_react_hours[other] = hours_now

        async def decide(agent: Agent) -> Any:
            others = candidates[agent.name][: self.config.max_perceived]
            recalled = await agent.recall_each(self.llm, others, now, k=3, weights=self.weights)
            visible = [
                SeenAgent(name=other, activity=self.world.activity(other), memories=tuple(texts))
                for other, texts in zip(others, recalled, strict=True)
            ]
            return await decide_reaction(
                self.llm,
                agent.persona,
                now=now,
                activity=agent.current.description if agent.current else "",
                observation="; ".join(text for text, _ in seen[agent.name]),
                visible=visible,
                place=self.world.describe_place(agent.current_place),
                places=self.choices.detour(agent),
            )

        reactions = await self._for_each_agent(decide, only=sorted(candidates), share=RESULTS)
        busy: set[str] = set()
        conversations: list[TalkRequest] = []
        changes: dict[str, Reaction] = {}
        for name in sorted(reactions):
            reaction = reactions[name]
            self._emit(name, "reaction", reaction.to_record())
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
            if reaction.detour and self._take_detour(agent.name, reaction, now):
                return
            await agent.replan(
                self.llm,
                now,
                reaction.reason or "something came up",
                self._plan_places(agent),
                self.config,
                self.weights,
            )

        await self._for_each_agent(change_course, only=sorted(changes), share=DAYS)
        return conversations

    def _may_react(self, name: str, other: str, now: datetime) -> bool:
        """Whether ``name`` may weigh reacting to ``other`` again (one call per pair per while)."""
        last = self.agents[name].last_react_hours.get(other)
        return last is None or _hours(now) - last >= self.config.react_cooldown_hours

    def _plan_places(self, agent: Agent) -> Callable[[Sequence[str]], list[str]]:
        """The rooms ``agent`` may plan for, given the memories its planning call sees."""
        return lambda memories: self.choices.legitimate(agent, memories)

    def _talk_places(self, agents: Sequence[Agent]) -> list[str]:
        """Where a conversation may set a meeting: the places its participants may plan for."""
        return self.choices.in_order(p for a in agents for p in self.choices.legitimate(a))

    def _take_detour(self, name: str, reaction: Reaction, now: datetime) -> bool:
        if reaction.place is None:
            return False
        return self.agents[name].take_detour(
            reaction.detour, reaction.place, reaction.minutes, now, reaction.reason
        )

    # ------------------------------------------------------------------------ helpers

    def _steps_to_skip(self) -> int:
        """Skip ahead while every agent sleeps (nothing can happen), else one step."""
        now = self.now
        if not all(agent.is_asleep(now) for agent in self.agents.values()):
            return 1
        wake = min(
            (agent.current.end for agent in self.agents.values() if agent.current is not None),
            default=minute_of_day(now) + self.world.clock.minutes_per_step,
        )
        minutes = max(wake - minute_of_day(now), self.world.clock.minutes_per_step)
        return max(1, minutes // self.world.clock.minutes_per_step)

    async def _for_each_agent(
        self,
        work: Callable[[Agent], Awaitable[T]],
        *,
        only: Sequence[str] | None = None,
        share: Share = EVERYTHING,
    ) -> dict[str, T]:
        """Run ``work`` for each agent (of ``only``) at once; the results by agent name.

        A shard runs it for its own agents, then shares what ``share`` says with the other
        shards (every shard calls this at the same points of a step): the results, which
        callers then read for every agent, and the agents' days (plan, action, place), which
        the work may have changed. Work that changes only an agent's own memories shares
        nothing, and its results are then this shard's own.
        """
        names = sorted(self.agents) if only is None else list(only)
        mine = names if self._owned is None else [n for n in names if n in self._owned]
        results = await asyncio.gather(*(self._with_agent(n, work(self.agents[n])) for n in mine))
        done = dict(zip(mine, results, strict=True))
        results_too, days_too = share
        if self.exchange is None or not (results_too or days_too):
            return done
        shared = await self.exchange.gather(
            {
                name: (
                    result if results_too else None,
                    _public_state(self.agents[name]) if days_too else None,
                )
                for name, result in done.items()
            }
        )
        if days_too:
            for name, (_, public) in shared.items():
                if name not in done:
                    _take_public_state(self.agents[name], public)
        return {name: shared[name][0] for name in sorted(shared)}

    def _owns(self, name: str) -> bool:
        """Whether this simulation steps agent ``name`` (always, unless it is a shard)."""
        return self._owned is None or name in self._owned

    async def _with_agent(self, name: str, work: Awaitable[T]) -> T:
        token = _acting_agent.set(name)
        try:
            with affinity_scope(name):  # the agent's calls share a server slot and its prefix
                return await work
        finally:
            _acting_agent.reset(token)

    def _on_call(self, record: CallRecord) -> None:
        agent = _acting_agent.get()
        if agent is not None and not self._owns(agent):
            return  # shards sharing one model's meter: the call is its agent's owner's to record
        tokens, calls = chat_cost(record)
        self.tokens_spent += tokens
        self.calls_spent += calls
        self._events.append(
            (
                CALL_KEY,
                Event(
                    step=self.step_index,
                    time=self.now,
                    kind="llm_call",
                    agent=agent,
                    data=record.event_data(),
                ),
            )
        )

    def _record_failed_calls(self) -> None:
        """Keep the model calls of a step that failed (with their errors) and drop the rest.

        The step's other events never happened as far as the run is concerned; a resume from
        the last checkpoint replaces these records with those of the step run again.
        """
        calls = [event for _, event in self._events if event.kind == "llm_call"]
        self._events = []
        if self.store is not None and calls:
            self.store.commit_step(self.step_index, self.now, calls)

    def _emit(self, agent: str | None, kind: str, data: dict[str, Any]) -> None:
        if self._pass_agent is None:
            self._emitted += 1
            key: EventKey = (self._emitted, "", 0)
        else:
            self._pass_index += 1
            key = (self._emitted, self._pass_agent, self._pass_index)
        if self._owned is not None and not (
            agent in self._owned if agent is not None else self.exchange_index == LEAD
        ):
            return  # the shard that owns the agent (or the lead, for the world) records it
        # Built unvalidated: the engine's own fields are well-typed, a large town emits hundreds
        # of thousands of events an hour, and the run store checks each kind as it writes it.
        self._events.append(
            (
                key,
                Event.model_construct(
                    step=self.step_index, time=self.now, kind=kind, agent=agent, data=data
                ),
            )
        )

    @property
    def exchange_index(self) -> int:
        """This shard's number (:data:`~societas.engine.sharding.LEAD` when not sharded)."""
        return self.exchange.index if self.exchange is not None else LEAD

    def _pass_over(self, names: Sequence[str]) -> Iterator[str]:
        """``names`` (in name order) for a pass in which each agent emits its own events.

        The pass takes one place in the log, the same on every shard whichever agents it
        owns, and within it each agent's events go in its turn.
        """
        self._emitted += 1
        try:
            for name in names:
                self._pass_agent, self._pass_index = name, 0
                yield name
        finally:
            self._pass_agent = None

    def _drain_outboxes(self) -> None:
        # Only owned agents remember, so only their outboxes fill.
        for name in self._pass_over(self._mine):
            agent = self.agents[name]
            for kind, data in agent.outbox:
                self._emit(name, kind, data)
            agent.outbox.clear()

    def _commit(
        self,
        *,
        checkpoint: bool,
        step: int | None = None,
        time: datetime | None = None,
        force_empty: bool = False,
    ) -> None:
        """Write the pending events (of ``step``, default the current one) in one transaction.

        A shard ships them (and its part of the checkpoint) to its driver instead.
        """
        if self.store is None and self.exchange is None:
            self._events.clear()
            return
        keyed, self._events = self._events, []
        before_step, step = step is None, self.step_index if step is None else step
        # A checkpoint saves only the memories the store does not hold yet (see StreamSaver).
        state = self._state(self._saver, step) if checkpoint else None
        if checkpoint:
            self._checkpoint_before_step = before_step
        if self.store is None:
            # The driver writes what all shards shipped, or the run stops there. Events go
            # encoded: checking and encoding them is the shards' work, not the driver's.
            rows = [(order_key(key, event), encode_event(event, step)) for key, event in keyed]
            self.shipments.append(Shipment(step, time or self.now, rows, state, force_empty))
            self._saver.committed()
            return
        events = in_stable_order(keyed)
        if not events and state is None and not force_empty:
            return
        try:
            self.store.commit_step(step, time or self.now, events, state)
        except BaseException:
            self._saver.discard()
            raise
        self._saver.committed()


def _objects_by_room(world: World, rooms: Sequence[str]) -> dict[str, list[str]]:
    """The (sorted) objects of each room, from one pass over all objects, not one per room."""
    objects_of: dict[str, list[str]] = {room: [] for room in rooms}
    for address in world.places.objects():
        room = address.rsplit(":", 1)[0]
        if room in objects_of:
            objects_of[room].append(address)
    return objects_of


def _public_state(agent: Agent) -> tuple[Any, ...]:
    """What other shards read of an agent: what it is doing, where, and what it agreed to.

    Its plan and the rest of its day stay with its owner, the only shard that plans for it.
    """
    return (agent.current, agent.current_place, tuple(agent.commitments))


def _take_public_state(agent: Agent, public: tuple[Any, ...]) -> None:
    current, agent.current_place, commitments = public
    agent.current, agent.commitments = current, list(commitments)


def _shadow(state: dict[str, Any]) -> Agent:
    """Another shard's agent as this shard keeps it: everything but its memories."""
    return Agent.from_state(
        {
            **state,
            "memory": MemoryStream().get_state(),
            "importance_memo": ImportanceMemo().get_state(),
        }
    )


def _initial_knowers(scenario: Scenario) -> dict[str, set[str]]:
    return {news.id: set(news.initial_knowers) for news in scenario.news}


def run_meta(
    scenario: Scenario, world: World, config: SimulationConfig, extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "scenario": scenario.name,
        "seed": config.seed,
        "config": config.model_dump(mode="json"),
        "start_time": world.clock.now.isoformat(),
        "minutes_per_step": world.clock.minutes_per_step,
        "agents": [
            {
                "name": spec.persona.name,
                "persona": spec.persona.model_dump(mode="json"),
                "home": spec.home,
            }
            for spec in scenario.agent_specs()
        ],
        "map": world.map_export(),
        "prompts": prompt_versions(),
        "status": "running",
        **extra,
    }


def _hours(moment: datetime) -> float:
    return moment.timestamp() / 3600.0


def _at_minute(now: datetime, minute: int) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(minutes=minute)
