"""Microdata: person records with a real joint structure, and how they map to target variables.

A population starts from *microdata*: one row per person, with attributes whose joint distribution
is real (the shipped GSS-based records, or a user's own survey, census sample or customer base).
A :class:`MicrodataMapping` says, as data, how record columns become the *target variables* of a
set of marginals (``highest_degree_received`` "Graduate" -> ``education_18plus``
"graduate_or_professional") and how a record reads as a persona. The mapping for the shipped
records is ``population/data/gss_mapping.yaml``; users supply their own microdata, marginals and
mapping to model another country, a city or a customer base.

Geography in the shipped records is synthetic: ``state`` and ``city`` belong to fictional
addresses, so ``census_region`` (mapped from ``census_region_from_state``) only spreads personas
over regions; it is not GSS geography.

Frames returned by :func:`load_microdata` are indexed by the source line of each record (index
name ``line``), so every later error can point at the line.

Examples
--------
>>> records = load_gss_records()
>>> len(records), records["age"].dtype.kind
(3505, 'i')
>>> mapped = apply_mapping(records, load_mapping())
>>> sorted(mapped["party_identification"].unique())
['Democrat', 'Independent', 'Republican']
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Self

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DATA_PACKAGE = "societas.population"
GSS_RECORDS = "gss_agents_demographics.csv"
GSS_MAPPING = "gss_mapping.yaml"
LINE_INDEX = "line"


class MicrodataError(ValueError):
    """Bad microdata, mapping or marginals; the message names the file, line and column."""


def where(source: str, line: int | None = None, column: str | None = None) -> str:
    """``"file.csv, line 7, column 'age'"``: the place an error message starts with."""
    parts = [source]
    if line is not None:
        parts.append(f"line {line}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


def data_path(name: str) -> Path:
    """Path of a file shipped in ``societas/population/data``."""
    return Path(str(resources.files(DATA_PACKAGE).joinpath("data", name)))


# --- reading CSV files --------------------------------------------------------------------------


def read_csv_rows(path: str | Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and ``(line, cells)`` of every data row, cells stripped.

    Blank lines are skipped; a row with a different number of cells than the header, an empty or
    repeated column name, or an unreadable file is an error naming the file and line.
    """
    source = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise MicrodataError(f"{source}: the file is empty (a header row is needed)")
            header = [name.strip() for name in header]
            check_header(header, source)
            rows: list[tuple[int, list[str]]] = []
            start = reader.line_num + 1
            for cells in reader:
                if cells and any(cell.strip() for cell in cells):
                    check_width(cells, header, where(source, start))
                    rows.append((start, [cell.strip() for cell in cells]))
                start = reader.line_num + 1
    except FileNotFoundError:
        raise MicrodataError(f"{source}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise MicrodataError(f"{source}: not a readable UTF-8 CSV file ({error})") from None
    return header, rows


def check_header(header: Sequence[str], source: str) -> None:
    for position, name in enumerate(header, start=1):
        if not name:
            raise MicrodataError(f"{where(source, 1)}: column {position} has no name")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise MicrodataError(f"{where(source, 1)}: repeated column name(s) {repeated}")


def check_width(cells: Sequence[str], header: Sequence[str], place: str) -> None:
    if len(cells) != len(header):
        raise MicrodataError(
            f"{place}: {len(cells)} cells but the header has {len(header)} columns"
        )


def load_microdata(
    path: str | Path,
    *,
    integer_columns: Iterable[str] = (),
    float_columns: Iterable[str] = (),
    required_columns: Iterable[str] = (),
) -> pd.DataFrame:
    """Read a CSV of person records into a DataFrame indexed by source line.

    Cells are strings with surrounding spaces removed, except ``integer_columns`` and
    ``float_columns``, which must hold numbers. ``required_columns`` must exist and be filled in on
    every row. Every error names the file, line and column.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "people.csv")
    >>> _ = open(path, "w").write("age,sex\\n34,Female\\nold,Male\\n")
    >>> try:
    ...     load_microdata(path, integer_columns=["age"])
    ... except MicrodataError as error:
    ...     print(str(error).split(", ", 1)[1])
    line 3, column 'age': 'old' is not a whole number
    """
    source = str(path)
    header, rows = read_csv_rows(path)
    if not rows:
        raise MicrodataError(f"{source}: no records below the header")
    integers, floats, required = list(integer_columns), list(float_columns), list(required_columns)
    missing = [name for name in [*integers, *floats, *required] if name not in header]
    if missing:
        raise MicrodataError(
            f"{where(source, 1)}: missing column(s) {sorted(set(missing))}; the file has {header}"
        )
    columns: dict[str, list[Any]] = {name: [] for name in header}
    for _, cells in rows:
        for name, cell in zip(header, cells, strict=True):
            columns[name].append(cell)
    lines = [line for line, _ in rows]
    for name in required:
        check_filled(columns[name], lines, source, name)
    for name in integers:
        columns[name] = [
            to_integer(cell, where(source, line, name))
            for cell, line in zip(columns[name], lines, strict=True)
        ]
    for name in floats:
        columns[name] = [
            to_float(cell, where(source, line, name))
            for cell, line in zip(columns[name], lines, strict=True)
        ]
    frame = pd.DataFrame(columns, index=pd.Index(lines, name=LINE_INDEX))
    for name in integers:
        frame[name] = frame[name].astype("int64")
    return frame


def check_filled(cells: Sequence[str], lines: Sequence[int], source: str, column: str) -> None:
    for cell, line in zip(cells, lines, strict=True):
        if not cell:
            raise MicrodataError(f"{where(source, line, column)}: empty, but a value is required")


def to_integer(cell: str, place: str) -> int:
    try:
        value = float(cell)
    except ValueError:
        raise MicrodataError(f"{place}: {cell!r} is not a whole number") from None
    if not value.is_integer():
        raise MicrodataError(f"{place}: {cell!r} is not a whole number")
    return int(value)


def to_float(cell: str, place: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise MicrodataError(f"{place}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise MicrodataError(f"{place}: {cell!r} is not a finite number")
    return value


# --- the declarative mapping --------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VariableMap(_Spec):
    """How one record column becomes one target variable.

    Give ``categories`` (target category -> the column's values that fall in it) or ``ranges``
    (target category -> inclusive ``[low, high]`` of a numeric column), not both.
    ``merge_targets`` combines categories of the marginals into one (new name -> the marginals'
    categories) where the records cannot tell them apart; the mapped categories then use the new
    name.
    """

    column: str = Field(min_length=1)
    categories: dict[str, list[str]] | None = None
    ranges: dict[str, tuple[float, float]] | None = None
    merge_targets: dict[str, list[str]] = Field(default_factory=dict)
    note: str = ""

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.categories is None) == (self.ranges is None):
            raise ValueError("give exactly one of 'categories' or 'ranges'")
        if self.categories is not None:
            seen: dict[str, str] = {}
            for category, values in self.categories.items():
                for value in values:
                    if value in seen and seen[value] != category:
                        raise ValueError(
                            f"value {value!r} is listed under {seen[value]!r} and {category!r}"
                        )
                    seen[value] = category
        for category, (low, high) in (self.ranges or {}).items():
            if low > high:
                raise ValueError(f"range of {category!r} has low {low} above high {high}")
        return self

    @property
    def target_categories(self) -> list[str]:
        return list(self.categories or self.ranges or {})


class PersonaRules(_Spec):
    """How a record reads as a persona (see :mod:`societas.population.personas`).

    ``background`` holds sentence templates with ``${column}`` placeholders (plus ``${name}``,
    ``${first_name}`` and ``${age}``); ``phrases`` turns a column's raw values into words for them.
    A sentence is left out when a placeholder's value is missing or its phrase is empty.
    ``demographics`` of the persona are the record's columns less ``drop`` (only ``keep``, when
    given) plus the mapped target variables named in ``add``.
    """

    age_column: str = "age"
    sex_column: str | None = None
    female_values: list[str] = Field(default_factory=list)
    male_values: list[str] = Field(default_factory=list)
    occupation_column: str | None = None
    occupations: dict[str, str] = Field(default_factory=dict)
    drop: list[str] = Field(default_factory=list)
    keep: list[str] | None = None
    add: list[str] = Field(default_factory=list)
    background: list[str] = Field(default_factory=list)
    phrases: dict[str, dict[str, str]] = Field(default_factory=dict)


class MicrodataMapping(_Spec):
    """Microdata columns -> target variables, plus the persona rules. Loaded from YAML."""

    id: str = Field(min_length=1)
    description: str = ""
    integer_columns: list[str] = Field(default_factory=list)
    float_columns: list[str] = Field(default_factory=list)
    required_columns: list[str] = Field(default_factory=list)
    variables: dict[str, VariableMap] = Field(min_length=1)
    persona: PersonaRules = Field(default_factory=PersonaRules)

    def load(self, path: str | Path) -> pd.DataFrame:
        """Read microdata at ``path`` with this mapping's column types and requirements."""
        return load_microdata(
            path,
            integer_columns=self.integer_columns,
            float_columns=self.float_columns,
            required_columns=[*self.required_columns, *self.source_columns()],
        )

    def target_merges(self) -> dict[str, dict[str, list[str]]]:
        """Per variable, the marginals' categories to combine before raking (see VariableMap)."""
        return {
            name: {group: list(parts) for group, parts in spec.merge_targets.items()}
            for name, spec in self.variables.items()
            if spec.merge_targets
        }

    def source_columns(self) -> list[str]:
        """The record columns the target variables are computed from."""
        return list(dict.fromkeys(spec.column for spec in self.variables.values()))


def load_mapping(path: str | Path | None = None) -> MicrodataMapping:
    """Load a mapping YAML file; the shipped GSS mapping when ``path`` is None."""
    source = str(path) if path is not None else f"societas/population/data/{GSS_MAPPING}"
    try:
        text = (
            Path(path).read_text("utf-8")
            if path is not None
            else data_path(GSS_MAPPING).read_text("utf-8")
        )
        data = yaml.safe_load(text)
    except FileNotFoundError:
        raise MicrodataError(f"{source}: no such file") from None
    except yaml.YAMLError as error:
        raise MicrodataError(f"{source}: not valid YAML ({error})") from None
    try:
        return MicrodataMapping.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or '(top)'}: {item['msg']}"
            for item in error.errors()
        )
        raise MicrodataError(f"{source}: invalid mapping: {problems}") from None


