"""Which model calls belong together, and where a server keeps their common prompt warm.

Calls made for one agent (or one experiment arm) share a long prompt prefix: the instructions,
the scene, the persona. A llama.cpp slot (or a replica behind a pool) that answered the last of
them still holds that prefix and skips reading it again; a call sent elsewhere reads it afresh
and pushes out whatever that slot held. An *affinity key* names the group a call belongs to.

Callers give the key to a :class:`~societas.llm.types.LanguageModel` call (``affinity=``) or set
it for everything they await with :func:`affinity_scope` (the engine does this for each agent's
turn); :class:`~societas.llm.client.LLM` makes it visible to backends through
:func:`current_affinity`, so the :class:`~societas.llm.types.ChatBackend` interface stays as it
is. The endpoint pool sends a key's calls to its home endpoint from an :class:`AffinityRouter`;
the embedded server, when asked, gives a call the idle slot that last answered its key
(``societas.llm.slots``). The key never changes an answer, so it is no part of the response
cache's key.

Examples
--------
>>> router = AffinityRouter(places=2)
>>> [router.place_of(key) for key in ("ada", "bo", "cy", "ada", "bo")]
[0, 1, 0, 0, 1]
>>> with affinity_scope("ada"):
...     current_affinity()
'ada'
>>> current_affinity() is None
True
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_affinity: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "societas_llm_affinity", default=None
)


def current_affinity() -> str | None:
    """The affinity key of the call being made (None when the caller gave none)."""
    return _affinity.get()


@contextmanager
def affinity_scope(key: str | None) -> Iterator[None]:
    """Make ``key`` the affinity of every model call awaited inside the block.

    ``None`` leaves the surrounding key in force, so an inner call without a key of its own
    keeps its agent's.
    """
    if key is None:
        yield
        return
    token = _affinity.set(key)
    try:
        yield
    finally:
        _affinity.reset(token)


class AffinityRouter:
    """A stable, balanced home place (slot, endpoint) for each affinity key.

    A key seen for the first time gets the place that is home to the fewest keys (the lowest
    index on a tie) and keeps it for good, so the keys' counts per place differ by at most one
    and a key's calls always meet the prefix its earlier calls left there.
    """

    def __init__(self, places: int) -> None:
        if places < 1:
            raise ValueError(f"an affinity router needs at least one place, got {places}")
        self.places = places
        self._homes: dict[str, int] = {}
        self._keys_per_place = [0] * places

    def place_of(self, key: str) -> int:
        """The home place of ``key`` (assigned on first sight)."""
        home = self._homes.get(key)
        if home is None:
            home = min(range(self.places), key=lambda place: (self._keys_per_place[place], place))
            self._homes[key] = home
            self._keys_per_place[home] += 1
        return home

    def keys_per_place(self) -> list[int]:
        """How many keys call each place home."""
        return list(self._keys_per_place)
