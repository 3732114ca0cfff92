"""Interview questions in the paper's five categories, generated from a run's ground truth.

Every question is a template filled from :class:`~.facts.AgentFacts` (no model
call) and carries the facts its answer is graded against and the grader to use: a rule name from
:mod:`.grading`, or ``"judge"`` with a rubric for the model judge.

Categories and their questions, in priority order (``max_per_category`` keeps the first ones):

- ``self_knowledge``: introduce yourself; occupation; age; personality; where you live.
- ``memory``: who is <someone talked with>; who is <someone never met> (must not claim to know);
  each seeded news item (must match whether it reached the agent); what did you talk about.
- ``plans``: what will you be doing at <time> (up to three plan blocks); rest of the day.
- ``reactions``: everyday emergencies and encounters (judged).
- ``reflections``: whom would you spend time with (must be someone met); what is on your mind;
  the most important thing today; a relationship; what you learned about yourself.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from societas.agents.agent import minute_of_day
from societas.agents.cognition.planning import SLEEPING, PlanBlock
from societas.evaluation.believability.facts import AgentFacts, RunFacts
from societas.evaluation.believability.text import clock_phrase

Category = Literal["self_knowledge", "memory", "plans", "reactions", "reflections"]
CATEGORIES: tuple[Category, ...] = (
    "self_knowledge",
    "memory",
    "plans",
    "reactions",
    "reflections",
)
JUDGE = "judge"
JUDGED_CATEGORIES: tuple[Category, ...] = ("memory", "plans", "reactions", "reflections")
"""Categories with questions the judge grades (self-knowledge is checked by rules alone)."""
DEFAULT_PER_CATEGORY = 5

# Names for "Who is ...?" when everyone in the town has met: nobody in a run is called this.
STRANGERS = (
    "Dorothea Quill",
    "Bartholomew Finch",
    "Imogen Thackery",
    "Cornelius Vale",
    "Philippa Marsh",
    "Ignatius Holt",
)

REACTION_RUBRIC = (
    "A believable reaction for this person: it deals with the situation sensibly, fits their "
    "personality and circumstances, and stays in character (first person, never mentions being "
    "an AI or a simulation)."
)
RECALL_RUBRIC = (
    "The answer agrees with the facts, in the character's own words. Claiming events, people or "
    "details that contradict the facts or are not among them is worse than saying one does not "
    "remember."
)

PLANS_RUBRIC = (
    "The answer describes plans consistent with the facts (the character's actual plan for the "
    "rest of the day), in the character's own words; inventing other plans or saying nothing "
    "concrete is worse."
)
RUBRICS = {"reaction": REACTION_RUBRIC, "recall": RECALL_RUBRIC, "plans": PLANS_RUBRIC}
"""The judge's rubrics by name (the judge's calibration examples name theirs)."""


class Question(BaseModel):
    """One interview question with what a good answer must contain.

    ``grader`` names a rule of :mod:`.grading` or is ``"judge"``; ``expected``
    holds the ground-truth facts it needs; ``rubric`` tells the judge what a good answer does.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    agent: str
    category: Category
    text: str
    grader: str
    expected: dict[str, Any] = Field(default_factory=dict)
    rubric: str = ""


def generate_questions(
    run: RunFacts, *, max_per_category: int = DEFAULT_PER_CATEGORY, seed: int = 0
) -> list[Question]:
    """Every agent's questions (agents in name order, categories in the paper's order).

    ``seed`` picks the made-up stranger; the same run and seed give the same questions.
    """
    if max_per_category < 1:
        raise ValueError(f"max_per_category must be at least 1, got {max_per_category}")
    questions: list[Question] = []
    for name in sorted(run.agents):
        facts = run.agents[name]
        rng = random.Random(f"{seed}:{name}")
        for category, build in _BUILDERS.items():
            drafts = build(run, facts, rng)[:max_per_category]
            questions.extend(
                Question(id=f"{category}.{index + 1}", agent=name, category=category, **draft)
                for index, draft in enumerate(drafts)
            )
    return questions


