"""Scenario files: a good file loads; every kind of bad input names the file, field and line."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from societas.agents.persona import Persona
from societas.scenarios.scenario import (
    Scenario,
    list_builtin_scenarios,
    load_scenario,
    scenario_from_text,
)
from societas.world.errors import ScenarioError
from support.documents import field_paths

DUO = resources.files("societas.scenarios").joinpath("duo.yaml").read_text("utf-8")


def line_of(text: str, marker: str) -> int:
    """1-based line of the first line containing ``marker``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if marker in line:
            return number
    raise AssertionError(f"{marker!r} not in text")


def edited(old: str, new: str, text: str = DUO) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def error_of(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        scenario_from_text(text, "duo.yaml")
    return caught.value


GATHERING = """
gatherings:
  - id: club
    description: First book club meeting.
    host: Iris Vance
    place: Corner Cafe
    start: 2026-03-08T15:00
    end: 2026-03-08T16:00
"""


def test_good_file_loads_with_its_content() -> None:
    scenario = scenario_from_text(DUO, "duo.yaml")
    assert scenario.name == "Elm Lane"
    assert scenario.start_time.isoformat() == "2026-03-02T08:00:00"
    assert scenario.minutes_per_step == 10
    assert scenario.agent_names() == ["Iris Vance", "Noah Bell"]
    iris = scenario.agent("Iris Vance")
    assert isinstance(iris.persona, Persona)
    assert iris.persona.occupation == "owner of Corner Cafe"
    assert iris.relationships == {"Noah Bell": "my neighbour; a quiet writer who loves novels"}
    assert scenario.initial_memories("Noah Bell") == [
        "I have been stuck on chapter two of my novel for a week."
    ]
    assert scenario.places.rooms() == [
        "Bell House:main room",
        "Corner Cafe:counter",
        "Elm Lane:street",
        "Vance Flat:main room",
    ]
    assert scenario.object_spec("Corner Cafe:counter:chalkboard").state == "today's special: soup"
    assert scenario.news[0].keywords[1] == ["Sunday", "cafe", "Iris"]
    assert scenario.source_text == DUO


@pytest.mark.parametrize(
    ("old", "new", "field", "marker", "message"),
    [
        (
            'home: "Bell House:main room"',
            'home: "Bell House"',
            "agents[1].home",
            'home: "Bell House"',
            "'Bell House' is an area; a room address 'Area:room' is needed",
        ),
        (
            'home: "Bell House:main room"',
            'home: "Bell House:main room"\n    spawn: "Corner Cafe:countr"',
            "agents[1].spawn",
            "spawn:",
            "unknown place 'Corner Cafe:countr' (did you mean 'Corner Cafe:counter'?)",
        ),
        (
            "Noah Bell: my neighbour",
            "Noah Bel: my neighbour",
            "agents[0].relationships['Noah Bel']",
            "Noah Bel:",
            "unknown agent 'Noah Bel' (did you mean 'Noah Bell'?)",
        ),
        (
            "Iris Vance: my neighbour",
            "Noah Bell: my neighbour",
            "agents[1].relationships['Noah Bell']",
            "Noah Bell: my neighbour; she",
            "an agent cannot relate to itself",
        ),
        (
            "initial_knowers: [Iris Vance]",
            "initial_knowers: [Iris]",
            "news[0].initial_knowers[0]",
            "initial_knowers",
            "unknown agent 'Iris' (did you mean 'Iris Vance'?)",
        ),
        (
            "kettle: {tile: [4, 3]",
            "kettle: {tile: [5, 3]",
            "objects['Vance Flat:main room'].kettle.tile",
            "kettle:",
            "tile [5, 3] is on a wall, not in room 'Vance Flat:main room'",
        ),
        (
            "kettle: {tile: [4, 3]",
            "kettle: {tile: [7, 3]",
            "objects['Vance Flat:main room'].kettle.tile",
            "kettle:",
            "tile [7, 3] is on 'Elm Lane:street', not in room 'Vance Flat:main room'",
        ),
        (
            "kettle: {tile: [4, 3]",
            "kettle: {tile: [4, 30]",
            "objects['Vance Flat:main room'].kettle.tile",
            "kettle:",
            "tile [4, 30] is off the 16x10 map",
        ),
        (
            '"Corner Cafe:counter":\n    coffee',
            '"Corner Cafe:kitchen":\n    coffee',
            "objects['Corner Cafe:kitchen']",
            '"Corner Cafe:kitchen":',
            "unknown room 'Corner Cafe:kitchen' (did you mean 'Corner Cafe:counter'?)",
        ),
        (
            '    - "#vvvv#....#bbbb#"\n    - "#vvvvv',
            '    - "#vvvv#....#bbbb"\n    - "#vvvvv',
            "map.rows[1]",
            '"#vvvv#....#bbbb"',
            "row 1 has 15 characters; expected 16 like row 0",
        ),
        (
            '    - "#cccccccccccccc#"\n    - "#cccccccccccccc#"\n',
            '    - "#ccccccXcccccc#"\n    - "#cccccccccccccc#"\n'.replace("X", "XX"),
            "map.rows[7]",
            "XX",
            "character 'X' (first at column 7) is not in map.legend",
        ),
        (
            '"v": "Vance Flat:main room"',
            '"v": "Vance Flat"',
            "map.legend.v",
            '"v": "Vance Flat"',
            "'Vance Flat' is not 'wall', 'void' or a room address 'Area:room'",
        ),
        (
            '"#vvvvv....bbbbb#"',
            '"#vvvvv....#bbbb#"',
            "map.rows[1]",
            '"#vvvv#....#bbbb#"',
            "tile [11, 1] of 'Bell House:main room' cannot be reached from 'Elm Lane:street'",
        ),
        (
            "minutes_per_step: 10",
            "minutes_per_stepp: 10",
            "minutes_per_stepp",
            "minutes_per_stepp",
            "unknown field 'minutes_per_stepp' (did you mean 'minutes_per_step'?)",
        ),
        (
            "    age: 42",
            "    age: old",
            "agents[0].age",
            "age: old",
            "Input should be a valid integer",
        ),
        (
            "    age: 29\n",
            "",
            "agents[1].age",
            "- name: Noah Bell",
            "missing required field 'age'",
        ),
        (
            "start_time: 2026-03-02T08:00",
            "start_time: 2026-03-02T08:00+02:00",
            "start_time",
            "start_time",
            "use local game time without a timezone",
        ),
        (
            "name: Noah Bell",
            "name: Iris Vance",
            "agents[0].name",
            "- name: Iris Vance",
            "duplicate agent name 'Iris Vance'",
        ),
        (
            "description: Two neighbours",
            "name: Again\ndescription: Two neighbours",
            "name",
            "name: Again",
            "duplicate key 'name'",
        ),
        (
            "      - [Sunday, cafe, Iris]",
            "      - []",
            "news[0].keywords[1]",
            "      - []",
            "List should have at least 1 item",
        ),
        (
            "        match: [Sunday]\n",
            "        match: [Sunday]\n" + GATHERING.replace("Iris Vance", "Iris Vanse"),
            "gatherings[0].host",
            "host:",
            "unknown agent 'Iris Vanse' (did you mean 'Iris Vance'?)",
        ),
        (
            "        match: [Sunday]\n",
            "        match: [Sunday]\n" + GATHERING.replace("Corner Cafe", "Corner Caffe"),
            "gatherings[0].place",
            "place: Corner Caffe",
            "unknown room or area 'Corner Caffe' (did you mean 'Corner Cafe'?)",
        ),
        (
            'work: {place: "Corner Cafe:counter"',
            'work: {place: "Corner Cafe:countr"',
            "agents[0].routine.work.place",
            "Corner Cafe:countr",
            "unknown place 'Corner Cafe:countr' (did you mean 'Corner Cafe:counter'?)",
        ),
        (
            '{meal: dinner, time: "18:30"',
            '{meal: dinner, time: "07:00"',
            "agents[0].routine.meals[2]",
            'time: "07:00"',
            "dinner at 07:00 is not a sensible time",
        ),
        (
            'sleep: "22:30"',
            'sleep: "06:00"',
            "agents[0].routine",
            "    routine:",
            "sleep (06:00) must come after wake (07:00)",
        ),
        (
            '      wake: "07:00"',
            '      wake: "7 am"',
            "agents[0].routine.wake",
            'wake: "7 am"',
            "'7 am' is not a time 'HH:MM'",
        ),
        (
            "        match: [Sunday]\n",
            "        match: [Sunday]\n" + GATHERING.replace("16:00", "14:00"),
            "gatherings[0].end",
            "end: 2026-03-08T14:00",
            "a gathering must end after it starts",
        ),
        (
            "        match: [Sunday]\n",
            "        match: [Sunday]\n" + GATHERING + "    news_id: bookclub\n",
            "gatherings[0].news_id",
            "news_id:",
            "unknown news 'bookclub' (did you mean 'book_club'?)",
        ),
        (
            "objects:\n",
            "spawns:\n  gate: [3, 0]\nobjects:\n",
            "spawns.gate",
            "gate:",
            "tile [3, 0] is not walkable",
        ),
    ],
)
def test_bad_input_names_file_field_and_line(
    old: str, new: str, field: str, marker: str, message: str
) -> None:
    text = edited(old, new)
    error = error_of(text)
    line = line_of(text, marker)
    matching = [issue for issue in error.issues if message in issue.message]
    assert matching, str(error)
    assert matching[0].line == line, str(error)
    assert f"duo.yaml:{line}: {field}: " in str(error)


def test_error_message_reads_like_a_compiler_diagnostic() -> None:
    text = edited('home: "Vance Flat:main room"', 'home: "Vance Flat:main rom"')
    error = error_of(text)
    line = line_of(text, "main rom")
    assert str(error) == (
        f"duo.yaml:{line}: agents[0].home: unknown place 'Vance Flat:main rom' "
        "(did you mean 'Vance Flat:main room'?)"
    )
    assert (error.line, error.field, error.source) == (line, "agents[0].home", "duo.yaml")


def test_every_problem_is_reported_at_once() -> None:
    text = edited("initial_knowers: [Iris Vance]", "initial_knowers: [Iris Vanc, Noah Bel]")
    text = edited('home: "Bell House:main room"', 'home: "Bell Hose:main room"', text)
    fields = [str(issue.path) for issue in error_of(text).issues]
    assert len(fields) == 3


def test_yaml_syntax_error_names_the_line() -> None:
    text = edited("traits: [friendly, bookish, organised]", "traits: [friendly, bookish: x")
    error = error_of(text)
    assert str(error).startswith("duo.yaml:")
    assert "invalid YAML" in str(error)
    assert error.line is not None
    assert abs(error.line - line_of(text, "bookish: x")) <= 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("- just\n- a list\n", "a scenario is a mapping of fields"),
        ("a: &x [*x]\n", "an alias refers to its own ancestor"),
        ("name: !!python/name:os.system x\n", "invalid"),
        ("? [a, b]\n: c\n", "mapping keys must be plain text"),
    ],
)
def test_malformed_documents_are_scenario_errors(text: str, message: str) -> None:
    assert message in str(error_of(text))


