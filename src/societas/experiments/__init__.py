"""The experiment lab: experiment files, designs, survey instruments, analysis and reports.

An experiment file (:mod:`.spec`) says who takes part, which arms there are and what each arm's
agents get, what is measured and how agents are assigned; :func:`run_experiment` (:mod:`.runner`)
builds the population, applies the design (:mod:`.designs`), asks every outcome in character
(:mod:`.instruments`), analyses the answers (:mod:`.analysis`, on :mod:`.stats`) and writes a
self-contained HTML report (:mod:`.report`).
"""

from societas.experiments.analysis import analyze, target_comparison
from societas.experiments.designs import (
    DesignError,
    assign_between,
    block_keys,
    counterbalanced_orders,
    fork_world,
    measure_within,
)
from societas.experiments.instruments import Measurement, grade_answer, measure, survey
from societas.experiments.report import ReportError, write_report
from societas.experiments.runner import ExperimentResult, ExperimentRunError, run_experiment
from societas.experiments.spec import (
    ExperimentError,
    ExperimentSpec,
    experiment_from_text,
    load_experiment,
)

__all__ = [
    "DesignError",
    "ExperimentError",
    "ExperimentResult",
    "ExperimentRunError",
    "ExperimentSpec",
    "Measurement",
    "ReportError",
    "analyze",
    "assign_between",
    "block_keys",
    "counterbalanced_orders",
    "experiment_from_text",
    "fork_world",
    "grade_answer",
    "load_experiment",
    "measure",
    "measure_within",
    "run_experiment",
    "survey",
    "target_comparison",
    "write_report",
]
