"""Answer schemas narrowed per call without building a pydantic class per call.

A cognition call often allows values that are only known at call time: the agents in view, the
rooms of a place, the speakers of a conversation, the options of a survey question. The answer
class is static; :func:`narrow` pairs it with the call's constraints (:class:`OneOf` for string
enums, :class:`Count` for list lengths, :class:`Between` for number ranges), addressed by dotted
field paths that pass through lists and nested models (``"blocks.place"``). The result,
:class:`Narrowed`, stands in for the class wherever a
:class:`~societas.llm.types.LanguageModel` takes an answer schema: its JSON schema is the class's
(built once) with the constraints written in, so constrained decoding can only produce allowed
values, and its validation is the class's followed by a check of the constraints that fails with
the same :class:`pydantic.ValidationError` a narrowed class would raise.

Building a pydantic class costs milliseconds; a large simulation asks hundreds of thousands of
questions, each with its own set of names, so narrowing costs microseconds instead.

Examples
--------
>>> from pydantic import BaseModel
>>> class Pick(BaseModel):
...     who: str
...     tags: list[str]
>>> schema = narrow(Pick, {"who": ["Ada", "Bo"], "tags": Count(max=2)})
>>> schema.model_json_schema()["properties"]["who"]
{'enum': ['Ada', 'Bo'], 'title': 'Who', 'type': 'string'}
>>> schema.model_validate_json('{"who": "Ada", "tags": []}').who
'Ada'
>>> schema.model_validate({"who": "Cy", "tags": []})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Pick
who
  Input should be 'Ada' or 'Bo' [type=literal_error, input_value='Cy', input_type=str]
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar, Union

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class OneOf:
    """A string field that must be one of ``values`` (duplicates dropped, order kept)."""

    values: tuple[str, ...]

    def __post_init__(self) -> None:
        unique = tuple(dict.fromkeys(self.values))
        if not unique:
            raise ValueError("an enum needs at least one allowed value")
        if not all(isinstance(value, str) for value in unique):
            raise TypeError(f"enum values must be strings, got {unique!r}")
        object.__setattr__(self, "values", unique)


@dataclass(frozen=True)
class Count:
    """A list field with at least ``min`` and at most ``max`` items."""

    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        if (self.min is not None and self.min < 0) or (
            self.min is not None and self.max is not None and self.max < self.min
        ):
            raise ValueError(f"impossible list length bounds: {self.min}..{self.max}")


@dataclass(frozen=True)
class Between:
    """A number field within ``ge`` and ``le`` (both inclusive)."""

    ge: int | float | None = None
    le: int | float | None = None

    def __post_init__(self) -> None:
        if self.ge is not None and self.le is not None and self.le < self.ge:
            raise ValueError(f"impossible range: {self.ge}..{self.le}")


Constraint = OneOf | Count | Between


@dataclass(frozen=True, eq=False)
class Narrowed(Generic[ModelT]):
    """``model`` with ``constraints`` (field path, constraint) applied; build with :func:`narrow`.

    Offers the parts of a model class's interface that language models use:
    :meth:`model_json_schema`, :meth:`model_validate`, :meth:`model_validate_json`,
    ``model_fields`` and ``__name__``.
    """

    model: type[ModelT]
    constraints: tuple[tuple[str, Constraint], ...]

    @property
    def __name__(self) -> str:
        return self.model.__name__

    @property
    def model_fields(self) -> dict[str, FieldInfo]:
        return self.model.model_fields

    def model_json_schema(self) -> dict[str, Any]:
        """The model's JSON schema with the constraints written in (a fresh dict).

        The models' docstrings are left out: they document code, and a prompt that shows the
        schema should not pay for them.
        """
        schema = _without_description(base_json_schema(self.model))
        owned: set[int] = set()
        if "$defs" in schema:
            schema["$defs"] = {
                name: _without_description(definition)
                for name, definition in schema["$defs"].items()
            }
            owned.update(id(definition) for definition in schema["$defs"].values())
        for path, constraint in self.constraints:
            _write(schema, schema, path.split("."), constraint, owned)
        return schema

    def model_validate(self, obj: Any) -> ModelT:
        return self.check(obj if isinstance(obj, self.model) else self.model.model_validate(obj))

    def model_validate_json(self, text: str | bytes) -> ModelT:
        return self.check(self.model.model_validate_json(text))

    def check(self, answer: ModelT) -> ModelT:
        """``answer`` if it meets every constraint; raises :class:`pydantic.ValidationError`."""
        errors: list[InitErrorDetails] = []
        for path, constraint in self.constraints:
            for location, value in _values_at(answer, path.split("."), ()):
                error = _violation(constraint, value)
                if error is not None:
                    errors.append({"type": error, "loc": location, "input": value})
        if errors:
            raise ValidationError.from_exception_data(self.model.__name__, errors)
        return answer


AnswerSchema: TypeAlias = type[ModelT] | Narrowed[ModelT]
"""What a language model takes as the shape of its answer: a model class or a narrowed one."""


def narrow(
    model: type[ModelT], constraints: Mapping[str, Constraint | Sequence[str]]
) -> Narrowed[ModelT]:
    """``model`` with the given constraints; a sequence of strings stands for :class:`OneOf`.

    Paths are checked against the model's fields at once (a typo is a ``ValueError`` here, not a
    silently unconstrained answer); the same path may not appear twice.
    """
    pairs: list[tuple[str, Constraint]] = []
    for path, given in constraints.items():
        constraint = given if isinstance(given, OneOf | Count | Between) else OneOf(tuple(given))
        kind = _field_kind(model, path)
        expected = {OneOf: "str", Count: "list", Between: "number"}[type(constraint)]
        if kind != expected:
            raise ValueError(
                f"{model.__name__}.{path} is a {kind} field; {type(constraint).__name__} "
                f"needs a {expected} field"
            )
        pairs.append((path, constraint))
    return Narrowed(model, tuple(pairs))


def answer_model(schema: AnswerSchema[ModelT]) -> type[ModelT]:
    """The model class behind ``schema``."""
    return schema.model if isinstance(schema, Narrowed) else schema


def json_schema_of(schema: AnswerSchema[Any]) -> dict[str, Any]:
    """The JSON schema of ``schema``; a plain class's is built once and shared (do not modify)."""
    if isinstance(schema, Narrowed):
        return schema.model_json_schema()
    model: type[BaseModel] = schema
    return base_json_schema(model)


