"""Town measurements on hand-made event logs with known answers."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from societas.engine.events import Event
from societas.engine.runstore import RunStore
from societas.measurement.attendance import gathering_attendance, in_place, presence_minutes
from societas.measurement.awareness import claims_awareness, compare_awareness
from societas.measurement.model_usage import (
    backend_cost_by_hour,
    call_totals,
    calls_by_purpose,
    model_usage,
)
from societas.measurement.network_density import conversation_counts, network_density
from societas.measurement.news_spread import (
    heard_news_diffusion,
    heard_news_ids,
    news_diffusion,
)
from societas.measurement.run_summary import RunSummary, summarise_run
from societas.world.news_keywords import detect_news
from societas.world.storylines import ScenarioInfo, TrackedGathering, TrackedNews

T0 = datetime(2026, 2, 13, 8, 0)
AGENTS = ["Ada", "Bo", "Cy", "Di", "Ed"]
PARTY = TrackedNews(id="party", keywords=[["party"], ["cafe", "hobbs"]], initial_knowers=["Ada"])


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ev(minutes: float, kind: str, agent: str | None = None, **data: Any) -> Event:
    return Event(step=int(minutes // 10), time=at(minutes), kind=kind, agent=agent, data=data)


def say(minutes: float, speaker: str, listeners: list[str], text: str, conv: str = "c1") -> Event:
    return ev(
        minutes,
        "utterance",
        speaker,
        conversation_id=conv,
        speaker=speaker,
        listeners=listeners,
        text=text,
    )


def move(minutes: float, agent: str, place: str | None) -> Event:
    return ev(minutes, "move", agent, tile=[0, 0], place=place)


# --------------------------------------------------------------------------- detect_news


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("There's a PARTY at Hobbs Cafe tonight", True),
        ("party at hobbs!", True),
        ("The cafe's party starts at five", True),  # possessive: still the whole word "cafe"
        ("the partygoers met at the cafe", False),  # "party" only inside a longer word
        ("a party at the cafeteria", False),
        ("a party somewhere", False),  # second group missing
        ("Hobbs says hello", False),  # first group missing
        ("", False),
    ],
)
def test_detect_news_needs_a_whole_word_of_every_group(text: str, expected: bool) -> None:
    assert detect_news(text, PARTY.keywords) is expected


def test_detect_news_phrases_and_unicode() -> None:
    groups = [["town hall"], ["vote", "élection"]]
    assert detect_news("Town\n  Hall hosts the élection", groups)
    assert not detect_news("townhall vote", groups)
    assert not detect_news("town, hall vote", groups)
    assert detect_news("Go to St. Mary's!", [["st. mary's"]])
    with pytest.raises(ValueError, match="keyword_groups is empty"):
        detect_news("x", [])
    with pytest.raises(ValueError, match="keyword group 1 is empty"):
        detect_news("x", [["a"], []])
    with pytest.raises(ValidationError, match="blank word"):
        TrackedNews(id="n", keywords=[["ok", "  "]])


# --------------------------------------------------------------------------- diffusion


def test_diffusion_from_keywords_follows_listeners_of_speakers_who_knew() -> None:
    events = [
        ev(5, "conversation", None, id="c2", participants=["Bo", "Cy", "Di", "Ed"], place="park"),
        say(10, "Ada", ["Bo"], "Bo, come to the party at Hobbs Cafe!"),
        say(20, "Bo", ["Cy"], "Nice weather today", conv="c3"),
        # Cy never heard it: a mention from someone who did not know passes nothing on.
        say(30, "Cy", ["Di"], "Is there a party at the cafe?", conv="c2"),
        say(40, "Di", ["Cy"], "I heard of the party at hobbs", conv="c2"),
        # Bo knew: Cy hears it, and Di and Ed as participants of c2.
        say(45, "Bo", ["Cy"], "Yes, the party at the cafe", conv="c2"),
        say(50, "Bo", ["Zed"], "party at the cafe", conv="c4"),  # Zed is not an agent
    ]
    result = news_diffusion(events, PARTY, agents=AGENTS, start=T0)
    assert result.method == "keywords"
    assert [(p.time, p.count, p.names) for p in result.series] == [
        (T0, 1, ["Ada"]),
        (at(10), 2, ["Ada", "Bo"]),
        (at(45), 5, ["Ada", "Bo", "Cy", "Di", "Ed"]),
    ]
    assert result.sources == {"Ada": None, "Bo": "Ada", "Cy": "Bo", "Di": "Bo", "Ed": "Bo"}
    assert result.initial_count == 1 and result.final_count == 5
    assert result.final_share == 1.0
    assert result.knowers_at(at(44)) == ["Ada", "Bo"]


def test_keyword_diffusion_ignores_notes_and_speakers_who_did_not_know() -> None:
    events = [
        # Bo's own note about someone, full of the keywords, is not hearing the news.
        ev(5, "relationship", "Bo", other="Ada", summary="Ada talked about the party at the cafe"),
        say(10, "Cy", ["Bo"], "There is a party at the cafe, I guess?"),  # Cy never heard it
    ]
    result = news_diffusion(events, PARTY, agents=AGENTS, start=T0, method="keywords")
    assert result.final_count == 1 and result.sources == {"Ada": None}


def test_news_heard_events_from_sources_who_did_not_know_do_not_count() -> None:
    events = [
        ev(12, "news_heard", "Cy", news_id="party", source="Di", source_knew=False),
        ev(20, "news_heard", "Bo", news_id="party", source="Ada", source_knew=True),
        # The engine let Cy "know" from Di's mention, so it flags Cy as knowing: still no.
        ev(30, "news_heard", "Ed", news_id="party", source="Cy", source_knew=True),
    ]
    result = news_diffusion(events, PARTY, agents=AGENTS, start=T0)
    assert sorted(result.first_heard) == ["Ada", "Bo"]


def test_diffusion_prefers_news_heard_events_when_the_log_has_them() -> None:
    events = [
        say(10, "Ada", ["Bo"], "party at hobbs cafe"),  # ignored: the engine decides
        ev(12, "news_heard", "Cy", news_id="party", source="Ada", conversation_id="c1"),
        ev(15, "news_heard", "Di", news_id="other", source="Ada", conversation_id="c1"),
        ev(20, "news_heard", "Cy", news_id="party", source="Bo", conversation_id="c2"),
    ]
    result = news_diffusion(events, PARTY, agents=AGENTS, start=T0)
    assert result.method == "news_heard"
    assert [(p.count, p.names) for p in result.series] == [(1, ["Ada"]), (2, ["Ada", "Cy"])]
    assert result.first_heard == {"Ada": T0, "Cy": at(12)}
    assert result.sources["Cy"] == "Ada"
    assert result.final_share == pytest.approx(2 / 5)
    forced = news_diffusion(events, PARTY, agents=AGENTS, start=T0, method="keywords")
    assert forced.first_heard == {"Ada": T0, "Bo": at(10)}


def test_diffusion_without_initial_knowers_starts_at_zero() -> None:
    item = TrackedNews(id="fair", keywords=[["fair"]])
    result = news_diffusion([], item, agents=AGENTS, start=T0)
    assert [(p.time, p.count) for p in result.series] == [(T0, 0)]
    assert result.final_share == 0.0


def test_every_news_heard_event_counts_when_not_only_from_knowers() -> None:
    events = [
        ev(12, "news_heard", "Cy", news_id="party", source="Di", source_knew=False),
        ev(25, "news_heard", "Bo", news_id="fair", source="Ada"),
        ev(30, "news_heard", "Ed", news_id="party", source="Cy", source_knew=True),
        ev(31, "news_heard", "Cy", news_id="party", source="Ed"),  # heard before: no change
    ]
    assert heard_news_ids(reversed(events)) == ["party", "fair"]  # by when first heard
    result = heard_news_diffusion(events, "party", agents=AGENTS, start=T0, from_knowers_only=False)
    assert [(p.time, p.count) for p in result.series] == [(T0, 0), (at(12), 1), (at(30), 2)]
    assert result.sources == {"Cy": "Di", "Ed": "Cy"} and result.initial_count == 0
    only_knowers = heard_news_diffusion(
        events, "party", agents=AGENTS, start=T0, initial_knowers=["Ada"]
    )
    assert only_knowers.first_heard == {"Ada": T0}


# --------------------------------------------------------------------------- awareness


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Yes, Ada told me about it.", True),
        ("Oh yes! I can't wait.", True),
        ("I heard there's a party at the cafe.", True),
        ("Isabella mentioned something like that.", True),
        ("The party at Hobbs Cafe on Friday, right?", True),  # names the item
        ("No, I haven't.", False),
        ("Hmm, I haven't heard anything about that.", False),
        ("I have no idea what you mean.", False),
        ("I don't know about any party at the cafe.", False),
        ("Not that I know of.", False),
        ("Nothing comes to mind.", False),
        ("What a lovely morning.", False),
    ],
)
def test_claims_awareness(answer: str, expected: bool) -> None:
    assert claims_awareness(answer, PARTY.keywords) is expected


def test_compare_awareness_finds_hallucinations_and_misses() -> None:
    answers = {
        "Ada": "Yes, of course.",  # knows, says so
        "Bo": "No, nothing.",  # knows, denies: missed
        "Cy": "Yes, the party at the cafe!",  # never heard: hallucinated
        "Di": "I have no idea.",  # does not know, says so
    }
    check = compare_awareness(answers, PARTY, knowers={"Ada", "Bo", "Ed"})
    assert check.interviewed == 4
    assert check.claimed == ["Ada", "Cy"]
    assert check.actual == ["Ada", "Bo"]
    assert check.agreement == 0.5
    assert check.hallucinated == ["Cy"]
    assert check.missed == ["Bo"]
    with pytest.raises(ValueError, match="no interview answers"):
        compare_awareness({}, PARTY, knowers=set())


# --------------------------------------------------------------------------- density


def test_network_density_by_hand() -> None:
    agents = ["Ada", "Bo", "Cy", "Di"]  # n(n-1) = 12 ordered pairs
    events = [
        ev(10, "conversation", None, id="c1", participants=["Ada", "Bo"]),
        say(15, "Ada", ["Bo"], "hi"),  # same pair again: no change
        say(30, "Cy", ["Di", "Zed"], "hello"),  # Zed is not an agent
        ev(40, "observation", "Ada", text="nothing social"),
    ]
    result = network_density(
        events,
        agents=agents,
        start=T0,
        end=at(60),
        relationships={"Ada": ["Bo"], "Bo": ["Cy", "Bo"]},  # self-loop ignored
    )
    assert result.conversation_pairs == [("Ada", "Bo"), ("Cy", "Di")]
    # conversations: 2|E|/(n(n-1)) = 2*2/12; knows: {A>B, B>C} + {B>A, C>D, D>C} = 5/12.
    assert (result.start.conversation, result.start.knows) == (0.0, pytest.approx(2 / 12))
    assert result.end.time == at(60)
    assert result.end.conversation == pytest.approx(4 / 12)
    assert result.end.knows == pytest.approx(5 / 12)
    assert result.knows_edges == 5
    assert [(p.time, round(p.conversation * 12)) for p in result.series] == [
        (T0, 0),
        (at(10), 2),
        (at(30), 4),
    ]


def test_conversation_counts_weigh_each_pair_by_its_conversations() -> None:
    events = [
        ev(10, "conversation", None, id="c1", participants=["Bo", "Ada"]),
        ev(20, "conversation", None, id="c2", participants=["Ada", "Bo", "Zed"]),
        ev(30, "conversation", None, id="c3", participants=["Cy", "Ada", "Bo"]),
        say(35, "Cy", ["Di"], "hello"),  # a line alone is not a conversation
    ]
    assert conversation_counts(events, agents=AGENTS) == {
        ("Ada", "Bo"): 3,
        ("Ada", "Cy"): 1,
        ("Bo", "Cy"): 1,
    }


def test_network_density_of_a_lone_agent_is_zero() -> None:
    result = network_density([], agents=["Ada"], start=T0)
    assert result.end.conversation == result.end.knows == 0.0


# --------------------------------------------------------------------------- attendance


GATHERING = TrackedGathering(id="party", place="cafe", start=at(60), end=at(180), news_id="party")


def attendance_log() -> list[Event]:
    return [
        move(50, "Ada", "cafe:counter"),
        move(75, "Ada", "park"),  # 60..75: exactly 15 minutes, counts
        move(166, "Bo", "cafe"),  # 166..180: 14 minutes, does not
        move(0, "Cy", "cafeteria:hall"),  # a different place with a similar name
        move(60, "Ed", "cafe:table"),
        move(70, "Ed", "street"),
        move(120, "Ed", "cafe:table:chair"),
        move(126, "Ed", None),  # 10 + 6 = 16 minutes in two visits
        move(180, "Fay", "cafe"),  # arrives as it ends
    ]


def test_presence_minutes_at_the_boundaries() -> None:
    minutes = presence_minutes(
        attendance_log(),
        place="cafe",
        window_start=at(60),
        window_end=at(180),
        run_end=at(240),
        initial_places={"Di": "cafe:table"},  # never moves: the whole window
        run_start=T0,
    )
    assert minutes == {"Ada": 15.0, "Bo": 14.0, "Di": 120.0, "Ed": 16.0}


def test_gathering_attendance_with_invitations() -> None:
    result = gathering_attendance(
        attendance_log(),
        GATHERING,
        run_end=at(240),
        run_start=T0,
        initial_places={"Di": "cafe:table"},
        invited={"Ada", "Bo", "Fay"},
    )
    assert result.attendees == ["Ada", "Di", "Ed"]
    assert result.invited_attendees == ["Ada"]
    assert result.uninvited_attendees == ["Di", "Ed"]
    assert result.share_of_invited == pytest.approx(1 / 3)


def test_the_host_is_not_counted_among_the_invited() -> None:
    # Ada hosts (the scenario puts the party in her plan): her coming decides nothing.
    result = gathering_attendance(
        attendance_log(),
        GATHERING.model_copy(update={"host": "Ada"}),
        run_end=at(240),
        run_start=T0,
        invited={"Ada", "Bo", "Fay"},
    )
    assert result.host == "Ada" and "Ada" in result.attendees
    assert result.invited == ["Bo", "Fay"]
    assert result.invited_attendees == [] and result.share_of_invited == 0
    assert result.uninvited_attendees == ["Ed"]


def test_a_run_that_stops_early_clips_presence() -> None:
    result = gathering_attendance(
        [move(60, "Ada", "cafe")], GATHERING.model_copy(update={"min_minutes": 20}), run_end=at(70)
    )
    assert result.minutes == {"Ada": 10.0}
    assert result.attendees == []
    assert result.invited is None and result.share_of_invited is None


def test_in_place_matches_whole_address_parts() -> None:
    assert in_place("cafe", "cafe") and in_place("cafe:bar:stool", "cafe:bar")
    assert in_place("cafe:bar", "cafe:")
    assert not in_place("cafe:barn", "cafe:bar")
    assert not in_place("cafeteria", "cafe")


# --------------------------------------------------------------------------- model usage


def llm(purpose: str, prompt: int, completion: int, **extra: Any) -> Event:
    data = {
        "purpose": purpose,
        "model": "m",
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cached": False,
        "latency_s": 0.5,
        "error": None,
        "retries": 0,
        "repaired": False,
    }
    return ev(0, "llm_call", "Ada", **(data | extra))


def test_model_usage_totals_and_rates() -> None:
    events = [
        llm("plan", 300, 50),
        llm("plan", 300, 50, cached=True),
        llm("converse", 200, 40, retries=2, repaired=True),
        llm("converse", 100, 0, error="timeout"),
        ev(1, "observation", "Ada", text="not a call"),
    ]
    usage = model_usage(events, agents=2, hours=0.5)
    total = usage.total
    assert (total.calls, total.cache_hits, total.errors, total.retries, total.repaired) == (
        4,
        1,
        1,
        2,
        1,
    )
    assert (total.prompt_tokens, total.completion_tokens, total.total_tokens) == (900, 140, 1040)
    assert total.latency_s == 2.0
    assert usage.by_purpose["plan"].calls == 2
    assert usage.by_purpose["converse"].total_tokens == 340
    assert usage.calls_per_agent_hour == 4.0  # 4 calls / (2 agents * 0.5 h)
    assert usage.tokens_per_agent_hour == 1040.0
    assert model_usage(events, agents=2, hours=0).calls_per_agent_hour is None


def test_call_totals_count_every_request_embeddings_included() -> None:
    events = [llm("plan", 300, 50), llm("embed", 40, 0, cached=True), llm("plan", 10, 5)]
    totals = call_totals(events)
    assert (totals.calls, totals.cache_hits, totals.total_tokens) == (3, 1, 405)
    usage = model_usage(events, agents=1, hours=1)
    assert totals.calls == usage.total.calls + usage.embeddings.calls
    assert calls_by_purpose(events) == usage.by_purpose


def test_backend_cost_by_hour_counts_what_reached_the_backend() -> None:
    events = [
        llm("plan", 300, 50, backend_calls=2),  # a repair: two backend calls
        llm("plan", 300, 50, cached=True, backend_calls=0),
        llm("embed", 40, 0, backend_calls=1),
        ev(70, "llm_call", "Ada", purpose="react", prompt_tokens=10, completion_tokens=5),
    ]
    assert [c.model_dump() for c in backend_cost_by_hour(events, start=T0)] == [
        {"hour": 0, "calls": 2, "tokens": 350},
        {"hour": 1, "calls": 1, "tokens": 15},  # older logs without backend_calls: one each
    ]


# --------------------------------------------------------------------------- summary


def test_scenario_info_is_checked() -> None:
    with pytest.raises(ValidationError, match="initial_knowers: unknown agent"):
        ScenarioInfo(agents=["Bo"], start=T0, news=[PARTY])
    with pytest.raises(ValidationError, match="not a news item"):
        ScenarioInfo(agents=["Ada"], start=T0, gatherings=[GATHERING])
    with pytest.raises(ValidationError, match=r"ends .* before it starts"):
        TrackedGathering(id="g", place="cafe", start=at(10), end=at(10))
    with pytest.raises(ValidationError, match="names must be unique"):
        ScenarioInfo(agents=["Ada", "Ada"], start=T0)


def test_summarise_run_bundles_every_measurement(tmp_path: Path) -> None:
    info = ScenarioInfo(
        agents=AGENTS,
        start=T0,
        news=[PARTY],
        gatherings=[GATHERING],
        relationships={"Ada": ["Bo"]},
        initial_places={"Di": "cafe"},
    )
    log = [
        ev(0, "llm_call", "Ada", purpose="plan", prompt_tokens=400, completion_tokens=60),
        ev(10, "conversation", None, id="c1", participants=["Ada", "Bo"], place="cafe"),
        say(10, "Ada", ["Bo"], "Party at Hobbs Cafe at nine!"),
        move(50, "Bo", "cafe:counter"),
        say(190, "Bo", ["Cy"], "The party at the cafe was fun", conv="c2"),  # after it ended
        ev(230, "llm_call", "Bo", purpose="converse", prompt_tokens=200, completion_tokens=20),
    ]
    with RunStore.create(tmp_path, {}) as store:
        for step in range(24):
            store.commit_step(step, at(10 * step), [e for e in log if e.step == step])
        summary = summarise_run(
            store,
            info,
            interviews={"party": {"Bo": "Yes, Ada told me.", "Cy": "No idea.", "Ed": "Yes!"}},
        )
        with pytest.raises(ValueError, match="no news item 'fair'"):
            summarise_run(store, info, interviews={"fair": {"Bo": "yes"}})

    assert summary.last_step == 23
    assert summary.end == at(230) and summary.simulated_hours == pytest.approx(230 / 60)
    assert summary.events == 6
    assert summary.event_counts == {"conversation": 1, "llm_call": 2, "move": 1, "utterance": 2}
    assert summary.usage.total.calls == 2 and summary.usage.total.total_tokens == 680
    assert summary.usage.tokens_per_agent_hour == pytest.approx(680 / (5 * 230 / 60), abs=1e-3)
    (news,) = summary.news
    assert news.first_heard == {"Ada": T0, "Bo": at(10), "Cy": at(190)}
    (check,) = summary.awareness
    assert check.hallucinated == ["Ed"] and check.missed == ["Cy"]
    assert summary.network.end.conversation == pytest.approx(2 * 2 / 20)
    (party,) = summary.gatherings
    assert party.attendees == ["Bo", "Di"]
    assert party.invited == ["Ada", "Bo"]  # Cy heard only after it ended
    assert party.share_of_invited == 0.5

    restored = RunSummary.model_validate_json(summary.model_dump_json())
    assert restored == summary
    text = summary.describe()
    assert "5 agents, 6 events" in text
    assert "News 'party': 1 -> 3 of 5 agents (60%, from keywords)" in text
    assert "Gathering 'party' at cafe: 2 attended (1 of 2 invited)" in text
    # A run that stops before a gathering begins says so instead of counting nobody.
    early = summary.model_copy(update={"end": at(30)})
    assert "Gathering 'party' at cafe: not yet held (it starts" in early.describe()
