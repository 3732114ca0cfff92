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
Every shipped template's ``version`` and a hash of its content are locked in
``prompt_versions.lock.json`` beside this module. A test compares the templates with the lock,
so editing a prompt without bumping its version fails the suite; ``python -m societas.prompts``
rewrites the lock once the versions are bumped (and refuses while a changed template keeps its
old version).
Runs record :func:`prompt_versions` in their metadata, so a run says which prompts made it.

Examples
--------
>>> template = PromptTemplate(id="greet", version=1, system="You are ${name}.", user="Say hi.")
>>> [m.content for m in template.render(name="Ada")]
['You are Ada.', 'Say hi.']
"""

from __future__ import annotations

import hashlib
import importlib
import json
import string
import sys
from functools import cache
from importlib import resources
from pathlib import Path
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


# --- versions and the lock ---------------------------------------------------------------------

LOCK_FILE = Path(__file__).with_name("prompt_versions.lock.json")


def prompt_packages() -> list[str]:
    """Every societas package that ships templates in a ``prompts/`` folder."""
    root = Path(__file__).parent
    return sorted(
        ".".join(("societas", *folder.parent.relative_to(root).parts))
        for folder in root.rglob("prompts")
        if folder.is_dir() and (folder.parent / "__init__.py").exists()
    )


def template_key(package: str, name: str) -> str:
    """The lock's key of one template: ``package/name``."""
    return f"{package}/{name}"


def template_hash(template: PromptTemplate) -> str:
    """A hash of all that can change what the model is asked (everything but the version)."""
    content = template.model_dump(mode="json", exclude={"version"})
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:16]


def shipped_templates() -> dict[str, PromptTemplate]:
    """Every template shipped in :func:`prompt_packages`, by :func:`template_key`."""
    return {
        template_key(package, name): load_prompt(package, name)
        for package in prompt_packages()
        for name in list_prompts(package)
    }


def prompt_versions() -> dict[str, int]:
    """Version of every shipped template, as a run's metadata records it."""
    return {key: template.version for key, template in sorted(shipped_templates().items())}


def read_lock(path: Path = LOCK_FILE) -> dict[str, dict[str, Any]]:
    """The lock: ``{key: {"version": int, "hash": str}}`` (empty when there is none yet)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text("utf-8"))
    if not isinstance(data, dict):
        raise PromptError(f"{path}: expected an object of template keys")
    return data


def lock_problems(lock: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """What differs between the shipped templates and the lock, in words (empty: they agree).

    A template whose content changed while its version did not is the problem the lock exists
    for; a new, removed or re-versioned template only needs the lock rewritten.
    """
    lock = read_lock() if lock is None else lock
    problems: list[str] = []
    templates = shipped_templates()
    for key, template in sorted(templates.items()):
        entry = lock.get(key)
        if entry is None:
            problems.append(f"{key}: not in the lock (new template)")
            continue
        changed = entry.get("hash") != template_hash(template)
        if changed and entry.get("version") == template.version:
            problems.append(
                f"{key}: content changed but version is still {template.version}: bump it"
            )
        elif changed or entry.get("version") != template.version:
            problems.append(f"{key}: version {entry.get('version')} -> {template.version}")
    removed = sorted(set(lock) - set(templates))
    problems.extend(f"{key}: in the lock but no longer shipped" for key in removed)
    return problems


def write_lock(path: Path = LOCK_FILE) -> list[str]:
    """Rewrite the lock from the templates; refuses while a changed one keeps its version."""
    unbumped = [p for p in lock_problems(read_lock(path)) if p.endswith("bump it")]
    if unbumped:
        raise PromptError("; ".join(unbumped))
    lock = {
        key: {"version": template.version, "hash": template_hash(template)}
        for key, template in sorted(shipped_templates().items())
    }
    path.write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n", "utf-8")
    return sorted(lock)


def main(argv: list[str] | None = None) -> int:
    """``python -m societas.prompts``: rewrite the lock (``--check`` only reports differences)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check"]:
        problems = lock_problems()
        print("\n".join(problems) or "prompt lock up to date")
        return 1 if problems else 0
    try:
        keys = write_lock()
    except PromptError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"locked {len(keys)} prompt templates in {LOCK_FILE.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
