"""Text that reads right: what someone is doing, free text kept whole, one script.

Code, not the model, carries grammar. A plan step is written as a command ("have a hearty
breakfast"); an observation of it reads "Tomas Alvarez: having a hearty breakfast", never "Tomas
Alvarez is have a hearty breakfast". Free text is shortened at a word boundary, never mid-word,
and runs of another script (a small model drifting into Chinese mid-sentence) are removed.

>>> doing("Tomas Alvarez", "have a hearty breakfast")
'Tomas Alvarez: having a hearty breakfast'
>>> whole_words("finish the new shelves at the cafe and", 80)
'finish the new shelves at the cafe'
>>> one_script("they will all come都会")
'they will all come'
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache


def _words(text: str) -> list[str]:
    return text.split()


# Verbs whose -ing form is not the regular one (drop a final "e", double a final consonant).
_IRREGULAR = {
    "be": "being",
    "see": "seeing",
    "flee": "fleeing",
    "agree": "agreeing",
    "free": "freeing",
    "lie": "lying",
    "die": "dying",
    "tie": "tying",
    "dye": "dyeing",
    "canoe": "canoeing",
    "go": "going",
    "do": "doing",
    "visit": "visiting",
    "open": "opening",
    "listen": "listening",
    "offer": "offering",
    "order": "ordering",
    "water": "watering",
    "gather": "gathering",
    "answer": "answering",
    "enter": "entering",
    "wonder": "wondering",
    "happen": "happening",
    "deliver": "delivering",
    "consider": "considering",
    "practise": "practising",
    "practice": "practicing",
}
# Base-form verbs that commonly start a plan step; the first word is made progressive only when
# it is one of these, so "breakfast at home" or "coffee with Mei" stay as they are.
_VERBS = frozenset(
    _words(
        """
    add arrange ask bake balance be begin bring brush buy call carry change chat check clean
    close collect come cook count cut decorate deliver discuss do draft drink drive eat empty
    enjoy fetch file fill finish fix fold get give go greet grab have help hang head hold invite
    iron jog keep knead label leave lie listen load lock look make meet mix mop move open order
    organise organize pack paint pay pick place plan plant play pour practise practice prepare
    print put rake read relax repair rest return review run sand say saw scrub see sell serve
    set shop sit sleep sort speak start stock stop store study sweep take talk tell tend think
    tidy trim try tune turn visit wait wake walk wash watch water weed welcome wipe work write
    answer gather enter offer arrive bathe chop dress feed fry hammer measure nail plan polish
    prune rehearse sing sip strum stretch unlock update wrap
        """
    )
)
_VOWELS = set("aeiou")
# Words a clipped phrase should not end on ("...and Tomas has promised to").
_DANGLING = frozenset(
    _words(
        """
    a an the and or but to of for with at in on by from as that which who whose his her their my
    your our its is are was were be been has have had will would can could should
        """
    )
)


def progressive(verb: str) -> str:
    """The -ing form of a base-form verb.

    >>> [progressive(v) for v in ["have", "sit", "make", "go", "lie", "fix", "visit", "play"]]
    ['having', 'sitting', 'making', 'going', 'lying', 'fixing', 'visiting', 'playing']
    """
    word = verb.lower()
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("ie"):
        return word[:-2] + "ying"
    if word.endswith("e") and not word.endswith(("ee", "ye", "oe")) and len(word) > 2:
        return word[:-1] + "ing"
    if (
        len(word) >= 3
        and word[-1] not in _VOWELS | set("wxy")
        and word[-2] in _VOWELS
        and word[-3] not in _VOWELS
        and len(word) <= 4
    ):
        return word + word[-1] + "ing"
    return word + "ing"


def activity_phrase(description: str) -> str:
    """A plan step as what someone is doing: the leading base verb becomes its -ing form.

    >>> activity_phrase("get dressed"), activity_phrase("breakfast at home")
    ('getting dressed', 'breakfast at home')
    """
    text = " ".join(description.split())
    first, _, rest = text.partition(" ")
    if first.lower() in _VERBS:
        text = progressive(first) + (f" {rest}" if rest else "")
    return text


def doing(name: str, description: str) -> str:
    """How another person's activity reads as an observation: ``"Name: having lunch"``."""
    phrase = activity_phrase(description)
    return f"{name}: {phrase}" if phrase else name


