"""Scenario and experiment files mutated at random: they load, or fail with a clear error.

Each example takes a shipped file (``town.yaml``, ``duo.yaml``, an example experiment), applies a
few mutations (drop, rename or retype a field, out-of-range and huge values, unknown places,
duplicate names, bad times) or damages its text (truncation, stray characters, binary bytes), and
loads it. The loader either returns a valid object or raises the project's error whose message
names the file, the field and the line; no other exception may escape.
"""

from __future__ import annotations

import copy
import math
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from societas.experiments.spec import ExperimentError, experiment_from_text, load_experiment
from societas.scenarios.scenario import load_scenario, scenario_from_text
from societas.world.errors import Issue, ScenarioError, format_path
from support.documents import field_paths

# SOCIETAS_FUZZ_EXAMPLES=2000 digs deeper than the quick default.
EXAMPLES = int(os.environ.get("SOCIETAS_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _shipped(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text("utf-8")


SCENARIOS = {name: _shipped("societas.scenarios", name) for name in ("town.yaml", "duo.yaml")}
EXPERIMENTS = {
    name: _shipped("societas.experiments", f"examples/{name}")
    for name in ("vignette_framing.yaml", "mask_policy_town.yaml", "twin_message.yaml")
}

# --- strategies ----------------------------------------------------------------------------------

PathT = tuple[str | int, ...]

nasty_text = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "../../etc/passwd",
            "/etc/passwd",
            "Cafe:kichen",
            "Corner Cafe",
            "Corner Cafe:counter:coffee machine",
            "Elm Lane:street",
            "Iris Vance",
            "::",
            "2026-02-30T25:61",
            "2026-03-02T08:00+02:00",
            "+99:99",
            "+01:30",
            "yes",
            "off",
            "null",
            "${name}",
            "{{7*7}}",
            "\x00",
            "\u202e",
            "x" * 5000,
        ]
    ),
    st.text(max_size=40),
)
nasty_numbers = st.one_of(
    st.sampled_from([0, -1, 1, 2, 5, 7, 10**6, -(10**18), 10**40, 1e308, -0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
)
scalars = st.one_of(st.none(), st.booleans(), nasty_numbers, nasty_text)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(nasty_text, inner, max_size=3)
    ),
    max_leaves=8,
)


def _parent(doc: Any, path: PathT) -> Any:
    node = doc
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated(draw: st.DrawFn, documents: dict[str, str]) -> tuple[str, str]:
    """(file name, YAML text) of a shipped document after 1-4 structural mutations."""
    name = draw(st.sampled_from(sorted(documents)))
    doc = yaml.safe_load(documents[name])
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in field_paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(doc, path), path[-1]
        action = draw(st.sampled_from(["drop", "rename", "replace", "duplicate", "nest", "swap"]))
        if action == "drop":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(nasty_text)] = parent.pop(key)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[int(key)]))  # duplicate names, ids, tiles
        elif action == "nest":
            parent[key] = [parent[key]] if draw(st.booleans()) else {"value": parent[key]}
        elif action == "swap":
            other = draw(st.sampled_from(paths))
            try:
                parent[key] = copy.deepcopy(_parent(doc, other)[other[-1]])
            except (KeyError, IndexError, TypeError):
                parent[key] = None
        else:
            parent[key] = draw(values)
    return name, yaml.safe_dump(doc, sort_keys=False, allow_unicode=draw(st.booleans()))


@st.composite
def damaged(draw: st.DrawFn, documents: dict[str, str]) -> tuple[str, str]:
    """(file name, text) of a shipped document damaged as text: cut, spliced, or garbage."""
    name = draw(st.sampled_from(sorted(documents)))
    text = documents[name]
    kind = draw(st.sampled_from(["cut", "insert", "garbage", "indent", "anchor"]))
    at = draw(st.integers(0, len(text)))
    if kind == "cut":
        return name, text[:at]
    if kind == "insert":
        junk = draw(
            st.one_of(
                st.sampled_from(
                    [
                        ":",
                        "- ",
                        "\t",
                        "{",
                        "]",
                        "&a ",
                        "*a",
                        "!!python/object:os.system ",
                        "\n  ",
                        "'",
                    ]
                ),
                st.text(max_size=8),
            )
        )
        return name, text[:at] + junk + text[at:]
    if kind == "indent":
        lines = text.splitlines()
        index = draw(st.integers(0, max(0, len(lines) - 1)))
        lines[index] = " " * draw(st.integers(1, 5)) + lines[index]
        return name, "\n".join(lines)
    if kind == "anchor":
        # alias bombs and self references
        bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
            f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
            for i in range(8)
        )
        return name, draw(st.sampled_from([bomb, "a: &a [*a]\n", "&a [*a]", text + "\n" + bomb]))
    return name, draw(st.text(max_size=200))


