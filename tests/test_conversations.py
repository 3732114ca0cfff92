"""Conversations in the simulation: per-speaker calls, turn order, secrets, occupation, news."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from societas.engine.config import SimulationConfig
from societas.engine.conversations import TALKING
from societas.engine.runstore import RunStore
from societas.engine.simulation import Simulation
from societas.llm.fake import SchemaFiller, ScriptedCall, ScriptedLLM
from societas.scenarios.scenario import load_scenario, scenario_from_text
from support.scripted import lines_said

# The engine tests' script: the two meet at the cafe and Iris talks to Noah.
HINTS = {
    "wake": "07:00",
    "sleep": "22:00",
    "start": ["08:30", "10:00", "12:00", "15:00"],
    "end": ["10:00", "12:00", "15:00", "22:00"],
    "act": ["work at the cafe", "coffee break", "lunch", "reading"],
    "do": "talk",
    "who": ["Iris Vance", "Noah Bell"],
    "what": "book club at the cafe",
    "time": "15:00",
    "place": ["Corner Cafe:counter", "Bell House:main room"],
    "PlanAnswer.place": "Corner Cafe:counter",
    "memory": "We talked about the book club at the cafe.",
    "mins": 15,
    "obj": "coffee machine",
    "blocks[]": 4,
}
IRIS_ONLY = "I keep the cafe's spare key under the blue flowerpot."
LINES = {
    "Iris Vance": [
        "Noah, I'm starting a book club at the cafe on Sunday at 3pm. Will you come?",
        "Wonderful, see you on Sunday!",
    ],
    "Noah Bell": ["A book club on Sunday? I'd love to come.", "Thanks for asking me."],
}


def speaker(call: ScriptedCall) -> str:
    found = re.search(r"You are ([^.\n]+)\.", call.messages[-1].content)
    assert found
    return found.group(1)


def scripted_llm() -> ScriptedLLM:
    filler = SchemaFiller(random.Random(0), HINTS)

    def respond(call: ScriptedCall) -> Any:
        if call.purpose == "converse_line":
            said = lines_said(call)
            return {"say": LINES[speaker(call)][min(said // 2, 1)], "end": said >= 3}
        return filler.responder(call)

    return ScriptedLLM(respond)


def duo_with_a_secret() -> Any:
    text = load_scenario("duo").source_text
    memory = "      - I am starting a book club at Corner Cafe on Sunday at 3pm.\n"
    assert memory in text
    return scenario_from_text(text.replace(memory, memory + f"      - {IRIS_ONLY}\n"), "duo.yaml")


async def run(tmp_path: Path, hours: float = 2.0) -> tuple[Simulation, ScriptedLLM]:
    llm = scripted_llm()
    sim = await Simulation.start(duo_with_a_secret(), tmp_path / "run", llm, SimulationConfig())
    await sim.run(hours=hours)
    sim.close("finished")
    return sim, llm


def events(run_dir: Path, *kinds: str) -> list[Any]:
    with RunStore.open(run_dir, readonly=True) as store:
        return [e.event for e in store.iter_events(kinds=list(kinds))]


async def test_lines_take_turns_each_written_by_its_speaker(tmp_path: Path) -> None:
    _, llm = await run(tmp_path)
    (talk,) = events(tmp_path / "run", "conversation")[:1]
    lines = [
        e.data
        for e in events(tmp_path / "run", "utterance")
        if e.data["conversation_id"] == talk.data["id"]
    ]
    starter, partner = talk.data["participants"]
    assert [line["speaker"] for line in lines] == [starter, partner, starter, partner]
    assert all(line["listeners"] == [n for n in (starter, partner) if n != line["speaker"]]
               for line in lines)  # fmt: skip
    assert lines[0]["text"] == LINES[starter][0]
    line_calls = [c for c in llm.calls if c.purpose == "converse_line"]
    takeaways = [c for c in llm.calls if c.purpose == "converse_takeaway"]
    assert [speaker(c) for c in line_calls[:4]] == [starter, partner, starter, partner]
    assert sorted(speaker(c) for c in takeaways[:2]) == ["Iris Vance", "Noah Bell"]
    assert (
        "Noah Bell — your neighbour; a quiet writer who loves novels" in line_calls[0].prompt_text
    )


async def test_what_only_iris_knows_never_reaches_noahs_prompts(tmp_path: Path) -> None:
    sim, llm = await run(tmp_path)
    assert any(IRIS_ONLY in c.prompt_text for c in llm.calls if speaker_or_none(c) == "Iris Vance")
    noah_calls = [c for c in llm.calls if speaker_or_none(c) == "Noah Bell"]
    assert any(c.purpose == "converse_line" for c in noah_calls)
    assert all("spare key" not in c.prompt_text for c in noah_calls)
    noah = sim.agents["Noah Bell"]
    assert all("spare key" not in noah.memory.by_id(i).text for i in range(len(noah.memory)))


def speaker_or_none(call: ScriptedCall) -> str | None:
    found = re.search(r"You are ([^.\n]+)\.", call.prompt_text)
    return found.group(1) if found else None


async def test_a_talk_occupies_both_and_then_they_go_on(tmp_path: Path) -> None:
    await run(tmp_path)
    (talk,) = events(tmp_path / "run", "conversation")[:1]
    starter, partner = talk.data["participants"]
    actions = events(tmp_path / "run", "action")
    talking = [e for e in actions if e.data["description"].startswith(TALKING)]
    assert {(e.agent, e.data["description"]) for e in talking if e.step == talk.step} == {
        (starter, f"{TALKING} {partner}"),
        (partner, f"{TALKING} {starter}"),
    }
    assert all(e.data["minutes"] == 10 and e.data["emoji"] for e in talking)
    # The next step each of them does something else again.
    later = [e for e in actions if e.step > talk.step and e.agent in (starter, partner)]
    assert later and not later[0].data["description"].startswith(TALKING)


async def test_news_in_a_line_reaches_its_listener(tmp_path: Path) -> None:
    sim, _ = await run(tmp_path)
    heard = events(tmp_path / "run", "news_heard")
    assert [(e.agent, e.data["source"]) for e in heard] == [("Noah Bell", "Iris Vance")]
    assert sim.knowers["book_club"] == {"Iris Vance", "Noah Bell"}
