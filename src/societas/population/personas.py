"""Personas from records, from a CSV of people, and twins from interviews or biographies.

- :func:`record_persona` expands one microdata record into a :class:`Persona`: the survey
  attributes go to ``demographics``, the name is drawn from the shipped name lists (seeded), and a
  short ``background`` is written from the attributes by sentence templates (no model call).
- :func:`enrich_persona` optionally adds a job, traits, a daily rhythm and a current situation in
  one structured model call (purpose ``"persona"``; prompt ``prompts/enrich_persona.yaml``).
- :func:`personas_from_csv` reads a user's CSV of people: columns ``name``, ``age``, ``traits``,
  ``occupation``, ``lifestyle``, ``situation``, ``background``; any other column is a demographic.
- :func:`twin_from_text` / :func:`load_twins` turn interview transcripts or biographies into
  :class:`Twin` agents: the text becomes paragraph-sized initial memories, and the persona comes
  from a small YAML header (``---`` lines) or, without one, from one model call summarising it.

Examples
--------
>>> import numpy as np
>>> from societas.population.microdata import PersonaRules
>>> rules = PersonaRules(
...     sex_column="sex", female_values=["F"], background=["${first_name} is ${age} and ${job}."],
...     phrases={"job": {"nurse": "works as a nurse", "none": ""}},
... )
>>> rng = np.random.default_rng(3)
>>> p = record_persona({"age": 41, "sex": "F", "job": "nurse"}, rules, rng)
>>> p.age, p.demographics["job"], p.background == f"{p.first_name} is 41 and works as a nurse."
(41, 'nurse', True)
>>> split_memories("Q: Where did you grow up?\\n\\nA: In Tulsa.\\n\\n" + "We moved a lot. " * 30)[0]
'Q: Where did you grow up? A: In Tulsa.'
"""

from __future__ import annotations

import asyncio
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, Field, ValidationError

from societas.agents.cognition.schemas import bounded_params, model_text
from societas.agents.persona import Persona
from societas.llm.types import LanguageModel, SamplingParams
from societas.population.microdata import (
    MicrodataError,
    PersonaRules,
    data_path,
    read_csv_rows,
    to_integer,
    where,
)
from societas.prompts import load_prompt

PROMPTS_PACKAGE = "societas.population"
NAMES_FILE = "names.csv"
PURPOSE = "persona"
MAX_TRAITS = 5
TRAIT_CHARS = 24
ENRICH_MAX_TOKENS = 160
SUMMARY_MAX_TOKENS = 220
SUMMARY_TEXT_CHARS = 4000
"""A header-less twin text is cut to this many characters for its summary call (~1,000 tokens)."""
MEMORY_CHARS = 400
SHORT_PARAGRAPH = 120
NAME_TRIES = 40
PERSONA_COLUMNS = ("name", "age", "traits", "occupation", "lifestyle", "situation", "background")
Sex = Literal["female", "male"]


class PersonaSourceError(MicrodataError):
    """A people CSV or twin text cannot become a persona; names the file, line and field."""


# --- names --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NameBank:
    """First names (by usual sex, or either) and last names to draw persona names from."""

    female: tuple[str, ...]
    male: tuple[str, ...]
    either: tuple[str, ...]
    last: tuple[str, ...]

    @classmethod
    def load(cls, path: str | Path | None = None) -> NameBank:
        """Read a names CSV (``part, name, sex``); the shipped lists when ``path`` is None."""
        source = str(path) if path is not None else f"societas/population/data/{NAMES_FILE}"
        header, rows = read_csv_rows(path if path is not None else data_path(NAMES_FILE))
        for column in ("part", "name", "sex"):
            if column not in header:
                raise MicrodataError(f"{where(source, 1)}: missing column {column!r}")
        part, name, sex = (header.index(c) for c in ("part", "name", "sex"))
        pools: dict[str, list[str]] = {"female": [], "male": [], "any": [], "last": []}
        for line, cells in rows:
            if cells[part] not in ("first", "last") or not cells[name]:
                raise MicrodataError(f"{where(source, line, 'part')}: expected 'first' or 'last'")
            key = "last" if cells[part] == "last" else cells[sex]
            if key not in pools:
                raise MicrodataError(f"{where(source, line, 'sex')}: expected female, male or any")
            pools[key].append(cells[name])
        bank = cls(
            tuple(pools["female"]), tuple(pools["male"]), tuple(pools["any"]), tuple(pools["last"])
        )
        if not bank.last or not (bank.female or bank.male or bank.either):
            raise MicrodataError(f"{source}: needs at least one first name and one last name")
        return bank

    def first_names(self, sex: Sex | None) -> tuple[str, ...]:
        if sex == "female" and (self.female or self.either):
            return self.female + self.either
        if sex == "male" and (self.male or self.either):
            return self.male + self.either
        return self.female + self.male + self.either

    def draw(
        self, rng: np.random.Generator, sex: Sex | None = None, taken: set[str] | None = None
    ) -> str:
        """A full name; with ``taken``, one not in it (which it is added to).

        After a few clashes a middle initial is added, then a number, so names stay unique in
        populations larger than the lists allow.
        """
        firsts = self.first_names(sex)
        name = ""
        for attempt in range(NAME_TRIES + 26):
            first = firsts[int(rng.integers(len(firsts)))]
            last = self.last[int(rng.integers(len(self.last)))]
            middle = (
                f" {string.ascii_uppercase[attempt - NAME_TRIES]}." if attempt >= NAME_TRIES else ""
            )
            name = f"{first}{middle} {last}"
            if taken is None or name not in taken:
                break
        else:
            base, number = name, 2
            while taken is not None and name in taken:
                name, number = f"{base} {number}", number + 1
        if taken is not None:
            taken.add(name)
        return name


