"""Which model judges an evaluation: never the answering model when a fit other one is installed.

A model grading its own answers is lenient to itself, so the default judge is another model:
:func:`choose_judge` calibrates each other installed embedded model (largest first, see
:mod:`.judge_calibration`) and takes the first fit one. When none is installed or
none is fit, the answering model judges itself (if it is fit), else the best-agreeing candidate;
either way the report says so. An explicit judge is used as given, and calibrated too.

Example::

    async with open_llm("qwen2.5-coder-1.5b") as llm, AsyncExitStack() as stack:
        opener = lambda name: stack.enter_async_context(open_llm(name))
        judge, report = await choose_judge("qwen2.5-coder-1.5b", llm, opener)
    print(report.model, report.caveats)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from societas.evaluation.believability.judge_calibration import (
    CalibrationSet,
    JudgeCalibration,
    JudgeReport,
    calibrate_judge,
    judge_caveats,
    load_calibration,
)
from societas.llm.catalog import CATALOG
from societas.llm.types import LanguageModel
from societas.llm.weights import weights_status

ModelOpener = Callable[[str], Awaitable[LanguageModel]]


def installed_models() -> list[str]:
    """Embedded catalog models whose weights are installed, largest first."""
    entries = sorted(CATALOG.values(), key=lambda e: -e.size_bytes)
    return [e.name for e in entries if weights_status(e).installed]


def judge_candidates(answering: str, installed: Sequence[str]) -> list[str]:
    """Installed models other than ``answering``, in order (none for a scripted ``fake:``)."""
    if answering.startswith("fake:"):
        return []
    return [name for name in installed if name != answering]


async def choose_judge(
    answering: str,
    answering_llm: LanguageModel,
    open_model: ModelOpener,
    *,
    explicit: str | None = None,
    calibration: CalibrationSet | None = None,
    installed: Sequence[str] | None = None,
) -> tuple[LanguageModel, JudgeReport]:
    """The judge model and its report (calibration, why it was chosen, caveats)."""
    examples = calibration or load_calibration()
    if explicit is not None:
        own = explicit == answering
        llm = answering_llm if own else await open_model(explicit)
        result = await calibrate_judge(llm, examples, judge_name=explicit)
        why = "chosen explicitly"
        return llm, _report(explicit, own, why, result, [])
    tried: list[tuple[str, LanguageModel, JudgeCalibration]] = []
    others = judge_candidates(answering, installed_models() if installed is None else installed)
    for name in others:
        llm = await open_model(name)
        result = await calibrate_judge(llm, examples, judge_name=name)
        if result.fit:
            why = f"another installed model than the answering {answering}, fit on calibration"
            return llm, _report(name, False, why, result, [t[2] for t in tried])
        tried.append((name, llm, result))
    itself = await calibrate_judge(answering_llm, examples, judge_name=answering)
    if itself.fit or not tried:
        why = "no other model is installed" if not tried else "the other installed were unfit"
        return answering_llm, _report(answering, True, why, itself, [t[2] for t in tried])
    # Nothing is fit: the candidate whose scores agree best with the references.
    tried.append((answering, answering_llm, itself))
    name, llm, best = max(tried, key=lambda t: -2.0 if t[2].spearman is None else t[2].spearman)
    rejected = [t[2] for t in tried if t[0] != name]
    why = "no installed model is fit; this one agrees best with the references"
    return llm, _report(name, name == answering, why, best, rejected)


def _report(
    model: str,
    self_judged: bool,
    why: str,
    calibration: JudgeCalibration,
    rejected: list[JudgeCalibration],
) -> JudgeReport:
    return JudgeReport(
        model=model,
        self_judged=self_judged,
        chosen=why,
        calibration=calibration,
        rejected=rejected,
        caveats=judge_caveats(calibration, self_judged, why),
    )
