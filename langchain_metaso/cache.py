"""An opt-in cache of API answers: every call costs credits, a repeated one need not.

Pass ``cache=InMemoryCache()`` (or anything with the two methods of ``MetasoCache``) to
any public class. What is cached is the decoded answer of a successful call (a JSON
object or text, so a Redis or disk backend can store it as JSON), under a key made of the
endpoint, the base URL and the request body: never the API key. Errors are not cached.

The trade-off: a hit is free and instant but as old as the entry, so keep ``ttl`` short
for news and fresh facts, and long for stable questions (papers, documents).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["InMemoryCache", "MetasoCache", "cache_key"]


@runtime_checkable
class MetasoCache(Protocol):
    """What a cache backend provides. Values are JSON-compatible (dicts, lists, text)."""

    def get(self, key: str) -> Any | None:
        """The value stored under ``key``, or ``None`` on a miss."""

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``."""


def cache_key(
    endpoint: str, base_url: str, body: Mapping[str, Any], *, expect: str = "json"
) -> str:
    """The key of a request: readable JSON of the base URL, endpoint, body and the answer
    format asked for (the reader answers JSON or text to the same body)."""
    return json.dumps(
        [base_url, endpoint, expect, body],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )


class InMemoryCache:
    """A thread-safe LRU cache whose entries expire ``ttl`` seconds after they are set.

    Args:
        maxsize: Entries kept at most; the least recently used go first.
        ttl: Seconds an entry stays valid; ``None`` keeps entries until evicted.
    """

    def __init__(
        self,
        maxsize: int = 1024,
        ttl: float | None = 3600.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive or None, got {ttl}")
        self.maxsize = maxsize
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def set(self, key: str, value: Any) -> None:
        expires = float("inf") if self.ttl is None else self._clock() + self.ttl
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"InMemoryCache(maxsize={self.maxsize}, ttl={self.ttl}, entries={len(self)})"

    # A lock cannot be pickled or deep-copied: copies get their own.
    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            state = self.__dict__.copy()
            state["_entries"] = OrderedDict(self._entries)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
