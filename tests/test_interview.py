"""In-character interview answers and survey answers constrained to options or a scale."""

from __future__ import annotations

from datetime import datetime

import pytest

from societas.agents.cognition.interview import (
    SURVEY_MAX_TOKENS,
    SurveyChoice,
    SurveyScale,
    answer_choice,
    answer_in_character,
    answer_scale,
)
from societas.agents.persona import Persona
from societas.llm.fake import ScriptedLLM
from societas.llm.types import LLMOutputError, SamplingParams

MARA = Persona(name="Mara Quist", age=34, traits=["warm"], occupation="baker")
NOW = datetime(2023, 2, 13, 18, 0)
MEMORIES = ["Bo invited me to his party at the cafe at 17:00", "I baked rye bread this morning"]
OPTIONS = ["Yes", "No", "Not sure"]


async def test_interview_answer_is_grounded_in_the_given_memories() -> None:
    llm = ScriptedLLM(lambda call: {"answer": "I'm going to  Bo's party\nat the cafe."})
    text = await answer_in_character(
        llm, MARA, "What are you doing tonight?", memories=MEMORIES, now=NOW, activity="resting"
    )
    assert text == "I'm going to Bo's party at the cafe."
    (call,) = llm.calls
    assert call.purpose == "interview"
    system, user = call.messages
    assert "Mara" not in system.content
    assert user.content.startswith("You are Mara Quist.\nName: Mara Quist")
    assert all(memory in user.content for memory in MEMORIES)
    assert user.content.rstrip().endswith("Question: What are you doing tonight?")
    assert "Monday 13 February 2023, 18:00" in user.content


async def test_interview_rejects_an_empty_question() -> None:
    with pytest.raises(ValueError, match="empty"):
        await answer_in_character(ScriptedLLM(lambda call: {"answer": "?"}), MARA, "  ")


async def test_choice_is_constrained_to_the_options() -> None:
    llm = ScriptedLLM(lambda call: {"answer": "Yes", "why": "I love parties"})
    result = await answer_choice(llm, MARA, "Will you go to the party?", OPTIONS, memories=MEMORIES)
    assert result == SurveyChoice(option="Yes", reason="I love parties")
    (call,) = llm.calls
    assert call.purpose == "survey"
    assert call.schema is not None
    assert call.schema.model_json_schema()["properties"]["answer"]["enum"] == OPTIONS
    assert "- Not sure" in call.messages[1].content

    off_list = ScriptedLLM(lambda call: {"answer": "Maybe", "why": "hm"})
    with pytest.raises(LLMOutputError):
        await answer_choice(off_list, MARA, "Will you go?", OPTIONS)


async def test_choice_passes_sampling_through_for_repeated_samples() -> None:
    llm = ScriptedLLM(lambda call: {"answer": "No", "why": "tired"})
    params = SamplingParams(temperature=1.0, seed=7, max_tokens=4000)
    await answer_choice(llm, MARA, "Go?", OPTIONS, params=params, sample_index=3, purpose="poll")
    (call,) = llm.calls
    assert (call.purpose, call.sample_index) == ("poll", 3)
    assert call.params is not None
    assert (call.params.temperature, call.params.seed) == (1.0, 7)
    # the answer's bound decides max_tokens: the reason plus room for the longest option
    assert call.params.max_tokens == SURVEY_MAX_TOKENS + len("Not sure") // 2


async def test_choice_needs_two_distinct_options() -> None:
    llm = ScriptedLLM(lambda call: {"answer": "Yes", "why": ""})
    with pytest.raises(ValueError, match="two distinct options"):
        await answer_choice(llm, MARA, "Go?", ["Yes", "Yes"])


async def test_scale_answer_is_bounded() -> None:
    llm = ScriptedLLM(lambda call: {"answer": 4, "why": "fairly sure"})
    result = await answer_scale(
        llm, MARA, "How likely are you to go?", 1, 5, low_label="not at all", high_label="certain"
    )
    assert result == SurveyScale(value=4, reason="fairly sure")
    (call,) = llm.calls
    assert call.schema is not None
    answer = call.schema.model_json_schema()["properties"]["answer"]
    assert (answer["type"], answer["minimum"], answer["maximum"]) == ("integer", 1, 5)
    assert "Scale: 1 to 5 (1 = not at all, 5 = certain)." in call.messages[1].content

    too_high = ScriptedLLM(lambda call: {"answer": 9, "why": "very"})
    with pytest.raises(LLMOutputError):
        await answer_scale(too_high, MARA, "How likely?", 1, 5)
    with pytest.raises(ValueError, match="low < high"):
        await answer_scale(llm, MARA, "How likely?", 5, 5)


@pytest.mark.model
async def test_real_model_answers_within_the_constraints() -> None:
    from societas.llm.registry import open_llm

    async with open_llm("smollm2-135m", use_cache=False) as llm:
        text = await answer_in_character(llm, MARA, "What did you do today?", memories=MEMORIES)
        choice = await answer_choice(llm, MARA, "Will you go to the party?", OPTIONS)
        scale = await answer_scale(llm, MARA, "How tired are you?", 1, 5)
    assert 0 < len(text) <= 400
    assert choice.option in OPTIONS
    assert 1 <= scale.value <= 5
