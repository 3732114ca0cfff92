"""Every town measurement of a run, computed from its run store: :class:`RunSummary`.

Each measurement is a pure function of the events (in the order they were recorded) and of what the
scenario declares (:class:`~societas.world.storylines.ScenarioInfo`): how far each seeded news item
travelled, whether agents' own answers about it match what they actually heard, how dense the
social network became, who came to each gathering, and what the language model cost.
:func:`summarise_run` bundles them into a JSON-serialisable :class:`RunSummary`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel

from societas.engine.plan_checks import PLAN_CHECK_KINDS, PlanChecks, plan_checks
from societas.engine.runstore import RunStore
from societas.measurement.attendance import Attendance, gathering_attendance
from societas.measurement.awareness import AwarenessCheck, compare_awareness
from societas.measurement.model_usage import EMBED_PURPOSE, ModelUsage, model_usage, reuse_text
from societas.measurement.network_density import NetworkDensity, network_density
from societas.measurement.news_spread import NewsDiffusion, news_diffusion
from societas.world.storylines import ScenarioInfo, TrackedNews

_MEASURED_KINDS = ("move", "conversation", "utterance", "news_heard", "llm_call")


class RunSummary(BaseModel):
    """Every town measurement of a run; ``model_dump_json()`` gives summary.json."""

    last_step: int | None
    start: datetime
    end: datetime
    simulated_hours: float
    agents: int
    events: int
    event_counts: dict[str, int]
    usage: ModelUsage
    news: list[NewsDiffusion]
    awareness: list[AwarenessCheck]
    network: NetworkDensity
    gatherings: list[Attendance]
    plans: PlanChecks = PlanChecks()

    def describe(self) -> str:
        """A short human-readable report."""
        usage = self.usage.total
        lines = [
            f"Run: steps 0-{self.last_step if self.last_step is not None else '?'}, "
            f"{self.start:%Y-%m-%d %H:%M} -> {self.end:%Y-%m-%d %H:%M} "
            f"({self.simulated_hours:.2f} h), {self.agents} agents, {self.events} events",
            f"Model: {usage.calls} calls ({usage.cache_hits} cached, {usage.errors} failed), "
            f"{usage.total_tokens} tokens ({usage.prompt_tokens} prompt + "
            f"{usage.completion_tokens} completion); {self.usage.embeddings.calls} embedding "
            "requests",
            f"  {reuse_text(usage)}",
        ]
        if self.usage.calls_per_agent_hour is not None:
            lines.append(
                f"  per agent-hour: {self.usage.calls_per_agent_hour:.2f} calls, "
                f"{self.usage.tokens_per_agent_hour:.0f} tokens"
            )
        for purpose, totals in self.usage.by_purpose.items():
            if purpose != EMBED_PURPOSE:
                lines.append(
                    f"  {purpose}: {totals.calls} calls, {totals.total_tokens} tokens, "
                    f"{reuse_text(totals, short=True)}"
                )
        if self.plans.checked or self.plans.decided:
            lines.append(self.plans.describe())
        lines += self.news_lines()
        lines += self.network_lines()
        for gathering in self.gatherings:
            invited = (
                ""
                if gathering.invited is None
                else f" ({len(gathering.invited_attendees or [])} of "
                f"{len(gathering.invited)} invited)"
            )
            if self.end <= gathering.start:  # the run stopped before it began: nothing to count
                lines.append(
                    f"Gathering {gathering.gathering_id!r} at {gathering.place}: not yet held "
                    f"(it starts {gathering.start:%Y-%m-%d %H:%M}; the run stopped at "
                    f"{self.end:%H:%M})"
                )
                continue
            host = (
                ""
                if gathering.host is None
                else f"; host {gathering.host} "
                + ("there" if gathering.host in gathering.attendees else "not there")
            )
            lines.append(
                f"Gathering {gathering.gathering_id!r} at {gathering.place}: "
                f"{len(gathering.attendees)} attended{invited}{host}"
            )
        return "\n".join(lines)

    def news_lines(self) -> list[str]:
        """The news diffusion and interview lines of :meth:`describe`."""
        lines = [
            f"News {news.news_id!r}: {news.initial_count} -> {news.final_count} of "
            f"{self.agents} agents ({news.final_share:.0%}, from {news.method})"
            for news in self.news
        ]
        lines += [
            f"Interviews on {check.news_id!r}: agreement {check.agreement:.0%}, "
            f"{len(check.hallucinated)} hallucinated, {len(check.missed)} missed"
            for check in self.awareness
        ]
        return lines

    def network_lines(self) -> list[str]:
        """The network density lines of :meth:`describe`."""
        return [
            "Network density (scenario relationships + conversations): conversations "
            f"{self.network.start.conversation:.2f} -> {self.network.end.conversation:.2f}; "
            f"knows {self.network.start.knows:.2f} -> {self.network.end.knows:.2f}"
        ]


def summarise_run(
    store: RunStore,
    info: ScenarioInfo,
    *,
    interviews: Mapping[str, Mapping[str, str]] | None = None,
) -> RunSummary:
    """Compute every measurement of the run in ``store``.

    ``interviews`` maps a news id to interview answers (agent -> answer) to score against the
    dialogue's ground truth at the end of the run.
    """
    events = [stored.event for stored in store.iter_events(kinds=_MEASURED_KINDS)]
    checks = plan_checks(e.event for e in store.iter_events(kinds=PLAN_CHECK_KINDS))
    counts = store.event_counts()
    end = info.end or _last_time(store) or info.start
    hours = max((end - info.start).total_seconds() / 3600, 0.0)
    news = [
        news_diffusion(events, item, agents=info.agents, start=info.start) for item in info.news
    ]
    diffusion_by_id = {d.news_id: d for d in news}
    awareness = [
        compare_awareness(
            answers, _news_or_error(info, news_id), diffusion_by_id[news_id].first_heard
        )
        for news_id, answers in sorted((interviews or {}).items())
    ]
    gatherings = [
        gathering_attendance(
            events,
            gathering,
            run_end=end,
            run_start=info.start,
            initial_places=info.initial_places,
            agents=set(info.agents),
            invited=None
            if gathering.news_id is None
            else diffusion_by_id[gathering.news_id].knowers_at(gathering.end),
        )
        for gathering in info.gatherings
    ]
    return RunSummary(
        last_step=store.last_step(),
        start=info.start,
        end=end,
        simulated_hours=hours,
        agents=len(info.agents),
        events=sum(counts.values()),
        event_counts=counts,
        usage=model_usage(events, agents=len(info.agents), hours=hours),
        news=news,
        awareness=awareness,
        network=network_density(
            events,
            agents=info.agents,
            start=info.start,
            end=end,
            relationships=info.relationships,
        ),
        gatherings=gatherings,
        plans=checks,
    )


def _news_or_error(info: ScenarioInfo, news_id: str) -> TrackedNews:
    try:
        return info.news_item(news_id)
    except KeyError as exc:
        raise ValueError(f"interviews: {exc.args[0]}") from exc


def _last_time(store: RunStore) -> datetime | None:
    """The simulated time of the last committed step."""
    value = store.get_meta("last_time")
    return None if value is None else datetime.fromisoformat(str(value))
