"""Prompts as data: versioned YAML templates stored beside the code that uses them.

A template file (``<package>/prompts/<name>.yaml``) holds::

    id: plan_day
    version: 3
    answer: societas.agents.cognition.planning:DayPlanAnswer   # pydantic model of the answer
    system: |
      You are ${name}. ...
    user: |
      ...

Placeholders use ``${name}`` (``string.Template``), so JSON braces in a prompt need no escaping.
The template's ``version`` goes into the rendered system message's cache identity through its text,
so editing a prompt without bumping the version still changes the cache key; the version is for
people and for the run store, which records which prompt versions produced a run.

Examples
--------
>>> template = PromptTemplate(id="greet", version=1, system="You are ${name}.", user="Say hi.")
>>> [m.content for m in template.render(name="Ada")]
['You are Ada.', 'Say hi.']
"""

from __future__ import annotations

import importlib
import string
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from societas.llm.types import Message


class PromptError(Exception):
    """A template is missing, malformed, or rendered with missing variables."""


class PromptTemplate(BaseModel):
    """One versioned prompt: a system part, a user part and the model of its answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    version: int = Field(ge=1)
    answer: str | None = Field(
        default=None, description="'module:Class' of the pydantic model the answer must follow."
    )
    system: str
    user: str
    description: str = ""

    def render(self, **variables: Any) -> list[Message]:
        """Fill the placeholders; a missing variable is an error, never a silent blank."""
        try:
            system = string.Template(self.system).substitute(variables)
            user = string.Template(self.user).substitute(variables)
        except KeyError as missing:
            raise PromptError(f"prompt {self.id!r} needs variable {missing}") from None
        return [Message(role="system", content=system), Message(role="user", content=user)]

    def answer_model(self) -> type[BaseModel]:
        """Import the answer's pydantic model named by ``answer``."""
        if self.answer is None:
            raise PromptError(f"prompt {self.id!r} declares no answer model")
        module_name, _, class_name = self.answer.partition(":")
        model = getattr(importlib.import_module(module_name), class_name, None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise PromptError(f"prompt {self.id!r}: answer {self.answer!r} is not a pydantic model")
        return model

    def answer_schema(self) -> dict[str, Any]:
        """The JSON schema of the answer (what constrained decoding enforces)."""
        return self.answer_model().model_json_schema()


@cache
def load_prompt(package: str, name: str) -> PromptTemplate:
    """Load ``<package>/prompts/<name>.yaml`` (cached; templates are immutable)."""
    try:
        text = resources.files(package).joinpath("prompts", f"{name}.yaml").read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as error:
        raise PromptError(f"prompt {package}/prompts/{name}.yaml not found") from error
    try:
        data = yaml.safe_load(text)
        return PromptTemplate.model_validate(data)
    except (yaml.YAMLError, ValidationError) as error:
        raise PromptError(f"prompt {package}/prompts/{name}.yaml is malformed: {error}") from error


def list_prompts(package: str) -> list[str]:
    """Names of the templates shipped in ``<package>/prompts``."""
    folder = resources.files(package).joinpath("prompts")
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))
