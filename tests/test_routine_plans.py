"""Routines, legitimate places and the plan checker: each failure a person saw in a town day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from societas.agents.agent import Agent
from societas.agents.cognition.appointments import without_appointment
from societas.agents.cognition.day_planning import (
    check_agreement,
    plan_from_routine,
    replan_from_routine,
)
from societas.agents.cognition.decomposition import step_text
from societas.agents.cognition.plan_rules import check_plan, fall_back, routine_day
from societas.agents.cognition.planning import Commitment, PlanBlock
from societas.agents.persona import Persona
from societas.engine.config import SimulationConfig
from societas.engine.places import PlaceChoices
from societas.llm.fake import ScriptedCall, ScriptedLLM
from societas.memory.retrieval import RetrievalWeights
from societas.scenarios.scenario import load_scenario
from societas.world.phrasing import doing, one_script, whole_words
from societas.world.routine import Routine, routine_from_lifestyle
from societas.world.state import World

HOME = "Alvarez House:living room"
MARKET = "Alvarez Market:shop floor"
ROSA = Persona(
    name="Rosa Alvarez",
    age=48,
    occupation="owner of Alvarez Market",
    lifestyle="Wakes at 6, opens the market at 8, closes at 6pm, family dinner at 7.",
)
ROUTINE = Routine.model_validate(
    {
        "wake": "06:00",
        "sleep": "22:00",
        "work": {"place": MARKET, "start": "08:00", "end": "18:00"},
        "meals": [
            {"meal": "breakfast", "time": "06:30", "place": HOME},
            {"meal": "lunch", "time": "12:30", "place": MARKET},
            {"meal": "dinner", "time": "19:00", "place": HOME},
        ],
    }
)
PLACES = [HOME, MARKET, "Bluebird Cafe:dining room", "Willow Park:lawn", "Town Hall:office"]
DAY = date(2026, 2, 13)


def block(start: str, end: str, activity: str, place: str = HOME) -> PlanBlock:
    def minutes(text: str) -> int:
        hours, _, mins = text.partition(":")
        return int(hours) * 60 + int(mins)

    return PlanBlock(start=minutes(start), end=minutes(end), activity=activity, place=place)


def rules(blocks: list[PlanBlock], **kwargs: Any) -> list[str]:
    return [v.rule for v in check_plan(blocks, ROUTINE, allowed=PLACES, **kwargs)]


def with_slot(slot: PlanBlock) -> list[PlanBlock]:
    """The routine's day with ``slot`` laid over it."""
    usual = routine_day(ROUTINE, HOME)
    return list(fall_back(usual, (slot,), [_whole(slot)], home=HOME))


def _whole(slot: PlanBlock) -> Any:
    from societas.agents.cognition.plan_rules import Violation

    return Violation(slot.start, slot.end, "test", "")


# --- the routine's day and the rules ----------------------------------------------------------


def test_the_routine_day_keeps_every_rule() -> None:
    usual = list(routine_day(ROUTINE, HOME))
    assert check_plan(usual, ROUTINE, allowed=PLACES) == []
    lines = [b.line() for b in usual]
    assert "06:30-07:00 breakfast @ Alvarez House:living room" in lines
    assert "12:30-13:15 lunch @ Alvarez Market:shop floor" in lines
    assert "19:00-20:00 dinner @ Alvarez House:living room" in lines
    assert "08:00-12:30 work @ Alvarez Market:shop floor" in lines
    assert usual[0].start == 6 * 60 and usual[-1].end == 22 * 60


def test_free_time_after_the_early_morning_is_spent_in_the_living_room() -> None:
    usual = routine_day(ROUTINE, "Alvarez House:bedroom")
    places = {b.activity: b.place for b in usual}
    assert places["early morning at home"] == "Alvarez House:bedroom"
    assert places["evening at home"] == "Alvarez House:living room"
    assert places["night at home"] == "Alvarez House:living room"
    # A home with no living room among the meal places keeps everything where the agent sleeps.
    elsewhere = routine_day(ROUTINE, "Finch Cottage:bedroom")
    assert {b.place for b in elsewhere if "at home" in b.activity} == {"Finch Cottage:bedroom"}


