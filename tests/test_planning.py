"""Day planning, block decomposition and plan revision (scripted model), plus prompt checks."""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import date, datetime
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from societas.agents.cognition.decomposition import (
    DECOMPOSE_MAX_TOKENS,
    decompose_block,
    fit_durations,
)
from societas.agents.cognition.planning import (
    FREE_TIME,
    PLAN_MAX_TOKENS,
    SLEEPING,
    Commitment,
    DayPlan,
    Draft,
    PlanBlock,
    keep_commitments,
    normalise_schedule,
    plan_day,
    revise_plan,
)
from societas.agents.cognition.schemas import PROMPTS_PACKAGE, format_clock, parse_clock
from societas.agents.persona import Persona
from societas.llm.fake import ScriptedCall, ScriptedLLM
from societas.llm.types import LLMOutputError
from societas.prompts import load_prompt

HOME = "home:bedroom"
PLACES = ["home:bedroom", "home:kitchen", "bakery:kitchen", "cafe:hall", "park:lawn"]
DAY = date(2023, 2, 13)
MARA = Persona(
    name="Mara Quist",
    age=34,
    traits=["warm", "early riser"],
    occupation="baker",
    lifestyle="wakes at 5, bakes until noon",
)
OWN_TEMPLATES = [
    "plan_day",
    "revise_plan",
    "decompose",
    "react",
    "converse_line",
    "converse_takeaway",
    "answer",
    "answer_choice",
    "answer_scale",
]


def scripted(answer: Any) -> ScriptedLLM:
    return ScriptedLLM(lambda call: answer)


def block(start: str, end: str, act: str, place: str) -> dict[str, str]:
    return {"start": start, "end": end, "act": act, "place": place}


def assert_covers(plan: DayPlan) -> None:
    """The plan's blocks are ordered, contiguous and run from wake to sleep."""
    assert plan.blocks[0].start == plan.wake
    assert plan.blocks[-1].end == plan.sleep
    for before, after in pairwise(plan.blocks):
        assert before.end == after.start
    assert all(b.place in PLACES for b in plan.blocks)


# --- time parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("07:00", 420),
        ("7:02", 420),
        ("7:03", 425),
        ("12:00 pm", 720),
        ("12 am", 0),
        ("9.30", 570),
        ("23:58", 1440),
        ("24:00", 1440),
        ("25:00", None),
        ("noon", None),
        ("", None),
    ],
)
def test_parse_clock_rounds_to_five_minutes_and_clamps(text: str, minutes: int | None) -> None:
    assert parse_clock(text) == minutes


# --- plan_day ----------------------------------------------------------------------------------


async def test_plan_day_sorts_blocks_each_lasting_until_the_next() -> None:
    answer = {
        "wake": "05:00",
        "sleep": "21:00",
        "blocks": [
            block("12:00", "", "lunch", "home:kitchen"),
            block("06:00", "", "baking bread", "bakery:kitchen"),  # an hour after waking
            block("16:00", "", "walk", "park:lawn"),
            block("20:00", "", "reading", "home:bedroom"),
            block("22:30", "", "late snack", "home:kitchen"),  # after bedtime: dropped
        ],
    }
    plan = await plan_day(scripted(answer), MARA, day=DAY, places=PLACES, home=HOME)

    assert_covers(plan)
    assert (plan.wake, plan.sleep) == (300, 1260)
    assert [b.line() for b in plan.blocks] == [
        f"05:00-06:00 {FREE_TIME} @ {HOME}",
        "06:00-12:00 baking bread @ bakery:kitchen",
        "12:00-16:00 lunch @ home:kitchen",
        "16:00-20:00 walk @ park:lawn",
        "20:00-21:00 reading @ home:bedroom",
    ]


async def test_plan_day_small_gaps_stretch_the_previous_block() -> None:
    answer = {
        "wake": "07:00",
        "sleep": "17:00",
        "blocks": [
            block("07:05", "", "breakfast", "home:kitchen"),
            block("08:10", "", "baking", "bakery:kitchen"),
        ],
    }
    plan = await plan_day(scripted(answer), MARA, day=DAY, places=PLACES, home=HOME)
    assert [b.line() for b in plan.blocks] == [
        "07:00-08:10 breakfast @ home:kitchen",
        "08:10-17:00 baking @ bakery:kitchen",
    ]


