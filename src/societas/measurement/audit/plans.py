"""Checks of day plans: meals, other households' homes, over-long blocks, routine anchors.

Each check reads the final plan of every agent and day (:meth:`RunRecord.final_plans`) and
counts planned minutes (or agent-days), so a figure says how much of the planned time is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from societas.measurement.audit.reader import Block, DayPlan, Routine, RunRecord, Work
from societas.measurement.audit.report import CheckResult, Finding, check_result, not_checked
from societas.world.routine import MEAL_WINDOWS as ROUTINE_MEAL_WINDOWS
from societas.world.routine import clock_text as clock

FAMILY = "plans"
MINUTES = "planned minutes"
LONGEST_BLOCK = 4 * 60  # minutes; sleep and work may last longer
WAKE_TOLERANCE = 60  # minutes between the routine's wake time and the plan's first block
MEAL_TOLERANCE = 60  # minutes either side of a meal time the routine names
LUNCH_BREAK = 90  # minutes of a meal inside work hours that do not count as missing work

# When each meal may start (minutes after midnight, end exclusive), whatever the routine says:
# the windows the planner keeps meals in, and brunch, which a plan may name though no routine does.
MEAL_WINDOWS = {**ROUTINE_MEAL_WINDOWS, "brunch": (9 * 60, 13 * 60)}
_MEAL_WORDS = {"breakfast": "breakfast", "brunch": "brunch", "lunch": "lunch"}
_MEAL_WORDS |= {"dinner": "dinner", "supper": "dinner"}
_MEAL = re.compile(r"\b(" + "|".join(_MEAL_WORDS) + r")\b", re.IGNORECASE)
_SLEEP = re.compile(r"\b(sleep|sleeping|asleep|nap|napping|bed|bedtime)\b", re.IGNORECASE)
_AGREEMENT = re.compile(r"\s*agreed\b", re.IGNORECASE)  # how the engine words such a replan
_WORK = re.compile(r"\b(work|works|working|shift|job|office|workshop)\b", re.IGNORECASE)


def meal_of(activity: str) -> str | None:
    """The meal an activity names ("supper" is dinner), or None.

    >>> meal_of("start lunch"), meal_of("Supper with Tomas"), meal_of("bake cakes")
    ('lunch', 'dinner', None)
    """
    match = _MEAL.search(activity)
    return None if match is None else _MEAL_WORDS[match.group(1).lower()]


def sector(address: str) -> str:
    """The area of an address ("Alvarez House:bedroom" -> "Alvarez House")."""
    return address.split(":", 1)[0].strip()


def plan_checks(record: RunRecord) -> list[CheckResult]:
    plans = record.final_plans()
    planned = float(sum(block.minutes for plan in plans for block in plan.blocks))
    return [
        _meal_times(record, plans, planned),
        _repeated_meals(plans, planned),
        _foreign_homes(record, plans, planned),
        _long_blocks(record, plans, planned),
        *_routine_anchors(record, plans),
    ]


def _blocks(plans: list[DayPlan]) -> Iterator[tuple[DayPlan, Block]]:
    for plan in plans:
        for block in plan.blocks:
            yield plan, block


def _finding(plan: DayPlan, block: Block, detail: str, amount: float | None = None) -> Finding:
    return Finding(
        agent=plan.agent,
        when=f"{plan.day} {block.span()}",
        detail=f"{block.activity} @ {block.place}: {detail}",
        amount=block.minutes if amount is None else amount,
    )


# --------------------------------------------------------------------------- meals


def _meal_times(record: RunRecord, plans: list[DayPlan], planned: float) -> CheckResult:
    findings = []
    for plan, block in _blocks(plans):
        meal = meal_of(block.activity)
        if meal is None or _meal_time_fits(meal, block.start, record.routines.get(plan.agent)):
            continue
        early, late = MEAL_WINDOWS[meal]
        findings.append(
            _finding(plan, block, f"{meal} starts outside {clock(early)}-{clock(late)}")
        )
    return check_result(
        "meal_times",
        FAMILY,
        "meal blocks starting at an odd time for that meal",
        MINUTES,
        findings,
        planned,
    )


def _meal_time_fits(meal: str, start: int, routine: Routine | None) -> bool:
    early, late = MEAL_WINDOWS[meal]
    if early <= start < late:
        return True
    usual = [m.time for m in routine.meals if m.meal == meal] if routine else []
    return any(abs(start - time) <= MEAL_TOLERANCE for time in usual)


def _repeated_meals(plans: list[DayPlan], planned: float) -> CheckResult:
    findings = []
    for plan in plans:
        seen: dict[str, Block] = {}
        previous: Block | None = None
        for block in plan.blocks:
            meal = meal_of(block.activity)
            # "cook dinner" then "eat dinner" back to back is one meal.
            joined = previous is not None and meal_of(previous.activity) == meal
            if meal is not None and meal in seen and not joined:
                first = seen[meal]
                findings.append(_finding(plan, block, f"{meal} again (first at {first.span()})"))
            elif meal is not None:
                seen.setdefault(meal, block)
            previous = block
    return check_result(
        "repeated_meals",
        FAMILY,
        "a second breakfast, lunch or dinner on the same day",
        MINUTES,
        findings,
        planned,
    )


# --------------------------------------------------------------------------- places


@dataclass(frozen=True)
class _Households:
    homes: dict[str, str]  # agent -> home sector
    invitations: dict[str, str]  # agent -> lower-cased texts naming places it was asked to

    def foreign(self, agent: str, place: str) -> str | None:
        """The household whose home ``place`` is, when it is not ``agent``'s; else None."""
        area = sector(place)
        if area == self.homes.get(agent) or area not in self.homes.values():
            return None
        return area

    def invited(self, agent: str, place: str) -> bool:
        text = self.invitations.get(agent, "")
        return place.lower() in text or sector(place).lower() in text


