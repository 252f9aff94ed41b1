"""The result cache: the in-memory LRU/TTL store, and its use by every public class."""

from __future__ import annotations

import asyncio
import copy
import pickle
import threading
from typing import Any

import pytest

from langchain_metaso.cache import (
    InMemoryCache,
    MetasoAsyncCache,
    MetasoCache,
    acache_get,
    acache_set,
    cache_get,
    cache_key,
    cache_set,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_get_returns_what_was_set_and_none_on_miss() -> None:
    cache = InMemoryCache()
    assert cache.get("a") is None
    cache.set("a", {"webpages": []})
    assert cache.get("a") == {"webpages": []}
    assert isinstance(cache, MetasoCache)


def test_entries_expire_after_ttl() -> None:
    clock = FakeClock()
    cache = InMemoryCache(ttl=10, clock=clock)
    cache.set("a", 1)
    clock.now += 9.9
    assert cache.get("a") == 1
    clock.now += 0.2
    assert cache.get("a") is None
    assert len(cache) == 0


def test_ttl_none_keeps_entries_until_evicted() -> None:
    clock = FakeClock()
    cache = InMemoryCache(maxsize=1, ttl=None, clock=clock)
    cache.set("a", 1)
    clock.now += 1e9
    assert cache.get("a") == 1
    cache.set("b", 2)
    assert cache.get("a") is None
    assert cache.get("b") == 2


def test_least_recently_used_is_evicted_first() -> None:
    cache = InMemoryCache(maxsize=2)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.set("c", 3)
    assert cache.get("b") is None
    assert cache.get("a") == 1
    assert cache.get("c") == 3


@pytest.mark.parametrize(("maxsize", "ttl"), [(0, 10.0), (10, 0.0), (10, -1.0)])
def test_bad_settings_are_rejected(maxsize: int, ttl: float) -> None:
    with pytest.raises(ValueError, match=r"maxsize|ttl"):
        InMemoryCache(maxsize=maxsize, ttl=ttl)


def test_survives_pickle_and_deepcopy_with_its_entries() -> None:
    cache = InMemoryCache(maxsize=5, ttl=60)
    cache.set("a", {"x": "秘塔"})
    for clone in (pickle.loads(pickle.dumps(cache)), copy.deepcopy(cache)):
        assert clone.get("a") == {"x": "秘塔"}
        clone.set("b", 2)
        assert cache.get("b") is None  # copies are independent


def test_concurrent_use_keeps_the_size_bound() -> None:
    cache = InMemoryCache(maxsize=50)

    def work(offset: int) -> None:
        for i in range(2000):
            cache.set(f"{offset}-{i % 80}", i)
            cache.get(f"{offset}-{(i * 7) % 80}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 50


def test_cache_key_is_the_request_and_order_insensitive() -> None:
    one = cache_key("search", "https://api.302.ai/metaso", {"q": "秘塔", "size": 3})
    two = cache_key("search", "https://api.302.ai/metaso", {"size": 3, "q": "秘塔"})
    assert one == two
    assert "秘塔" in one  # readable, not \\u-escaped
    assert one != cache_key("search", "https://metaso.cn/api/v1", {"q": "秘塔", "size": 3})
    assert one != cache_key("reader", "https://api.302.ai/metaso", {"q": "秘塔", "size": 3})
    assert one != cache_key("search", "https://api.302.ai/metaso", {"q": "秘塔", "size": 4})


# --- what the HTTP core calls: sync and async, failures tolerated -----------------------


class SyncOnlyCache:
    """A user's cache with only ``get`` and ``set``; records the thread each ran in."""

    def __init__(self) -> None:
        self.store: dict[str, Any] = {}
        self.threads: list[int] = []

    def get(self, key: str) -> Any | None:
        self.threads.append(threading.get_ident())
        return self.store.get(key)

    def set(self, key: str, value: Any) -> None:
        self.threads.append(threading.get_ident())
        self.store[key] = value


class RecordingAsyncCache(SyncOnlyCache):
    """A cache with ``aget``/``aset`` too, which must be the ones used by async code."""

    def __init__(self) -> None:
        super().__init__()
        self.async_calls: list[str] = []

    async def aget(self, key: str) -> Any | None:
        self.async_calls.append("aget")
        return self.store.get(key)

    async def aset(self, key: str, value: Any) -> None:
        self.async_calls.append("aset")
        self.store[key] = value


class FailingCache:
    def get(self, key: str) -> Any | None:
        raise ConnectionError("cache server down")

    def set(self, key: str, value: Any) -> None:
        raise ConnectionError("cache server down")

    async def aget(self, key: str) -> Any | None:
        raise ConnectionError("cache server down")

    async def aset(self, key: str, value: Any) -> None:
        raise ConnectionError("cache server down")


def test_a_sync_only_cache_runs_off_the_event_loop() -> None:
    cache = SyncOnlyCache()
    assert isinstance(cache, MetasoCache)
    assert not isinstance(cache, MetasoAsyncCache)

    async def scenario() -> tuple[Any, int]:
        await acache_set(cache, "k", {"x": 1})
        return await acache_get(cache, "k"), threading.get_ident()

    value, loop_thread = asyncio.run(scenario())
    assert value == {"x": 1}
    assert len(cache.threads) == 2
    assert loop_thread not in cache.threads


def test_a_cache_with_async_methods_is_awaited_directly() -> None:
    cache = RecordingAsyncCache()

    async def scenario() -> Any:
        await acache_set(cache, "k", "v")
        return await acache_get(cache, "k")

    assert asyncio.run(scenario()) == "v"
    assert cache.async_calls == ["aset", "aget"]
    assert cache.threads == []  # the sync methods were not used


def test_in_memory_cache_has_async_methods_over_the_same_entries() -> None:
    cache = InMemoryCache()
    assert isinstance(cache, MetasoAsyncCache)
    cache.set("a", 1)

    async def scenario() -> tuple[Any, Any]:
        await cache.aset("b", 2)
        return await cache.aget("a"), await cache.aget("missing")

    assert asyncio.run(scenario()) == (1, None)
    assert cache.get("b") == 2


@pytest.mark.parametrize("cache", [FailingCache(), SyncOnlyCache()], ids=["async", "sync"])
def test_a_failing_backend_is_logged_and_bypassed(
    cache: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(cache, SyncOnlyCache):  # fails in its worker thread instead
        monkeypatch.setattr(cache, "get", FailingCache().get)
        monkeypatch.setattr(cache, "set", FailingCache().set)

    async def scenario() -> Any:
        await acache_set(cache, "k", 1)
        return await acache_get(cache, "k")

    assert asyncio.run(scenario()) is None
    assert cache_get(cache, "k") is None
    cache_set(cache, "k", 1)
    assert caplog.text.count("cache server down") == 4
    assert "Metaso cache get failed" in caplog.text
    assert "Metaso cache set failed" in caplog.text


def test_a_sync_only_cache_is_used_off_the_event_loop() -> None:
    from langchain_metaso import MetasoRetriever
    from langchain_metaso.testing import MetasoEmulator

    class SyncOnly:
        def __init__(self) -> None:
            self.entries: dict[str, Any] = {}
            self.threads: set[int] = set()

        def get(self, key: str) -> Any:
            self.threads.add(threading.get_ident())
            return self.entries.get(key)

        def set(self, key: str, value: Any) -> None:
            self.threads.add(threading.get_ident())
            self.entries[key] = value

    cache = SyncOnly()
    emulator = MetasoEmulator(api_key="k")
    retriever = MetasoRetriever(metaso_api_key="k", transport=emulator.transport(), cache=cache)

    async def twice() -> int:
        await retriever.ainvoke("秘塔")
        await retriever.ainvoke("秘塔")
        return threading.get_ident()

    loop_thread = asyncio.run(twice())
    assert len(emulator.requests) == 1  # the second call was served from the cache
    assert cache.threads
    assert loop_thread not in cache.threads
