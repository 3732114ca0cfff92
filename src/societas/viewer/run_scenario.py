"""The scenario a run was started from, as the town panel measures against it.

The run summary reads the run folder's scenario copy (``scenario.yaml``) for the news items, their
initial knowers and keywords, the agents and the start time; the panel reads the same copy, so
its figures are the summary's. A run without a readable copy (older runs) gets no scenario and
the reason, never a figure made up without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from societas.engine.run_directory import SCENARIO_COPY
from societas.measurement.end_of_run import graded_items
from societas.scenarios.scenario import load_scenario
from societas.world.errors import WorldError
from societas.world.storylines import ScenarioInfo


@dataclass(frozen=True)
class RunScenario:
    """What the panel needs of the scenario copy; ``info`` is None when there is none and
    ``problem`` says why.

    ``graded`` holds the news items the summary grades (an open question with facts): for them
    the summary's figure is the keyword spread; for the others it is the plain diffusion.
    """

    info: ScenarioInfo | None
    problem: str | None = None
    descriptions: dict[str, str] = field(default_factory=dict)
    graded: frozenset[str] = frozenset()


def read_run_scenario(run_dir: Path) -> RunScenario:
    """The scenario copy of the run in ``run_dir``, or the reason it cannot be used."""
    path = run_dir / SCENARIO_COPY
    if not path.is_file():
        return RunScenario(
            info=None,
            problem=f"the run has no {SCENARIO_COPY} (a run recorded before runs kept a copy of "
            "their scenario): news diffusion needs its initial knowers and keywords",
        )
    if not path.resolve().is_relative_to(run_dir.resolve()):
        return RunScenario(info=None, problem=f"{SCENARIO_COPY} links to a file outside the run")
    try:
        scenario = load_scenario(path)
        info = scenario.measurement_info()
    except (WorldError, ValueError) as error:  # a ScenarioError names the file and field
        return RunScenario(info=None, problem=f"{SCENARIO_COPY} cannot be used: {error}")
    return RunScenario(
        info=info,
        descriptions={news.id: news.description for news in scenario.news},
        graded=frozenset(news.id for news in graded_items(scenario)),
    )
