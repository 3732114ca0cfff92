"""``societas models`` and ``societas ask``: the model catalog and one-off questions.

``models`` lists the embedded models (installed? assembled? size, licence); ``--check`` asks each
installed one for a tiny structured answer and reports whether it came back valid, and how fast.
``ask`` sends one question to any model specification and prints the answer and what it cost;
``--schema FILE.json`` asks for a JSON answer following a (simple object) JSON schema.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, Field, create_model
from rich.console import Console
from rich.text import Text

from societas.cli.output import (
    JsonOption,
    Table,
    emit_json,
    json_mode,
    print_table,
    prose_column,
    whole_column,
)
from societas.cli.server_options import BaseUrlOption, EndpointsOption
from societas.llm.catalog import CATALOG, DEFAULT_MODEL, ModelEntry
from societas.llm.meter import RequestTotals
from societas.llm.registry import open_llm
from societas.llm.types import LLMError, Message, SamplingParams
from societas.llm.weights import WeightsStatus, weights_status

console = Console()

ModelOption = Annotated[
    str,
    typer.Option("--model", "-m", help="A catalog name, gguf:PATH or openai:NAME."),
]


def register(app: typer.Typer) -> None:
    """Add ``models`` and ``ask`` to the ``societas`` command."""
    app.command("models")(models)
    app.command("ask")(ask)


# --- societas models ---------------------------------------------------------------------------


class _CheckAnswer(BaseModel):
    answer: Literal["yes", "no"]
    city: str = Field(max_length=40)


_CHECK_MESSAGES = [
    Message(role="system", content="Answer in JSON."),
    Message(role="user", content="Is Paris in France? Also name the capital of Italy."),
]


def models(
    check: Annotated[
        bool, typer.Option("--check", help="Ask each installed model for a tiny JSON answer.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List the embedded models: installed, assembled, size and licence."""
    with json_mode(console, as_json):
        statuses = {name: weights_status(entry) for name, entry in CATALOG.items()}
        checks: dict[str, CheckResult] = {}
        if check:
            installed = [name for name, status in statuses.items() if status.installed]
            checks = asyncio.run(_check_all(installed))
            statuses = {name: weights_status(entry) for name, entry in CATALOG.items()}
    if as_json:
        emit_json(_models_json(statuses, checks))
        return
    print_table(console, _models_table(statuses, checks))
    console.print("* the default model. Also accepted by --model: gguf:PATH, openai:NAME.")
    for name, result in checks.items():
        if not result.ok:
            console.print(f"[red]{name} failed:[/red] {result.detail}")
    for name, status in statuses.items():
        if not status.installed:
            command = CATALOG[name].pip_install_command(list(status.missing))
            # One logical line however narrow the terminal, so the command copies whole.
            console.print(f"[yellow]{name}[/yellow] is not installed: {command}", soft_wrap=True)


def _models_table(statuses: dict[str, WeightsStatus], checks: dict[str, CheckResult]) -> Table:
    names = [_marked(name) for name in statuses]
    sizes = [_size(CATALOG[name]) for name in statuses]
    licences = [CATALOG[name].license_id for name in statuses]
    columns = [
        whole_column("model", names),
        prose_column("installed", min_width=9, max_width=12),
        whole_column("size", sizes, justify="right"),
        whole_column("licence", licences),
        prose_column("description"),
    ]
    if checks:  # the time includes loading the model
        texts = [Text.from_markup(_check_text(checks.get(name))).plain for name in statuses]
        columns.append(whole_column("check", texts))
    table = Table(*columns, title="Embedded models")
    for name, status in statuses.items():
        entry = CATALOG[name]
        row = [
            _marked(name),
            _installed(entry, status),
            _size(entry),
            entry.license_id,
            entry.description,
        ]
        if checks:  # the time includes loading the model
            row.append(_check_text(checks.get(name)))
        table.add_row(*row)
    return table


def _models_json(
    statuses: dict[str, WeightsStatus], checks: dict[str, CheckResult]
) -> dict[str, Any]:
    rows = []
    for name, status in statuses.items():
        entry = CATALOG[name]
        result = checks.get(name)
        rows.append(
            {
                "model": name,
                "default": name == DEFAULT_MODEL,
                "installed": status.installed,
                "missing_packages": list(status.missing),
                "weights": _weights_state(entry, status),
                "size_bytes": entry.size_bytes,
                "licence": entry.license_id,
                "description": entry.description,
                "install_command": None
                if status.installed
                else entry.pip_install_command(list(status.missing)),
                "check": None
                if result is None
                else {
                    "ok": result.ok,
                    "seconds": round(result.seconds, 2),
                    "detail": result.detail,
                },
            }
        )
    return {"models": rows, "also_accepted": ["gguf:PATH", "openai:NAME"]}


