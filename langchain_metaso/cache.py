"""An opt-in cache of API answers (README: "Repeated calls, concurrency and rate limits"),
which the HTTP core reaches only through ``single_flight.cache_call`` and its async twin."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from langchain_core.stores import ByteStore

from langchain_metaso._redis import RedisByteStore, RedisConnection

__all__ = ["InMemoryCache", "MetasoCache", "MetasoStoreCache", "cache_key"]


@runtime_checkable
class MetasoCache(Protocol):
    """What a cache backend provides. Values are JSON-compatible (dicts, lists, text).
    It may also define ``async aget(key)`` and ``aset(key, value)``, which async calls use."""

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

    # The lock is held for a dict operation, never across I/O: cheap enough on the loop.
    async def aget(self, key: str) -> Any | None:
        return self.get(key)

    async def aset(self, key: str, value: Any) -> None:
        self.set(key, value)

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
            return {**self.__dict__, "_entries": OrderedDict(self._entries), "_lock": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())


_ENTRY_FORMAT = 1  # in every stored entry: another format is a miss, never a crash
_SAFE_PART = re.compile(r"[^A-Za-z0-9_.-]+")  # what file stores and Redis tools take as is


class MetasoStoreCache:
    """A cache over any LangChain ``ByteStore`` (Redis, files...), shared by every process
    and machine that uses the same store; README "Many machines" shows it in use.

    Entries are JSON (never pickles) holding the answer and its expiry: one that cannot be
    read (another release's format) is a miss, an expired one a miss that is deleted.
    Store keys are ``{namespace}/{endpoint}/{hash of the request}``.

    Args:
        store: Where entries go: any ``BaseStore[str, bytes]``.
        ttl: Seconds an entry is served after it is set; ``None`` serves it until the
            store drops it.
        namespace: Prefix of every key, so several caches (or apps) can share a store.
        clock: Wall-clock seconds (``time.time``): expiries are compared across processes.
    """

    def __init__(
        self,
        store: ByteStore,
        ttl: float | None = 3600.0,
        *,
        namespace: str = "metaso",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive or None, got {ttl}")
        if not namespace:
            raise ValueError("namespace must not be empty")
        self.store = store
        self.ttl = ttl
        self.namespace = namespace
        self._clock = clock

    @classmethod
    def from_redis_url(
        cls,
        url: str,
        ttl: float | None = 3600.0,
        *,
        namespace: str = "metaso",
        **redis_options: Any,
    ) -> MetasoStoreCache:
        """A cache on the Redis server at ``url`` (e.g. ``redis://localhost:6379/0``),
        which also drops entries after ``ttl``; ``redis_options`` go to
        ``redis.Redis.from_url`` (socket timeouts default to 2 s: an unreachable Redis slows
        a search down, never hangs it). Needs ``pip install "langchain-metaso[redis]"``."""
        store = RedisByteStore(RedisConnection(url, **redis_options), ttl=ttl)
        return cls(store, ttl, namespace=namespace)

    def get(self, key: str) -> Any | None:
        store_key = self._store_key(key)
        [raw] = self.store.mget([store_key])
        value, expired = self._read(raw)
        if expired:
            self.store.mdelete([store_key])
        return value

    def set(self, key: str, value: Any) -> None:
        self.store.mset([(self._store_key(key), self._entry(value))])

    async def aget(self, key: str) -> Any | None:
        store_key = self._store_key(key)
        [raw] = await self.store.amget([store_key])
        value, expired = self._read(raw)
        if expired:
            await self.store.amdelete([store_key])
        return value

    async def aset(self, key: str, value: Any) -> None:
        await self.store.amset([(self._store_key(key), self._entry(value))])

    def _store_key(self, key: str) -> str:
        # The endpoint keeps keys readable (``redis-cli --scan --pattern 'metaso/search/*'``).
        try:
            endpoint = json.loads(key)[1]
        except (ValueError, LookupError, TypeError):
            endpoint = None
        readable = _SAFE_PART.sub("_", endpoint).strip("_.") if isinstance(endpoint, str) else ""
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"{self.namespace}/{readable[:40] or 'call'}/{digest}"

    def _entry(self, value: Any) -> bytes:
        expires = None if self.ttl is None else self._clock() + self.ttl
        entry = {"format": _ENTRY_FORMAT, "expires": expires, "value": value}
        # An answer may hold a lone surrogate (from a JSON \ud800 escape): surrogatepass
        # writes it, where strict UTF-8 would fail the whole entry.
        return json.dumps(entry, ensure_ascii=False).encode("utf-8", "surrogatepass")

    def _read(self, raw: bytes | None) -> tuple[Any | None, bool]:
        """The entry's value (``None`` on a miss), and whether it expired."""
        if raw is None:
            return None, False
        try:
            entry = json.loads(raw.decode("utf-8", "surrogatepass"))
        except (ValueError, RecursionError):
            return None, False
        if not isinstance(entry, dict) or entry.get("format") != _ENTRY_FORMAT:
            return None, False
        expires = entry.get("expires")
        if expires is not None:
            if isinstance(expires, bool) or not isinstance(expires, int | float):
                return None, False
            if not expires > self._clock():  # NaN included
                return None, True
        return entry.get("value"), False

    def __repr__(self) -> str:
        return (
            f"MetasoStoreCache(store={self.store!r}, ttl={self.ttl}, namespace={self.namespace!r})"
        )