def test_dinner_at_seven_in_the_morning_is_a_meal_at_an_odd_time() -> None:
    plan = with_slot(block("07:00", "08:00", "dinner"))
    assert "meal_time" in rules(plan)


def test_breakfast_three_times_is_two_repeats() -> None:
    plan = routine_day(ROUTINE, HOME)
    for start, end in (("07:30", "08:00"), ("10:00", "10:30")):
        plan = tuple(with_slot_over(list(plan), block(start, end, "breakfast")))
    assert rules(list(plan)).count("meal_repeat") == 2


def with_slot_over(blocks: list[PlanBlock], slot: PlanBlock) -> tuple[PlanBlock, ...]:
    return fall_back(blocks, (slot,), [_whole(slot)], home=HOME)


def test_a_neighbours_bedroom_is_not_a_legitimate_place() -> None:
    plan = with_slot(block("20:00", "21:00", "chat", "Chen-Reed House:bedroom"))
    assert "place" in rules(plan)


def test_one_block_from_morning_to_night_is_too_long() -> None:
    plan = [
        block("06:00", "07:30", "early morning at home"),
        block("07:30", "22:00", "bake cakes", "Bluebird Cafe:dining room"),
    ]
    found = rules(plan)
    assert "long_block" in found and "meal_missing" in found and "work_place" in found


def test_leaving_work_needs_a_reason_from_memory() -> None:
    plan = with_slot(block("09:00", "10:30", "file candidacy papers", "Town Hall:office"))
    assert rules(plan) == ["work_place"]
    memory = "I must file my candidacy papers with Mei Chen at the Town Hall office."
    assert rules(plan, reasons=[memory]) == []
    # A short break is no violation.
    assert rules(with_slot(block("10:00", "10:30", "coffee", "Bluebird Cafe:dining room"))) == []


def test_an_appointment_takes_the_place_of_a_meal_it_overlaps() -> None:
    party = Commitment(
        description="Lena's party", place="Bluebird Cafe:dining room", start=18 * 60, minutes=120
    )
    plan = with_slot(block("18:00", "20:00", "Lena's party", "Bluebird Cafe:dining room"))
    assert "meal_missing" in rules(plan)
    assert rules(plan, commitments=[party]) == []


# --- one repair request, then the routine ----------------------------------------------------


def scripted(*answers: dict[str, Any]) -> ScriptedLLM:
    queue = list(answers)

    def respond(call: ScriptedCall) -> dict[str, Any]:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return ScriptedLLM(respond)


def change(start: str, end: str, act: str, place: str = HOME) -> dict[str, str]:
    return {"start": start, "end": end, "act": act, "place": place}


async def test_a_plan_that_breaks_a_rule_is_repaired_once() -> None:
    bad = {"changes": [change("07:00", "08:00", "dinner")]}
    good = {"changes": [change("20:00", "21:00", "walk in the park", "Willow Park:lawn")]}
    llm = scripted(bad, good)
    plan, check = await plan_from_routine(llm, ROSA, ROUTINE, day=DAY, home=HOME, places=PLACES)
    assert [c.purpose for c in llm.calls] == ["plan", "plan_repair"]
    assert "Your last answer broke these rules" in llm.calls[1].prompt_text
    assert "dinner at 07:00" in llm.calls[1].prompt_text
    assert check.repaired and check.violations and not check.remaining and not check.fallbacks
    assert "20:00-21:00 walk in the park @ Willow Park:lawn" in [b.line() for b in plan.blocks]
    assert check_plan(plan.blocks, ROUTINE, allowed=PLACES) == []


async def test_what_still_breaks_a_rule_falls_back_to_the_routine() -> None:
    bad = {
        "changes": [
            change("07:00", "08:00", "dinner"),
            change("14:00", "16:00", "read a novel", "Willow Park:lawn"),
            change("20:00", "21:00", "play cards"),
        ]
    }
    llm = scripted(bad)
    plan, check = await plan_from_routine(llm, ROSA, ROUTINE, day=DAY, home=HOME, places=PLACES)
    assert len(llm.calls) == 2  # the plan and ONE repair request
    assert {f["rule"] for f in check.fallbacks} == {"meal_time", "work_place"}
    lines = [b.line() for b in plan.blocks]
    assert "20:00-21:00 play cards @ Alvarez House:living room" in lines  # kept: breaks nothing
    assert not any("dinner" in line and line.startswith("07:") for line in lines)
    assert any(b.activity == "work" and b.start <= 14 * 60 < b.end for b in plan.blocks)
    assert check_plan(plan.blocks, ROUTINE, allowed=PLACES) == []