def households(record: RunRecord) -> _Households:
    """Homes by sector, and for each agent the texts that may name a place it was invited to:
    its agreements (the reasons of plans reshaped by one), plan and dialogue memories, and the
    memories the scenario gives it."""
    scenario = record.scenario
    texts: dict[str, list[str]] = {
        name: list(scenario.initial_memories(name)) for name in record.agents
    }
    for plan in record.plans:
        if _AGREEMENT.match(plan.reason):  # not a reaction's own reason to go somewhere
            texts.setdefault(plan.agent, []).append(plan.reason)
    for memory in record.memories:
        if memory.kind in ("plan", "dialogue"):
            texts.setdefault(memory.agent, []).append(memory.text)
    return _Households(
        homes={spec.name: sector(spec.home) for spec in scenario.agent_specs()},
        invitations={name: "\n".join(parts).lower() for name, parts in texts.items()},
    )


def _foreign_homes(record: RunRecord, plans: list[DayPlan], planned: float) -> CheckResult:
    homes = households(record)
    findings = []
    for plan, block in _blocks(plans):
        owner = homes.foreign(plan.agent, block.place)
        if owner is not None and not homes.invited(plan.agent, block.place):
            findings.append(_finding(plan, block, f"in {owner}, another household's home"))
    return check_result(
        "foreign_homes",
        FAMILY,
        "minutes planned in another household's home without an invitation",
        MINUTES,
        findings,
        planned,
    )


# --------------------------------------------------------------------------- long blocks


def _long_blocks(record: RunRecord, plans: list[DayPlan], planned: float) -> CheckResult:
    findings = []
    for plan, block in _blocks(plans):
        if block.minutes <= LONGEST_BLOCK or _SLEEP.search(block.activity):
            continue
        if _is_work(record, plan.agent, block):
            continue
        findings.append(_finding(plan, block, f"{block.minutes} min in one block"))
    return check_result(
        "long_blocks",
        FAMILY,
        f"blocks over {LONGEST_BLOCK // 60} h that are neither sleep nor work",
        MINUTES,
        findings,
        planned,
    )


def _is_work(record: RunRecord, agent: str, block: Block) -> bool:
    """Work: the routine's workplace, a place the occupation names, or said so; never a meal."""
    if meal_of(block.activity) is not None:
        return False
    if _WORK.search(block.activity):
        return True
    routine = record.routines.get(agent)
    if routine is not None and routine.work is not None:
        return sector(block.place) == sector(routine.work.place)
    specs = {spec.name: spec for spec in record.scenario.agent_specs()}
    occupation = specs[agent].occupation.lower() if agent in specs else ""
    return bool(sector(block.place)) and sector(block.place).lower() in occupation


# --------------------------------------------------------------------------- routine anchors


def _routine_anchors(record: RunRecord, plans: list[DayPlan]) -> list[CheckResult]:
    wake_text = f"first block more than {WAKE_TOLERANCE} min from the routine's wake time"
    work_text = "minutes of the routine's work hours planned away from the workplace"
    routed = [plan for plan in plans if plan.agent in record.routines]
    if not routed:
        why = "no routine recorded"
        return [
            not_checked("wake_anchor", FAMILY, wake_text, "agent-days", why),
            not_checked("work_anchor", FAMILY, work_text, "work minutes", why),
        ]
    missing = sorted({plan.agent for plan in plans} - set(record.routines))
    wake_findings = []
    work_findings = []
    work_minutes = 0
    for plan in routed:
        routine = record.routines[plan.agent]
        first = plan.blocks[0]
        if abs(first.start - routine.wake) > WAKE_TOLERANCE:
            wake_findings.append(
                _finding(
                    plan,
                    first,
                    f"day starts at {clock(first.start)}, routine wakes at {clock(routine.wake)}",
                    amount=1,
                )
            )
        if routine.work is not None:
            work_minutes += routine.work.end - routine.work.start
            work_findings.extend(_away_from_work(plan, routine.work))
    note = f"no routine recorded for {', '.join(missing)}" if missing else ""
    wake = check_result("wake_anchor", FAMILY, wake_text, "agent-days", wake_findings, len(routed))
    if not work_minutes:
        work = not_checked(
            "work_anchor", FAMILY, work_text, "work minutes", "no recorded routine has work hours"
        )
    else:
        work = check_result(
            "work_anchor", FAMILY, work_text, "work minutes", work_findings, work_minutes
        ).model_copy(update={"note": note})
    return [wake.model_copy(update={"note": note}), work]


def _away_from_work(plan: DayPlan, work: Work) -> list[Finding]:
    """Blocks during work hours at another place (a meal break of up to 90 min excepted), and
    work hours the plan leaves out (still asleep, or already in bed)."""
    findings = []
    first, last = plan.blocks[0], plan.blocks[-1]
    day = f"{clock(first.start)}-{clock(last.end)}"
    for start, end in (
        (work.start, min(work.end, first.start)),
        (max(work.start, last.end), work.end),
    ):
        if end > start:
            findings.append(
                Finding(
                    agent=plan.agent,
                    when=f"{plan.day} {clock(start)}-{clock(end)}",
                    detail=f"work hours outside the planned day, {day}",
                    amount=end - start,
                )
            )
    for block in plan.blocks:
        overlap = min(block.end, work.end) - max(block.start, work.start)
        if overlap <= 0 or sector(block.place) == sector(work.place):
            continue
        if meal_of(block.activity) is not None:
            overlap = max(overlap - LUNCH_BREAK, 0)
        if overlap:
            detail = f"{overlap} min of work hours away from {work.place}"
            findings.append(_finding(plan, block, detail, amount=overlap))
    return findings
