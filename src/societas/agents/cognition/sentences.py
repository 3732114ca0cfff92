"""Model free text made to read right: whole sentences, in the script the talk is in.

A JSON grammar bounds each string in characters, so a model that runs on is cut mid-word; and a
small model may drift into another script (Chinese characters in an English talk). Prompts ask
for short text and leave room under the bound; what still comes back cut or drifted is repaired
here by code: the text keeps its whole sentences before the cut or the drift, and a text with no
whole sentence left is empty (the caller then asks again or goes without it).

Examples
--------
>>> whole_sentences("I'll come. Bring the cake and", cut=True)
"I'll come."
>>> whole_sentences("see you at five", cut=False)
'see you at five.'
>>> drift_start("Sure, and they都会 come", "Latin")
14
>>> readable("Sure, I can help. And they都会 come", cut=False, script="Latin")
'Sure, I can help.'
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from societas.agents.cognition.schemas import model_text

# A sentence ends at . ! ? (or …), optionally followed by a closing quote or bracket.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s|$)")
_END_MARKS = ".!?…\"'”’)]"


def whole_sentences(text: str, *, cut: bool) -> str:
    """``text`` ending at a sentence boundary.

    ``cut``: the text stopped at its length bound (the model had more to say), so an unfinished
    last sentence is dropped. A text that was not cut and merely lacks a final stop gets one.
    """
    text = model_text(text)
    if not text:
        return ""
    if not cut:
        return text if text[-1] in _END_MARKS else text.rstrip(",;:- ") + "."
    ends = list(_SENTENCE_END.finditer(text))
    if not ends:
        return ""
    return model_text(text[: ends[-1].end()])


@cache
def script_of(char: str) -> str:
    """The script a letter belongs to ("Latin", "Cyrillic", "CJK"...), "" for a non-letter."""
    if not char.isalpha():
        return ""
    name = unicodedata.name(char, "")
    if name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")):
        return "CJK"
    return name.split(" ", 1)[0].title()


def main_script(text: str) -> str:
    """The script of most letters of ``text`` (Latin for a text without letters)."""
    counts: dict[str, int] = {}
    for char in text:
        script = script_of(char)
        if script:
            counts[script] = counts.get(script, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else "Latin"


def drift_start(text: str, script: str) -> int | None:
    """Index of the first letter of ``text`` not in ``script``; None when it stays in it."""
    for index, char in enumerate(text):
        found = script_of(char)
        if found and found != script:
            return index
    return None


def readable(text: str, *, cut: bool, script: str) -> str:
    """``text`` cut back to whole sentences before any drift out of ``script``; "" if none."""
    start = drift_start(text, script)
    if start is not None:
        return whole_sentences(text[:start], cut=True)
    return whole_sentences(text, cut=cut)