async def test_text_cut_by_a_cap_or_in_another_script_is_repaired() -> None:
    answer = {"changes": [change("20:00", "21:00", "play cards with the family and they都会")]}
    plan, check = await plan_from_routine(
        scripted(answer), ROSA, ROUTINE, day=DAY, home=HOME, places=PLACES
    )
    assert check.text_fixes == 1 and not check.repaired
    assert "20:00-21:00 play cards with the family and they @ Alvarez House:living room" in [
        b.line() for b in plan.blocks
    ]
    assert all(not any(ord(c) > 0x2E80 for c in b.activity) for b in plan.blocks)
    assert whole_words("has promised to finish the shelves and", 40) == (
        "has promised to finish the shelves"
    )
    assert one_script("a note and they都会") == "a note and they"


async def test_a_replan_is_checked_and_keeps_the_past() -> None:
    plan, _ = await plan_from_routine(
        scripted({"changes": []}), ROSA, ROUTINE, day=DAY, home=HOME, places=PLACES
    )
    llm = scripted({"changes": [change("15:00", "22:00", "breakfast")]})
    now = datetime(2026, 2, 13, 14, 0)
    revised, check = await replan_from_routine(
        llm, ROSA, ROUTINE, plan, now=now, reason="the fridge broke", places=PLACES
    )
    assert [c.purpose for c in llm.calls] == ["replan", "replan_repair"]
    assert check.stage == "replan" and check.fallbacks
    assert [b for b in revised.blocks if b.end <= 14 * 60] == [
        b for b in plan.blocks if b.end <= 14 * 60
    ]
    assert check_plan(revised.blocks, ROUTINE, allowed=PLACES, since=14 * 60) == []


def test_an_agreement_is_checked_without_a_call() -> None:
    plan = routine_day(ROUTINE, HOME)
    from societas.agents.cognition.planning import DayPlan

    day = DayPlan(day=DAY, wake=plan[0].start, sleep=plan[-1].end, home=HOME, blocks=plan)
    party = Commitment(
        description="party", place="Bluebird Cafe:dining room", start=17 * 60, minutes=120, day=DAY
    )
    now = datetime(2026, 2, 13, 11, 0)
    updated, check = check_agreement(day, ROUTINE, [party], now=now)
    assert "17:00-19:00 party @ Bluebird Cafe:dining room" in [b.line() for b in updated.blocks]
    assert check.stage == "agreement"


# --- appointments are decisions --------------------------------------------------------------


def agent_with_plan() -> Agent:
    agent = Agent(persona=ROSA, home=HOME, routine=ROUTINE)
    return agent


async def test_appointments_are_dated_and_never_carried_into_a_later_day() -> None:
    agent = agent_with_plan()
    config = SimulationConfig(reflection=False)
    llm = scripted({"changes": []})
    friday = datetime(2026, 2, 13, 7, 0)
    await agent.ensure_plan(llm, friday, lambda m: PLACES, config, RetrievalWeights())
    party = Commitment(description="Lena's party", place="Bluebird Cafe:dining room", start=1080)
    assert not agent.adopt_commitments([party], friday, "agreed with Lena")
    assert agent.commitments[0].day == DAY
    assert any(b.activity == "Lena's party" for b in agent.plan.blocks)  # type: ignore[union-attr]
    saturday = datetime(2026, 2, 14, 7, 0)
    await agent.ensure_plan(llm, saturday, lambda m: PLACES, config, RetrievalWeights())
    assert agent.commitments == []
    assert not any("party" in b.activity for b in agent.plan.blocks)  # type: ignore[union-attr]
    assert "Lena's party" not in llm.calls[-1].prompt_text
    # A second agreement to the same thing is not a second appointment.
    agent.adopt_commitments([party], saturday, "agreed")
    agent.adopt_commitments([party], saturday, "agreed again")
    assert len(agent.commitments) == 1


