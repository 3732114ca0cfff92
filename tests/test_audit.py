"""The coherence audit on hand-written event logs: each check finds the defect it is for, and
a clean log gives no finding at all."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from societas.cli.app import app
from societas.engine.events import Event
from societas.engine.runstore import RunStore
from societas.evaluation.believability.plan_sense import plan_sense_json
from societas.measurement.audit import (
    AuditInputError,
    AuditReport,
    audit_events,
    audit_record,
    audit_store,
    plan_sense,
)
from societas.measurement.audit.reader import record_of
from societas.measurement.audit.text import cut_off_reason, grammar_problem
from societas.scenarios.scenario import Scenario, load_scenario

TOWN = load_scenario("town")
START = datetime(2026, 2, 13, 7, 0)
DAY = "2026-02-13"


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def ev(kind: str, agent: str | None, when: float = 0, /, **data: Any) -> Event:
    """An event ``when`` minutes into the run (steps of 10 minutes)."""
    return Event(step=int(when // 10), time=at(when), kind=kind, agent=agent, data=data)


def plan(agent: str, *blocks: tuple[str, str, str, str], reason: str = "new day") -> Event:
    records = [{"start": s, "end": e, "activity": a, "place": p} for s, e, a, p in blocks]
    return ev("plan", agent, date=DAY, blocks=records, reason=reason)


def routine(agent: str, wake: str, sleep: str, work: tuple[str, str, str] | None) -> Event:
    return ev(
        "routine",
        agent,
        wake=wake,
        sleep=sleep,
        work=None if work is None else {"place": work[0], "start": work[1], "end": work[2]},
        meals=[{"meal": "dinner", "time": "19:00", "place": "Alvarez House:living room"}],
        source="scenario",
    )


def talk(
    minutes: float, names: list[str], lines: list[tuple[str, str]], summary: str = "They talked."
) -> list[Event]:
    conversation = f"{minutes}:{names[0]}:{names[1]}"
    events = [
        ev(
            "conversation",
            names[0],
            minutes,
            id=conversation,
            participants=names,
            place="Willow Park:lawn",
            summary=summary,
        )
    ]
    for speaker, text in lines:
        listeners = [name for name in names if name != speaker]
        events.append(
            ev(
                "utterance",
                speaker,
                minutes,
                conversation_id=conversation,
                speaker=speaker,
                listeners=listeners,
                text=text,
            )
        )
    return events


def memory(agent: str, text: str, kind: str = "observation", minutes: float = 0) -> Event:
    return ev(
        "memory", agent, minutes, id=0, memory_kind=kind, text=text, importance=3, evidence=[]
    )


def action(agent: str, description: str, place: str, minutes: float = 0) -> Event:
    return ev(
        "action",
        agent,
        minutes,
        description=description,
        emoji="",
        place=place,
        object=None,
        start=at(minutes).isoformat(),
        minutes=30,
    )


ROSA_DAY = plan(
    "Rosa Alvarez",
    ("06:00", "07:30", "breakfast", "Alvarez House:living room"),
    ("07:30", "12:00", "open the market", "Alvarez Market:shop floor"),
    ("12:00", "13:00", "lunch with Lena", "Bluebird Cafe:dining room"),
    ("13:00", "18:00", "serve customers", "Alvarez Market:shop floor"),
    ("18:00", "19:00", "walk by the pond", "Willow Park:lawn"),
    ("19:00", "20:30", "family dinner", "Alvarez House:living room"),
    ("20:30", "22:00", "read in bed", "Alvarez House:bedroom"),
)


def clean_log() -> list[Event]:
    return [
        routine("Rosa Alvarez", "06:00", "22:00", ("Alvarez Market:shop floor", "08:00", "18:00")),
        memory("Rosa Alvarez", "I am going to file my candidacy papers today."),
        ROSA_DAY,
        plan(
            "Tomas Alvarez",
            ("06:30", "07:00", "breakfast", "Alvarez House:living room"),
            ("07:00", "16:00", "work on the cafe shelves", "Bluebird Cafe:kitchen"),
            ("16:00", "18:00", "help Mei with her garden", "Chen-Reed House:living room"),
            ("18:00", "22:00", "sleep early", "Alvarez House:bedroom"),
            reason="agreed with Mei Chen: 16:00 help with the garden @ Chen-Reed House:living room",
        ),
        action(
            "Rosa Alvarez",
            "unlock the cash register on the shop floor",
            "Alvarez Market:shop floor",
        ),
        action("Tomas Alvarez", "walk to the kitchen", "Alvarez House:bedroom"),
        memory("Rosa Alvarez", "Tomas Alvarez: having a hearty breakfast"),
        *talk(
            60,
            ["Rosa Alvarez", "Tomas Alvarez"],
            [
                (
                    "Rosa Alvarez",
                    "Good morning, Tomas. I will file my papers for the council today.",
                ),
                (
                    "Tomas Alvarez",
                    "I'm proud of you, Rosa, our council candidate! My son Mateo can help.",
                ),
            ],
            summary="Rosa told Tomas about her candidacy, and he offered help.",
        ),
        *talk(
            90,
            ["Mateo Alvarez", "Tomas Alvarez"],
            [("Mateo Alvarez", "Thanks, Dad."), ("Tomas Alvarez", "Any time, son.")],
        ),
        ev(
            "relationship",
            "Tomas Alvarez",
            60,
            other="Rosa Alvarez",
            summary="My wife; I back her.",
        ),
        memory("Tomas Alvarez", "Rosa told me she will file her papers today.", kind="dialogue"),
    ]


def audit(events: list[Event], scenario: Scenario = TOWN) -> AuditReport:
    return audit_events(events, scenario, name="test")


def findings(report: AuditReport, name: str) -> tuple[float, float]:
    check = report.check(name)
    assert check.checked, check.note
    return check.findings, check.denominator


def test_a_clean_log_has_no_finding() -> None:
    report = audit(clean_log())
    found = {c.name: c.figure() for c in report.checks if c.findings or c.cases}
    assert found == {}
    assert report.total_findings == 0
    assert all(check.checked for check in report.checks)
    assert findings(report, "meal_times") == (0, 16 * 60 + 15 * 60 + 30)
    assert findings(report, "identity") == (0, 4)
    assert findings(report, "unheard_news") == (0, 1)


def test_meals_at_odd_times_count_their_minutes() -> None:
    report = audit(
        [
            plan(
                "Rosa Alvarez",
                ("06:00", "07:00", "get ready", "Alvarez House:bedroom"),
                ("07:00", "08:00", "dinner", "Alvarez House:living room"),
                ("08:00", "12:00", "work", "Alvarez Market:shop floor"),
                ("12:00", "18:00", "return home", "Alvarez House:living room"),
                ("18:00", "21:00", "start lunch", "Bluebird Cafe:dining room"),
            )
        ]
    )
    assert findings(report, "meal_times") == (60 + 180, 15 * 60)
    example = report.check("meal_times").examples[0]
    assert example.agent == "Rosa Alvarez" and "dinner" in example.detail


def test_a_meal_at_the_routines_own_time_is_not_odd() -> None:
    late_dinner = plan("Rosa Alvarez", ("22:00", "23:30", "dinner", "Alvarez House:living room"))
    early = ev(
        "routine",
        "Rosa Alvarez",
        wake="06:00",
        sleep="23:30",
        work=None,
        meals=[{"meal": "dinner", "time": "22:45", "place": "Alvarez House:living room"}],
        source="scenario",
    )
    assert findings(audit([late_dinner]), "meal_times")[0] == 0  # 22:00 is within the window
    odd = plan("Rosa Alvarez", ("22:30", "23:30", "dinner", "Alvarez House:living room"))
    assert findings(audit([odd]), "meal_times")[0] == 60
    assert findings(audit([early, odd]), "meal_times")[0] == 0


def test_breakfast_three_times_is_two_repeats() -> None:
    report = audit(
        [
            plan(
                "Mei Chen",
                ("07:00", "07:30", "breakfast", "Chen-Reed House:living room"),
                ("07:30", "10:30", "file papers", "Town Hall:office"),
                ("10:30", "11:00", "second breakfast", "Bluebird Cafe:dining room"),
                ("11:00", "13:00", "file papers", "Town Hall:office"),
                ("13:00", "13:30", "Breakfast", "Town Hall:office"),
                ("13:30", "14:00", "cook dinner", "Town Hall:office"),
                ("14:00", "15:00", "eat dinner", "Town Hall:office"),
            )
        ]
    )
    assert findings(report, "repeated_meals") == (60, 8 * 60)  # cook+eat dinner is one meal
    assert findings(report, "meal_times")[0] == 30 + 30 + 60  # breakfast at 13:00, dinners


def test_minutes_in_another_households_home_without_invitation() -> None:
    rosa = plan(
        "Rosa Alvarez",
        ("07:00", "08:00", "breakfast", "Alvarez House:living room"),
        ("08:00", "12:00", "go to work", "Chen-Reed House:bedroom"),
        ("12:00", "13:00", "visit", "Okafor Flat:living room"),
        ("13:00", "14:00", "see the market", "Alvarez Market:shop floor"),
    )
    mateo = plan("Mateo Alvarez", ("09:00", "10:00", "chat", "Alvarez House:bedroom"))
    report = audit([rosa, mateo])
    assert findings(report, "foreign_homes") == (240 + 60, 7 * 60 + 60)
    # Invited: the place is named in an agreement, a plan memory or a dialogue memory.
    invited = [
        memory("Rosa Alvarez", "Mei invited me to Chen-Reed House this morning.", kind="plan"),
        memory("Rosa Alvarez", "Lena asked me over to the Okafor Flat at noon.", kind="dialogue"),
        rosa,
    ]
    assert findings(audit(invited), "foreign_homes")[0] == 0
    # An observation naming the place is no invitation.
    seen = [memory("Rosa Alvarez", "Mei Chen is at Chen-Reed House:bedroom"), rosa]
    assert findings(audit(seen), "foreign_homes")[0] == 300


def test_blocks_over_four_hours_unless_sleep_or_work() -> None:
    report = audit(
        [
            plan("Lena Okafor", ("07:30", "22:00", "bake cakes", "Alder Creek:main street")),
            plan(
                "Daniel Okafor",
                ("06:00", "08:00", "breakfast", "Okafor Flat:living room"),
                ("08:00", "16:00", "make coffee", "Bluebird Cafe:kitchen"),  # the occupation
                ("16:00", "20:30", "practise songs", "Willow Park:lawn"),
                ("20:30", "24:00", "sleep", "Okafor Flat:bedroom"),
            ),
            plan("Harold Finch", ("06:00", "16:00", "work on speeches", "Town Hall:office")),
        ]
    )
    assert findings(report, "long_blocks") == (870 + 270, 870 + 18 * 60 + 600)


def test_routine_anchors_wake_and_work() -> None:
    report = audit(
        [
            routine(
                "Rosa Alvarez", "06:00", "22:00", ("Alvarez Market:shop floor", "08:00", "18:00")
            ),
            plan(
                "Rosa Alvarez",
                ("09:00", "12:00", "stroll", "Willow Park:lawn"),
                ("12:00", "13:30", "lunch", "Bluebird Cafe:dining room"),
                ("13:30", "18:00", "serve customers", "Alvarez Market:shop floor"),
                ("18:00", "22:00", "rest", "Alvarez House:living room"),
            ),
        ]
    )
    assert findings(report, "wake_anchor") == (1, 1)
    assert findings(report, "work_anchor") == (240, 600)  # 08:00-12:00 in the park; lunch excused


def test_without_a_routine_the_anchors_are_not_checked() -> None:
    report = audit([ROSA_DAY])
    for name in ("wake_anchor", "work_anchor"):
        check = report.check(name)
        assert not check.checked and check.note == "no routine recorded"
        assert check.rate is None and "not checked" in check.figure()
    assert "not checked (2)" in report.describe()


def test_actions_naming_another_room() -> None:
    report = audit(
        [
            action("Mateo Alvarez", "get dressed in the bedroom", "Alvarez Market:shop floor"),
            action("Mateo Alvarez", "head to the bedroom", "Alvarez Market:shop floor"),
            action("Lena Okafor", "set up at Bluebird Cafe", "Willow Park:lawn"),
            action("Lena Okafor", "wipe the counter in the kitchen", "Bluebird Cafe:kitchen"),
        ]
    )
    assert findings(report, "action_rooms") == (2, 4)


@pytest.mark.parametrize(
    ("speaker", "listener", "text"),
    [
        ("Mateo Alvarez", "Tomas Alvarez", "Rosa, can you help me with the crates?"),
        ("Mateo Alvarez", "Tomas Alvarez", "Hi Daniel! Ready to play?"),
        ("Mateo Alvarez", "Tomas Alvarez", "That sounds good, Lena."),
        ("Mateo Alvarez", "Tomas Alvarez", "Mom, can you help me?"),
        ("Tomas Alvarez", "Mateo Alvarez", "Thanks, Dad."),
        ("Daniel Okafor", "Lena Okafor", "I'm Mateo and I play the guitar."),
        ("Tomas Alvarez", "Mateo Alvarez", "My wife Mei will be there."),
        # From a town run: the speaker addresses himself mid-line.
        ("Tomas Alvarez", "Daniel Okafor", "I'll make breakfast right now, Tomas! Let's go on."),
    ],
)
def test_a_line_with_the_wrong_name_or_kinship(speaker: str, listener: str, text: str) -> None:
    report = audit(talk(0, [speaker, listener], [(speaker, text)]))
    assert findings(report, "identity") == (1, 1)


@pytest.mark.parametrize(
    ("speaker", "listener", "text"),
    [
        # Lines from a town run on the embedded model.
        ("Mateo Alvarez", "Rosa Alvarez", "I'll wait for Rosa to finish her dressing."),
        ("Daniel Okafor", "Lena Okafor", "I'll let Lena know we're planning to perform."),
        ("Jonah Reed", "Mei Chen", "I see Mei Chen cooking dinner and preparing snacks."),
        ("Jonah Reed", "Mateo Alvarez", "Mateo Alvarez: preparing guitar."),
        ("Daniel Okafor", "Tomas Alvarez", "I'm sorry, I'm not sure how to assist you with that."),
        ("Mateo Alvarez", "Rosa Alvarez", "I'm sorry, but I can't assist with that."),
        ("Rosa Alvarez", "Mateo Alvarez", "I can't discuss that. Feel free to ask anything else."),
        ("Tomas Alvarez", "Rosa Alvarez", "Can you please provide more context?"),
    ],
)
def test_a_line_that_loses_the_speakers_point_of_view(
    speaker: str, listener: str, text: str
) -> None:
    report = audit(talk(0, [speaker, listener], [(speaker, text)]))
    assert findings(report, "point_of_view") == (1, 1)


@pytest.mark.parametrize(
    "text",
    [
        "Rosa, can you help me with the crates?",
        "Hi Rosa! Ready for the market?",
        "That sounds good, Rosa.",
        "I see that you're already working on the snacks, Rosa Alvarez. Let's go on.",
        "Tomas said he would fix the shelves.",
        "I'll check the park. Rosa, let me know if you need anything.",
        "Is that Rosa's new sign?",
    ],
)
def test_addressing_the_listener_or_speaking_of_others_keeps_the_point_of_view(text: str) -> None:
    report = audit(talk(0, ["Mateo Alvarez", "Rosa Alvarez"], [("Mateo Alvarez", text)]))
    assert findings(report, "point_of_view") == (0, 1)


def test_a_speaker_outside_the_conversation_is_a_mixup() -> None:
    events = talk(0, ["Mateo Alvarez", "Tomas Alvarez"], [("Mateo Alvarez", "Hello.")])
    events[1] = events[1].model_copy(
        update={"data": {**events[1].data, "speaker": "Daniel Okafor"}}
    )
    assert findings(audit(events), "identity") == (1, 1)


def test_news_stated_by_someone_who_never_heard_it() -> None:
    events = [
        # Lena never heard of Rosa's candidacy, yet announces it.
        *talk(
            0,
            ["Lena Okafor", "Mei Chen"],
            [("Lena Okafor", "Rosa Alvarez is a council candidate!")],
        ),
        # Mei heard it from Lena just before, so she may repeat it.
        *talk(
            30, ["Mei Chen", "Jonah Reed"], [("Mei Chen", "Did you know Rosa is in the election?")]
        ),
        # Same step: Rosa tells Mateo, who repeats it after her (fine) ...
        *talk(
            60,
            ["Rosa Alvarez", "Mateo Alvarez"],
            [
                ("Rosa Alvarez", "Mateo, your mother Rosa is running for council!"),
                ("Mateo Alvarez", "You, Rosa Alvarez, a council candidate? Great!"),
            ],
        ),
        # ... but Harold states it before anyone told him, in the same step as Tomas tells him.
        *talk(
            90,
            ["Harold Finch", "Tomas Alvarez"],
            [
                ("Harold Finch", "So Rosa is the other candidate."),
                ("Tomas Alvarez", "Yes, Rosa runs for council."),
            ],
        ),
    ]
    report = audit(events)
    assert findings(report, "unheard_news") == (2, 6)
    speakers = sorted(f.agent or "" for f in report.check("unheard_news").examples)
    assert speakers == ["Harold Finch", "Lena Okafor"]


def test_news_heard_events_are_followed_when_the_log_has_them() -> None:
    lines = talk(0, ["Lena Okafor", "Mei Chen"], [("Lena Okafor", "Rosa is a council candidate.")])
    told = ev("news_heard", "Lena Okafor", 0, news_id="rosa_council", source="Rosa Alvarez")
    assert findings(audit([told, *lines]), "unheard_news") == (0, 1)


def test_cut_off_texts() -> None:
    events = [
        *talk(
            0,
            ["Rosa Alvarez", "Tomas Alvarez"],
            [
                ("Rosa Alvarez", "I think we should go to the market before the"),
                ("Tomas Alvarez", "We could meet at noon and then talk about what we will do next"),
                ("Rosa Alvarez", "Sure"),
            ],
            summary="Rosa told Tomas her plan and Tomas has promised to",
        ),
        action("Iris", "Making coffee,", "Alvarez House:living room"),
    ]
    report = audit(events)
    assert findings(report, "cut_off_texts") == (4, 5)
    assert cut_off_reason("and Tomas has promised to", sentence=True) == "ends on 'to'"
    assert cut_off_reason("Sure thing, see you at five 🙂", sentence=True) is None


def test_other_script_leaks() -> None:
    events = [
        ev("relationship", "Mateo Alvarez", 0, other="Daniel Okafor", summary="and they都会"),
        memory("Lena Okafor", "Я пеку хлеб"),
        memory("Lena Okafor", "Baking a crème brûlée ☕"),
    ]
    report = audit(events)
    assert findings(report, "other_script") == (2, 3)
    assert "CJK" in report.check("other_script").examples[0].detail


def test_ungrammatical_memories() -> None:
    events = [
        memory("Tomas Alvarez", "Tomas Alvarez is have a hearty breakfast"),
        memory("Noah", "Noah Bell is make coffee"),
        memory("Tomas Alvarez", "Tomas Alvarez: having a hearty breakfast"),
        memory("Tomas Alvarez", "The cafe is open and the bed is made"),
        memory("Tomas Alvarez", "I went to the the market"),
    ]
    assert findings(audit(events), "ungrammatical_memories") == (3, 5)
    assert grammar_problem("Rosa Alvarez is at the market") is None


def test_an_unreadable_event_is_named() -> None:
    bad = ev("plan", "Rosa Alvarez", 20, date=DAY, blocks=[{"start": "7am", "end": "08:00"}])
    with pytest.raises(AuditInputError, match=r"plan event of Rosa Alvarez at step 2.*7am"):
        audit([bad])


def test_the_report_reads_back_from_json_and_prints_every_check() -> None:
    report = audit(
        [*clean_log(), plan("Lena Okafor", ("07:30", "22:00", "bake", "Okafor Flat:bedroom"))]
    )
    again = AuditReport.model_validate(json.loads(report.model_dump_json()))
    assert again.model_dump() == report.model_dump()
    table = report.describe()
    for check in report.checks:
        assert check.name in table
    assert "870/" in table and "planned minutes" in table


def test_audit_reads_a_run_store(tmp_path: Path) -> None:
    # Without the routine: a store accepts only the event kinds the engine records.
    events = [e for e in clean_log() if e.kind != "routine"]
    with RunStore.create(tmp_path, {"scenario": "town"}) as store:
        for step in sorted({e.step for e in events}):
            store.commit_step(step, at(10 * step), [e for e in events if e.step == step])
    with RunStore.open(tmp_path, readonly=True) as store:
        report = audit_store(store, TOWN)
    assert report == audit(events).model_copy(update={"run": str(tmp_path)})


def stored_run(directory: Path, events: list[Event]) -> Path:
    """A run directory as ``societas run`` leaves it: the store and the scenario copy."""
    with RunStore.create(directory, {"scenario": "town"}) as store:
        for step in sorted({e.step for e in events}):
            store.commit_step(step, at(10 * step), [e for e in events if e.step == step])
    (directory / "scenario.yaml").write_text(TOWN.source_text, encoding="utf-8")
    return directory


def test_audit_command_prints_a_table_and_json(tmp_path: Path) -> None:
    events = [e for e in clean_log() if e.kind != "routine"]
    lena = plan("Lena Okafor", ("07:30", "22:00", "bake cakes", "Alder Creek:main street"))
    run_dir = stored_run(tmp_path / "run", [*events, lena])
    runner = CliRunner()
    shown = runner.invoke(app, ["audit", str(run_dir)], terminal_width=120)
    assert shown.exit_code == 0, shown.output
    assert "long_blocks" in shown.output and "870" in shown.output
    assert "wake_anchor: no routine recorded" in shown.output
    as_json = runner.invoke(app, ["audit", str(run_dir), "--json"])
    assert as_json.exit_code == 0, as_json.output
    report = AuditReport.model_validate_json(as_json.output)
    assert report.check("long_blocks").findings == 870
    assert not report.check("wake_anchor").checked


def test_audit_command_names_what_is_missing(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["audit", str(tmp_path)])
    assert result.exit_code == 2
    assert "has no scenario.yaml" in result.output


def test_plan_sense_counts_each_wrong_minute_once() -> None:
    absurd = plan(
        "Rosa Alvarez",
        ("07:00", "08:00", "dinner", "Alvarez House:bedroom"),  # odd meal
        ("08:00", "12:00", "go to work", "Chen-Reed House:bedroom"),  # another household
        ("12:00", "18:00", "dinner", "Chen-Reed House:bedroom"),  # odd, repeated, foreign, long
        ("18:00", "21:00", "start lunch", "Bluebird Cafe:dining room"),  # odd meal
    )
    tomas = next(e for e in clean_log() if e.kind == "plan" and e.agent == "Tomas Alvarez")
    record = record_of([absurd, tomas], TOWN, name="test")
    sense = plan_sense(record, audit_record(record))
    assert (sense.sensible_minutes, sense.planned_minutes) == (930, 840 + 930)
    assert sense.score == pytest.approx(930 / 1770, abs=1e-4)
    assert sense.checks["foreign_homes"].startswith("600/1770")
    assert not sense.routine_checked and "routine anchors not checked" in sense.describe()


def test_plan_sense_of_a_sensible_day_is_one_and_counts_work_hours_away() -> None:
    record = record_of(clean_log(), TOWN)
    assert plan_sense(record, audit_record(record)).score == 1.0
    away = [
        routine("Rosa Alvarez", "06:00", "22:00", ("Alvarez Market:shop floor", "08:00", "18:00")),
        plan(
            "Rosa Alvarez",
            ("06:00", "09:00", "stroll", "Willow Park:lawn"),
            ("09:00", "18:00", "work", "Alvarez Market:shop floor"),
            ("18:00", "22:00", "read", "Alvarez House:living room"),
        ),
    ]
    record = record_of(away, TOWN)
    sense = plan_sense(record, audit_record(record))
    assert (sense.sensible_minutes, sense.planned_minutes) == (16 * 60 - 60, 16 * 60)
    assert sense.routine_checked


def test_plan_sense_for_the_evaluation_report(tmp_path: Path) -> None:
    absurd = plan("Lena Okafor", ("07:30", "22:00", "bake cakes", "Alder Creek:main street"))
    run_dir = stored_run(tmp_path / "run", [absurd])
    document = plan_sense_json(run_dir)
    assert document["score"] == 0.0 and document["planned_minutes"] == 870
    assert "0/870 planned minutes" in document["note"]
    missing = plan_sense_json(tmp_path / "nothing")
    assert missing["score"] is None and "no plan sense" in missing["note"]


@pytest.mark.parametrize(
    "text",
    [
        "There is no Daniel here today.",
        "I'm Daniel's best friend, you know.",
        "This morning Tomas fixed the shelves.",
        "Oh Tomas, you are late!",
        "See you at the park, Dad.",
        "My dad Tomas says hi.",
    ],
)
def test_names_that_are_not_a_wrong_address(text: str) -> None:
    report = audit(talk(0, ["Mateo Alvarez", "Tomas Alvarez"], [("Mateo Alvarez", text)]))
    assert findings(report, "identity") == (0, 1)


def test_a_reason_of_ones_own_is_no_invitation() -> None:
    own = plan(
        "Rosa Alvarez",
        ("07:00", "08:00", "drop by", "Chen-Reed House:living room"),
        reason="I want to see what is going on at Chen-Reed House",
    )
    assert findings(audit([own]), "foreign_homes")[0] == 60
    agreed = own.model_copy(
        update={"data": {**own.data, "reason": "agreed with Mei Chen: 07:00 tea @ Chen-Reed House"}}
    )
    assert findings(audit([agreed]), "foreign_homes")[0] == 0


@pytest.mark.parametrize("damage", ["no store", "bad scenario", "damaged store"])
def test_audit_command_fails_clearly_on_a_broken_run(tmp_path: Path, damage: str) -> None:
    run_dir = stored_run(tmp_path / "run", [ROSA_DAY])
    if damage == "no store":
        (run_dir / "run.sqlite").unlink()
    elif damage == "bad scenario":
        (run_dir / "scenario.yaml").write_text("name: [\n", encoding="utf-8")
    else:
        (run_dir / "run.sqlite").write_bytes(b"not a database" * 100)
    result = CliRunner().invoke(app, ["audit", str(run_dir)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and "Traceback" not in result.output