def _check_text(result: CheckResult | None) -> str:
    return "-" if result is None else result.cell()


def _marked(name: str) -> str:
    return name + ("*" if name == DEFAULT_MODEL else "")


def _size(entry: ModelEntry) -> str:
    return f"{entry.size_bytes / 1e6:,.0f} MB"


def _installed(entry: ModelEntry, status: WeightsStatus) -> str:
    if not status.installed:
        return f"no ({len(status.missing)} packages missing)"
    return f"yes, {_weights_state(entry, status)}"


def _weights_state(entry: ModelEntry, status: WeightsStatus) -> str:
    if not status.installed:
        return "-"
    if entry.single_file:
        return "in place, verified" if status.verified else "in place"
    if not status.assembled:
        return "not assembled (on first use)"
    return "assembled, verified" if status.verified else "assembled"


@dataclass(frozen=True)
class CheckResult:
    """Outcome of ``models --check`` for one model."""

    ok: bool
    seconds: float
    detail: str

    def cell(self) -> str:
        verdict = "[green]ok[/green]" if self.ok else "[red]failed[/red]"
        return f"{verdict} {self.seconds:.1f} s"


async def _check_all(names: list[str]) -> dict[str, CheckResult]:
    results = {}
    for name in names:
        console.print(f"checking {name}...")
        results[name] = await _check_one(name)
    return results


async def _check_one(name: str) -> CheckResult:
    """Load ``name`` and ask for a tiny JSON answer; the time includes loading."""
    started = time.perf_counter()
    try:
        async with open_llm(name, use_cache=False) as llm:
            answer = await llm.generate(
                _CHECK_MESSAGES,
                _CheckAnswer,
                purpose="check",
                params=SamplingParams(temperature=0.0, max_tokens=40),
            )
    except LLMError as error:
        return CheckResult(False, time.perf_counter() - started, str(error))
    return CheckResult(True, time.perf_counter() - started, answer.model_dump_json())


# --- societas ask ------------------------------------------------------------------------------


