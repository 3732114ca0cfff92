"""Errors of the world layer: bad scenario files and bad requests to the world.

A :class:`ScenarioError` lists every problem found in a scenario as an :class:`Issue` naming the
field path and, when the scenario came from a file, the file and line::

    town.yaml:57: agents[2].home: unknown place 'Cafe:kichen' (did you mean 'Cafe:kitchen'?)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

PathPart = str | int
FieldPath = tuple[PathPart, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class WorldError(Exception):
    """Base of every error the world layer raises."""


class UnknownPlaceError(WorldError, KeyError):
    """An address names no place of the world."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class UnknownAgentError(WorldError, KeyError):
    """A name is not one of the world's agents."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def format_path(path: FieldPath) -> str:
    """Render a field path the way a user reads it.

    >>> format_path(("agents", 2, "home"))
    'agents[2].home'
    >>> format_path(("objects", "Cafe:kitchen", "oven", "tile"))
    "objects['Cafe:kitchen'].oven.tile"
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` suffix for the closest choice, or ``""`` when none is close."""
    options = list(choices)
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not matches:  # a first name or a fragment: "Tomas" -> "Tomas Alvarez"
        folded = word.casefold()
        matches = [option for option in options if folded and folded in option.casefold()]
        if len(matches) != 1:
            return ""
    return f" (did you mean {matches[0]!r}?)"


@dataclass(frozen=True)
class Issue:
    """One problem in a scenario: where (field path, line) and what."""

    path: FieldPath
    message: str
    line: int | None = None

    def render(self, source: str | None) -> str:
        parts = []
        if source:
            parts.append(f"{source}:{self.line}" if self.line is not None else source)
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.path:
            parts.append(format_path(self.path))
        parts.append(self.message)
        return ": ".join(parts)


class ScenarioError(WorldError):
    """A scenario is malformed or inconsistent; ``issues`` lists every problem found.

    Deliberately not a ``ValueError``: pydantic passes it through validators unchanged, so the
    field paths of cross-reference checks survive to the file loader, which adds line numbers.
    """

    def __init__(self, issues: Sequence[Issue], source: str | None = None) -> None:
        if not issues:
            raise ValueError("a ScenarioError needs at least one issue")
        self.issues = tuple(issues)
        self.source = source
        super().__init__("\n".join(issue.render(source) for issue in self.issues))

    @property
    def line(self) -> int | None:
        """Line of the first issue (None when unknown)."""
        return self.issues[0].line

    @property
    def field(self) -> str:
        """Field path of the first issue, e.g. ``agents[2].home``."""
        return format_path(self.issues[0].path)

    def located(self, source: str, line_of: Callable[[FieldPath], int | None]) -> ScenarioError:
        """The same issues attributed to file ``source``, lines looked up by field path."""
        issues = [
            issue if issue.line is not None else replace(issue, line=line_of(issue.path))
            for issue in self.issues
        ]
        return ScenarioError(issues, source)