def load_gss_records() -> pd.DataFrame:
    """The shipped 3,505 GSS-based records (unweighted; rake before use as a population)."""
    return load_mapping().load(data_path(GSS_RECORDS))


# --- applying the mapping -----------------------------------------------------------------------


def row_place(frame: pd.DataFrame, label: Any, source: str) -> str:
    """Where a record came from: its source line when the frame has one, else its row label."""
    if frame.index.name == LINE_INDEX:
        return where(source, int(label))
    return f"{source}, row {label!r}"


def map_variable(
    frame: pd.DataFrame, name: str, spec: VariableMap, source: str = "records"
) -> pd.Series:
    """The target categories of one variable for every record (strings)."""
    if spec.column not in frame.columns:
        raise MicrodataError(
            f"{source}: variable {name!r} needs column {spec.column!r}, which is missing"
        )
    column = frame[spec.column]
    if spec.categories is not None:
        lookup = {
            value: category for category, values in spec.categories.items() for value in values
        }
        mapped = column.astype(str).map(lookup)
    else:
        mapped = map_ranges(frame, spec, name, source)
    unmapped = mapped.isna()
    if unmapped.any():
        label = frame.index[unmapped.to_numpy()][0]
        value = column.loc[label]
        count = int(unmapped.sum())
        raise MicrodataError(
            f"{row_place(frame, label, source)}, column {spec.column!r}: value {value!r} has no "
            f"category of variable {name!r} ({count} record(s) unmapped; allowed: "
            f"{known_values(spec)})"
        )
    return mapped.astype(str).rename(name)