@functools.lru_cache(maxsize=1024)
def base_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model.model_json_schema()``, built once per class (pydantic takes milliseconds)."""
    return model.model_json_schema()


# -- paths through the model ------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _field_kind(model: type[BaseModel], path: str) -> str:
    """ "str", "list", "number" or "other": what the field at ``path`` holds."""
    current: type[BaseModel] = model
    names = path.split(".")
    for index, name in enumerate(names):
        field = current.model_fields.get(name)
        if field is None:
            raise ValueError(f"{model.__name__} has no field {'.'.join(names[: index + 1])!r}")
        annotation = _without_none(field.annotation)
        last = index == len(names) - 1
        origin = typing.get_origin(annotation)
        if origin is list:
            if last:
                return "list"
            (annotation,) = typing.get_args(annotation)
        if last:
            if annotation is str:
                return "str"
            if annotation in (int, float):
                return "number"
            return "other"
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise ValueError(f"{model.__name__}.{'.'.join(names[: index + 1])} has no fields")
        current = annotation
    raise AssertionError("unreachable: a path has at least one part")


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        kept = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(kept) == 1:
            return kept[0]
    return annotation


def _values_at(
    node: Any, names: list[str], location: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Each value at the path ``names`` under ``node``, with its location (lists fan out)."""
    value = getattr(node, names[0], None)
    here = (*location, names[0])
    if len(names) == 1:
        yield here, value
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _values_at(item, names[1:], (*here, index))
    elif value is not None:
        yield from _values_at(value, names[1:], here)


def _violation(constraint: Constraint, value: Any) -> PydanticCustomError | None:
    if isinstance(constraint, OneOf):
        if value in constraint.values:
            return None
        expected = " or ".join(repr(v) for v in constraint.values[-2:])
        if len(constraint.values) > 2:
            expected = ", ".join(repr(v) for v in constraint.values[:-2]) + ", " + expected
        return PydanticCustomError("literal_error", f"Input should be {expected}")
    if isinstance(constraint, Count):
        length = len(value) if isinstance(value, list) else 0
        return _out_of_bounds(
            length,
            constraint.min,
            constraint.max,
            ("too_short", f"List should have at least {constraint.min} items, not {length}"),
            ("too_long", f"List should have at most {constraint.max} items, not {length}"),
        )
    if value is None:
        return None
    return _out_of_bounds(
        value,
        constraint.ge,
        constraint.le,
        ("greater_than_equal", f"Input should be greater than or equal to {constraint.ge}"),
        ("less_than_equal", f"Input should be less than or equal to {constraint.le}"),
    )


def _out_of_bounds(
    value: float,
    low: float | None,
    high: float | None,
    below: tuple[str, str],
    above: tuple[str, str],
) -> PydanticCustomError | None:
    """The error (pydantic's type and message) for ``value`` outside ``low``..``high``."""
    if low is not None and value < low:
        return PydanticCustomError(*below)
    if high is not None and value > high:
        return PydanticCustomError(*above)
    return None


# -- writing constraints into a JSON schema ---------------------------------------------------


def _without_description(node: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in node.items() if key != "description"}


def _write(
    root: dict[str, Any],
    node: dict[str, Any],
    names: list[str],
    constraint: Constraint,
    owned: set[int],
) -> None:
    """Write ``constraint`` at ``names`` below the object schema ``node``, copying what it
    changes (``owned`` holds the ids of dicts already copied for this schema)."""
    properties = node["properties"]
    if id(properties) not in owned:
        properties = node["properties"] = dict(properties)
        owned.add(id(properties))
    field = properties[names[0]]
    if len(names) == 1:
        properties[names[0]] = _constrained(field, constraint)
        return
    target = field.get("items", field)
    reference = target.get("$ref", "")
    prefix = "#/$defs/"
    if not reference.startswith(prefix):
        raise ValueError(f"cannot follow {names[0]!r} into a nested model in the JSON schema")
    definitions: dict[str, Any] = root["$defs"]
    name = reference[len(prefix) :]
    definition = definitions[name]
    if id(definition) not in owned:
        definition = definitions[name] = dict(definition)
        owned.add(id(definition))
    _write(root, definition, names[1:], constraint, owned)


def _constrained(field: dict[str, Any], constraint: Constraint) -> dict[str, Any]:
    """The property schema ``field`` with ``constraint`` applied, keyed as pydantic keys it."""
    if isinstance(constraint, OneOf):
        values = list(constraint.values)
        kept = {k: v for k, v in field.items() if k in ("title", "description")}
        shape = {"const": values[0]} if len(values) == 1 else {"enum": values}
        return dict(sorted({**shape, **kept, "type": "string"}.items()))
    out = dict(field)
    low, high = (
        ("minItems", "maxItems") if isinstance(constraint, Count) else ("minimum", "maximum")
    )
    lower = constraint.min if isinstance(constraint, Count) else constraint.ge
    upper = constraint.max if isinstance(constraint, Count) else constraint.le
    for key, bound in ((low, lower), (high, upper)):
        if bound is not None:
            out[key] = bound
    return dict(sorted(out.items()))
