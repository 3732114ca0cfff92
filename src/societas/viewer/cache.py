"""A small thread-safe LRU cache for encoded responses of steps that can no longer change."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class ResponseCache:
    """Keeps the most recently used encoded bodies, up to ``max_bytes`` in total.

    >>> cache = ResponseCache(max_bytes=10)
    >>> cache.put(("frames", 0, 50), b"12345678")
    >>> cache.get(("frames", 0, 50))
    b'12345678'
    >>> cache.put(("frames", 50, 100), b"abcdef")  # evicts the older entry
    >>> cache.get(("frames", 0, 50)) is None
    True
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self._size -= len(old) if old is not None else 0
            self._entries[key] = body
            self._size += len(body)
            while self._size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted)
