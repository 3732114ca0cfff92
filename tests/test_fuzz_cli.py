"""The ``societas`` command with generated bad arguments and files: a clear error, no traceback.

Every command runs in-process (Typer's ``CliRunner``) with inputs that must fail validation:
missing, empty, damaged or binary files and folders, out-of-range numbers, unknown models. No
model is ever loaded: model specifications are always invalid, and ``serve`` never binds.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from societas.cli.app import app
from societas.engine.config import SimulationConfig
from societas.engine.simulation import Simulation
from societas.llm.fake import SchemaFiller, ScriptedLLM
from societas.scenarios.scenario import load_scenario

EXAMPLES = int(os.environ.get("SOCIETAS_FUZZ_EXAMPLES", "80"))
# Commands that may succeed on a valid input because they load no model (serve never binds here).
MODEL_FREE = {"inspect", "report", "serve"}
ERROR_MARKERS = ("error", "Error", "Invalid value", "Missing argument", "No such option", "Usage:")


@dataclass(frozen=True)
class Places:
    """Files and folders the generated commands point at, made once per module."""

    root: Path
    run: Path  # a real (scripted) run: run.sqlite with a checkpoint, scenario.yaml

    def get(self, kind: str) -> Path:
        return self.root / kind


async def _scripted_run(out: Path) -> None:
    llm = ScriptedLLM(SchemaFiller(random.Random(0)).responder)
    sim = await Simulation.start(load_scenario("duo"), out, llm, SimulationConfig(seed=1))
    try:
        await sim.run(hours=0.5)
    finally:
        sim.close("finished")


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Places]:
    import asyncio

    root = tmp_path_factory.mktemp("cli")
    run = root / "run"
    asyncio.run(_scripted_run(run))
    duo = load_scenario("duo").source_text
    (run / "scenario.yaml").write_text(duo, encoding="utf-8")
    (root / "empty").mkdir()
    (root / "binary.yaml").write_bytes(bytes(range(256)) * 3)
    (root / "text.yaml").write_text("name: [unclosed\n  - : :\n", encoding="utf-8")
    (root / "list.yaml").write_text("- just\n- a list\n", encoding="utf-8")
    (root / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (root / "schema.json").write_text('{"type": "object", "properties": {}}', encoding="utf-8")
    (root / "scenario.yaml").write_text(duo.replace("Bell House:main room", "../../etc"), "utf-8")
    damaged = root / "damaged-run"
    shutil.copytree(run, damaged)
    (damaged / "run.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 2000)
    no_store = root / "no-store"
    no_store.mkdir()
    (no_store / "scenario.yaml").write_text(duo, encoding="utf-8")
    bad_scenario = root / "bad-scenario-run"
    shutil.copytree(run, bad_scenario)
    (bad_scenario / "scenario.yaml").write_text("name: [\n", encoding="utf-8")
    yield Places(root, run)


PATH_KINDS = [
    "missing",
    "missing/deeper/file.yaml",
    "empty",
    "binary.yaml",
    "text.yaml",
    "list.yaml",
    "latin1.yaml",
    "schema.json",
    "scenario.yaml",
    "damaged-run",
    "no-store",
    "bad-scenario-run",
    "run/run.sqlite",
]

bad_models = st.one_of(
    st.sampled_from(
        ["bogus", "gguf:", "openai:", " ", "gguf:/no/such/file.gguf", "qwen9", "smollm2", "fake"]
    ),
    st.text(max_size=12).map(lambda text: "no-such-model-" + text),
)
# A leading "x": a generated word must never read as an option (e.g. "--help").
words = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30).map(
    lambda text: "x" + text
)
bad_numbers = st.sampled_from(
    ["-1", "0", "nan", "inf", "-inf", "1e309", "abc", "", "99999999999999999999999", "0x10", "1.5"]
)


@st.composite
def argv(draw: st.DrawFn, places: Places) -> tuple[str, list[str]]:
    """A command and its arguments, each bound to fail before any model or server starts."""

    def path() -> str:
        return str(places.get(draw(st.sampled_from(PATH_KINDS))))

    def run_dir() -> str:
        return draw(st.sampled_from([path(), str(places.run)]))

    command = draw(st.sampled_from(["run", "resume", "inspect", "interview", "experiment",
                                    "report", "serve", "ask"]))  # fmt: skip
    model = ["--model", draw(bad_models)]
    if command == "run":
        scenario = draw(st.sampled_from([path(), "town", "duo", "twon", draw(words)]))
        extra = draw(st.sampled_from([[], ["--hours", draw(bad_numbers)], ["--seed", "x"]]))
        return command, [command, scenario, *model, *extra, "--out", str(places.root / "new")]
    if command == "resume":
        extra = draw(st.sampled_from([[], ["--hours", draw(bad_numbers)]]))
        return command, [command, run_dir(), *model, *extra]
    if command == "inspect":
        agent = draw(st.sampled_from(["Iris Vance", "iris", "Nobody", draw(words)]))
        extra = draw(st.sampled_from([[], ["--memories", draw(bad_numbers)]]))
        return command, [command, run_dir(), agent, *extra]
    if command == "interview":
        agent = draw(st.sampled_from(["Iris Vance", "Nobody", draw(words)]))
        return command, [command, run_dir(), agent, draw(words), *model]
    if command == "experiment":
        extra = draw(st.sampled_from([[], ["--n", draw(bad_numbers)]]))
        return command, [command, path(), *model, *extra, "--out", str(places.root / "exp")]
    if command == "report":
        return command, [command, draw(st.sampled_from([path(), str(places.run)]))]
    if command == "serve":
        extra = draw(
            st.sampled_from(
                [[], ["--port", draw(bad_numbers)], ["--port", "70000"], ["--host", draw(words)]]
            )
        )
        return command, [command, path(), *extra]
    extra = draw(
        st.sampled_from(
            [
                [],
                ["--schema", path()],
                ["--max-tokens", draw(bad_numbers)],
                ["--temperature", draw(bad_numbers)],
            ]
        )
    )
    return command, [command, draw(words), *model, *extra]


def invoke(args: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    served: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(kw))
    runner = CliRunner(env={"COLUMNS": "300", "NO_COLOR": "1"})
    result = runner.invoke(app, args, catch_exceptions=True)
    return result, served


def assert_clean_failure(command: str, args: list[str], result: Any) -> None:
    output = result.output
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, f"{args}: {type(result.exception).__name__}: {result.exception}"
    assert "Traceback" not in output, output
    assert 'File "' not in output, output
    if result.exit_code == 0:
        assert command in MODEL_FREE, f"{args} succeeded:\n{output}"
        return
    assert any(marker in output for marker in ERROR_MARKERS), f"{args}: unclear error:\n{output}"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_bad_arguments_give_a_clear_error_never_a_traceback(
    places: Places, monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    command, args = data.draw(argv(places))
    result, served = invoke(args, monkeypatch)
    assert_clean_failure(command, args, result)
    for options in served:  # serve accepted its input: it binds loopback by default
        assert "--host" in args or options["host"] == "127.0.0.1"


@pytest.mark.parametrize(
    "args",
    [
        ["run", "{missing}"],
        ["run", "{binary.yaml}"],
        ["run", "{scenario.yaml}", "--model", "bogus"],
        ["run", "duo", "--hours", "nan", "--model", "bogus"],
        ["run", "duo", "--hours", "0", "--model", "bogus"],
        ["resume", "{missing}", "--model", "bogus"],
        ["resume", "{damaged-run}", "--model", "bogus"],
        ["resume", "{no-store}", "--model", "bogus"],
        ["resume", "{bad-scenario-run}", "--model", "bogus"],
        ["inspect", "{run}", "Nobody"],
        ["inspect", "{damaged-run}", "Iris Vance"],
        ["inspect", "{empty}", "Iris Vance"],
        ["interview", "{run}", "Nobody", "hi", "--model", "bogus"],
        ["interview", "{run}", "Iris Vance", "hi", "--model", "bogus"],
        ["experiment", "{missing}", "--model", "bogus"],
        ["experiment", "{binary.yaml}", "--model", "bogus"],
        ["experiment", "{latin1.yaml}", "--model", "bogus"],
        ["experiment", "{empty}", "--model", "bogus"],
        ["report", "{missing}"],
        ["report", "{run}"],
        ["serve", "{missing}"],
        ["serve", "{empty}"],
        ["serve", "{damaged-run}"],
        ["serve", "{binary.yaml}"],
        ["serve", "{run}", "--port", "0"],
        ["serve", "{run}", "--host", "127.0.0.1; rm -rf ~"],
        ["serve", "{run}", "--host", ""],
        ["ask", "hi", "--model", "bogus"],
        ["ask", "hi", "--model", "bogus", "--temperature", "nan"],
        ["ask", "hi", "--model", "bogus", "--schema", "{binary.yaml}"],
        ["ask", "hi", "--model", "bogus", "--schema", "{schema.json}"],
        ["ask", "hi", "--model", "bogus", "--schema", "{empty}"],
    ],
)
def test_known_bad_inputs_fail_with_exit_2_and_one_clear_message(
    places: Places, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    filled = [
        str(places.root / arg[1:-1]) if arg.startswith("{") and arg.endswith("}") else arg
        for arg in args
    ]
    result, served = invoke(filled, monkeypatch)
    assert_clean_failure(args[0], filled, result)
    assert result.exit_code == 2, result.output
    assert not served


def test_serve_binds_loopback_unless_told(places: Places, monkeypatch: pytest.MonkeyPatch) -> None:
    result, served = invoke(["serve", str(places.run)], monkeypatch)
    assert result.exit_code == 0, result.output
    assert served[0]["host"] == "127.0.0.1"
    assert "Warning" not in result.output
    result, served = invoke(["serve", str(places.run), "--host", "0.0.0.0"], monkeypatch)
    assert served[0]["host"] == "0.0.0.0"
    assert "anyone who can reach this port can read the run" in result.output