async def test_before_the_event_the_agent_decides_and_may_decline() -> None:
    agent = agent_with_plan()
    config = SimulationConfig(reflection=False)
    weights = RetrievalWeights()
    answers = {"plan": {"changes": []}, "commitment_decision": {"go": "no", "why": "too tired"}}
    llm = ScriptedLLM(lambda call: answers.get(call.purpose, {}))
    morning = datetime(2026, 2, 13, 7, 0)
    await agent.ensure_plan(llm, morning, lambda m: PLACES, config, weights)
    party = Commitment(description="Lena's party", place="Bluebird Cafe:dining room", start=1080)
    agent.adopt_commitments([party], morning, "agreed with Lena")
    assert agent.commitment_due(morning, 30) is None  # not yet
    before = datetime(2026, 2, 13, 17, 40)
    assert agent.commitment_due(before, 30) is not None
    await agent.decide_commitment(llm, before, config, weights, 30)
    assert [c.purpose for c in llm.calls].count("commitment_decision") == 1
    assert agent.commitments == []
    assert not any("party" in b.activity for b in agent.plan.blocks)  # type: ignore[union-attr]
    kinds = [kind for kind, _ in agent.outbox]
    decision = next(data for kind, data in agent.outbox if kind == "commitment_decision")
    assert decision["go"] is False and decision["reason"] == "too tired"
    assert "plan" in kinds
    assert any("decided not to go" in agent.memory.by_id(i).text for i in range(len(agent.memory)))


def test_declining_gives_the_slot_back_to_the_routine() -> None:
    from societas.agents.cognition.planning import DayPlan

    usual = routine_day(ROUTINE, HOME)
    plan = DayPlan(day=DAY, wake=usual[0].start, sleep=usual[-1].end, home=HOME, blocks=usual)
    party = Commitment(description="party", place="Bluebird Cafe:dining room", start=1140)
    with_party, _ = check_agreement(plan, ROUTINE, [party], now=datetime(2026, 2, 13, 9, 0))
    restored = without_appointment(with_party, party, ROUTINE, datetime(2026, 2, 13, 18, 0))
    assert restored.blocks == plan.blocks


def test_a_detour_that_cuts_a_meal_in_two_is_refused() -> None:
    from societas.agents.cognition.planning import DayPlan

    usual = routine_day(ROUTINE, HOME)
    agent = Agent(persona=ROSA, home=HOME, routine=ROUTINE)
    agent.plan = DayPlan(day=DAY, wake=usual[0].start, sleep=usual[-1].end, home=HOME, blocks=usual)
    # From a town run: a detour at 19:20 left "19:15-19:20 dinner" and "19:45-20:00 dinner".
    shelves = "Bluebird Cafe:dining room"
    dinner = datetime(2026, 2, 13, 19, 20)
    assert not agent.take_detour("build the shelves", shelves, 25, dinner, "shelves")
    assert agent.plan.blocks == usual
    # The same detour in free time after dinner is taken, without a model call.
    evening = datetime(2026, 2, 13, 20, 30)
    assert agent.take_detour("build the shelves", shelves, 30, evening, "shelves")
    assert agent.plan.block_at(20 * 60 + 40).activity == "build the shelves"


# --- routines from scenarios and from lifestyles ---------------------------------------------


def test_every_shipped_agent_has_a_routine_that_matches_its_lifestyle() -> None:
    town = load_scenario("town")
    rosa = town.routine_of("Rosa Alvarez")
    assert (rosa.wake, rosa.work and rosa.work.start, rosa.work and rosa.work.end) == (
        "06:00",
        "08:00",
        "18:00",
    )
    assert rosa.minutes("dinner") == 19 * 60
    for name in [*town.agent_names(), *load_scenario("duo").agent_names()]:
        scenario = town if name in town.agent_names() else load_scenario("duo")
        assert scenario.agent(name).routine is not None, name