@cache
def default_names() -> NameBank:
    """The shipped name lists (read once; a NameBank is immutable)."""
    return NameBank.load()


# --- personas from records ----------------------------------------------------------------------


def record_persona(
    record: Mapping[str, Any],
    rules: PersonaRules,
    rng: np.random.Generator,
    *,
    mapped: Mapping[str, str] | None = None,
    names: NameBank | None = None,
    taken: set[str] | None = None,
    source: str = "record",
) -> Persona:
    """One record as a persona (name drawn with ``rng``; ``mapped`` holds its target variables)."""
    age = record_age(record, rules, source)
    name = (names or default_names()).draw(rng, record_sex(record, rules), taken)
    demographics = persona_demographics(record, rules, mapped or {})
    return Persona(
        name=name,
        age=age,
        occupation=rules.occupations.get(text_of(record.get(rules.occupation_column or "")), ""),
        background=background_text(record, rules, name=name, age=age),
        demographics=demographics,
    )


def record_age(record: Mapping[str, Any], rules: PersonaRules, source: str) -> int:
    if rules.age_column not in record:
        raise PersonaSourceError(f"{source}: no age column {rules.age_column!r}")
    age = to_integer(text_of(record[rules.age_column]), where(source, column=rules.age_column))
    if not 0 <= age <= 120:
        raise PersonaSourceError(
            f"{where(source, column=rules.age_column)}: age {age} is not 0-120"
        )
    return age


def record_sex(record: Mapping[str, Any], rules: PersonaRules) -> Sex | None:
    if rules.sex_column is None:
        return None
    value = text_of(record.get(rules.sex_column))
    if value in rules.female_values:
        return "female"
    if value in rules.male_values:
        return "male"
    return None


def persona_demographics(
    record: Mapping[str, Any], rules: PersonaRules, mapped: Mapping[str, str]
) -> dict[str, str]:
    """The record's columns (less ``drop``; only ``keep`` if set) plus mapped ``add`` variables."""
    keep = set(rules.keep) if rules.keep is not None else None
    result = {
        str(key): text_of(value)
        for key, value in record.items()
        if key not in rules.drop and (keep is None or key in keep) and text_of(value)
    }
    for name in rules.add:
        if name in mapped:
            result[name] = str(mapped[name])
    return result


def text_of(value: Any) -> str:
    """A cell as text: '' for missing values, integral floats without '.0'."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def background_text(record: Mapping[str, Any], rules: PersonaRules, *, name: str, age: int) -> str:
    """The background sentences whose placeholders all have a non-empty phrase, joined.

    >>> rules = PersonaRules(background=["${first_name} is ${age}.", "Votes ${party}."])
    >>> background_text({"party": ""}, rules, name="Ada Lind", age=30)
    'Ada is 30.'
    """
    known = {"name": name, "first_name": name.split()[0], "age": str(age)}
    sentences: list[str] = []
    for template_text in rules.background:
        template = string.Template(template_text)
        values: dict[str, str] = {}
        for key in template.get_identifiers():
            raw = known.get(key, text_of(record.get(key)))
            values[key] = rules.phrases.get(key, {}).get(raw, raw)
        if all(values.values()):
            sentences.append(template.safe_substitute(values))
    return " ".join(sentences)


# --- persona conditions (what a persona adds) ---------------------------------------------------

PersonaCondition = Literal["none", "demographics", "full"]
PERSONA_CONDITIONS: tuple[PersonaCondition, ...] = ("none", "demographics", "full")
GENERIC_AGE = 47
"""The age a generic respondent is given (Persona needs one): about the median US adult's."""