def map_ranges(frame: pd.DataFrame, spec: VariableMap, name: str, source: str) -> pd.Series:
    numbers = pd.to_numeric(frame[spec.column], errors="coerce")
    result = pd.Series(pd.NA, index=frame.index, dtype="object")
    for category, (low, high) in (spec.ranges or {}).items():
        inside = (numbers >= low) & (numbers <= high) & result.isna()
        result[inside] = category
    return result


def known_values(spec: VariableMap) -> str:
    if spec.categories is not None:
        values = [value for values in spec.categories.values() for value in values]
        return ", ".join(repr(v) for v in values[:12]) + (" ..." if len(values) > 12 else "")
    return ", ".join(f"{c}: {lo:g}-{hi:g}" for c, (lo, hi) in (spec.ranges or {}).items())


def apply_mapping(
    frame: pd.DataFrame,
    mapping: MicrodataMapping,
    variables: Iterable[str] | None = None,
    *,
    source: str = "records",
) -> pd.DataFrame:
    """A frame of target variables (one string column each), aligned with ``frame``'s rows.

    ``variables`` picks some of the mapping's variables (all by default). A record value that no
    category covers is an error naming its line, column and value.
    """
    names = list(mapping.variables) if variables is None else list(variables)
    unknown = [name for name in names if name not in mapping.variables]
    if unknown:
        raise MicrodataError(
            f"mapping {mapping.id!r} has no variable(s) {unknown}; it has {list(mapping.variables)}"
        )
    columns = [map_variable(frame, name, mapping.variables[name], source) for name in names]
    return pd.concat(columns, axis=1) if columns else pd.DataFrame(index=frame.index)
