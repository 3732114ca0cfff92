"""Output a person can read at 80 columns or in a file, and a script can parse.

Tables keep the cells a user copies whole: names, ids and numbers get a column at least as wide as
their longest value and never wrap or end in "…"; descriptions and other prose wrap instead
(:func:`whole_column`, :func:`prose_column`). Every command that prints a table or a summary also
takes ``--json`` (:data:`JsonOption`): one JSON document on stdout, while progress bars and
messages go to stderr (:func:`json_mode`), so ``societas models --json | jq`` works.

Examples
--------
>>> from rich.console import Console
>>> table = Table(whole_column("model", ["qwen2.5-coder-1.5b"]), prose_column("description"))
>>> table.add_row("qwen2.5-coder-1.5b", "a long description " * 8)
>>> console = Console(width=40, file=io.StringIO())
>>> console.print(table)
>>> "qwen2.5-coder-1.5b" in console.file.getvalue()
True
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

__all__ = [
    "JsonOption",
    "Table",
    "emit_json",
    "json_mode",
    "json_mode_for_command",
    "print_table",
    "prose_column",
    "whole_column",
    "whole_table",
]

JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document on stdout for scripts (progress and messages go to stderr).",
    ),
]

Justify = Literal["left", "right", "center"]


def whole_column(header: str, values: Iterable[str], *, justify: Justify = "left") -> Column:
    """A column whose cells (names, ids, numbers) are never wrapped or cut: it is at least as
    wide as its longest value."""
    widest = max((len(value) for value in values), default=0)
    return Column(header, no_wrap=True, min_width=max(widest, len(header)), justify=justify)


def whole_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    left: int | None = None,
) -> Table:
    """A table of whole cells (:func:`whole_column` each): the first ``left`` columns are
    left-justified (all of them by default), the rest, usually figures, right-justified."""
    left = len(headers) if left is None else left
    columns = [
        whole_column(h, [row[i] for row in rows], justify="left" if i < left else "right")
        for i, h in enumerate(headers)
    ]
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*row)
    return table


def prose_column(header: str, *, min_width: int = 12, max_width: int | None = None) -> Column:
    """A column of prose that wraps at word boundaries (long words fold, never "…")."""
    return Column(header, overflow="fold", min_width=min_width, max_width=max_width)


@contextmanager
def json_mode(console: Console, enabled: bool) -> Iterator[None]:
    """While ``enabled``, send what ``console`` prints (messages, progress) to stderr, keeping
    stdout for :func:`emit_json`."""
    if not enabled:
        yield
        return
    previous = console.file if _has_own_file(console) else None
    console.file = sys.stderr
    try:
        yield
    finally:
        # None makes rich look up sys.stdout again at each write (as a new Console does).
        console.file = previous  # type: ignore[assignment]


def print_table(console: Console, table: Table) -> None:
    """Print ``table``, or, where the console is too narrow for its whole columns, each row as
    ``header: value`` lines (so no name, id or number is ever cut)."""
    if _fits(console, table):
        console.print(table)
        return
    if table.title:
        console.print(table.title, style="bold", highlight=False)
    headers = [str(column.header) for column in table.columns]
    cells = [list(column.cells) for column in table.columns]
    for row in range(table.row_count):
        for index, header in enumerate(headers):
            lead = "- " if index == 0 else "  "
            cell = cells[index][row]
            value = cell if isinstance(cell, Text) else Text.from_markup(str(cell))  # as the table
            line = Text.assemble(lead, header, ": ", value)
            if line.cell_len > console.width:  # the value on a line of its own, kept whole
                line = Text.assemble(lead, header, ":\n    ", value)
            console.print(line, highlight=False)


def _fits(console: Console, table: Table) -> bool:
    """Whether ``table`` at the console's width shows every cell of its whole columns whole."""
    trial = Console(file=io.StringIO(), width=console.width, color_system=None, emoji=False)
    with trial.capture() as captured:
        trial.print(table)
    rendered = captured.get()
    if "…" in rendered and not any("…" in str(c) for col in table.columns for c in col.cells):
        return False  # rich cut something
    lines = rendered.splitlines()
    for column in table.columns:
        if not column.no_wrap:
            continue
        for cell in column.cells:
            plain = cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain
            if not any(plain in line for line in lines):
                return False
    return True


def json_mode_for_command(context: typer.Context, console: Console, enabled: bool) -> None:
    """:func:`json_mode` until the command of ``context`` ends (one line at its top)."""
    if enabled:
        context.with_resource(json_mode(console, enabled))


def emit_json(data: Any) -> None:
    """``data`` as one indented JSON document on stdout (paths, dates and numpy values as text
    or numbers; NaN as null)."""
    text = json.dumps(_plain(data), indent=2, ensure_ascii=False, default=str, allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _has_own_file(console: Console) -> bool:
    return getattr(console, "_file", None) is not None


def _plain(value: Any) -> Any:
    """JSON-ready: NaN and infinities become None, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and not isinstance(value, str | bytes | io.IOBase):
        try:
            return _plain(item())
        except (TypeError, ValueError):
            return str(value)
    return value
