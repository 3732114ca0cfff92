"""Checkpoint parts that only grow, saved once: the rows of a memory stream, say.

A checkpoint of a large world is mostly memories, and memories are only ever added. Saving the
whole of every stream at every checkpoint writes the same rows again and again (a 10,000-agent
day wrote each memory about a dozen times). Instead, a checkpoint state may hold *appended*
parts: an object with an ``"$appended"`` entry names a key, the rows it holds, and the columns of
the rows added since the key was last saved. The run store keeps those new rows once, as a
segment, and puts back the whole part when it reads the checkpoint.

Columns are joined range after range: JSON lists are concatenated, strings are base64 bytes and
are concatenated as bytes (fixed-width binary, such as float32 embeddings).

>>> part = appended("Ada@0", first=0, count=2, columns={"texts": ["a", "b"]}, head={"dim": 2})
>>> state, segments, keys = split_segments({"agents": {"Ada": {"memory": part}}})
>>> state["agents"]["Ada"]["memory"]
{'dim': 2, '$appended': {'key': 'Ada@0', 'size': 2}}
>>> [(segment.key, segment.first, segment.rows) for segment in segments]
[('Ada@0', 0, 2)]
>>> join_segments(state, lambda key, size: segments)["agents"]["Ada"]["memory"]
{'dim': 2, 'texts': ['a', 'b']}
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

APPENDED_KEY = "$appended"


class SegmentError(ValueError):
    """The saved segments of an appended part do not add up to the rows its checkpoint holds."""


class Segment(NamedTuple):
    """Rows ``first .. first + rows - 1`` of the appended part saved under ``key``."""

    key: str
    first: int
    rows: int
    columns: dict[str, Any]


SegmentLoader = Callable[[str, int], Sequence[Segment]]


def appended(
    key: str, *, first: int, count: int, columns: Mapping[str, Any], head: Mapping[str, Any]
) -> dict[str, Any]:
    """A part of a checkpoint state: ``head`` as is, plus rows ``0 .. first + count - 1`` under
    ``key``, of which ``columns`` holds the new ones (``first`` onwards; the others were saved by
    an earlier checkpoint of the same run)."""
    if first < 0 or count < 0:
        raise ValueError(f"an appended part needs first >= 0 and count >= 0 (got {first}, {count})")
    if APPENDED_KEY in head:
        raise ValueError(f"the head of an appended part may not hold {APPENDED_KEY!r}")
    return {
        **head,
        APPENDED_KEY: {"key": key, "first": first, "count": count, "columns": dict(columns)},
    }


class SplitState(NamedTuple):
    """A checkpoint state made ready to save: see :func:`split_segments`."""

    state: dict[str, Any]
    segments: list[Segment]
    keys: set[str]


def split_segments(state: Mapping[str, Any]) -> SplitState:
    """The state to save, with each appended part reduced to its head and a reference; the new
    segments to save beside it; and every key the saved state refers to. ``state`` itself is
    left as it was.

    A part with no new rows gives no segment; one with no rows at all is saved whole, as a
    plain object (there is nothing to share between checkpoints).
    """
    segments: list[Segment] = []
    keys: set[str] = set()

    def visit(node: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in node.items():
            if name == APPENDED_KEY:
                segment = _segment_of(value)
                if not segment.first and not segment.rows:
                    out.update(segment.columns)
                    continue
                if segment.rows:
                    segments.append(segment)
                keys.add(segment.key)
                out[name] = {"key": segment.key, "size": segment.first + segment.rows}
            elif isinstance(value, Mapping):
                out[name] = visit(value)
            else:
                out[name] = value
        return out

    return SplitState(visit(state), segments, keys)


def join_segments(state: Mapping[str, Any], load: SegmentLoader) -> dict[str, Any]:
    """The whole state: each reference put back as its head plus all its rows.

    ``load(key, size)`` gives the saved segments of ``key`` that start before row ``size``,
    in order; a gap, an overlap or a short count is a :class:`SegmentError` naming the key.
    """

    def visit(node: Mapping[str, Any]) -> dict[str, Any]:
        reference = node.get(APPENDED_KEY)
        out: dict[str, Any] = {}
        for name, value in node.items():
            if name != APPENDED_KEY:
                out[name] = visit(value) if isinstance(value, Mapping) else value
        if reference is not None:
            key, size = _reference_of(reference)
            out.update(join_columns(key, size, load(key, size)))
        return out

    return visit(state)


def join_columns(key: str, size: int, segments: Sequence[Segment]) -> dict[str, Any]:
    """The columns of rows ``0 .. size - 1`` of ``key`` from its consecutive segments."""
    covered = 0
    for segment in segments:
        if segment.first != covered:
            problem = "a gap" if segment.first > covered else "an overlap"
            raise SegmentError(f"saved rows of {key!r} have {problem} at row {covered}")
        covered += segment.rows
    if covered < size or not segments:
        raise SegmentError(
            f"saved rows of {key!r} stop at row {covered}; the checkpoint has {size}"
        )
    if covered > size:
        # Rows saved for a later checkpoint that was rewound; this one holds fewer.
        raise SegmentError(f"saved rows of {key!r} end at row {covered}, past its {size} rows")
    names = list(segments[0].columns)
    joined: dict[str, Any] = {}
    for name in names:
        pieces = [segment.columns.get(name) for segment in segments]
        if all(isinstance(piece, list) for piece in pieces):
            joined[name] = [item for piece in pieces for item in piece]  # type: ignore[union-attr]
        elif all(isinstance(piece, str) for piece in pieces):
            joined[name] = _joined_base64(key, name, pieces)  # type: ignore[arg-type]
        else:
            raise SegmentError(f"column {name!r} of {key!r} changes type between saved rows")
    return joined


def _joined_base64(key: str, name: str, pieces: Sequence[str]) -> str:
    if len(pieces) == 1:
        return pieces[0]
    try:
        raw = b"".join(base64.b64decode(piece, validate=True) for piece in pieces)
    except (binascii.Error, ValueError) as error:
        raise SegmentError(f"column {name!r} of {key!r} is not base64") from error
    return base64.b64encode(raw).decode()


def _segment_of(value: Any) -> Segment:
    if not isinstance(value, Mapping):
        raise ValueError(f"{APPENDED_KEY!r} must hold an object made by appended()")
    try:
        key, first, count, columns = (
            value["key"],
            value["first"],
            value["count"],
            value["columns"],
        )
    except KeyError as error:
        raise ValueError(f"{APPENDED_KEY!r} lacks {error}; make it with appended()") from error
    if not isinstance(key, str) or not key:
        raise ValueError(f"{APPENDED_KEY!r} needs a non-empty string key (got {key!r})")
    return Segment(key, int(first), int(count), dict(columns))


def _reference_of(value: Any) -> tuple[str, int]:
    if (
        not isinstance(value, Mapping)
        or not isinstance(value.get("key"), str)
        or not isinstance(value.get("size"), int)
    ):
        raise SegmentError(f"a saved {APPENDED_KEY!r} reference is malformed: {value!r}")
    return value["key"], value["size"]
