"""Graded diffusion: open answers graded against each news item's facts, on hand-made answers
and event logs. Each flattering case of the old measurement is built here and shown to count
against the figure now."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from societas.engine.events import Event
from societas.engine.runstore import RunStore
from societas.engine.simulation import Simulation
from societas.llm.fake import HINTS, SchemaFiller, ScriptedCall, ScriptedLLM
from societas.measurement.acquaintance import Acquaintance, stated_network
from societas.measurement.diffusion import graded_news
from societas.measurement.end_of_run import EndOfRunAnswers, NewsAnswer, ask_end_of_run
from societas.measurement.fact_grading import grade_answer, is_denial, needs_judge
from societas.measurement.town_summary import TownSummary, summarise_town
from societas.scenarios.scenario import NewsSpec, load_scenario, scenario_from_text
from societas.world.errors import ScenarioError
from societas.world.news_facts import NewsFact

COUNCIL_QUESTION = "What have you heard about next month's town council election?"
COUNCIL_FACTS = [
    NewsFact(aspect="who", text="Rosa Alvarez", match=["Rosa", "Rosa Alvarez"]),
    NewsFact(aspect="what", text="running for the seat", match=["running", "candidate"]),
]
PARTY_QUESTION = "What have you heard is going on in town later today?"
PARTY_FACTS = [
    NewsFact(aspect="what", text="a party", match=["party"]),
    NewsFact(aspect="where", text="at Bluebird Cafe", match=["Bluebird", "cafe"]),
    NewsFact(aspect="when", text="from 5pm", match=["17:00", "this evening"]),
]


def council(answer: str | None, respondent: str = "Mei Chen") -> bool:
    grade = grade_answer(
        answer, question=COUNCIL_QUESTION, facts=COUNCIL_FACTS, respondent=respondent
    )
    return grade.knows


# --------------------------------------------------------------------------- grading by rule


def test_harold_saying_yes_because_he_is_running_does_not_know_of_rosa() -> None:
    assert not council("Yes.", respondent="Harold Finch")
    assert not council("Yes, I am running for a fourth term.", respondent="Harold Finch")
    assert council("Rosa Alvarez is running against me, I hear.", respondent="Harold Finch")


def test_a_shared_surname_does_not_name_rosa() -> None:
    assert not council("Mrs. Alvarez is running, I think.")
    assert not council("Tomas Alvarez says someone is a candidate.")


def test_rosa_can_say_it_of_herself_but_others_cannot_use_i() -> None:
    assert council("I am running for the council seat!", respondent="Rosa Alvarez")
    assert not council("I am running errands; nothing else.", respondent="Mei Chen")


def test_echoing_the_question_states_nothing() -> None:
    echo = "I have heard about next month's town council election."
    assert not council(echo)
    # A term that is also in the question never counts, even if a scenario let one through.
    grade = grade_answer(
        "The council!",
        question=COUNCIL_QUESTION,
        facts=[NewsFact(aspect="what", text="the council", match=["council"])],
    )
    assert not grade.knows and grade.facts[0].by == "rule"


@pytest.mark.parametrize(
    "answer",
    [
        "I don't know anything about Rosa running.",
        "Rosa? Nobody told me she is running.",
        "Rosa is a candidate? That was not mentioned to me.",
        "I have never heard that Rosa is running.",
    ],
)
def test_a_denial_containing_the_names_is_a_denial(answer: str) -> None:
    assert is_denial(answer)
    grade = grade_answer(answer, question=COUNCIL_QUESTION, facts=COUNCIL_FACTS)
    assert grade.denial and not grade.knows and grade.stated == 0


def test_times_match_however_they_are_written() -> None:
    def party(answer: str) -> bool:
        return grade_answer(answer, question=PARTY_QUESTION, facts=PARTY_FACTS).knows

    assert party("Lena's party at Bluebird Cafe at 5pm!")
    assert party("A party at the cafe, 5:00 p.m.")
    assert party("party at the cafe at 17:00")
    assert not party("A party at the cafe at 5am")
    assert not party("A party at the cafe at 6pm")
    assert not party("A party at the cafe, 5 of us")  # a bare number is not a time
    grade = grade_answer("A party at the cafe.", question=PARTY_QUESTION, facts=PARTY_FACTS)
    assert [c.stated for c in grade.facts] == [True, True, False]


def test_no_answer_states_nothing() -> None:
    for answer in (None, "", "   "):
        grade = grade_answer(answer, question=COUNCIL_QUESTION, facts=COUNCIL_FACTS)
        assert not grade.knows and not grade.denial and grade.facts[0].by == "empty"


# --------------------------------------------------------------------------- the rubric judge

JUDGED = [
    NewsFact(aspect="who", text="Rosa", match=["Rosa"]),
    NewsFact(aspect="what", text="she wants the council seat Harold has held"),
]


def test_facts_without_terms_need_the_judge_and_a_missing_verdict_counts_against() -> None:
    answer = "Rosa wants Harold's seat."
    assert needs_judge(answer, JUDGED) == [1]
    assert needs_judge("I don't know, Rosa maybe.", JUDGED) == []  # a denial costs no call
    assert needs_judge(None, JUDGED) == []
    ok = grade_answer(answer, question=COUNCIL_QUESTION, facts=JUDGED, verdicts={1: True})
    no = grade_answer(answer, question=COUNCIL_QUESTION, facts=JUDGED, verdicts={1: False})
    failed = grade_answer(answer, question=COUNCIL_QUESTION, facts=JUDGED)
    assert ok.knows and not no.knows and not failed.knows
    assert [c.by for c in failed.facts] == ["rule", "judge failed"]


# --------------------------------------------------------------------------- the figures

ITEM = NewsSpec(
    id="rosa_council",
    description="Rosa Alvarez is running for the town council.",
    keywords=[["council"], ["Rosa"]],
    initial_knowers=["Rosa Alvarez"],
    question=COUNCIL_QUESTION,
    facts=COUNCIL_FACTS,
)
PEOPLE = ["Harold Finch", "Mei Chen", "Rosa Alvarez", "Tomas Alvarez"]


def test_every_figure_counts_over_all_agents_with_failures_and_hallucinations() -> None:
    answers = {
        "Rosa Alvarez": "I am running for the council.",
        "Tomas Alvarez": None,  # the question failed
        "Harold Finch": "Yes, I am running again.",
        "Mei Chen": "Rosa Alvarez is a candidate.",  # never heard it in any conversation
    }
    figure = graded_news(ITEM, answers, agents=PEOPLE, heard={"Rosa Alvarez", "Tomas Alvarez"})
    assert figure.knows == ["Mei Chen", "Rosa Alvarez"]
    assert figure.failed == ["Tomas Alvarez"]
    assert figure.hallucinated == ["Mei Chen"]
    assert figure.never_heard == ["Harold Finch", "Mei Chen"]
    assert figure.heard_but_not_stated == ["Tomas Alvarez"]
    assert figure.partial == {"Harold Finch": 1}
    line = figure.line()
    assert "knows (graded answers) 2/4 [1 question failed, 0 denied]" in line
    assert "keyword spread 2/4 (1 at start)" in line
    assert "hallucinated awareness 1/2 (Mei Chen)" in line


def test_an_agent_left_unasked_counts_as_a_failure() -> None:
    figure = graded_news(ITEM, {}, agents=PEOPLE, heard={"Rosa Alvarez"})
    assert figure.knows == [] and figure.failed == sorted(PEOPLE)
    unasked = graded_news(ITEM, {}, agents=PEOPLE, heard={"Rosa Alvarez"}, asked=False)
    assert "not asked" in unasked.line() and unasked.failed == []


def test_the_stated_network_counts_failed_agents_against_its_density() -> None:
    stated = stated_network(
        {
            "Ada": [Acquaintance(name="Bo", how="neighbour"), Acquaintance(name="Zed", how="?")],
            "Bo": None,
            "Cy": [Acquaintance(name="Ada", how="met at the cafe")],
        },
        agents=["Ada", "Bo", "Cy"],
        known_edges={("Ada", "Bo")},
    )
    assert stated.edges == 2 and stated.density == pytest.approx(2 / 6)
    assert stated.answered == 2 and stated.failed == ["Bo"]
    assert stated.in_known_network == 1 and stated.unsupported == [("Cy", "Ada")]


# --------------------------------------------------------------------------- the scenario


def _duo_with(old: str, new: str) -> str:
    text = load_scenario("duo").source_text
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "match: [Iris, Iris Vance]",
            "match: [Vance]",
            "term 'Vance' names several people or places \\(Iris Vance, Vance Flat\\)",
        ),
        (
            "match: [Sunday]",
            "match: [Sunday, things]",
            "term 'things' appears in the question",
        ),
        (
            "    question: What have you heard about new things starting up around here?\n",
            "",
            "facts need a question",
        ),
    ],
)
def test_scenario_facts_are_checked(old: str, new: str, message: str) -> None:
    text = _duo_with(old, new)
    with pytest.raises(ScenarioError, match=message):
        scenario_from_text(text, source="duo.yaml")


def test_town_refuses_a_surname_shared_by_the_family() -> None:
    town = load_scenario("town").source_text
    text = town.replace("match: [Rosa, Rosa Alvarez]", "match: [Alvarez]").replace(
        "      - [Rosa, Rosa Alvarez]", "      - [Rosa, Alvarez]"
    )
    with pytest.raises(ScenarioError) as error:
        scenario_from_text(text, source="town.yaml")
    message = str(error.value)
    assert "keyword 'Alvarez' names several agents" in message
    assert "term 'Alvarez' names several people or places" in message
    assert "Alvarez Market" in message


def test_town_initial_knowers_and_keywords() -> None:
    town = load_scenario("town")
    party = town.news_item("lena_party")
    assert "Tomas Alvarez" in party.initial_knowers  # he builds shelves for the party
    council_item = town.news_item("rosa_council")
    words = [word for group in council_item.keywords for word in group]
    assert "Alvarez" not in words and "Rosa" in words
    assert all(news.facts and news.question for news in town.news)


# --------------------------------------------------------------------------- the run summary

T0 = datetime(2026, 2, 13, 8, 0)


def _event(minutes: int, kind: str, agent: str | None, **data: Any) -> Event:
    return Event(
        step=minutes // 10, time=T0 + timedelta(minutes=minutes), kind=kind, agent=agent, data=data
    )


def _say(minutes: int, speaker: str, listener: str, text: str, conv: str) -> Event:
    return _event(
        minutes,
        "utterance",
        speaker,
        conversation_id=conv,
        speaker=speaker,
        listeners=[listener],
        text=text,
    )


def test_summary_grades_answers_beside_a_keyword_spread_that_needs_a_knowing_speaker(
    tmp_path: Path,
) -> None:
    duo = load_scenario("duo")
    log = [
        _event(10, "conversation", "Noah Bell", id="c1", participants=["Iris Vance", "Noah Bell"]),
        # Noah never heard of it: his mention does not make Iris (already a knower) or anyone know
        _say(10, "Noah Bell", "Iris Vance", "Is there a book club at the cafe on Sunday?", "c1"),
        # Noah's own note is not hearing the news either.
        _event(10, "relationship", "Noah Bell", other="Iris Vance", summary="book club on Sunday"),
    ]
    answers = EndOfRunAnswers(
        news=[
            NewsAnswer(
                agent="Iris Vance",
                news_id="book_club",
                question="q",
                answer="I am starting a book club at Corner Cafe on Sunday at 3pm.",
            ),
            NewsAnswer(
                agent="Noah Bell",
                news_id="book_club",
                question="q",
                answer="Iris is starting a book club at the cafe on Sunday.",
            ),
        ]
    )
    with RunStore.create(tmp_path, {}) as store:
        for step in range(3):
            store.commit_step(
                step, T0 + timedelta(minutes=10 * step), [e for e in log if e.step == step]
            )
        summary = summarise_town(store, duo, answers)
        unasked = summarise_town(store, duo, None)
    (figure,) = summary.graded_news
    assert figure.keyword_knowers == ["Iris Vance"]
    assert figure.knows == ["Iris Vance", "Noah Bell"]
    assert figure.hallucinated == ["Noah Bell"]  # states it, never heard it from a knower
    text = summary.describe()
    assert "knows (graded answers) 2/2 [0 question failed, 0 denied]" in text
    assert "keyword spread 1/2 (1 at start); hallucinated awareness 1/1 (Noah Bell)" in text
    assert "News 'book_club': 1 -> " not in text  # the engine's line gives way to the graded one
    assert TownSummary.model_validate_json(summary.model_dump_json()) == summary
    assert "knows (graded answers) not asked" in unasked.describe()


# --------------------------------------------------------------------------- asking


def _responder(call: ScriptedCall) -> Any:
    if call.purpose not in {"acquaintances", "judge_fact", "news_question"}:
        return SchemaFiller(random.Random(0), HINTS).fill(call.schema.model_json_schema())
    if call.purpose == "acquaintances":
        names = call.schema.model_json_schema()["$defs"]["Acquaintance"]["properties"]["name"]
        allowed = names["enum"] if "enum" in names else [names["const"]]
        return {"people": [{"name": name, "how": "a neighbour"} for name in allowed]}
    if call.purpose == "judge_fact":
        return {"verdict": "stated", "why": "says so"}
    if "Noah" in call.messages[1].content.split("\n")[0]:
        return {"answer": "Iris is starting a book club at the cafe on Sunday."}
    return {"answer": "I don't know of anything new."}


def test_end_of_run_questions_ask_every_agent_once_per_item_and_once_for_the_network(
    tmp_path: Path,
) -> None:
    duo = load_scenario("duo")
    judged = duo.model_copy(
        update={
            "news": [
                duo.news[0].model_copy(
                    update={"facts": [*duo.news[0].facts, NewsFact(aspect="what", text="books")]}
                )
            ]
        }
    )
    llm = ScriptedLLM(_responder)

    async def ask() -> EndOfRunAnswers:
        sim = await Simulation.start(duo, tmp_path / "run", llm)
        try:
            return await ask_end_of_run(judged, sim.agents, llm, sim.now)
        finally:
            sim.close("finished")

    answers = asyncio.run(ask())
    assert llm.counts["news_question"] == 2
    assert llm.counts["acquaintances"] == 2
    assert llm.counts["judge_fact"] == 1  # Noah's answer only; Iris's denial needs no judge
    noah = next(a for a in answers.news if a.agent == "Noah Bell")
    assert noah.verdicts == {4: True}
    people = {a.agent: [p.name for p in a.people or []] for a in answers.acquaintances}
    assert people == {"Iris Vance": ["Noah Bell"], "Noah Bell": ["Iris Vance"]}


def test_a_failing_model_is_recorded_not_dropped(tmp_path: Path) -> None:
    duo = load_scenario("duo")

    def broken(call: ScriptedCall) -> Any:
        if call.purpose in {"news_question", "acquaintances"}:
            return "not json"
        return _responder(call)

    llm = ScriptedLLM(broken)

    async def ask() -> EndOfRunAnswers:
        sim = await Simulation.start(duo, tmp_path / "run", llm)
        try:
            return await ask_end_of_run(duo, sim.agents, llm, sim.now)
        finally:
            sim.close("finished")

    answers = asyncio.run(ask())
    assert [a.answer for a in answers.news] == [None, None]
    assert all(a.error for a in answers.news)
    assert [a.people for a in answers.acquaintances] == [None, None]


@pytest.mark.parametrize(
    ("answer", "respondent", "knows"),
    [
        ("Rosa runs the market, as always.", "Mei Chen", False),
        ("Yes, I am running for a fourth term.", "Harold Finch", False),
        ("The Alvarez family is running for the council, I think.", "Jonah Reed", False),
        ("Rosa is running for the council seat against Harold.", "Jonah Reed", True),
        ("I'm a candidate now; I file my papers on Monday.", "Rosa Alvarez", True),
    ],
)
def test_the_town_council_facts(answer: str, respondent: str, knows: bool) -> None:
    item = load_scenario("town").news_item("rosa_council")
    assert item.question is not None
    grade = grade_answer(answer, question=item.question, facts=item.facts, respondent=respondent)
    assert grade.knows is knows


def test_measurement_templates_name_their_answers_and_use_grammar_friendly_schemas() -> None:
    from societas.prompts import list_prompts, load_prompt

    names = list_prompts("societas.measurement")
    assert names == ["acquaintances", "judge_fact"]
    for name in names:
        template = load_prompt("societas.measurement", name)
        assert template.id == name
        text = repr(template.answer_schema())
        assert "anyOf" not in text and "pattern" not in text
    verdict = load_prompt("societas.measurement", "judge_fact").answer_schema()
    assert verdict["properties"]["verdict"]["enum"] == ["stated", "not stated"]
