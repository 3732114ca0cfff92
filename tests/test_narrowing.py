"""Narrowed answer schemas: the JSON schema and checks of a class built per call, without one."""

from __future__ import annotations

import copy
import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from societas.llm.client import LLM
from societas.llm.fake import HashEmbedder, ScriptedBackend, ScriptedLLM
from societas.llm.narrowing import (
    Between,
    Count,
    Narrowed,
    OneOf,
    answer_model,
    base_json_schema,
    json_schema_of,
    narrow,
)
from societas.llm.types import Message


class Step(BaseModel):
    """A step (this docstring must not reach the prompt)."""

    obj: str
    note: str = Field(max_length=20, description="short")


class Plan(BaseModel):
    """A plan."""

    place: str
    steps: list[Step] = Field(min_length=1, max_length=8)
    score: int = Field(ge=0, le=100)
    maybe: str | None = None


# What a class narrowed by hand (the way pydantic would write it) looks like.
class StepByHand(BaseModel):
    obj: Literal["bed", "desk", "none"]
    note: str = Field(max_length=20, description="short")


class PlanByHand(BaseModel):
    place: Literal["home"]
    steps: list[StepByHand] = Field(min_length=2, max_length=3)
    score: int = Field(ge=1, le=7)
    maybe: str | None = None


NARROW = {
    "place": ["home"],
    "steps": Count(min=2, max=3),
    "steps.obj": ("bed", "desk", "none", "bed"),
    "score": Between(ge=1, le=7),
}
GOOD = {
    "place": "home",
    "steps": [{"obj": "bed", "note": "a"}, {"obj": "none", "note": "b"}],
    "score": 7,
}


def test_json_schema_equals_a_hand_narrowed_class_and_leaves_the_base_alone() -> None:
    before = copy.deepcopy(base_json_schema(Plan))
    schema = narrow(Plan, NARROW).model_json_schema()
    expected = PlanByHand.model_json_schema()
    expected["title"] = "Plan"
    expected["$defs"] = {"Step": {**expected["$defs"]["StepByHand"], "title": "Step"}}
    expected["properties"]["steps"]["items"] = {"$ref": "#/$defs/Step"}
    assert json.dumps(schema) == json.dumps(expected)  # same keys, same order
    assert base_json_schema(Plan) == before
    assert "description" in before  # the docstring stays in the class's own schema


def test_validation_accepts_allowed_values_and_names_each_violation() -> None:
    schema = narrow(Plan, NARROW)
    assert schema.model_validate(GOOD).steps[1].obj == "none"
    assert schema.model_validate_json(json.dumps(GOOD)).score == 7
    bad: dict[str, Any] = {
        "place": "park",
        "steps": [{"obj": "sofa", "note": "a"}] * 4,
        "score": 9,
    }
    with pytest.raises(ValidationError) as caught:
        schema.model_validate(bad)
    problems = {tuple(e["loc"]): e["type"] for e in caught.value.errors()}
    assert problems == {
        ("place",): "literal_error",
        ("steps",): "too_long",
        ("steps", 0, "obj"): "literal_error",
        ("steps", 1, "obj"): "literal_error",
        ("steps", 2, "obj"): "literal_error",
        ("steps", 3, "obj"): "literal_error",
        ("score",): "less_than_equal",
    }
    message = str(caught.value)
    assert "Input should be 'bed', 'desk' or 'none'" in message
    assert "1 validation error" not in message and "for Plan" in message
    with pytest.raises(ValidationError, match="greater_than_equal"):
        schema.model_validate({**GOOD, "score": 0})
    with pytest.raises(ValidationError, match="too_short"):
        schema.model_validate({**GOOD, "steps": GOOD["steps"][:1]})
    # The class's own rules still apply first.
    with pytest.raises(ValidationError, match="note"):
        schema.model_validate({**GOOD, "steps": [{"obj": "bed", "note": "x" * 30}] * 2})


def test_an_instance_of_the_class_is_checked_too() -> None:
    schema = narrow(Plan, NARROW)
    valid = Plan.model_validate(GOOD)
    assert schema.model_validate(valid) is valid
    with pytest.raises(ValidationError):
        schema.model_validate(Plan.model_validate({**GOOD, "place": "park"}))


def test_bad_constraints_are_refused_when_narrowing() -> None:
    with pytest.raises(ValueError, match="no field 'nowhere'"):
        narrow(Plan, {"nowhere": ["a"]})
    with pytest.raises(ValueError, match=r"no field 'steps\.what'"):
        narrow(Plan, {"steps.what": ["a"]})
    with pytest.raises(ValueError, match=r"Plan\.score is a number field; OneOf needs a str"):
        narrow(Plan, {"score": ["a"]})
    with pytest.raises(ValueError, match="Count needs a list"):
        narrow(Plan, {"place": Count(max=1)})
    with pytest.raises(ValueError, match="has no fields"):
        narrow(Plan, {"place.x": ["a"]})
    with pytest.raises(ValueError, match="at least one allowed value"):
        narrow(Plan, {"place": []})
    with pytest.raises(ValueError, match="impossible"):
        Count(min=3, max=2)
    with pytest.raises(ValueError, match="impossible"):
        Between(ge=3, le=2)
    assert narrow(Plan, {"maybe": ["x"]}).model_validate({**GOOD, "maybe": "x"}).maybe == "x"


def test_helpers_treat_classes_and_narrowed_schemas_alike() -> None:
    narrowed = narrow(Plan, {"place": OneOf(("home", "park"))})
    assert isinstance(narrowed, Narrowed) and narrowed.__name__ == "Plan"
    assert answer_model(narrowed) is Plan and answer_model(Plan) is Plan
    assert narrowed.model_fields is Plan.model_fields
    assert json_schema_of(Plan) is base_json_schema(Plan)
    assert json_schema_of(narrowed)["properties"]["place"]["enum"] == ["home", "park"]


async def test_the_client_sends_the_narrowed_schema_and_repairs_a_disallowed_value() -> None:
    good = json.dumps(GOOD)
    backend = ScriptedBackend([json.dumps({**GOOD, "place": "park"}), good])
    llm = LLM(backend, HashEmbedder(dim=8), retry_base_s=0.001)
    ask = [Message(role="user", content="Plan your day.")]
    answer = await llm.generate(ask, narrow(Plan, NARROW), purpose="plan")
    assert answer.place == "home" and isinstance(answer, Plan)
    assert backend.requests[0].json_schema == narrow(Plan, NARROW).model_json_schema()
    assert "'home'" in backend.requests[1].messages[-1].content  # the repair names the rule
    assert llm.meter.snapshot().total.invalid_answers == 1


async def test_scripted_models_check_narrowed_schemas() -> None:
    llm = ScriptedLLM(lambda call: {**GOOD, "place": "park"})
    with pytest.raises(Exception, match="scripted answer invalid for Plan"):
        await llm.generate([], narrow(Plan, NARROW), purpose="plan")
