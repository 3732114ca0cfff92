"""Personas from records, people CSVs and texts; the optional model enrichment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from societas.agents.persona import Persona
from societas.llm.fake import ScriptedCall, ScriptedLLM
from societas.population.microdata import (
    MicrodataError,
    PersonaRules,
    load_gss_records,
    load_mapping,
)
from societas.population.personas import (
    MEMORY_CHARS,
    NameBank,
    PersonaSourceError,
    enrich_persona,
    load_twins,
    personas_from_csv,
    record_persona,
    split_header,
    split_memories,
    twin_from_text,
)

BANK = NameBank(female=("Ana", "Mei"), male=("Omar", "Lars"), either=(), last=("Silva", "Okafor"))
RULES = PersonaRules(
    sex_column="sex",
    female_values=["Female"],
    male_values=["Male"],
    occupation_column="work",
    occupations={"Retired": "retired"},
    drop=["id"],
    add=["region"],
    background=[
        "${first_name} is ${age} and lives in ${city}.",
        "${first_name} ${military}.",
        "${first_name} ${work}.",
    ],
    phrases={
        "military": {"No": "", "Yes": "served in the army"},
        "work": {"Retired": "is retired"},
    },
)
RECORD = {
    "id": "r1",
    "age": 67,
    "sex": "Female",
    "city": "Tulsa",
    "military": "No",
    "work": "Retired",
}


def enrichment_answer(call: ScriptedCall) -> dict[str, object]:
    return {
        "occupation": "nurse",
        "traits": ["Warm", "...", "curious"],
        "lifestyle": "Walks the dog at seven.",
        "situation": "Planning a trip to see her grandson.",
    }


def test_record_becomes_a_persona_with_templates_and_demographics() -> None:
    persona = record_persona(
        RECORD, RULES, np.random.default_rng(0), mapped={"region": "South"}, names=BANK
    )
    first, last = persona.name.split()
    assert first in ("Ana", "Mei") and last in ("Silva", "Okafor")  # female first names only
    assert persona.age == 67 and persona.occupation == "retired"
    assert persona.background == f"{first} is 67 and lives in Tulsa. {first} is retired."
    assert persona.demographics == {
        "age": "67",
        "sex": "Female",
        "city": "Tulsa",
        "military": "No",
        "work": "Retired",
        "region": "South",
    }


def test_names_are_seeded_and_unique_within_a_population() -> None:
    def draw(seed: int) -> list[str]:
        rng, taken = np.random.default_rng(seed), set[str]()
        return [BANK.draw(rng, "male", taken) for _ in range(12)]

    names = draw(5)
    assert names == draw(5) and names != draw(6)
    assert len(set(names)) == 12  # 4 combinations exist: middle initials keep them unique
    assert all(n.split()[0] in ("Omar", "Lars") for n in names)


def test_shipped_names_and_gss_rules_give_readable_personas() -> None:
    records = load_gss_records()
    mapping = load_mapping()
    record = {str(k): v for k, v in records.iloc[1].to_dict().items()}
    persona = record_persona(
        record,
        mapping.persona,
        np.random.default_rng(1),
        mapped={"hispanic": "Not Hispanic or Latino", "census_region": "South"},
    )
    assert persona.age == 27
    assert "hispanic_origin" not in persona.demographics and "agent_id" not in persona.demographics
    assert persona.demographics["census_region"] == "South"
    assert "did not finish high school" in persona.background
    assert "very conservative and an independent who leans Republican" in persona.background
    assert len(persona.background) < 400
    assert NameBank.load().first_names("female")


async def test_enrichment_is_one_call_and_keeps_facts() -> None:
    llm = ScriptedLLM(enrichment_answer)
    base = Persona(
        name="Ana Silva", age=67, occupation="retired", traits=["stubborn"], background="Ana is 67."
    )
    enriched = await enrich_persona(llm, base)
    assert llm.purposes() == ["persona"]
    call = llm.calls[0]
    assert call.messages[0].role == "system" and "JSON" in call.messages[0].content
    assert call.messages[-1].content.strip() == base.summary()  # persona last: stable prefix first
    assert call.params is not None and call.params.max_tokens <= 200
    assert enriched.occupation == "retired"  # data wins over the model
    assert enriched.traits == ["stubborn", "warm", "curious"]  # placeholder '...' dropped
    assert enriched.lifestyle == "Walks the dog at seven."
    assert enriched.background == base.background and enriched.name == base.name


def test_people_csv_extra_columns_become_demographics(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "name,age,traits,occupation,sex,county\n"
        "Rosa Diaz,41,kind; blunt,teacher,F,Kern\n"
        ",30,,,M,Kern\n",
        encoding="utf-8",
    )
    first, second = personas_from_csv(path, np.random.default_rng(0), names=BANK)
    assert first.name == "Rosa Diaz" and first.traits == ["kind", "blunt"]
    assert first.demographics == {"sex": "F", "county": "Kern"}
    assert second.name.split()[0] in ("Omar", "Lars")  # drawn, matching sex M


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,age\nRosa,old\n", r"people.csv, line 2, column 'age': 'old' is not a whole number"),
        ("name,age\nRosa,130\n", r"people.csv, line 2: column 'age': Input should be less than"),
        (
            "name,age\nRosa,30\nRosa,31\n",
            r"line 3, column 'name': 'Rosa' is already the name on line 2",
        ),
        ("name\nRosa\n", r"missing column 'age'"),
    ],
)
def test_people_csv_errors_name_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MicrodataError, match=message):
        personas_from_csv(path, np.random.default_rng(0), names=BANK)


def test_memories_are_paragraph_sized_and_lose_no_words() -> None:
    long_paragraph = " ".join(f"Sentence number {i} is about the farm." for i in range(40))
    text = f"Q: Where did you grow up?\n\nA: Near Fresno.\n\n{long_paragraph}\n\n\nShort end."
    memories = split_memories(text)
    assert memories[0] == "Q: Where did you grow up? A: Near Fresno."
    assert all(0 < len(m) <= MEMORY_CHARS for m in memories)
    assert " ".join(memories).split() == text.split()
    assert all(m.endswith(".") for m in memories[1:-1])  # long paragraphs cut at sentence ends


async def test_header_gives_the_persona_without_a_model_call() -> None:
    text = (
        "---\nname: June Park\nage: 58\ntraits: patient, dry\nhometown: Dayton\n---\n"
        "I grew up in Dayton.\n\nI fixed radios."
    )
    header, body = split_header(text)
    assert header["name"] == "June Park" and body.startswith("I grew up")

    llm = ScriptedLLM(lambda call: pytest.fail("no call expected"))
    twin = await twin_from_text(text, source="june.txt", llm=llm)
    assert twin.persona.name == "June Park" and twin.persona.traits == ["patient", "dry"]
    assert twin.persona.demographics == {"hometown": "Dayton"}
    assert twin.memories == ("I grew up in Dayton. I fixed radios.",)
    assert llm.calls == []


async def test_text_without_header_is_summarised_in_one_call() -> None:
    def summary(call: ScriptedCall) -> dict[str, object]:
        return {
            "name": "Walt Kim",
            "age": 71,
            "occupation": "retired machinist",
            "traits": ["gruff"],
            "background": "Walt worked forty years in a Toledo plant.",
            "lifestyle": "Coffee at the diner every morning.",
        }

    llm = ScriptedLLM(summary)
    text = "---\nage: 70\n---\n" + "I worked at the plant. " * 400
    twin = await twin_from_text(text, source="walt.txt", llm=llm)
    assert llm.purposes() == ["persona"]
    assert len(llm.calls[0].messages[-1].content) <= 4100  # the text is cut for the call
    assert twin.persona.name == "Walt Kim" and twin.persona.age == 70  # the header wins
    assert twin.persona.occupation == "retired machinist"
    assert len(twin.memories) > 10


async def test_twin_errors_and_folder_loading(tmp_path: Path) -> None:
    with pytest.raises(PersonaSourceError, match=r"bio\.txt: the header needs 'name' and 'age'"):
        await twin_from_text("Just a story.", source="bio.txt")
    with pytest.raises(PersonaSourceError, match="no text below the header"):
        await twin_from_text("---\nname: A B\nage: 3\n---\n", source="x")
    (tmp_path / "b.txt").write_text("---\nname: Bo Lee\nage: 40\n---\nHello.", encoding="utf-8")
    (tmp_path / "a.md").write_text("---\nname: Al Ng\nage: 50\n---\nHi.", encoding="utf-8")
    (tmp_path / "skip.csv").write_text("x", encoding="utf-8")
    twins = await load_twins(tmp_path)
    assert [t.persona.name for t in twins] == ["Al Ng", "Bo Lee"]
    assert twins[0].source.endswith("a.md")
    restored = type(twins[0]).from_state(twins[0].get_state())
    assert restored == twins[0]


@pytest.mark.model
async def test_real_model_enriches_a_persona_within_bounds() -> None:
    from societas.llm.registry import open_llm

    base = record_persona(RECORD, RULES, np.random.default_rng(0), names=BANK)
    async with open_llm("smollm2-135m", use_cache=False) as llm:
        enriched = await enrich_persona(llm, base)
    assert enriched.name == base.name and enriched.occupation == "retired"
    assert 1 <= len(enriched.traits) <= 5
    assert len(enriched.lifestyle) <= 160 and len(enriched.situation) <= 160