async def test_plan_day_a_copied_short_day_falls_back_to_a_normal_bedtime() -> None:
    # Small models copy the example's times: going to bed two hours after waking is a slip.
    answer = {"wake": "07:00", "sleep": "09:00", "blocks": [block("07:00", "", "work", HOME)]}
    plan = await plan_day(scripted(answer), MARA, day=DAY, places=PLACES, home=HOME)
    assert (plan.wake, plan.sleep) == (420, 1320)


async def test_plan_day_repairs_unreadable_times() -> None:
    answer = {
        "wake": "dawn",
        "sleep": "00:30",  # after midnight: the day ends at 24:00
        "blocks": [
            block("8", "x", "work", "bakery:kitchen"),  # unreadable end: until the next start
            block("later", "13:00", "nap", "home:bedroom"),  # unreadable start: dropped
            block("10:00", "11:00", "...", "cafe:hall"),  # placeholder copied from the example
            block("14:00", "13:00", "tea", "cafe:hall"),  # end before start: until bedtime
        ],
    }
    plan = await plan_day(scripted(answer), MARA, day=DAY, places=PLACES, home=HOME)
    assert (plan.wake, plan.sleep) == (480, 1440)
    assert [b.line() for b in plan.blocks] == [
        "08:00-14:00 work @ bakery:kitchen",
        "14:00-24:00 tea @ cafe:hall",
    ]


async def test_plan_day_place_outside_the_enum_is_rejected() -> None:
    answer = {"wake": "07:00", "sleep": "22:00", "blocks": [block("07:00", "08:00", "x", "moon")]}
    with pytest.raises(LLMOutputError):
        await plan_day(scripted(answer), MARA, day=DAY, places=PLACES, home=HOME)


async def test_plan_day_is_one_bounded_call_with_places_as_enum() -> None:
    answer = {"wake": "07:00", "sleep": "22:00", "blocks": [block("07:00", "22:00", "x", HOME)]}
    llm = scripted(answer)
    await plan_day(
        llm,
        MARA,
        day=DAY,
        places=PLACES[1:],  # home is added to the allowed places
        home=HOME,
        memories=["Bo asked me to bake a cake"],
    )
    (call,) = llm.calls
    assert call.purpose == "plan"
    assert call.params is not None and call.params.max_tokens == PLAN_MAX_TOKENS
    assert call.schema is not None
    place_schema = call.schema.model_json_schema()["$defs"]["BlockAnswer"]["properties"]["place"]
    assert sorted(place_schema["enum"]) == sorted(PLACES)
    system, user = call.messages
    # The same instructions for every agent come first (one cached prefix for all), then the person.
    assert "Mara" not in system.content
    assert user.content.startswith("You are Mara Quist.\nName: Mara Quist")
    assert "Monday 13 February 2023" not in system.content  # the changing part comes last
    assert "Bo asked me to bake a cake" in user.content
    assert "Monday 13 February 2023" in user.content


async def test_plan_day_enforces_a_commitment_the_model_forgot() -> None:
    answer = {
        "wake": "07:00",
        "sleep": "22:00",
        "blocks": [block("07:00", "22:00", "baking all day", "bakery:kitchen")],
    }
    party = Commitment(description="party at the cafe", place="cafe:hall", start=17 * 60)
    llm = scripted(answer)
    plan = await plan_day(llm, MARA, day=DAY, places=PLACES, home=HOME, commitments=[party])
    assert_covers(plan)
    assert plan.block_at(17 * 60 + 30).line() == "17:00-18:00 party at the cafe @ cafe:hall"
    assert plan.block_at(16 * 60).activity == "baking all day"
    assert plan.block_at(19 * 60).activity == "baking all day"
    assert "17:00 party at the cafe @ cafe:hall" in llm.calls[0].messages[1].content


def test_block_at_sleeps_outside_the_waking_day() -> None:
    plan = DayPlan(
        day=DAY,
        wake=420,
        sleep=1320,
        home=HOME,
        blocks=(PlanBlock(start=420, end=1320, activity="work", place="bakery:kitchen"),),
    )
    assert plan.block_at(100).activity == SLEEPING
    assert plan.block_at(1330).activity == SLEEPING
    assert plan.block_at(1330).place == HOME
    assert plan.block_at(600).activity == "work"