def ask(
    question: Annotated[str, typer.Argument(help="What to ask.")],
    model: ModelOption = DEFAULT_MODEL,
    schema: Annotated[
        Path | None,
        typer.Option("--schema", help="JSON schema file (an object) the answer must follow."),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="A system message.")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, max=32768)] = 256,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, max=2.0)] = 0.7,
    base_url: BaseUrlOption = None,
    endpoints: EndpointsOption = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Ask the model even if the answer is cached.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Ask MODEL one QUESTION; print the answer and the calls, tokens and cache hits it cost."""
    answer_model = _answer_model_or_exit(schema) if schema is not None else None
    messages = [Message(role="system", content=system)] if system else []
    messages.append(Message(role="user", content=question))
    params = SamplingParams(max_tokens=max_tokens, temperature=temperature)
    answer, model_id, cost = _run_or_exit(
        _ask(model, base_url, not no_cache, messages, params, answer_model, endpoints)
    )
    if as_json:
        parsed = json.loads(answer) if answer_model is not None else answer
        emit_json({"model": model_id, "answer": parsed, "cost": cost.model_dump(mode="json")})
        return
    console.print(answer, markup=False, highlight=False)
    console.print(_cost_line(model_id, cost), style="dim", markup=False, emoji=False)


async def _ask(
    model: str,
    base_url: str | None,
    use_cache: bool,
    messages: list[Message],
    params: SamplingParams,
    answer_model: type[BaseModel] | None,
    endpoints: Path | None = None,
) -> tuple[str, str, RequestTotals]:
    """The answer's text, the model's id and what the question cost."""
    async with open_llm(model, base_url=base_url, use_cache=use_cache, endpoints=endpoints) as llm:
        if answer_model is None:
            text = await llm.chat_text(messages, purpose="ask", params=params)
        else:
            reply = await llm.generate(messages, answer_model, purpose="ask", params=params)
            text = reply.model_dump_json(indent=2)
        return text, llm.model_id, llm.meter.snapshot().total


_Asked = tuple[str, str, RequestTotals]


def _cost_line(model_id: str, total: RequestTotals) -> str:
    return (
        f"model {model_id}: {total.calls} call(s), {total.prompt_tokens} prompt tokens "
        f"({total.reused_prompt_tokens} reused) + {total.completion_tokens} answer tokens, "
        f"{total.cache_hits} cache hit(s), {total.wall_s:.2f} s in the model"
    )


def _run_or_exit(work: Coroutine[Any, Any, _Asked]) -> _Asked:
    try:
        return asyncio.run(work)
    except LLMError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


def _answer_model_or_exit(path: Path) -> type[BaseModel]:
    try:
        return model_from_json_schema_file(path)
    except SchemaFileError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


# --- JSON schema file -> pydantic model --------------------------------------------------------


class SchemaFileError(ValueError):
    """A --schema file is missing, not JSON, or uses JSON Schema features ``ask`` cannot map."""


_SCALARS: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}


def model_from_json_schema_file(path: Path) -> type[BaseModel]:
    """A pydantic model for the object schema in ``path`` (see :func:`model_from_json_schema`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SchemaFileError(f"cannot read schema file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise SchemaFileError(f"{path}: not UTF-8 text") from None
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        raise SchemaFileError(
            f"{path}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    try:
        return model_from_json_schema(schema)
    except SchemaFileError as error:
        raise SchemaFileError(f"{path}: {error}") from None


def model_from_json_schema(schema: Any, name: str = "Answer") -> type[BaseModel]:
    """A pydantic model for a simple object JSON schema.

    Supported: objects with ``properties`` (nested too, and ``$ref`` to ``$defs``), strings
    (``minLength``/``maxLength``), integers and numbers (``minimum``/``maximum``), booleans,
    ``enum``/``const``, arrays (``items``, ``minItems``/``maxItems``). Properties not listed in
    ``required`` may be left out (they read as None).

    >>> Pick = model_from_json_schema({"type": "object", "required": ["n"],
    ...     "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 3}}})
    >>> Pick.model_validate({"n": 2}).n
    2
    """
    if not isinstance(schema, dict):
        raise SchemaFileError("the schema must be a JSON object")
    return _object_model(schema, name, "$", schema.get("$defs") or {}, ())


def _object_model(
    node: dict[str, Any], name: str, where: str, defs: dict[str, Any], seen: tuple[str, ...]
) -> type[BaseModel]:
    properties = node.get("properties")
    if node.get("type", "object") != "object" or not isinstance(properties, dict) or not properties:
        raise SchemaFileError(f"{where}: expected an object schema with 'properties'")
    required = set(node.get("required") or ())
    fields: dict[str, Any] = {}
    for key, sub in properties.items():
        annotation = _field_type(sub, f"{where}.{key}", defs, seen, _model_name(key))
        description = sub.get("description") if isinstance(sub, dict) else None
        if key in required:
            fields[key] = (annotation, Field(description=description))
        else:
            fields[key] = (annotation, Field(default=None, description=description))
    model: type[BaseModel] = create_model(name, **fields)
    return model


def _field_type(
    node: Any, where: str, defs: dict[str, Any], seen: tuple[str, ...], name: str
) -> Any:
    if not isinstance(node, dict):
        raise SchemaFileError(f"{where}: expected a schema object")
    if "$ref" in node:
        target, ref = _resolve(node["$ref"], where, defs, seen)
        return _field_type(target, where, defs, (*seen, ref), ref.rsplit("/", 1)[-1])
    if "enum" in node or "const" in node:
        values = node["enum"] if "enum" in node else [node["const"]]
        if not values or not all(isinstance(v, str | int | bool) for v in values):
            raise SchemaFileError(f"{where}: enum values must be strings, integers or booleans")
        return Literal[tuple(values)]
    kind = node.get("type")
    if kind == "object":
        return _object_model(node, name, where, defs, seen)
    if kind == "array":
        items = _field_type(node.get("items", {}), f"{where}[]", defs, seen, name + "Item")
        bounds = Field(min_length=node.get("minItems"), max_length=node.get("maxItems"))
        return Annotated[list[items], bounds]  # type: ignore[valid-type]
    if kind == "string":
        return Annotated[
            str, Field(min_length=node.get("minLength"), max_length=node.get("maxLength"))
        ]
    if kind in ("integer", "number"):
        return Annotated[_SCALARS[kind], Field(ge=node.get("minimum"), le=node.get("maximum"))]
    if kind == "boolean":
        return bool
    raise SchemaFileError(
        f"{where}: unsupported schema (type {kind!r}); use object, array, string, integer, "
        "number, boolean or enum"
    )


def _resolve(ref: Any, where: str, defs: dict[str, Any], seen: tuple[str, ...]) -> tuple[Any, str]:
    prefix = "#/$defs/"
    if not isinstance(ref, str) or not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
        raise SchemaFileError(f"{where}: cannot resolve $ref {ref!r} (only '#/$defs/NAME')")
    if ref in seen:
        raise SchemaFileError(f"{where}: $ref {ref!r} refers to itself (recursive schemas)")
    return defs[ref[len(prefix) :]], ref


def _model_name(key: str) -> str:
    cleaned = "".join(part.capitalize() for part in key.replace("-", "_").split("_") if part)
    return cleaned if cleaned.isidentifier() else "Nested"
