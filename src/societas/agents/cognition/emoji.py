"""An emoji for each action, chosen by embedding instead of written by the model.

The viewer shows an emoji beside each agent's current action. Asking the model for one costs about
six generated tokens per action (key, quotes, the emoji's own tokens), and generated tokens are the
slowest part of a call on a CPU. Instead :func:`emoji_for` embeds the action texts together with
the descriptions in ``data/emoji.yaml`` (one request; the model's embedding cache answers for the
table after the first time) and gives each text the emoji of the nearest description.

An agent's choices are remembered in its :class:`EmojiMemo`, which is part of its saved state, so
repeated activities cost no request, and the requests a run makes depend only on the agents' own
histories: a run spread over processes logs the same requests as one process.

Examples
--------
>>> table = EmojiTable.load()
>>> len(table.emoji) > 50, table.emoji[0]
(True, '😴')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import yaml

from societas.agents.cognition.memo import TextMemo
from societas.llm.types import LanguageModel


@dataclass(frozen=True)
class EmojiTable:
    """The emoji an action may get, each with a description of the activities it stands for."""

    emoji: tuple[str, ...]
    descriptions: tuple[str, ...]

    @staticmethod
    @cache
    def load() -> EmojiTable:
        """The table shipped in ``societas/agents/cognition/data/emoji.yaml``."""
        source = resources.files("societas.agents.cognition").joinpath("data", "emoji.yaml")
        loaded = yaml.safe_load(source.read_text(encoding="utf-8"))
        entries = loaded.get("emoji") if isinstance(loaded, dict) else None
        if not isinstance(entries, dict) or not entries:
            raise ValueError(f"{source}: field 'emoji' must map each emoji to a description")
        for symbol, description in entries.items():
            if not isinstance(description, str) or not description.strip():
                raise ValueError(f"{source}: emoji {symbol!r} needs a description")
        return EmojiTable(tuple(str(e) for e in entries), tuple(entries.values()))


class EmojiMemo(TextMemo[str]):
    """One agent's emoji choices by exact text, least recently used forgotten first.

    >>> memo = EmojiMemo(max_entries=2)
    >>> memo.put("a", "☕"); memo.put("b", "🎣"); memo.put("c", "📖")
    >>> memo.get("a"), memo.get("c"), EmojiMemo.from_state(memo.get_state()).get("b")
    (None, '📖', '🎣')
    """

    label = "emoji memo"
    default_entries = 256

    def _checked(self, text: str, value: str) -> str:
        if not value:
            raise ValueError(f"no emoji for {text!r}")
        return value

    def _stored(self, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"an emoji must be text, got {value!r}")
        return value


async def emoji_for(
    llm: LanguageModel, texts: Sequence[str], memo: EmojiMemo | None = None
) -> list[str]:
    """The emoji of the nearest table description for each text (``""`` for a blank one).

    Texts the memo knows cost nothing; the others go in one embedding request with the table.
    """
    table = EmojiTable.load()
    memo = memo if memo is not None else EmojiMemo()
    wanted = [t.strip() for t in texts]
    fresh = list(dict.fromkeys(t for t in wanted if t and t not in memo))
    found: dict[str, str] = {}
    if fresh:
        # One request, both sides embedded alike: the table rows come from the embedding cache
        # after the first time, and nothing here depends on what this process embedded before.
        vectors = await llm.embed([*table.descriptions, *fresh])
        described, asked = vectors[: len(table.emoji)], vectors[len(table.emoji) :]
        nearest = np.argmax(asked @ described.T, axis=1)
        for text, index in zip(fresh, nearest, strict=True):
            found[text] = table.emoji[int(index)]
            memo.put(text, found[text])
    return [(found.get(t) or memo.get(t) or "") if t else "" for t in wanted]
