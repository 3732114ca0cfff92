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

The phases live beside the loop: :mod:`~societas.engine.interventions`,
:mod:`~societas.engine.perception`, :mod:`~societas.engine.reactions`,
:mod:`~societas.engine.conversations`; where agents may go is :mod:`~societas.engine.places`.
Every phase runs its agents' work through :class:`~societas.engine.agent_turns.AgentTurns` and
records what happened through :class:`~societas.engine.recorder.StepRecorder`; checkpoints hold
:mod:`~societas.engine.snapshots`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from societas.agents.agent import DECIDE_AHEAD_MINUTES, Agent, minute_of_day
from societas.engine.agent_turns import DAYS, MINDS_ONLY, AgentTurns, acting_agent
from societas.engine.budget import BudgetExhausted, BudgetGuard, chat_cost
from societas.engine.checkpoints import StreamSaver
from societas.engine.config import SimulationConfig
from societas.engine.conversations import hold_conversations
from societas.engine.gatherings import host_appointments
from societas.engine.gc_thresholds import fewer_collections
from societas.engine.interventions import apply_due_interventions, check_intervention
from societas.engine.perception import perceive, remember_observations
from societas.engine.places import PlaceChoices
from societas.engine.reactions import react
from societas.engine.recorder import StepRecorder
from societas.engine.run_directory import SCENARIO_COPY
from societas.engine.run_meta import run_meta
from societas.engine.runstore import RunStore
from societas.engine.sharding import LEAD, AgentExchange
from societas.engine.snapshots import (
    agents_from_state,
    check_state_version,
    knowers_from_state,
    simulation_state,
)
from societas.llm.endpoint_pool import endpoint_stats
from societas.llm.meter import CallRecord, Meter
from societas.llm.types import LanguageModel, LLMError
from societas.memory.records import MemoryKind
from societas.memory.retrieval import RetrievalWeights
from societas.scenarios.scenario import Scenario
from societas.world.state import World

StepCallback = Callable[["Simulation"], None]


class Simulation:
    """A world, its agents and the loop that moves them, writing everything to a run store.

    Examples
    --------
    >>> import asyncio
    >>> from societas.llm.registry import open_llm
    >>> from societas.scenarios.scenario import load_scenario
    >>> async def one_hour() -> Simulation:
    ...     async with open_llm("fake:demo", use_cache=False) as llm:
    ...         sim = await Simulation.start(load_scenario("duo"), "runs/duo", llm)
    ...         await sim.run(hours=1)
    ...         sim.close()
    ...     return sim
    >>> sim = asyncio.run(one_hour())
    >>> sim.now, sorted(sim.agents)
    (datetime.datetime(2026, 3, 2, 9, 0), ['Iris Vance', 'Noah Bell'])
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
        # Sharded (see societas.engine.sharding): this shard's link to the others.
        self.exchange = exchange
        self.turns = AgentTurns(agents, exchange)
        self.recorder = StepRecorder(
            world.clock, self.turns.owned, exchange is None or exchange.index == LEAD
        )
        # Agents whose action changed in the current step (set by the think phase).
        self._changed: set[str] = set()
        # The newest checkpoint holds the state *before* the current step (start, fork, end of
        # run), not after one; the next step must then checkpoint too (see ``step``).
        self._checkpoint_before_step = False
        self.choices = PlaceChoices(
            world,
            scenario.name,
            {name: agent.home for name, agent in agents.items()},
            config.max_plan_places,
        )
        self._objects_of = self.choices.objects_by_room()
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
        for host, appointment in host_appointments(scenario):
            if host in agents:  # a gathering is its host's own appointment, from the scenario
                agents[host].commitments.append(appointment)
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
        await sim.turns.for_each(
            lambda agent: agent.remember(llm, initial(agent.name), MemoryKind.OBSERVATION, now),
            share=MINDS_ONLY,
        )
        for name in sim.recorder.pass_over(sim.turns.mine):
            routine = sim.agents[name].routine
            if routine is not None:  # what the audit checks the day's anchors against
                sim.recorder.emit(name, "routine", routine.to_record())
        sim.recorder.drain_outboxes(sim.agents, sim.turns.mine)
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
        check_state_version(state)
        world = World.from_state(scenario, state["world"])
        agents = agents_from_state(state, exchange.owned if exchange is not None else None)
        config = SimulationConfig.model_validate(state["config"])
        knowers = knowers_from_state(state)
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
        whole = self.exchange is None or self.exchange.index == LEAD
        return simulation_state(
            self.world if whole else None,
            {name: agent for name, agent in self.agents.items() if self.turns.owns(name)},
            self.config,
            self.knowers if whole else None,
            saver,
            step,
        )

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
                    self.recorder.record_failed_calls(self.store)
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
        await apply_due_interventions(self, now)
        await self._think(now)
        self._act(now)
        seen = perceive(self, now)
        await remember_observations(self, seen, now, self._changed)
        conversations = await react(self, seen, now)
        await hold_conversations(self, conversations, now)
        await self.turns.for_each(
            lambda agent: agent.maybe_reflect(self.llm, now, self.config, self.weights),
            only=[n for n in self.turns.mine if self.agents[n].reflection_due(self.config)],
            share=MINDS_ONLY,
        )
        self.recorder.drain_outboxes(self.agents, self.turns.mine)
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

    async def _think(self, now: datetime) -> None:
        # Only agents with something to do get a task: most keep their plan and action.
        await self.turns.for_each(
            lambda agent: agent.ensure_plan(
                self.llm, now, self.choices.planner(agent), self.config, self.weights
            ),
            only=[n for n in self.turns.mine if self.agents[n].needs_plan(now)],
            share=DAYS,
        )
        # Shortly before an appointment, each agent decides for itself whether it still goes.
        await self.turns.for_each(
            lambda agent: agent.decide_commitment(
                self.llm, now, self.config, self.weights, DECIDE_AHEAD_MINUTES
            ),
            only=[
                n
                for n in self.turns.mine
                if self.agents[n].commitment_due(now, DECIDE_AHEAD_MINUTES) is not None
            ],
            share=DAYS,
        )
        changed = await self.turns.for_each(
            lambda agent: agent.ensure_action(
                self.llm, now, self._objects_of, self.config, self.weights
            ),
            only=[n for n in self.turns.mine if self.agents[n].needs_action(now)],
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
                self.recorder.emit(
                    name,
                    "move",
                    {"tile": list(self.world.position(name)), "place": self.world.place_of(name)},
                )
            self.world.set_activity(name, action.description, action.emoji)
            if name not in self._changed:
                continue
            self.recorder.emit(
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
                self.recorder.emit(
                    None, "object_state", {"object": action.object, "state": action.object_state}
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

    def _on_call(self, record: CallRecord) -> None:
        agent = acting_agent()
        if agent is not None and not self.turns.owns(agent):
            return  # shards sharing one model's meter: the call is its agent's owner's to record
        tokens, calls = chat_cost(record)
        self.tokens_spent += tokens
        self.calls_spent += calls
        self.recorder.record_call(agent, record.event_data())

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
            self.recorder.discard()
            return
        before_step, step = step is None, self.step_index if step is None else step
        # A checkpoint saves only the memories the store does not hold yet (see StreamSaver).
        state = self._state(self.recorder.saver, step) if checkpoint else None
        if checkpoint:
            self._checkpoint_before_step = before_step
        self.recorder.commit(self.store, step, time or self.now, state, force_empty)


def _initial_knowers(scenario: Scenario) -> dict[str, set[str]]:
    return {news.id: set(news.initial_knowers) for news in scenario.news}


def _at_minute(now: datetime, minute: int) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(minutes=minute)