@pytest.mark.parametrize(
    ("lifestyle", "occupation", "expected"),
    [
        (
            "Wakes at 6, opens the market at 8, closes at 6pm, family dinner at 7.",
            "owner of Alvarez Market",
            ("06:00", "Alvarez Market", "08:00", "18:00", "19:00"),
        ),
        (
            "Sleeps until 8:30, works at the market 10 to 3, plays guitar in the park after.",
            "part-time clerk at Alvarez Market",
            ("08:30", "Alvarez Market", "10:00", "15:00", "18:30"),
        ),
        (
            "At her Town Hall desk by 8:30, works until 4:30, cooks dinner with Jonah at 6.",
            "town clerk at Town Hall",
            ("07:00", "Town Hall", "08:30", "16:30", "18:00"),
        ),
    ],
)
def test_a_routine_is_read_from_a_lifestyle(
    lifestyle: str, occupation: str, expected: tuple[str, ...]
) -> None:
    rooms = load_scenario("town").places.rooms()
    routine, _ = routine_from_lifestyle(lifestyle, occupation, home=HOME, rooms=rooms)
    assert routine.work is not None and routine.source == "derived"
    dinner = next(m.time for m in routine.meals if m.meal == "dinner")
    got = (routine.wake, routine.work.place, routine.work.start, routine.work.end, dinner)
    assert got == expected


def test_a_file_without_routines_gets_them_derived_and_recorded() -> None:
    text = load_scenario("duo").source_text
    start = text.index("    routine:")
    while "    routine:" in text:
        start = text.index("    routine:")
        end = text.index("\n    relationships:", start)
        text = text[:start] + text[end + 1 :]
    from societas.scenarios.scenario import scenario_from_text

    scenario = scenario_from_text(text, "mine.yaml")
    iris = scenario.routine_of("Iris Vance")
    assert iris.source == "derived"
    assert iris.work is not None and iris.work.place == "Corner Cafe:counter"
    assert (iris.work.start, iris.work.end) == ("08:30", "16:00")


# --- legitimate places ------------------------------------------------------------------------


def test_an_agent_plans_only_for_its_legitimate_places() -> None:
    town = load_scenario("town")
    world = World.from_scenario(town)
    homes = {spec.name: spec.home for spec in town.agents}
    choices = PlaceChoices(world, town.name, homes, cap=40)
    rosa = Agent(persona=ROSA, home=homes["Rosa Alvarez"], routine=town.routine_of("Rosa Alvarez"))
    places = choices.legitimate(rosa)
    assert "Alvarez House:bedroom" in places and "Alvarez Market:shop floor" in places
    assert "Willow Park:lawn" in places and "Bluebird Cafe:dining room" in places
    assert not any(
        p.startswith(("Chen-Reed House", "Finch Cottage", "Okafor Flat")) for p in places
    )
    invited = choices.legitimate(rosa, ["Harold invited me over for tea this evening."])
    assert "Finch Cottage:living room" in invited
    assert "Finch Cottage:bedroom" not in invited
    assert "Okafor Flat:living room" not in invited


# --- text that reads right --------------------------------------------------------------------


def test_observations_and_steps_read_grammatically() -> None:
    assert doing("Tomas Alvarez", "have a hearty breakfast") == (
        "Tomas Alvarez: having a hearty breakfast"
    )
    assert doing("Mei Chen", "sit at the desk") == "Mei Chen: sitting at the desk"
    at_market = block("10:00", "11:00", "work", MARKET)
    rooms = ["Alvarez House:Mateo's room", "Alvarez House:bedroom", MARKET]
    assert step_text("get dressed in the bedroom", at_market, rooms) == "get dressed"
    assert step_text("stock the shelves", at_market, rooms) == "stock the shelves"


async def test_a_run_records_each_agents_routine_at_its_start(tmp_path: Any) -> None:
    import random

    from societas.engine.runstore import RunStore
    from societas.engine.simulation import Simulation
    from societas.llm.fake import SchemaFiller

    llm = ScriptedLLM(SchemaFiller(random.Random(0), {}).responder)
    sim = await Simulation.start(load_scenario("duo"), tmp_path / "run", llm, SimulationConfig())
    sim.close("finished")
    with RunStore.open(tmp_path / "run", readonly=True) as store:
        routines = {e.event.agent: e.event.data for e in store.iter_events(kinds=["routine"])}
    assert set(routines) == {"Iris Vance", "Noah Bell"}
    iris = routines["Iris Vance"]
    assert iris["work"] == {"place": "Corner Cafe:counter", "start": "08:30", "end": "16:00"}
    assert iris["source"] == "scenario" and iris["wake"] == "07:00"
    assert [m["meal"] for m in iris["meals"]] == ["breakfast", "lunch", "dinner"]
    state = sim.get_state()
    assert Agent.from_state(state["agents"]["Noah Bell"]).routine == load_scenario(
        "duo"
    ).routine_of("Noah Bell")