def test_day_plan_rejects_gaps_and_round_trips_as_json() -> None:
    with pytest.raises(ValueError, match="gap or overlap"):
        DayPlan(
            day=DAY,
            wake=420,
            sleep=600,
            home=HOME,
            blocks=(
                PlanBlock(start=420, end=480, activity="a", place=HOME),
                PlanBlock(start=500, end=600, activity="b", place=HOME),
            ),
        )
    plan = DayPlan(
        day=DAY,
        wake=420,
        sleep=600,
        home=HOME,
        blocks=(PlanBlock(start=420, end=600, activity="a", place=HOME),),
    )
    assert DayPlan.model_validate(plan.model_dump(mode="json")) == plan
    assert plan.to_records() == [{"start": "07:00", "end": "10:00", "activity": "a", "place": HOME}]


drafts = st.lists(
    st.builds(
        Draft,
        st.one_of(st.none(), st.integers(0, 1440)),
        st.one_of(st.none(), st.integers(0, 1440)),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(PLACES),
    ),
    max_size=12,
)


@given(drafts, st.integers(0, 1380), st.integers(5, 1440))
def test_normalise_schedule_always_covers_the_window(
    raw: list[Draft], start: int, length: int
) -> None:
    end = min(1440, start + length)
    blocks = normalise_schedule(raw, start=start, end=end, home=HOME)
    assert blocks[0].start == start
    assert blocks[-1].end == end
    for before, after in pairwise(blocks):
        assert before.end == after.start
        assert (before.activity, before.place) != (after.activity, after.place)


# --- decompose_block -----------------------------------------------------------------------------


def step(mins: int, do: str, obj: str = "none") -> dict[str, Any]:
    return {"mins": mins, "do": do, "obj": obj}


def steps(*items: dict[str, Any], imp: int = 2) -> dict[str, Any]:
    return {"steps": list(items), "imp": imp}


BAKING = PlanBlock(start=9 * 60, end=10 * 60 + 30, activity="baking bread", place="bakery:kitchen")
OVEN = "bakery:kitchen:oven"


async def test_decompose_fills_the_block_exactly() -> None:
    answer = steps(
        step(10, "knead the dough"),
        step(15, "shape loaves"),
        step(10, "bake loaves", "oven"),
        imp=3,
    )
    llm = scripted(answer)
    actions = await decompose_block(llm, MARA, BAKING, objects=[OVEN, "bakery:kitchen:sink"])

    assert sum(a.minutes for a in actions) == BAKING.minutes
    assert [a.minutes for a in actions] == [25, 40, 25]  # 10:15:10 rescaled in 5-minute units
    assert actions[0].start == BAKING.start and actions[-1].end == BAKING.end
    for before, after in pairwise(actions):
        assert before.end == after.start
    assert actions[0].object is None and actions[0].object_state == ""
    # the object is named without its room in the prompt and answer, and given back as its
    # address; the step is the object's state, the block's score every step's importance
    assert (actions[2].object, actions[2].object_state) == (OVEN, "bake loaves")
    assert [a.importance for a in actions] == [3, 3, 3]
    assert all(a.emoji for a in actions)
    (call,) = [c for c in llm.calls if c.purpose != "embed"]
    assert call.purpose == "decompose"
    assert "Objects: oven, sink" in call.messages[1].content
    assert call.params is not None and call.params.max_tokens <= DECOMPOSE_MAX_TOKENS
    assert call.schema is not None
    obj = call.schema.model_json_schema()["$defs"]["StepAnswer"]["properties"]["obj"]
    assert obj["enum"] == ["oven", "sink", "none"]


async def test_decompose_refines_only_what_is_left_of_the_block() -> None:
    answer = steps(step(5, "check the oven", "oven"), step(5, "clean up"))
    llm = scripted(answer)
    actions = await decompose_block(llm, MARA, BAKING, objects=[OVEN], start=10 * 60)
    assert [(a.start, a.minutes) for a in actions] == [(600, 15), (615, 15)]
    assert "From 10:00 to 10:30 (30 minutes)" in llm.calls[0].messages[1].content


async def test_decompose_rejects_an_object_not_in_the_room() -> None:
    answer = steps(step(5, "sit", "throne"), step(5, "stand"))
    with pytest.raises(LLMOutputError):
        await decompose_block(scripted(answer), MARA, BAKING, objects=[OVEN])


async def test_decompose_of_a_short_remainder_keeps_the_first_steps() -> None:
    answer = steps(step(10, "a"), step(10, "b"), step(10, "c"))
    actions = await decompose_block(scripted(answer), MARA, BAKING, objects=[], start=620)
    assert [(a.description, a.start, a.minutes) for a in actions] == [("a", 620, 5), ("b", 625, 5)]