def persona_condition(persona: Persona, condition: PersonaCondition, index: int) -> Persona:
    """``persona`` reduced to ``condition``, to measure what personas add to answers.

    ``none``: a generic respondent (``Respondent <index + 1>``, the median adult age, nothing
    else); ``demographics``: name, age and the survey attributes only; ``full``: unchanged.

    >>> p = Persona(name="Ada Quist", age=30, background="Ada bakes.", demographics={"sex": "F"})
    >>> persona_condition(p, "demographics", 0).summary()
    'Name: Ada Quist (age 30)\\nDemographics: sex: F'
    >>> persona_condition(p, "none", 4).summary()
    'Name: Respondent 5 (age 47)'
    """
    if condition == "full":
        return persona
    if condition == "demographics":
        return Persona(name=persona.name, age=persona.age, demographics=dict(persona.demographics))
    return Persona(name=f"Respondent {index + 1}", age=GENERIC_AGE)  # "none"


# --- the optional model enrichment --------------------------------------------------------------

Trait = Annotated[str, Field(min_length=1, max_length=TRAIT_CHARS)]


class PersonaEnrichment(BaseModel):
    """The answer of ``enrich_persona.yaml``."""

    occupation: str = Field(max_length=60)
    traits: list[Trait] = Field(min_length=1, max_length=MAX_TRAITS)
    lifestyle: str = Field(max_length=160)
    situation: str = Field(max_length=160)


async def enrich_persona(
    llm: LanguageModel, persona: Persona, *, params: SamplingParams | None = None
) -> Persona:
    """A copy of ``persona`` with job, traits, lifestyle and situation written by the model.

    One call (purpose ``"persona"``). Fields the persona already has are kept: the occupation and
    lifestyle/situation only fill blanks, and new traits are added after existing ones (at most
    five in all), so facts that came from data are never overwritten.
    """
    messages = load_prompt(PROMPTS_PACKAGE, "enrich_persona").render(persona=persona.summary())
    answer = await llm.generate(
        messages,
        PersonaEnrichment,
        purpose=PURPOSE,
        params=bounded_params(params, ENRICH_MAX_TOKENS, temperature=0.9),
    )
    traits = list(dict.fromkeys([*persona.traits, *clean_traits(answer.traits)]))
    return persona.model_copy(
        update={
            "occupation": persona.occupation or model_text(answer.occupation),
            "traits": traits[: max(MAX_TRAITS, len(persona.traits))],
            "lifestyle": persona.lifestyle or model_text(answer.lifestyle),
            "situation": persona.situation or model_text(answer.situation),
        }
    )


def clean_traits(traits: Iterable[str]) -> list[str]:
    """Traits lower-cased, without blanks or placeholders."""
    return [text.lower() for text in (model_text(t) for t in traits) if text]


async def enrich_all(
    llm: LanguageModel, personas: Sequence[Persona], *, params: SamplingParams | None = None
) -> list[Persona]:
    """:func:`enrich_persona` for every persona (concurrently; the LLM layer bounds it)."""
    return list(await asyncio.gather(*(enrich_persona(llm, p, params=params) for p in personas)))


# --- personas from a CSV of people --------------------------------------------------------------


def personas_from_csv(
    path: str | Path,
    rng: np.random.Generator,
    *,
    names: NameBank | None = None,
    sex_column: str = "sex",
) -> list[Persona]:
    """Personas from a CSV with one person per row.

    ``age`` is required; ``name`` is drawn (seeded, matching a ``sex`` column holding
    female/male or f/m) when the column is absent or blank; ``traits`` are separated by ``;``
    or ``,``; every column that is not a persona field becomes a demographic.
    """
    source = str(path)
    header, rows = read_csv_rows(path)
    if "age" not in header:
        raise PersonaSourceError(f"{where(source, 1)}: missing column 'age'; the file has {header}")
    if not rows:
        raise PersonaSourceError(f"{source}: no people below the header")
    taken = given_names(header, rows, source)
    bank = names or default_names()
    personas = []
    for line, cells in rows:
        row = dict(zip(header, cells, strict=True))
        if not row.get("name"):
            row["name"] = bank.draw(rng, sex_of(row.get(sex_column, "")), taken)
        personas.append(row_persona(row, where(source, line)))
    return personas


