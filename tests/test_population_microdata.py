"""Loading microdata and mapping it to target variables: shipped data, user data, bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from societas.population.microdata import (
    MicrodataError,
    MicrodataMapping,
    apply_mapping,
    data_path,
    load_gss_records,
    load_mapping,
    load_microdata,
)
from societas.population.raking import load_marginals


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_records_load_with_lines_and_types() -> None:
    records = load_gss_records()
    assert len(records) == 3505
    assert records.index.name == "line" and records.index[0] == 2
    assert records["age"].dtype.kind == "i"
    assert records["age"].between(18, 89).all()
    assert set(records["sex"]) == {"Female", "Male"}


def test_shipped_mapping_covers_every_record_and_matches_marginal_categories() -> None:
    mapping = load_mapping()
    mapped = apply_mapping(load_gss_records(), mapping)
    targets = load_marginals().merged(mapping.target_merges())
    for name in ("age_group", "sex", "census_region", "education_18plus", "religion"):
        assert set(mapped[name]) == set(targets.shares[name]), name
    assert set(mapped["party_identification"]) == {"Republican", "Democrat", "Independent"}
    counts = mapped["hispanic"].value_counts()
    assert counts["Hispanic or Latino"] == 372  # from detailed_race, not hispanic_origin


def test_mapping_puts_leaners_with_independents() -> None:
    records = load_gss_records()
    mapped = apply_mapping(records, load_mapping(), ["party_identification"])
    leaners = records["party_identification"].str.startswith("Independent, close")
    assert (mapped.loc[leaners, "party_identification"] == "Independent").all()
    strong_r = records["party_identification"] == "Strong republican"
    assert (mapped.loc[strong_r, "party_identification"] == "Republican").all()


def test_ranges_map_numbers_inclusively() -> None:
    mapping = MicrodataMapping.model_validate(
        {
            "id": "t",
            "variables": {
                "age_group": {"column": "age", "ranges": {"young": [18, 29], "old": [30, 99]}}
            },
        }
    )
    frame = pd.DataFrame({"age": [18, 29, 30, 99]})
    assert apply_mapping(frame, mapping)["age_group"].tolist() == ["young", "young", "old", "old"]


def test_unmapped_value_names_line_column_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "people.csv", "age,sex\n30,Female\n41,Unknown\n")
    mapping = MicrodataMapping.model_validate(
        {
            "id": "t",
            "integer_columns": ["age"],
            "variables": {"sex": {"column": "sex", "categories": {"F": ["Female"], "M": ["Male"]}}},
        }
    )
    records = mapping.load(path)
    with pytest.raises(MicrodataError, match=r"line 3, column 'sex': value 'Unknown'"):
        apply_mapping(records, mapping, source=str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("age,sex\n30,Female\n41,Male,extra\n", r"line 3: 3 cells but the header has 2"),
        ("age,sex\n30,Female\nabc,Male\n", r"line 3, column 'age': 'abc' is not a whole number"),
        (
            "age,sex\n30,Female\n\n41.5,Male\n",
            r"line 4, column 'age': '41.5' is not a whole number",
        ),
        ("age,sex\n30,\n", r"line 2, column 'sex': empty, but a value is required"),
        ("age,age\n30,31\n", r"line 1: repeated column name"),
        ("sex\nFemale\n", r"missing column\(s\) \['age'\]"),
        ("age,sex\n", r"no records below the header"),
        ("", r"the file is empty"),
    ],
)
def test_bad_csv_errors_name_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(MicrodataError, match=message) as caught:
        load_microdata(path, integer_columns=["age"], required_columns=["sex"])
    assert "bad.csv" in str(caught.value)


def test_quoted_multiline_cell_keeps_line_numbers_right(tmp_path: Path) -> None:
    path = write(tmp_path, "q.csv", 'age,note\n30,"two\nlines"\nx,ok\n')
    with pytest.raises(MicrodataError, match=r"line 4, column 'age'"):
        load_microdata(path, integer_columns=["age"])


def test_missing_file_and_bad_mapping_are_clear(tmp_path: Path) -> None:
    with pytest.raises(MicrodataError, match="no such file"):
        load_microdata(tmp_path / "nope.csv")
    bad = write(tmp_path, "m.yaml", "id: x\nvariables:\n  sex:\n    column: sex\n")
    with pytest.raises(
        MicrodataError, match=r"m.yaml: invalid mapping: variables.sex.*exactly one"
    ):
        load_mapping(bad)
    clash = write(
        tmp_path,
        "c.yaml",
        "id: x\nvariables:\n  sex:\n    column: sex\n    categories: {F: [a], M: [a]}\n",
    )
    with pytest.raises(MicrodataError, match="listed under 'F' and 'M'"):
        load_mapping(clash)


def test_shipped_data_files_and_notices_are_present() -> None:
    for name in (
        "gss_agents_demographics.csv",
        "gss_agents_demographics.md",
        "LICENSE-genagents.txt",
        "us_adult_marginals.csv",
        "us_adult_marginals.md",
        "gss_mapping.yaml",
        "names.csv",
        "names.md",
    ):
        assert data_path(name).is_file(), name
    assert "MIT License" in data_path("LICENSE-genagents.txt").read_text("utf-8")