@pytest.mark.model
async def test_real_model_plans_from_the_routine_within_the_rules() -> None:
    from societas.llm.registry import open_llm

    async with open_llm("smollm2-135m", use_cache=False) as llm:
        plan, check = await plan_from_routine(llm, ROSA, ROUTINE, day=DAY, home=HOME, places=PLACES)
    assert check_plan(plan.blocks, ROUTINE, allowed=PLACES) == []
    assert (plan.wake, plan.sleep) == (6 * 60, 22 * 60)
    assert all(b.place in PLACES for b in plan.blocks)
    assert check.remaining == [] or check.fallbacks


def test_the_run_summary_counts_checks_repairs_and_fallbacks() -> None:
    from types import SimpleNamespace

    from societas.engine.plan_checks import plan_checks

    def event(kind: str, **data: Any) -> Any:
        return SimpleNamespace(kind=kind, data=data)

    totals = plan_checks(
        [
            event("plan_check", violations=[], repaired=False, fallbacks=[], text_fixes=0),
            event(
                "plan_check",
                violations=["x"],
                repaired=True,
                fallbacks=[{"rule": "meal_time"}, {"rule": "place"}],
                text_fixes=1,
            ),
            event("plan_check", violations=["y"], repaired=True, fallbacks=[], text_fixes=0),
            event("commitment_decision", go=False),
            event("commitment_decision", go=True),
        ]
    )
    assert (totals.checked, totals.violating, totals.repaired, totals.fell_back) == (3, 2, 2, 1)
    assert totals.fallback_slots == {"meal_time": 1, "place": 1}
    assert (totals.declined, totals.decided, totals.text_fixes) == (1, 2, 1)
    assert "3 checked, 2 broke a rule, 2 repair requests, 1 fell back" in totals.describe()


def test_agreeing_just_before_an_appointment_is_the_decision() -> None:
    agent = agent_with_plan()
    party = Commitment(description="Lena's party", place="Bluebird Cafe:dining room", start=1080)
    late = datetime(2026, 2, 13, 17, 45)
    agent.adopt_commitments([party], late, "agreed with Lena")
    assert agent.commitments[0].decided and agent.commitment_due(late, 30) is None


async def test_a_change_that_only_copies_the_plan_shown_is_no_change() -> None:
    answer = {
        "changes": [
            change("18:00", "19:00", "start early morning at home @ Alvarez House:bedroom, then"),
            change("20:00", "21:00", "night at home"),
        ]
    }
    plan, check = await plan_from_routine(
        scripted(answer), ROSA, ROUTINE, day=DAY, home=HOME, places=PLACES
    )
    assert plan.blocks == routine_day(ROUTINE, HOME)
    assert check.text_fixes == 2


def test_inviting_someone_elsewhere_opens_no_door_to_their_home() -> None:
    town = load_scenario("town")
    world = World.from_scenario(town)
    choices = PlaceChoices(world, town.name, {a.name: a.home for a in town.agents}, cap=40)
    lena = Agent(persona=ROSA, home="Okafor Flat:bedroom", routine=ROUTINE)
    places = choices.legitimate(lena, ["I want to invite Harold Finch to my party at the cafe."])
    assert not any(p.startswith("Finch Cottage") for p in places)
    # A surname is no reason to leave work for a home of that name.
    bell = with_slot(block("09:00", "10:30", "chat", "Alvarez House:living room"))
    assert rules(bell, reasons=["I sold Tomas Alvarez some bread."]) == ["work_place"]


def test_a_break_written_in_short_pieces_is_still_an_hour_away_from_work() -> None:
    plan = with_slot(block("16:00", "16:30", "read emails"))
    plan = list(with_slot_over(plan, block("16:30", "17:00", "listen to the radio")))
    assert rules(plan) == ["work_place", "work_place"]