def given_names(
    header: Sequence[str], rows: Sequence[tuple[int, list[str]]], source: str
) -> set[str]:
    """The names the file gives; a name given twice is an error (agents are known by name)."""
    if "name" not in header:
        return set()
    column = header.index("name")
    first_line: dict[str, int] = {}
    for line, cells in rows:
        name = cells[column]
        if name and name in first_line:
            raise PersonaSourceError(
                f"{where(source, line, 'name')}: {name!r} is already the name on line "
                f"{first_line[name]}"
            )
        first_line.setdefault(name, line)
    return {name for name in first_line if name}


def row_persona(row: Mapping[str, str], place: str) -> Persona:
    fields: dict[str, Any] = {key: row[key] for key in PERSONA_COLUMNS if row.get(key)}
    fields["age"] = to_integer(row["age"], f"{place}, column 'age'") if row["age"] else None
    fields["traits"] = split_traits(row.get("traits", ""))
    fields["demographics"] = {k: v for k, v in row.items() if k not in PERSONA_COLUMNS and v}
    return validated_persona(fields, place)


def sex_of(value: str) -> Sex | None:
    text = value.strip().lower()
    if text in ("female", "f", "woman", "w"):
        return "female"
    if text in ("male", "m", "man"):
        return "male"
    return None


