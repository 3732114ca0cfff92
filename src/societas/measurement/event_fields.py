"""Reading the loosely typed ``data`` fields of recorded events (names, optional texts)."""

from __future__ import annotations

from typing import Any


def listed_names(value: Any) -> list[str]:
    """The non-empty names of a list field (``participants``, ``listeners``); [] if not a list.

    >>> listed_names(["Ann", "", "Bo"]), listed_names(None)
    (['Ann', 'Bo'], [])
    """
    if isinstance(value, list | tuple | set | frozenset):
        return [str(name) for name in value if name]
    return []


def optional_str(value: Any) -> str | None:
    """``value`` as text, None staying None."""
    return None if value is None else str(value)