# --- what a clear error looks like --------------------------------------------------------------

_LOCATED = re.compile(r"^(?P<source>[^\n]+?):(?P<line>\d+): ")


def assert_clear(error: ScenarioError | ExperimentError, source: str) -> None:
    """Every issue names the file, its line when known, and its field path when it has one."""
    assert error.issues, "an error without issues says nothing"
    lines = str(error).split("\n")
    assert len(lines) == len(error.issues)
    for issue, line in zip(error.issues, lines, strict=True):
        assert isinstance(issue, Issue)
        assert line.startswith(source), line
        if issue.line is not None:
            assert line.startswith(f"{source}:{issue.line}: "), line
            assert issue.line >= 1
        if issue.path:
            assert format_path(issue.path) in line, line
        assert issue.message.strip(), line
        assert "Traceback" not in line


def check_scenario_text(name: str, text: str) -> None:
    try:
        scenario = scenario_from_text(text, name)
    except ScenarioError as error:
        assert_clear(error, name)
        return
    # A scenario that loads is usable: every agent has a start tile and a room.
    assert set(scenario.initial_places()) == set(scenario.agent_names())
    scenario.measurement_info()


def check_experiment_text(name: str, text: str) -> None:
    try:
        experiment_from_text(text, name)
    except ExperimentError as error:
        assert_clear(error, name)


# --- scenarios ----------------------------------------------------------------------------------


@FUZZ
@given(mutated(SCENARIOS))
def test_mutated_scenarios_load_or_name_file_field_and_line(case: tuple[str, str]) -> None:
    check_scenario_text(*case)


@FUZZ
@given(damaged(SCENARIOS))
def test_damaged_scenario_text_loads_or_fails_clearly(case: tuple[str, str]) -> None:
    check_scenario_text(*case)


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=300))
def test_binary_scenario_files_fail_clearly(tmp_path_factory: Any, data: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("bin")) / "garbage.yaml"
    path.write_bytes(data)
    try:
        load_scenario(path)
    except ScenarioError as error:
        assert_clear(error, str(path))


def test_unknown_place_names_the_field_and_its_line() -> None:
    text = SCENARIOS["duo.yaml"].replace('home: "Bell House:main room"', 'home: "../../etc/passwd"')
    try:
        scenario_from_text(text, "duo.yaml")
    except ScenarioError as error:
        assert error.field == "agents[1].home"
        line = text.splitlines().index('    home: "../../etc/passwd"') + 1
        assert str(error).startswith(f"duo.yaml:{line}: agents[1].home: unknown place")
    else:
        raise AssertionError("a path-like home was accepted")


def test_huge_numbers_and_nan_are_refused_by_field() -> None:
    doc = yaml.safe_load(SCENARIOS["duo.yaml"])
    doc["minutes_per_step"] = 10**40
    doc["agents"][0]["age"] = math.inf
    fields = _fields_refused(doc)
    assert {"minutes_per_step", "agents[0].age"} <= fields
    doc = yaml.safe_load(SCENARIOS["duo.yaml"])  # cross-references are checked once types hold
    doc["objects"]["Vance Flat:main room"]["bed"]["tile"] = [10**30, -(10**30)]
    assert _fields_refused(doc) == {"objects['Vance Flat:main room'].bed.tile"}


def _fields_refused(doc: Any) -> set[str]:
    try:
        scenario_from_text(yaml.safe_dump(doc, sort_keys=False), "duo.yaml")
    except ScenarioError as error:
        assert_clear(error, "duo.yaml")
        return {format_path(issue.path) for issue in error.issues}
    raise AssertionError("out-of-range numbers were accepted")


# --- experiments --------------------------------------------------------------------------------


@FUZZ
@given(mutated(EXPERIMENTS))
def test_mutated_experiments_load_or_name_file_field_and_line(case: tuple[str, str]) -> None:
    check_experiment_text(*case)


@FUZZ
@given(damaged(EXPERIMENTS))
def test_damaged_experiment_text_loads_or_fails_clearly(case: tuple[str, str]) -> None:
    check_experiment_text(*case)


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=300))
def test_binary_experiment_files_fail_clearly(tmp_path_factory: Any, data: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("bin")) / "garbage.yaml"
    path.write_bytes(data)
    try:
        load_experiment(path)
    except ExperimentError as error:
        assert_clear(error, str(path))


def test_missing_and_unreadable_experiment_files_fail_clearly(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.yaml", tmp_path):
        try:
            load_experiment(path)
        except ExperimentError as error:
            assert_clear(error, str(path))
        else:
            raise AssertionError(f"{path} was accepted")
