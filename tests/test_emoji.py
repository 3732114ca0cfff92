"""Emoji chosen by embedding: nearest description, one request per new text, remembered."""

from __future__ import annotations

from collections.abc import Sequence

from societas.agents.cognition.emoji import EmojiMemo, EmojiTable, emoji_for
from societas.llm.fake import HashEmbedder, ScriptedLLM
from societas.llm.types import FloatMatrix


class CountingLLM(ScriptedLLM):
    requests: list[list[str]]

    async def embed(
        self, texts: Sequence[str], *, is_query: bool = False, purpose: str = "embed"
    ) -> FloatMatrix:
        self.requests.append(list(texts))
        return await super().embed(texts, is_query=is_query, purpose=purpose)


def counting_llm() -> CountingLLM:
    # wide enough that the hashed words of the table do not collide
    llm = CountingLLM(lambda call: None, embedder=HashEmbedder(dim=4096))
    llm.requests = []
    return llm


def test_the_shipped_table_is_well_formed() -> None:
    table = EmojiTable.load()
    assert len(table.emoji) == len(set(table.emoji)) == len(table.descriptions) >= 80
    assert all(d.strip() for d in table.descriptions)


async def test_each_text_gets_the_emoji_of_the_nearest_description() -> None:
    llm = counting_llm()
    chosen = await emoji_for(
        llm, ["making coffee", "fishing in the river", "watering the plants", "  "]
    )
    assert chosen == ["☕", "🎣", "🌷", ""]


async def test_one_request_for_new_texts_none_for_remembered_ones() -> None:
    llm = counting_llm()
    table = list(EmojiTable.load().descriptions)
    memo = EmojiMemo()
    first = await emoji_for(llm, ["making coffee", "making coffee", "fishing"], memo)
    second = await emoji_for(llm, ["fishing", "reading a book"], memo)
    assert await emoji_for(llm, ["reading a book", "making coffee"], memo) == [second[1], first[0]]
    assert llm.requests == [[*table, "making coffee", "fishing"], [*table, "reading a book"]]
    # the memo travels with the agent's state: a restored one asks for nothing it knew
    restored = EmojiMemo.from_state(memo.get_state())
    assert await emoji_for(llm, ["fishing"], restored) == [first[2]]
    assert len(llm.requests) == 2


async def test_without_a_memo_every_call_asks() -> None:
    llm = counting_llm()
    await emoji_for(llm, ["fishing"])
    await emoji_for(llm, ["fishing"])
    assert len(llm.requests) == 2
