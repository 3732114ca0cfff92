"""Believability graders, judge parsing and score statistics (no simulation, no model)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from societas.evaluation.believability.grading import grade_rule
from societas.evaluation.believability.judge import judge_answer, judge_score
from societas.evaluation.believability.stats import ScoreTable, compare, summarise
from societas.evaluation.believability.text import (
    ages_claimed,
    clock_phrase,
    denies_knowing,
    mentions_person,
)
from societas.llm.fake import ScriptedLLM
from societas.llm.types import LLMOutputError

INTRO = {"name": "Iris Vance", "occupation": "owner of Corner Cafe", "age": 42}


def test_names_match_on_first_name_or_title_but_not_other_words() -> None:
    assert mentions_person("I'd spend it with Noah, he is kind", "Noah Bell")
    assert mentions_person("Mr. Bell is my neighbour", "Noah Bell")
    assert not mentions_person("I walked past Bell House", "Noah Bell")
    assert not mentions_person("Noahs ark", "Noah Bell")


def test_ages_and_denials_are_read_from_free_text() -> None:
    assert ages_claimed("Hi! I'm 42, and I run the cafe.") == [42]
    assert ages_claimed("I have run the cafe for 10 years") == []
    assert denies_knowing("Hmm, that name doesn\u2019t ring a bell.")
    assert not denies_knowing("Noah? He's my neighbour.")
    assert clock_phrase(0) == "12:00 am" and clock_phrase(12 * 60 + 5) == "12:05 pm"


def test_introduction_counts_name_occupation_and_age() -> None:
    full = grade_rule("introduction", INTRO, "I'm Iris, 42, and I own the Corner Cafe.")
    assert full.score == 1.0 and not full.hallucinated
    partial = grade_rule("introduction", INTRO, "Hello, I'm Iris.")
    assert partial.score == pytest.approx(1 / 3)
    other = grade_rule("introduction", {**INTRO, "others": ["Noah Bell"]}, "I'm Noah, a writer.")
    assert other.score == 0.0 and other.hallucinated


def test_age_rule_flags_a_wrong_age() -> None:
    assert grade_rule("age", {"age": 29}, "I am 29 years old.").score == 1.0
    wrong = grade_rule("age", {"age": 29}, "I'm 35.")
    assert wrong.score == 0.0 and wrong.hallucinated
    assert not grade_rule("age", {"age": 29}, "Old enough!").hallucinated


def test_right_and_wrong_person() -> None:
    expected = {"person": "Noah Bell", "details": ["writer", "my neighbour; a quiet writer"]}
    assert grade_rule("knows_person", expected, "Noah is a writer who lives next door.").score == 1
    assert grade_rule("knows_person", expected, "Oh, Noah! He lives up the road.").score == 0.5
    # Praise that fits anybody does not show who Noah is.
    assert grade_rule("knows_person", expected, "Oh, Noah! Lovely man.").score == 0.0
    assert grade_rule("knows_person", expected, "I don't know him.").score == 0.0
    stranger = {"person": "Dorothea Quill"}
    assert grade_rule("stranger", stranger, "Never met anyone by that name.").score == 1.0
    made_up = grade_rule("stranger", stranger, "Dorothea runs the bakery, a dear friend.")
    assert made_up.score == 0.0 and made_up.hallucinated


def test_hallucinated_knowledge_of_news_it_never_received() -> None:
    news = {"knows": False, "keywords": [["book club"], ["Sunday", "cafe"]]}
    claimed = grade_rule("news", news, "Yes, the book club at the cafe on Sunday!")
    assert claimed.score == 0.0 and claimed.hallucinated
    assert grade_rule("news", news, "No, I haven't heard of any club.").score == 1.0
    knows = {**news, "knows": True}
    missed = grade_rule("news", knows, "No, I haven't heard of any club.")
    assert missed.score == 0.0 and not missed.hallucinated
    assert grade_rule("news", knows, "Iris told me about her book club.").score == 1.0


def test_plan_time_and_place() -> None:
    block = {"activity": "writing chapter two", "place": "Bell House:main room", "at_home": True}
    assert grade_rule("plan_at", block, "I'll be at home writing my novel.").score == 1.0
    assert grade_rule("plan_at", block, "Writing, probably.").score == 0.5
    cafe = {"activity": "coffee break", "place": "Corner Cafe:counter", "at_home": False}
    assert grade_rule("plan_at", cafe, "Having coffee at the cafe.").score == 1.0
    assert grade_rule("plan_at", cafe, "Sleeping at home.").score == 0.0


def test_pick_person_must_be_someone_met() -> None:
    expected = {"met": ["Noah Bell"], "known": ["Noah Bell"], "others": ["Noah Bell", "Ada Lee"]}
    assert grade_rule("pick_person", expected, "Noah, he is thoughtful.").score == 1.0
    never = grade_rule("pick_person", expected, "Ada, because she is fun.")
    assert never.score == 0.0 and never.hallucinated
    assert grade_rule("pick_person", expected, "My mother.").score == 0.0
    with pytest.raises(ValueError, match="no grading rule"):
        grade_rule("astrology", {}, "")


def test_judge_answer_is_parsed_and_scaled() -> None:
    llm = ScriptedLLM(lambda call: '{"score": 5, "why": "fits the facts"}')
    verdict = asyncio.run(
        judge_answer(
            llm,
            name="Iris Vance",
            category="reactions",
            question="Your breakfast is burning!",
            answer="I'd turn off the stove.",
            rubric="Sensible.",
            facts=["owner of Corner Cafe"],
        )
    )
    assert (verdict.score, judge_score(verdict)) == (5, 1.0)
    prompt = llm.calls[0].prompt_text
    assert "owner of Corner Cafe" in prompt and "breakfast is burning" in prompt
    assert llm.calls[0].purpose == "judge"
    bad = ScriptedLLM(lambda call: '{"score": 9, "why": "off the scale"}')
    with pytest.raises(LLMOutputError):
        asyncio.run(
            judge_answer(
                bad, name="x", category="memory", question="q", answer="a", rubric="r", facts=[]
            )
        )


ROWS = [
    ("Ada", "memory", 1.0, False),
    ("Ada", "memory", 0.0, True),
    ("Ada", "plans", 1.0, False),
    ("Bo", "memory", 0.5, False),
    ("Bo", "plans", None, False),  # a failed answer is left out
    ("Cy", "plans", 0.0, False),
]


def test_aggregation_weights_categories_equally_and_counts_hallucinations() -> None:
    table = ScoreTable.from_rows(ROWS, categories=("memory", "plans"))
    summary = summarise(table, np.random.default_rng(0), n_resamples=500)
    assert summary.categories["memory"].estimate == pytest.approx(0.5)
    assert summary.categories["plans"].estimate == pytest.approx(0.5)
    assert summary.overall.estimate == pytest.approx(0.5)
    assert summary.hallucination.estimate == pytest.approx(1 / 5)
    assert summary.items == 5 and summary.agents == 3
    for interval in (*summary.categories.values(), summary.overall, summary.hallucination):
        assert 0.0 <= interval.low <= interval.estimate <= interval.high <= 1.0
    assert summary.overall.low < summary.overall.high


def test_bootstrap_is_seeded_and_pairs_the_same_agents() -> None:
    good = ScoreTable.from_rows(
        [(f"a{i}", c, 0.8 + 0.02 * i, False) for i in range(8) for c in ("memory", "plans")],
        categories=("memory", "plans"),
    )
    poor = ScoreTable.from_rows(
        [(f"a{i}", c, 0.3 + 0.05 * i, i == 0) for i in range(8) for c in ("memory", "plans")],
        categories=("memory", "plans"),
    )
    first = compare(good, poor, np.random.default_rng(3), n_resamples=500)
    again = compare(good, poor, np.random.default_rng(3), n_resamples=500)
    assert first == again
    assert first.agents == 8 and first.first_better
    assert first.overall.low > 0
    assert compare(poor, good, np.random.default_rng(3), n_resamples=500).overall.high < 0
    assert not compare(good, good, np.random.default_rng(3), n_resamples=500).first_better


def test_pick_person_flags_a_made_up_person() -> None:
    expected = {
        "met": [],
        "known": ["Iris Vance"],
        "others": ["Iris Vance"],
        "places": ["Corner Cafe", "Elm Lane"],
    }
    invented = grade_rule("pick_person", expected, "Liam Blackwood, from Corner Cafe")
    assert invented.score == 0.0 and invented.hallucinated
    place_only = grade_rule("pick_person", expected, "Someone at the Corner Cafe, I think.")
    assert place_only.score == 0.0 and not place_only.hallucinated


# The failures reported against the rules, each graded as a failure (issue: a run that is visibly
# incoherent scored 0.73), next to a good answer to the same question that still passes.
HOLLIS = {
    "person": "Hollis Pike",
    "details": ["baker", "Hollis Pike sells bread at Pike Bakery"],
    "profile": "baker; bakes rye loaves before dawn",
}


def test_a_denial_that_echoes_the_name_is_not_knowing() -> None:
    question = "Who is Hollis Pike?"
    echoed = grade_rule(
        "knows_person", HOLLIS, "Hollis Pike is not mentioned in my memory.", question
    )
    assert echoed.score == 0.0
    for denial in (
        "Hollis Pike? I have no memory of Hollis Pike.",
        "I'm sorry, but Hollis Pike, the baker, is someone I don't remember.",
        "Hollis Pike is Hollis Pike, but I can't recall anything else.",
    ):
        assert grade_rule("knows_person", HOLLIS, denial, question).score == 0.0, denial
    # Only the question's words, nothing more, is no knowledge either.
    assert grade_rule("knows_person", HOLLIS, "Hollis Pike is Pike.", question).score == 0.0
    good = grade_rule("knows_person", HOLLIS, "Hollis? He bakes the bread on our lane.", question)
    assert good.score == 1.0
    # The same denials are right about a stranger.
    stranger = {"person": "Hollis Pike"}
    assert grade_rule("stranger", stranger, "Hollis Pike is not mentioned in my memory.").score == 1


def test_a_description_of_someone_else_fails_even_with_kind_words() -> None:
    tunde = {
        "person": "Tunde Okafor",
        "details": ["carpenter", "Tunde is friendly and kind, a neighbour"],
        "profile": "carpenter; builds benches for the park",
        "others": {
            "Mara Lind": "gardener; recently moved to Riverbend and is hosting a seed-swap picnic",
            "Hollis Pike": "baker; bakes rye loaves before dawn",
        },
    }
    question = "Who is Tunde Okafor?"
    someone_else = grade_rule(
        "knows_person",
        tunde,
        "Tunde Okafor recently moved to Riverbend and is hosting a seed-swap picnic. "
        "He is very friendly and kind.",
        question,
    )
    assert someone_else.score == 0.0 and someone_else.hallucinated
    assert "Mara Lind" in someone_else.reason
    praise_only = grade_rule("knows_person", tunde, "Tunde is friendly and kind.", question)
    assert praise_only.score == 0.0
    right = grade_rule(
        "knows_person", tunde, "Tunde is the carpenter; he told me about Mara's picnic.", question
    )
    assert right.score == 1.0 and not right.hallucinated


def test_echoing_the_question_earns_no_fact() -> None:
    assert (
        grade_rule(
            "occupation",
            {"occupation": "baker at the bakery"},
            "What do I do at the bakery? Well.",
            "What do you do at the bakery?",
        ).score
        == 0.0
    )
    block = {"activity": "lunch at the cafe", "place": "Corner Cafe:counter", "at_home": False}
    echoed = grade_rule(
        "plan_at", block, "Lunch at the cafe, I suppose?", "Will you have lunch at the cafe?"
    )
    assert echoed.score == 0.0
    news = {"knows": False, "keywords": [["picnic"], ["seed", "seeds"]]}
    asked = "Have you heard about the seed-swap picnic?"
    assert grade_rule("news", news, "The seed-swap picnic, you say.", asked).score == 1.0
    assert grade_rule("news", news, "Yes, the picnic on Saturday!", asked).hallucinated