@pytest.mark.parametrize(
    ("weights", "total", "expected"),
    [([10, 10, 20], 60, [15, 15, 30]), ([5, 5, 5], 7, [3, 2, 2]), ([15, 5], 5, [5])],
)
def test_fit_durations_examples(weights: list[int], total: int, expected: list[int]) -> None:
    assert fit_durations(weights, total) == expected


@given(st.lists(st.integers(1, 60), min_size=1, max_size=8), st.integers(1, 240))
def test_fit_durations_always_sums_to_the_total(weights: list[int], total: int) -> None:
    parts = fit_durations(weights, total)
    assert sum(parts) == total
    assert all(p >= 1 for p in parts)
    assert 1 <= len(parts) <= len(weights)


# --- revise_plan ---------------------------------------------------------------------------------


def working_day() -> DayPlan:
    return DayPlan(
        day=DAY,
        wake=7 * 60,
        sleep=22 * 60,
        home=HOME,
        blocks=(
            PlanBlock(start=420, end=720, activity="baking", place="bakery:kitchen"),
            PlanBlock(start=720, end=780, activity="lunch", place="home:kitchen"),
            PlanBlock(start=780, end=1320, activity="selling bread", place="bakery:kitchen"),
        ),
    )


PARTY = Commitment(description="Bo's party", place="cafe:hall", start=17 * 60, minutes=90)
AT_FOUR_PM = datetime(2023, 2, 13, 16, 0)


async def revise_at_four(llm: ScriptedLLM, reason: str, promised: list[Commitment]) -> DayPlan:
    return await revise_plan(
        llm,
        MARA,
        working_day(),
        now=AT_FOUR_PM,
        reason=reason,
        places=PLACES,
        commitments=promised,
    )


async def test_revise_plan_inserts_an_omitted_commitment_and_keeps_the_past() -> None:
    answer = {"blocks": [block("16:00", "22:00", "selling bread", "bakery:kitchen")]}
    llm = scripted(answer)
    plan = await revise_at_four(llm, "Bo invited me to his party", [PARTY])
    assert_covers(plan)
    assert [b.line() for b in plan.blocks] == [
        "07:00-12:00 baking @ bakery:kitchen",
        "12:00-13:00 lunch @ home:kitchen",
        "13:00-17:00 selling bread @ bakery:kitchen",
        "17:00-18:30 Bo's party @ cafe:hall",
        "18:30-22:00 selling bread @ bakery:kitchen",
    ]
    (call,) = llm.calls
    assert call.purpose == "replan"
    user = call.messages[1].content
    assert "What changed: Bo invited me to his party" in user
    assert "17:00 Bo's party @ cafe:hall" in user
    assert "13:00-22:00 selling bread @ bakery:kitchen" in user


async def test_revise_plan_keeps_the_models_own_commitment_block() -> None:
    answer = {
        "blocks": [
            block("16:00", "16:55", "closing the shop", "bakery:kitchen"),
            block("16:55", "19:00", "party with Bo", "cafe:hall"),
            block("19:00", "22:00", "rest", HOME),
        ]
    }
    plan = await revise_at_four(scripted(answer), "party", [PARTY])
    assert [b.activity for b in plan.blocks if b.place == "cafe:hall"] == ["party with Bo"]


async def test_revise_plan_moves_bedtime_for_a_late_commitment() -> None:
    late = Commitment(description="stargazing", place="park:lawn", start=22 * 60 + 30)
    answer = {"blocks": [block("16:00", "22:00", "selling bread", "bakery:kitchen")]}
    plan = await revise_at_four(scripted(answer), "stars tonight", [late])
    assert plan.sleep == 23 * 60 + 30
    assert plan.block_at(22 * 60 + 45).line() == "22:30-23:30 stargazing @ park:lawn"
    assert plan.block_at(22 * 60 + 10).activity == FREE_TIME


def test_keep_commitments_ignores_past_and_loose_commitments() -> None:
    blocks = (PlanBlock(start=600, end=900, activity="work", place="bakery:kitchen"),)
    past = Commitment(description="breakfast", place="cafe:hall", start=500)
    loose = Commitment(description="call mum some time")
    assert keep_commitments(blocks, [past, loose], start=600, home=HOME) == blocks


# --- prompts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OWN_TEMPLATES)
def test_templates_load_with_importable_answer_models(name: str) -> None:
    template = load_prompt(PROMPTS_PACKAGE, name)
    assert template.id == name
    assert_grammar_friendly(template.answer_schema())
    placeholders = {
        match.group("named") or match.group("braced")
        for part in (template.system, template.user)
        for match in string.Template.pattern.finditer(part)
    }
    assert placeholders, f"{name} has no variables"