Draft = dict[str, Any]


def _q(text: str, grader: str, rubric: str = "", **expected: Any) -> Draft:
    return {"text": text, "grader": grader, "expected": expected, "rubric": rubric}


def _self_knowledge(run: RunFacts, facts: AgentFacts, rng: random.Random) -> list[Draft]:
    persona = facts.persona
    others = [p for p in sorted(run.people) if p != persona.name]
    drafts = [
        _q(
            "Give an introduction of yourself.",
            "introduction",
            name=persona.name,
            occupation=persona.occupation,
            age=persona.age,
            others=others,
        )
    ]
    if persona.occupation:
        drafts.append(
            _q("What do you do for a living?", "occupation", occupation=persona.occupation)
        )
    drafts.append(_q("How old are you?", "age", age=persona.age))
    if persona.traits:
        drafts.append(
            _q("How would you describe your personality?", "traits", traits=persona.traits)
        )
    drafts.append(_q("Where do you live?", "home", home=facts.home))
    return drafts


def _memory(run: RunFacts, facts: AgentFacts, rng: random.Random) -> list[Draft]:
    drafts: list[Draft] = []
    known = facts.talked_with or facts.acquaintances
    for person in known[:1]:
        drafts.append(_who_is(run, facts, person))
    stranger = _stranger(run, facts, rng)
    drafts.append(_q(f"Who is {stranger}?", "stranger", person=stranger))
    for news in facts.news:
        if news.question:
            drafts.append(
                _q(
                    news.question,
                    "news",
                    news_id=news.id,
                    description=news.description,
                    knows=news.knows,
                    keywords=[list(g) for g in news.keywords],
                )
            )
    for person in known[1:2]:
        drafts.append(_who_is(run, facts, person))
    for talk in facts.talks[:1]:
        partner = " and ".join(talk.partners)
        drafts.append(
            _q(
                f"What did you and {partner} talk about?",
                JUDGE,
                RECALL_RUBRIC,
                facts=[talk.summary, *talk.lines[:6]],
            )
        )
    return drafts


def _who_is(run: RunFacts, facts: AgentFacts, person: str) -> Draft:
    details = [run.occupation_of(person), facts.relationships.get(person, "")]
    return _q(
        f"Who is {person}?",
        "knows_person",
        person=person,
        details=[d for d in details if d],
        talked=person in facts.talked_with,
        profile=_profile(run, person),
        # Everyone else's facts (the speaker's too): a description of them is a wrong answer.
        others={name: _profile(run, name) for name in sorted(run.people) if name != person},
    )


def _profile(run: RunFacts, name: str) -> str:
    """What the scenario says a person is and does (not their traits, which fit many)."""
    persona = run.people.get(name)
    if persona is None:
        return ""
    parts = (persona.occupation, persona.lifestyle, persona.situation, persona.background)
    return "; ".join(p for p in parts if p)


def _stranger(run: RunFacts, facts: AgentFacts, rng: random.Random) -> str:
    """Someone in the town the agent never met nor heard of, else a made-up name."""
    unknown = [
        name
        for name in sorted(run.people)
        if name != facts.name
        and name not in facts.acquaintances
        and name.split()[0].lower() not in facts.memory_text.lower()
    ]
    if unknown:
        return random.Random(rng.random()).choice(unknown)
    taken = {part.lower() for name in run.people for part in name.split()}
    free = [s for s in STRANGERS if not {p.lower() for p in s.split()} & taken]
    return random.Random(rng.random()).choice(free or list(STRANGERS))


