"""A town run's summary with the graded figures: :class:`TownSummary` extends
:class:`~societas.measurement.run_summary.RunSummary` (summary.json keeps every field it had) with
each news item's graded "knows", keyword spread and hallucinated awareness, the stated
acquaintance network and the end-of-run answers they were graded from.
"""

from __future__ import annotations

from societas.engine.runstore import RunStore
from societas.measurement.acquaintance import StatedNetwork, stated_network
from societas.measurement.diffusion import GradedNews, graded_news
from societas.measurement.end_of_run import EndOfRunAnswers, graded_items
from societas.measurement.network_density import NetworkDensity
from societas.measurement.news_spread import news_diffusion
from societas.measurement.run_summary import RunSummary, summarise_run
from societas.scenarios.scenario import Scenario
from societas.world.storylines import ScenarioInfo

_SPREAD_KINDS = ("conversation", "utterance")


class TownSummary(RunSummary):
    """Every town measurement of a run, with the figures graded from the agents' answers."""

    graded_news: list[GradedNews]
    stated_network: StatedNetwork | None
    end_of_run: EndOfRunAnswers | None

    def news_lines(self) -> list[str]:
        graded = {figure.news_id for figure in self.graded_news}
        lines = [figure.line() for figure in self.graded_news]
        # Items without facts keep the plain summary's line (keyword spread only).
        ungraded = self.model_copy(
            update={
                "news": [n for n in self.news if n.news_id not in graded],
                "awareness": [a for a in self.awareness if a.news_id not in graded],
            }
        )
        return lines + RunSummary.news_lines(ungraded)

    def network_lines(self) -> list[str]:
        lines = super().network_lines()
        stated = self.stated_network
        if stated is not None:
            lines.append(
                'Stated network (each agent asked "whom do you know, and how?"): density '
                f"{stated.density:.2f} from {stated.edges} named ties, {stated.answered}/"
                f"{stated.agents} agents answered; {stated.in_known_network}/{stated.edges} ties "
                "in the scenario+conversation network"
            )
        return lines


def summarise_town(
    store: RunStore, scenario: Scenario, answers: EndOfRunAnswers | None = None
) -> TownSummary:
    """The run's :class:`TownSummary`; without ``answers`` the graded figures read "not asked"."""
    info = scenario.measurement_info()
    base = summarise_run(store, info)
    events = [stored.event for stored in store.iter_events(kinds=_SPREAD_KINDS)]
    figures = []
    for item in graded_items(scenario):
        spread = news_diffusion(
            events, info.news_item(item.id), agents=info.agents, start=info.start, method="keywords"
        )
        rows = [a for a in answers.news if a.news_id == item.id] if answers is not None else []
        figures.append(
            graded_news(
                item,
                {row.agent: row.answer for row in rows},
                agents=info.agents,
                heard=spread.first_heard,
                verdicts={row.agent: row.verdicts for row in rows},
                judge_failures=sum(len(row.judge_errors) for row in rows),
                asked=answers is not None,
            )
        )
    stated = None
    if answers is not None and answers.acquaintances:
        stated = stated_network(
            {row.agent: row.people for row in answers.acquaintances},
            agents=info.agents,
            known_edges=known_edges(info, base.network),
        )
    return TownSummary.model_validate(
        {
            **dict(base),
            "graded_news": figures,
            "stated_network": stated,
            "end_of_run": answers,
        }
    )


def known_edges(info: ScenarioInfo, network: NetworkDensity) -> set[tuple[str, str]]:
    """Directed ties of the scenario's relationships plus both directions of each conversation."""
    edges = {(name, other) for name, others in info.relationships.items() for other in others}
    for a, b in network.conversation_pairs:
        edges |= {(a, b), (b, a)}
    return edges