def object_state_phrase(state: str) -> str:
    """An object's state after "is": an adjective as it is ("cold"), a step someone does with it
    as a use ("in use for making coffee").

    >>> object_state_phrase("cold"), object_state_phrase("make coffee")
    ('cold', 'in use for making coffee')
    """
    if len(state.split()) < 2:  # "tidy", "empty": states, though they could be verbs
        return state
    phrase = activity_phrase(state)
    return state if phrase == " ".join(state.split()) else f"in use for {phrase}"


def whole_words(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters, cut at a word boundary, without a
    dangling last word ("and", "to", "the"...: what a length cap leaves) or a trailing comma."""
    line = " ".join(text.split())
    if len(line) > limit:
        line = line[: limit + 1].rsplit(" ", 1)[0] if " " in line[:limit] else line[:limit]
    words = line.rstrip(" ,;:-").split(" ")
    while len(words) > 1 and words[-1].lower().strip(",;:") in _DANGLING:
        words.pop()
    return " ".join(words).rstrip(" ,;:-")


# Phrases of a chat assistant, not of a townsperson ("I'm not sure how to assist you with that").
ASSISTANT_SPEAK = re.compile(
    r"\b(?:assist (?:you|with)|as an ai|language model|rephrase (?:it|that|your)"
    r"|(?:your|that) request|provide more context|clarify your question|feel free to ask"
    r"|any other questions|happy to help if i can)\b",
    re.IGNORECASE,
)


def was_cut(text: str, max_length: int) -> bool:
    """Whether a grammar-bounded string reached its bound (so it may stop mid-sentence)."""
    return len(text) >= max_length - 1


def capped_words(text: str, cap: int) -> str:
    """A model's short free text read right: in one script, and, when it filled its whole
    ``cap`` of characters (the answer's grammar stopped it, likely mid-word), ended at its last
    whole word instead.

    >>> capped_words("file my papers at the Town Hall on Mon", 38)
    'file my papers at the Town Hall'
    >>> capped_words("it is a good时机", 80)
    'it is a good'
    """
    line = " ".join(text.split())
    limit = len(line) - 1 if was_cut(text, cap) else cap
    return whole_words(one_script(line), limit)


def _script(char: str) -> str | None:
    """The script of a letter ("LATIN", "CJK", "CYRILLIC"...); None for non-letters."""
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def foreign_letters(text: str, script: str = "LATIN") -> int:
    """How many letters of ``text`` are not in ``script``."""
    return sum(1 for char in text if _script(char) not in (None, script))


def one_script(text: str, script: str = "LATIN") -> str:
    """``text`` without letters of other scripts; what is left is kept from ending on a
    dangling word ("and they都会" reads "and they")."""
    if not foreign_letters(text, script):
        return text
    kept = "".join(" " if _script(c) not in (None, script) else c for c in text)
    words = kept.split()
    while words and words[-1].lower().strip(",;:") in _DANGLING:
        words.pop()
    return " ".join(words).rstrip(" ,;:-")


def rooms_named(text: str, rooms: list[str]) -> list[str]:
    """The room names of ``rooms`` (the part after the last colon) that ``text`` mentions."""
    lowered = f" {text.lower()} "
    return sorted(
        name
        for name in _room_names(tuple(rooms))
        if name in lowered and _whole_word(name).search(lowered)  # `in`: a cheap first sieve
    )


# Every step of a plan is checked against its agent's rooms, the same few lists again and again.
@lru_cache(maxsize=4096)
def _room_names(rooms: tuple[str, ...]) -> frozenset[str]:
    return frozenset(room.rsplit(":", 1)[-1].lower() for room in rooms)


@lru_cache(maxsize=4096)
def _whole_word(name: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(name)}\b")


def without_other_rooms(text: str, here: str, rooms: list[str]) -> str:
    """``text`` without a phrase placing it in another room than ``here`` ("get dressed in the
    bedroom" while at the market reads "get dressed").

    >>> without_other_rooms("get dressed in the bedroom", "Market:shop floor",
    ...     ["Home:bedroom", "Market:shop floor"])
    'get dressed'
    """
    here_name = here.rsplit(":", 1)[-1].lower()
    result = text
    for name in rooms_named(text, rooms):
        if name == here_name:
            continue
        pattern = r"\s*\b(?:in|at|to|into|from|inside|of)\s+(?:the\s+|my\s+|his\s+|her\s+)?"
        pattern += re.escape(name) + r"\b"
        result = re.sub(pattern, "", result, flags=re.IGNORECASE)
        result = re.sub(rf"\b(?:the\s+)?{re.escape(name)}\b", "", result, flags=re.IGNORECASE)
    return " ".join(result.split()).strip(" ,;:-")