def test_yaml_1_1_booleans_stay_text() -> None:
    text = edited("kettle: {tile: [4, 3], state: cold}", "kettle: {tile: [4, 3], state: off}")
    scenario = scenario_from_text(text)
    assert scenario.object_spec("Vance Flat:main room:kettle").state == "off"


def test_merge_keys_and_anchors_work() -> None:
    text = edited(
        "    bed: {tile: [14, 1], state: made}",
        "    bed: &bed {tile: [14, 1], state: made}\n    cot: {<<: *bed, tile: [13, 1]}",
    )
    scenario = scenario_from_text(text)
    assert scenario.object_spec("Bell House:main room:cot").state == "made"


def test_from_dict_turns_structure_errors_into_scenario_errors() -> None:
    data = yaml.safe_load(DUO)
    data["agents"][0]["age"] = -3
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_dict(data, source="inline")
    assert "inline: agents[0].age: Input should be greater than or equal to 0" in str(caught.value)


def test_named_spawn_points_place_agents() -> None:
    text = edited("objects:\n", "spawns:\n  doorstep: [7, 5]\nobjects:\n")
    text = edited(
        'home: "Bell House:main room"', 'home: "Bell House:main room"\n    spawn: doorstep', text
    )
    scenario = scenario_from_text(text)
    assert scenario.spawn_tiles()["Noah Bell"] == (7, 5)
    assert scenario.initial_places()["Noah Bell"] == "Elm Lane:street"


