"""What an agent remembers of answers about exact texts, so the same text costs no second call.

:class:`TextMemo` is the shared mechanism: values keyed by text, least recently used forgotten
first, saved and restored with the agent. Each kind of memo says how its values are checked and
read back from a saved state.

Examples
--------
>>> class Lengths(TextMemo[int]):
...     label = "length memo"
...     def _checked(self, text: str, value: int) -> int:
...         return value
...     def _stored(self, value: object) -> int:
...         return int(str(value))
>>> memo = Lengths(max_entries=2)
>>> memo.put("a", 1); memo.put("b", 1); memo.put("c", 1)
>>> memo.get("a"), memo.get("c"), len(memo), Lengths.from_state(memo.get_state()).get("b")
(None, 1, 2, 1)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, Self, TypeVar

V = TypeVar("V")


class TextMemo(Generic[V]):
    """Values by exact text, at most ``max_entries`` of them (least recently used go first)."""

    label: ClassVar[str] = "memo"
    """What error messages call this memo."""
    default_entries: ClassVar[int] = 4096

    def __init__(self, max_entries: int | None = None) -> None:
        max_entries = self.default_entries if max_entries is None else max_entries
        if max_entries < 1:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, text: object) -> bool:
        return text in self._entries

    def get(self, text: str) -> V | None:
        """The remembered value (now the most recently used), or None."""
        value = self._entries.get(text)
        if value is not None:
            self._entries.move_to_end(text)
        return value

    def put(self, text: str, value: V) -> None:
        self._entries[text] = self._checked(text, value)
        self._entries.move_to_end(text)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get_state(self) -> dict[str, Any]:
        """JSON-serialisable state (entries oldest first)."""
        return {
            "max_entries": self.max_entries,
            "entries": [list(e) for e in self._entries.items()],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        try:
            memo = cls(max_entries=int(state["max_entries"]))
            for position, (text, value) in enumerate(state["entries"]):
                if not isinstance(text, str):
                    raise ValueError(f"entry {position} has a non-text key {text!r}")
                memo.put(text, memo._stored(value))
            memo._restore(state)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{cls.label} state is malformed: {error}") from error
        return memo

    def _checked(self, text: str, value: V) -> V:
        """``value`` as remembered for ``text``; raises ValueError when it is not allowed."""
        raise NotImplementedError

    def _stored(self, value: object) -> V:
        """A value as read back from a saved state."""
        raise NotImplementedError

    def _restore(self, state: Mapping[str, Any]) -> None:
        """Read what a memo keeps beside its entries (nothing by default)."""
