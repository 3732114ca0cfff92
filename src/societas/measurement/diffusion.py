"""How far each news item spread, graded from what the agents can say.

Three figures per news item, each over every agent of the run (N) and each with its failures:

- **knows (graded)**: the agent's answer to the item's open end-of-run question states every
  declared fact (:mod:`societas.measurement.fact_grading`). A question that failed, or an agent
  that was not asked, counts as not knowing and is listed.
- **keyword spread**: the agent heard, in a conversation, a line mentioning the item (all its
  keyword groups) from a speaker who knew it by then; the initial knowers count from the start.
- **hallucinated awareness**: the agent's answer states the facts although it never heard the
  item (neither an initial knower nor reached by the keyword spread); its denominator is the
  agents who never heard it.

Examples
--------
>>> from datetime import datetime
>>> from societas.world.news_facts import NewsFact
>>> from societas.scenarios.scenario import NewsSpec
>>> item = NewsSpec(id="party", description="A party at the cafe.", keywords=[["party"]],
...     initial_knowers=["Ada"], question="What is on later?",
...     facts=[NewsFact(aspect="what", text="a party", match=["party"])])
>>> answers = {"Ada": "A party, of course.", "Bo": "There is a party!", "Cy": None}
>>> figure = graded_news(item, answers, agents=["Ada", "Bo", "Cy"], heard={"Ada"})
>>> figure.line()  # doctest: +NORMALIZE_WHITESPACE
"News 'party': knows (graded answers) 2/3 [1 question failed, 0 denied];
 keyword spread 1/3 (1 at start); hallucinated awareness 1/2 (Bo)"
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from pydantic import BaseModel, Field

from societas.measurement.fact_grading import AnswerGrade, grade_answer
from societas.scenarios.scenario import NewsSpec


class GradedNews(BaseModel):
    """One news item's graded, keyword and hallucination figures (names, so k/N can be read)."""

    news_id: str
    question: str
    agents: int
    asked: bool = Field(description="False when the run asked no end-of-run questions")
    knows: list[str]
    partial: dict[str, int] = Field(description="stated some facts but not all: how many")
    facts: int
    denied: list[str]
    failed: list[str] = Field(description="no answer to grade (the call failed or was not made)")
    judge_failures: int = Field(description="facts left ungraded by a failed judge call")
    initial_knowers: list[str]
    keyword_knowers: list[str]
    never_heard: list[str]
    hallucinated: list[str]
    heard_but_not_stated: list[str] = Field(description="heard it, yet the answer lacks the facts")
    answers: dict[str, str | None]
    grades: dict[str, AnswerGrade]

    def line(self) -> str:
        """The summary line: every figure as k/N, with what was counted against it."""
        n = self.agents
        keyword = (
            f"keyword spread {len(self.keyword_knowers)}/{n} ({len(self.initial_knowers)} at start)"
        )
        if not self.asked:
            return f"News {self.news_id!r}: knows (graded answers) not asked; {keyword}"
        judged = f", {self.judge_failures} judge calls failed" if self.judge_failures else ""
        named = f" ({', '.join(self.hallucinated)})" if self.hallucinated else ""
        return (
            f"News {self.news_id!r}: knows (graded answers) {len(self.knows)}/{n} "
            f"[{len(self.failed)} question failed, {len(self.denied)} denied{judged}]; "
            f"{keyword}; hallucinated awareness "
            f"{len(self.hallucinated)}/{len(self.never_heard)}{named}"
        )


def graded_news(
    item: NewsSpec,
    answers: Mapping[str, str | None],
    *,
    agents: Sequence[str],
    heard: Collection[str],
    verdicts: Mapping[str, Mapping[int, bool]] | None = None,
    judge_failures: int = 0,
    asked: bool = True,
) -> GradedNews:
    """Grade ``answers`` (agent -> answer; None or absent: no answer) of ``item``.

    ``heard``: the agents who knew the item by the keyword spread (initial knowers included);
    ``verdicts``: the judge's verdicts per agent and fact index.
    """
    if asked and not item.facts:
        raise ValueError(f"news {item.id!r} declares no facts to grade its answers by")
    members = sorted(set(agents))
    grades: dict[str, AnswerGrade] = {}
    if asked:
        for name in members:
            grades[name] = grade_answer(
                answers.get(name),
                question=item.question or "",
                facts=item.facts,
                respondent=name,
                verdicts=(verdicts or {}).get(name),
            )
    knows = [name for name, grade in grades.items() if grade.knows]
    heard_set = set(heard) & set(members)
    never_heard = [name for name in members if name not in heard_set]
    return GradedNews(
        news_id=item.id,
        question=item.question or "",
        agents=len(members),
        asked=asked,
        knows=knows,
        partial={
            name: grade.stated
            for name, grade in grades.items()
            if not grade.knows and grade.stated > 0
        },
        facts=len(item.facts),
        denied=[name for name, grade in grades.items() if grade.denial],
        failed=[name for name in members if asked and not (answers.get(name) or "").strip()],
        judge_failures=judge_failures,
        initial_knowers=sorted(set(item.initial_knowers) & set(members)),
        keyword_knowers=sorted(heard_set),
        never_heard=never_heard,
        hallucinated=[name for name in knows if name not in heard_set],
        heard_but_not_stated=[
            name for name in members if asked and name in heard_set and name not in knows
        ],
        answers={name: answers.get(name) for name in members} if asked else {},
        grades=grades,
    )