def split_traits(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[;,]", text) if part.strip()]


def validated_persona(fields: Mapping[str, Any], place: str) -> Persona:
    """A Persona, or an error naming ``place`` and the offending field."""
    try:
        return Persona.model_validate(dict(fields))
    except ValidationError as error:
        problems = "; ".join(
            f"column {'.'.join(str(p) for p in item['loc'])!r}: {item['msg']}"
            for item in error.errors()
        )
        raise PersonaSourceError(f"{place}: {problems}") from None


# --- twins from interviews and biographies ------------------------------------------------------


@dataclass(frozen=True)
class Twin:
    """A persona modelled on a real text, with the text's paragraphs as initial memories."""

    persona: Persona
    memories: tuple[str, ...]
    source: str

    def get_state(self) -> dict[str, Any]:
        return {
            "persona": self.persona.model_dump(mode="json"),
            "memories": list(self.memories),
            "source": self.source,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Twin:
        return cls(
            Persona.model_validate(state["persona"]),
            tuple(str(m) for m in state["memories"]),
            str(state["source"]),
        )


class TwinSummary(BaseModel):
    """The answer of ``summarize_twin.yaml``."""

    name: str = Field(min_length=1, max_length=60)
    age: int = Field(ge=0, le=120)
    occupation: str = Field(max_length=60)
    traits: list[Trait] = Field(max_length=MAX_TRAITS)
    background: str = Field(max_length=320)
    lifestyle: str = Field(max_length=160)


_HEADER = re.compile(r"\A\s*---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_header(text: str, source: str = "text") -> tuple[dict[str, Any], str]:
    """The YAML header between leading ``---`` lines (empty if none) and the rest of the text."""
    match = _HEADER.match(text)
    if match is None:
        return {}, text
    try:
        header = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        raise PersonaSourceError(f"{source}: the header is not valid YAML ({error})") from None
    if not isinstance(header, dict):
        raise PersonaSourceError(f"{source}: the header must be 'key: value' lines")
    return {str(k): v for k, v in header.items()}, text[match.end() :]


def split_memories(
    text: str, *, max_chars: int = MEMORY_CHARS, short: int = SHORT_PARAGRAPH
) -> list[str]:
    """Paragraph-sized memory texts of ``text``, each at most ``max_chars`` long.

    Paragraphs are separated by blank lines; a long one is cut at sentence ends (a sentence
    longer than ``max_chars`` at a space); a paragraph shorter than ``short`` characters joins the
    next (interview question-and-answer lines) while the result still fits.
    """
    if max_chars < 40:
        raise ValueError(f"max_chars must be at least 40, got {max_chars}")
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        line = " ".join(paragraph.split())
        if line:
            pieces += cut_paragraph(line, max_chars)
    return pack_short(pieces, max_chars, short)


def cut_paragraph(line: str, max_chars: int) -> list[str]:
    if len(line) <= max_chars:
        return [line]
    chunks: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(line):
        for part in cut_words(sentence, max_chars):
            if current and len(current) + 1 + len(part) > max_chars:
                chunks.append(current)
                current = part
            else:
                current = f"{current} {part}".strip()
    if current:
        chunks.append(current)
    return chunks


def cut_words(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    parts: list[str] = []
    current = ""
    for word in sentence.split(" "):
        word = word[:max_chars]
        if current and len(current) + 1 + len(word) > max_chars:
            parts.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return [*parts, current] if current else parts


def pack_short(pieces: Sequence[str], max_chars: int, short: int) -> list[str]:
    packed: list[str] = []
    for piece in pieces:
        if packed and len(packed[-1]) < short and len(packed[-1]) + 1 + len(piece) <= max_chars:
            packed[-1] = f"{packed[-1]} {piece}"
        else:
            packed.append(piece)
    return packed


async def twin_from_text(
    text: str,
    *,
    source: str = "text",
    llm: LanguageModel | None = None,
    params: SamplingParams | None = None,
) -> Twin:
    """A twin from an interview transcript or biography.

    With a header holding ``name`` and ``age`` no model is called; otherwise ``llm`` summarises
    the text (one call, purpose ``"persona"``, text cut to ``SUMMARY_TEXT_CHARS``) and header
    fields still win. Header keys that are not persona fields become demographics.
    """
    header, body = split_header(text, source)
    memories = split_memories(body)
    if not memories:
        raise PersonaSourceError(f"{source}: no text below the header to remember")
    fields = header_fields(header)
    if "name" not in fields or "age" not in fields:
        if llm is None:
            raise PersonaSourceError(
                f"{source}: the header needs 'name' and 'age' (or pass llm= to summarise the text)"
            )
        fields = {**await summary_fields(llm, body, params), **fields}
    return Twin(validated_persona(fields, source), tuple(memories), source)


def header_fields(header: Mapping[str, Any]) -> dict[str, Any]:
    """Persona fields of a twin header; other keys go to ``demographics``."""
    fields: dict[str, Any] = {}
    demographics: dict[str, str] = {}
    for key, value in header.items():
        if key == "traits":
            fields[key] = split_traits(value) if isinstance(value, str) else [str(v) for v in value]
        elif key == "demographics" and isinstance(value, dict):
            demographics.update({str(k): text_of(v) for k, v in value.items()})
        elif key in PERSONA_COLUMNS:
            fields[key] = value
        elif text_of(value):
            demographics[key] = text_of(value)
    if demographics:
        fields["demographics"] = demographics
    return fields


async def summary_fields(
    llm: LanguageModel, body: str, params: SamplingParams | None
) -> dict[str, Any]:
    excerpt = " ".join(body.split())[:SUMMARY_TEXT_CHARS]
    messages = load_prompt(PROMPTS_PACKAGE, "summarize_twin").render(text=excerpt)
    answer = await llm.generate(
        messages,
        TwinSummary,
        purpose=PURPOSE,
        params=bounded_params(params, SUMMARY_MAX_TOKENS, temperature=0.2),
    )
    return {
        "name": model_text(answer.name) or "Unnamed Person",
        "age": answer.age,
        "occupation": model_text(answer.occupation),
        "traits": clean_traits(answer.traits),
        "background": model_text(answer.background),
        "lifestyle": model_text(answer.lifestyle),
    }


async def load_twin(
    path: str | Path, *, llm: LanguageModel | None = None, params: SamplingParams | None = None
) -> Twin:
    """:func:`twin_from_text` of a UTF-8 text file."""
    try:
        text = Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise PersonaSourceError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise PersonaSourceError(f"{path}: not UTF-8 text") from None
    return await twin_from_text(text, source=str(path), llm=llm, params=params)


async def load_twins(
    folder: str | Path,
    *,
    llm: LanguageModel | None = None,
    params: SamplingParams | None = None,
    suffixes: Sequence[str] = (".txt", ".md"),
) -> list[Twin]:
    """Twins of every text file in ``folder`` (sorted by file name)."""
    directory = Path(folder)
    if not directory.is_dir():
        raise PersonaSourceError(f"{folder}: not a folder")
    paths = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in suffixes)
    if not paths:
        raise PersonaSourceError(f"{folder}: no {'/'.join(suffixes)} files")
    return list(await asyncio.gather(*(load_twin(p, llm=llm, params=params) for p in paths)))