def _plans(run: RunFacts, facts: AgentFacts, rng: random.Random) -> list[Draft]:
    now = minute_of_day(run.now)
    awake = [b for b in facts.plan if b.activity != SLEEPING]
    future = [b for b in awake if b.start > now]
    current = [b for b in awake if b.start <= now < b.end]
    past = [b for b in awake if b.end <= now]
    drafts: list[Draft] = []
    for block in [*future, *current, *reversed(past)]:
        middle = block.start + block.minutes // 2
        if block.end > now:
            # Ask about a moment still ahead, at least half an hour from now where it can be.
            minute, verb = min(max(middle, now + 30), block.end - 5), "will you be doing"
            if minute <= now:
                continue
        else:
            minute, verb = middle, "were you doing"
        drafts.append(
            _q(
                f"What {verb} at {clock_phrase(minute)} today?",
                "plan_at",
                activity=block.activity,
                place=block.place,
                at_home=block.place == facts.home,
            )
        )
        if len(drafts) == 3:
            break
    rest = [b for b in facts.plan if b.end > now]
    drafts.append(
        _q(
            "What are your plans for the rest of the day?",
            JUDGE,
            PLANS_RUBRIC,
            facts=[_block_line(b) for b in rest] or ["(no plan left for today)"],
        )
    )
    return drafts


def _block_line(block: PlanBlock) -> str:
    return (
        f"{clock_phrase(block.start)}-{clock_phrase(block.end)}: {block.activity} at {block.place}"
    )


def _reactions(run: RunFacts, facts: AgentFacts, rng: random.Random) -> list[Draft]:
    home_area = facts.home.split(":")[0]
    friend = (facts.acquaintances or ["Your neighbour"])[0]
    elsewhere = sorted({b.place.split(":")[0] for b in facts.plan} - {home_area}) or [
        "the nearest shop"
    ]
    situations = [
        "Your breakfast is burning! What would you do?",
        f"You are at {home_area} and the lights suddenly go out. What do you do?",
        f"You run into {friend}, who looks upset. What would you do?",
        f"A stranger asks you the way to {elsewhere[0]}. What do you say?",
        "It starts pouring with rain just as you head out. What do you do?",
    ]
    context = [
        f"{facts.persona.summary()}",
        f"Currently: {facts.activity or 'going about the day'}",
    ]
    return [_q(text, JUDGE, REACTION_RUBRIC, facts=context) for text in situations]


def _reflections(run: RunFacts, facts: AgentFacts, rng: random.Random) -> list[Draft]:
    drafts = [
        _q(
            "If you could spend time with one person you met recently, who would it be and why?",
            "pick_person",
            met=facts.met,
            known=list(facts.relationships),
            others=[p for p in sorted(run.people) if p != facts.name],
            places=_place_names(run),
        )
    ]
    lately = facts.reflections[-3:] or facts.important_memories[:3] or [facts.persona.situation]
    drafts.append(
        _q(
            "What has been on your mind lately?",
            JUDGE,
            RECALL_RUBRIC,
            facts=[f for f in lately if f] or ["(nothing recorded)"],
        )
    )
    today = [*(t.summary for t in facts.talks[:2]), *facts.important_memories[:3]]
    drafts.append(
        _q(
            "What is the most important thing that happened to you today?",
            JUDGE,
            RECALL_RUBRIC,
            facts=[f for f in today if f] or ["(nothing recorded)"],
        )
    )
    for person in facts.acquaintances[:1]:
        note = facts.relationships.get(person) or "(no note)"
        talked = "talked today" if person in facts.talked_with else "did not talk today"
        drafts.append(
            _q(
                f"How would you describe your relationship with {person}?",
                JUDGE,
                RECALL_RUBRIC,
                facts=[f"{person}: {note}", f"{facts.persona.first_name} and {person} {talked}"],
            )
        )
    if facts.reflections:
        drafts.append(
            _q(
                "What have you learned about yourself recently?",
                JUDGE,
                RECALL_RUBRIC,
                facts=facts.reflections[-3:],
            )
        )
    return drafts


def _place_names(run: RunFacts) -> list[str]:
    """Names of the town's areas and rooms (capitalised names that are not people)."""
    legend = run.scenario.map.legend.values()
    return sorted({part for address in legend for part in address.split(":")})


_BUILDERS: dict[Category, Callable[[RunFacts, AgentFacts, random.Random], list[Draft]]] = {
    "self_knowledge": _self_knowledge,
    "memory": _memory,
    "plans": _plans,
    "reactions": _reactions,
    "reflections": _reflections,
}