def assert_grammar_friendly(schema: Any) -> None:
    """No unions, regex patterns or formats anywhere in a JSON schema."""
    if isinstance(schema, dict):
        assert not {"anyOf", "oneOf", "allOf", "pattern", "format"} & set(schema), schema
        for value in schema.values():
            assert_grammar_friendly(value)
    elif isinstance(schema, list):
        for value in schema:
            assert_grammar_friendly(value)


async def test_rendered_planning_prompts_leave_no_placeholder() -> None:
    answers: dict[str, Callable[[], Any]] = {
        "plan": lambda: {
            "wake": "7:00",
            "sleep": "22:00",
            "blocks": [block("7:00", "9", "a", HOME)],
        },
        "replan": lambda: {"blocks": [block("16:00", "22:00", "a", HOME)]},
        "decompose": lambda: steps(step(5, "a"), step(5, "b")),
    }

    def respond(call: ScriptedCall) -> Any:
        assert call.schema is not None
        assert_grammar_friendly(call.schema.model_json_schema())
        assert "${" not in call.prompt_text
        return answers[call.purpose]()

    llm = ScriptedLLM(respond)
    plan = await plan_day(llm, MARA, day=DAY, places=PLACES, home=HOME)
    await revise_plan(llm, MARA, plan, now=AT_FOUR_PM, reason="rain", places=PLACES)
    await decompose_block(llm, MARA, BAKING, objects=[OVEN])
    assert llm.purposes() == ["plan", "replan", "decompose"]


def test_format_clock_round_trips() -> None:
    for minutes in range(0, 1441, 5):
        assert parse_clock(format_clock(minutes)) == minutes


async def test_revise_plan_after_bedtime_runs_to_midnight_at_most() -> None:
    answer = {"blocks": [block("23:30", "23:59", "chatting", "cafe:hall")]}
    llm = scripted(answer)
    late = datetime(2023, 2, 13, 23, 30)
    plan = await revise_plan(llm, MARA, working_day(), now=late, reason="party", places=PLACES)
    assert plan.sleep == 1440
    assert plan.blocks[-1].line() == "23:30-24:00 chatting @ cafe:hall"
    assert plan.block_at(21 * 60).activity == "selling bread"
    with pytest.raises(ValueError, match="no time left"):
        await revise_plan(
            llm, MARA, plan, now=datetime(2023, 2, 13, 23, 50), reason="x", places=PLACES
        )


commitments = st.lists(
    st.builds(
        Commitment,
        description=st.sampled_from(["party", "meeting", "lesson"]),
        place=st.sampled_from(PLACES),
        start=st.integers(0, 1435),
        minutes=st.integers(5, 180),
    ),
    max_size=3,
)


@given(drafts, commitments, st.integers(0, 1200))
def test_fixed_commitments_always_end_up_in_the_schedule(
    raw: list[Draft], promised: list[Commitment], start: int
) -> None:
    blocks = normalise_schedule(raw, start=start, end=min(1440, start + 240), home=HOME)
    kept = keep_commitments(blocks, promised, start=start, home=HOME)
    assert kept[0].start == start
    for before, after in pairwise(kept):
        assert before.end == after.start
    # the last commitment laid over the plan always survives (earlier ones may clash with it)
    ahead = [c for c in promised if c.start is not None and c.start >= start]
    if ahead:
        at, place = ahead[-1].start or 0, ahead[-1].place
        assert any(
            b.place == place and (b.start <= at < b.end or abs(b.start - at) <= 15) for b in kept
        )


@pytest.mark.model
async def test_real_model_plans_and_refines_within_the_constraints() -> None:
    from societas.llm.registry import open_llm

    async with open_llm("smollm2-135m", use_cache=False) as llm:
        plan = await plan_day(llm, MARA, day=DAY, places=PLACES, home=HOME)
        first = plan.blocks[0]
        actions = await decompose_block(llm, MARA, first, objects=[OVEN])
    assert_covers(plan)
    assert 0 <= plan.wake < plan.sleep <= 1440
    assert all(b.start % 5 == 0 or b.start == plan.wake for b in plan.blocks)
    assert 1 <= len(actions) <= 8
    assert sum(a.minutes for a in actions) == first.minutes
    assert all(a.object in (None, OVEN) and 1 <= a.importance <= 10 for a in actions)