def test_scenario_built_from_data_dumps_loadable_source_text() -> None:
    scenario = Scenario.from_dict(yaml.safe_load(DUO))
    assert scenario_from_text(scenario.source_text) == scenario


def test_measurement_info_carries_news_gatherings_and_places() -> None:
    scenario = load_scenario("town")
    info = scenario.measurement_info()
    assert info.agents == scenario.agent_names()
    assert [news.id for news in info.news] == ["rosa_council", "lena_party"]
    assert info.gatherings[0].news_id == "lena_party"
    assert info.initial_places["Lena Okafor"] == "Okafor Flat:bedroom"
    assert "Harold Finch" in info.relationships["Rosa Alvarez"]


def test_load_from_path_and_by_builtin_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(DUO, encoding="utf-8")
    assert load_scenario(path) == load_scenario("duo")
    assert load_scenario(str(path)).name == "Elm Lane"
    path.write_text(edited("age: 42", "age: -1"), encoding="utf-8")
    with pytest.raises(ScenarioError, match=rf"^{path}:\d+: agents\[0\]\.age: "):
        load_scenario(path)


def test_missing_file_and_unknown_builtin_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match=r"built-ins: duo, town.*did you mean 'town'"):
        load_scenario("twon")


def test_builtin_scenarios_are_listed() -> None:
    assert {"duo", "town"} <= set(list_builtin_scenarios())


# -- random corruption: always a ScenarioError, never another exception ------------------------


def _load_or_error(text: str) -> None:
    try:
        scenario_from_text(text, "duo.yaml")
    except ScenarioError as error:
        assert error.issues
        assert str(error).startswith("duo.yaml")


_FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@_FUZZ
@given(
    position=st.integers(min_value=0, max_value=len(DUO) - 1),
    length=st.integers(min_value=0, max_value=12),
    insert=st.text(alphabet=st.sampled_from(list(":-[]{}#&*!|>'\",. \n\tab0179")), max_size=6),
)
def test_random_text_corruption_gives_scenario_error(
    position: int, length: int, insert: str
) -> None:
    _load_or_error(DUO[:position] + insert + DUO[position + length :])


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(["Vance Flat", "Noah Bell", "wall", "2026-13-40T99:00", "a:b:c:d"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


@_FUZZ
@given(st.data())
def test_random_field_corruption_gives_scenario_error(data: st.DataObject) -> None:
    document = yaml.safe_load(DUO)
    path = data.draw(st.sampled_from(field_paths(document)[1:]))
    value = data.draw(_VALUES)
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    _load_or_error(yaml.safe_dump(document, allow_unicode=True))
