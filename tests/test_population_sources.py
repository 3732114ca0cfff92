"""Population: the whole road from records to personas, reproducibility, state, other sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from societas.llm.fake import ScriptedLLM
from societas.population.sources import Population, RakingOptions

USER_MAPPING = """
id: town_survey
integer_columns: [age]
variables:
  age_group:
    column: age
    ranges: {young: [18, 39], old: [40, 99]}
  tenure:
    column: home
    categories: {owner: [own], renter: [rent, lodger]}
persona:
  age_column: age
  sex_column: gender
  female_values: [woman]
  male_values: [man]
  drop: [age]
  add: [tenure]
  background: ["${first_name} ${home} a home in ${district}."]
  phrases:
    home: {own: owns, rent: rents, lodger: rents a room in}
"""


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.from_marginals(120, np.random.default_rng(11))


def test_default_population_follows_the_targets(population: Population) -> None:
    assert len(population) == 120
    assert len({p.name for p in population}) == 120
    assert population.raking is not None and population.raking.converged
    assert population.sample is not None and population.sample.distinct == 120
    table = population.sample.table
    assert set(table["variable"]) == {
        "age_group",
        "sex",
        "census_region",
        "education_18plus",
        "party_identification",
        "religion",
    }
    assert (table["sample"] - table["target"]).abs().max() < 0.1
    frame = population.to_frame()
    assert frame["sex"].value_counts(normalize=True)["Female"] == pytest.approx(
        table.query("variable == 'sex' and category == 'Female'")["sample"].iloc[0]
    )
    assert population.persona(frame["name"].iloc[0]).age == frame["age"].iloc[0]


def test_same_seed_same_population(population: Population) -> None:
    again = Population.from_marginals(120, np.random.default_rng(11))
    other = Population.from_marginals(120, np.random.default_rng(12))
    assert again.get_state() == population.get_state()
    assert other.records != population.records


def test_state_round_trip_shares_nothing(population: Population) -> None:
    state = population.get_state()
    copy = Population.from_state(json.loads(json.dumps(state)))
    assert copy.get_state() == state
    assert copy.to_frame().equals(population.to_frame())
    copy.personas[0].demographics["sex"] = "changed"
    assert population.personas[0].demographics["sex"] != "changed"
    assert copy.raking is not None and population.raking is not None
    assert copy.raking.table is not population.raking.table


def test_with_replacement_and_trimming_options() -> None:
    population = Population.from_marginals(
        30,
        np.random.default_rng(2),
        replace=True,
        raking=RakingOptions(trim=(0.3, 3.0), max_iterations=2000),
        variables=["sex", "age_group"],
    )
    assert population.sample is not None and population.sample.replace
    assert set(population.sample.table["variable"]) == {"sex", "age_group"}
    assert population.raking is not None and population.raking.weight_ratio <= 10.0 + 1e-6
    assert len({p.name for p in population}) == 30  # repeated records still get distinct names


def test_user_microdata_mapping_and_marginals(tmp_path: Path) -> None:
    (tmp_path / "mapping.yaml").write_text(USER_MAPPING, encoding="utf-8")
    rows = ["age,gender,home,district"]
    rng = np.random.default_rng(0)
    for i in range(200):
        age = int(rng.integers(18, 90))
        home = "own" if (age > 45 and i % 3) or i % 5 == 0 else ("rent" if i % 2 else "lodger")
        rows.append(f"{age},{'woman' if i % 2 else 'man'},{home},D{i % 4}")
    (tmp_path / "people.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "targets.csv").write_text(
        "variable,category,share\nage_group,young,45\nage_group,old,55\n"
        "tenure,owner,65\ntenure,renter,35\n",
        encoding="utf-8",
    )
    population = Population.from_marginals(
        40,
        np.random.default_rng(1),
        microdata=tmp_path / "people.csv",
        mapping=tmp_path / "mapping.yaml",
        marginals=tmp_path / "targets.csv",
    )
    assert population.raking is not None and population.raking.converged
    assert population.raking.renormalised == {"age_group": 100.0, "tenure": 100.0}
    persona = population.personas[0]
    assert set(persona.demographics) == {"gender", "home", "district", "tenure"}
    assert persona.background.startswith(persona.first_name)
    assert " a home in D" in persona.background or "rents a room in" in persona.background
    assert population.origin.startswith("town_survey records raked to")


async def test_people_csv_and_twins(tmp_path: Path) -> None:
    csv_path = tmp_path / "people.csv"
    csv_path.write_text("name,age,team\nIda Berg,33,red\nTom Ruiz,45,blue\n", encoding="utf-8")
    people = Population.from_csv(csv_path, np.random.default_rng(0))
    assert [p.demographics["team"] for p in people] == ["red", "blue"]
    assert people.raking is None and people.initial_memories("Ida Berg") == []

    folder = tmp_path / "bios"
    folder.mkdir()
    (folder / "ida.txt").write_text("---\nname: Ida Berg\nage: 33\n---\nI sail.\n\nI paint.")
    twins = await Population.from_twins(folder)
    assert twins.initial_memories("Ida Berg") == ["I sail. I paint."]
    assert Population.from_state(twins.get_state()).memories == twins.memories


async def test_enriched_population_keeps_reports(population: Population) -> None:
    answer = {
        "occupation": "clerk",
        "traits": ["calm"],
        "lifestyle": "Early riser.",
        "situation": "Busy.",
    }
    llm = ScriptedLLM(lambda call: answer)
    small = Population.from_personas(population.personas[:3])
    enriched = await small.enriched(llm)
    assert llm.purposes() == ["persona"] * 3
    assert all("calm" in p.traits for p in enriched)
    assert [p.name for p in enriched] == [p.name for p in small]


def test_invalid_populations_are_rejected(population: Population) -> None:
    twice = [population.personas[0], population.personas[0]]
    with pytest.raises(ValueError, match="names must be unique"):
        Population.from_personas(twice)
    with pytest.raises(ValueError, match="unknown personas"):
        Population.from_personas(population.personas[:1], memories={"Nobody": ["x"]})
