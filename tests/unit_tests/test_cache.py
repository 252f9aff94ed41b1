"""The result cache (``cache.py``): the in-memory LRU/TTL store, ``MetasoStoreCache`` on any
LangChain ``ByteStore`` (Redis included, shared by processes), what the HTTP core calls,
and the cache's use by every public class."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import pickle
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_KEY, FakeClock, Invoke, Make, RecordingCache, tool_call
from langchain_core.stores import ByteStore, InMemoryByteStore
from redis_support import free_port, run_elsewhere, search_with_cache

from langchain_metaso import (
    InMemoryCache,
    MetasoReaderTool,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoServerError,
    MetasoStoreCache,
)
from langchain_metaso._http.single_flight import acache_call, cache_call
from langchain_metaso._redis import RedisByteStore, RedisConnection
from langchain_metaso.cache import MetasoCache, cache_key
from langchain_metaso.testing import Fault, MetasoEmulator

KEY = cache_key("search", "https://api.302.ai/metaso", {"q": "秘塔", "size": 3})
ANSWER = {"webpages": [{"title": "秘塔AI搜索", "link": "https://metaso.cn"}], "credits": 3}
# The key rule of LangChain's LocalFileStore (langchain_classic.storage).
FILE_SAFE = re.compile(r"^[a-zA-Z0-9_.\-/]+$")


# --- InMemoryCache --------------------------------------------------------------------


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


# --- MetasoStoreCache, on any store ---------------------------------------------------


class FileByteStore(ByteStore):
    """A file a key under ``root``, with the key rule of LangChain's ``LocalFileStore``
    (which lives in langchain-classic, not a dependency of the tests)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not FILE_SAFE.match(key):
            raise ValueError(f"Invalid characters in key: {key}")
        return self.root / key

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        paths = [self._path(key) for key in keys]
        return [path.read_bytes() if path.exists() else None for path in paths]

    def mset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        for key, value in key_value_pairs:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(value)

    def mdelete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix or ""):
                yield key


@pytest.fixture(params=["memory", "files", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ByteStore:
    """Each kind of store: in memory, files, and Redis (which expires keys itself)."""
    if request.param == "memory":
        return InMemoryByteStore()
    if request.param == "files":
        return FileByteStore(tmp_path)
    url = request.getfixturevalue("redis_url")
    return RedisByteStore(RedisConnection(url), ttl=600)


def raw_entries(store: ByteStore) -> dict[str, bytes | None]:
    keys = list(store.yield_keys())
    return dict(zip(keys, store.mget(keys), strict=True))


def test_an_answer_comes_back_from_any_store(store: ByteStore) -> None:
    cache = MetasoStoreCache(store)
    assert cache.get(KEY) is None
    cache.set(KEY, ANSWER)
    assert cache.get(KEY) == ANSWER
    assert isinstance(cache, MetasoCache)


def test_async_methods_share_the_entries(store: ByteStore) -> None:
    cache = MetasoStoreCache(store)

    async def scenario() -> tuple[Any, Any]:
        await cache.aset(KEY, ANSWER)
        return await cache.aget(KEY), await cache.aget(KEY + "x")

    assert asyncio.run(scenario()) == (ANSWER, None)
    assert cache.get(KEY) == ANSWER


def test_entries_are_json_with_unescaped_chinese_under_short_safe_keys(store: ByteStore) -> None:
    cache = MetasoStoreCache(store, namespace="app1")
    cache.set(KEY, ANSWER)
    [(key, raw)] = raw_entries(store).items()
    assert re.fullmatch(r"app1/search/[0-9a-f]{32}", key)
    assert raw is not None
    assert "秘塔AI搜索".encode() in raw
    entry = json.loads(raw)
    assert entry["value"] == ANSWER
    assert entry["format"] == 1


def test_entries_expire_after_ttl_and_are_then_deleted(store: ByteStore) -> None:
    clock = FakeClock()
    cache = MetasoStoreCache(store, ttl=60, clock=clock)
    cache.set(KEY, ANSWER)
    clock.now += 59.9
    assert cache.get(KEY) == ANSWER
    clock.now += 0.2
    assert cache.get(KEY) is None
    assert raw_entries(store) == {}


def test_expired_entries_are_deleted_by_the_async_path_too(store: ByteStore) -> None:
    clock = FakeClock()
    cache = MetasoStoreCache(store, ttl=60, clock=clock)
    cache.set(KEY, ANSWER)
    clock.now += 61
    assert asyncio.run(cache.aget(KEY)) is None
    assert raw_entries(store) == {}


def test_ttl_none_serves_entries_however_old(store: ByteStore) -> None:
    clock = FakeClock()
    cache = MetasoStoreCache(store, ttl=None, clock=clock)
    cache.set(KEY, "the reader's text answer")
    clock.now += 1e9
    assert cache.get(KEY) == "the reader's text answer"


def test_the_expiry_is_in_the_entry_so_other_processes_agree(store: ByteStore) -> None:
    # Another process's cache over the same store, with a clock of its own.
    writer_clock, reader_clock = FakeClock(), FakeClock()
    MetasoStoreCache(store, ttl=60, clock=writer_clock).set(KEY, ANSWER)
    reader = MetasoStoreCache(store, ttl=3600, clock=reader_clock)
    reader_clock.now += 61
    assert reader.get(KEY) is None


GARBAGE = [
    b"not json",
    b"\xff\xfe\x00",
    b"[1, 2, 3]",
    b'{"format": 2, "expires": null, "value": {"webpages": []}}',  # a future release's
    b'{"expires": null, "value": {"webpages": []}}',
    b'{"format": 1, "expires": "tomorrow", "value": {}}',
    b'{"format": 1, "expires": true, "value": {}}',
    b'{"format": 1, "expires": NaN, "value": {}}',
    b"[" * 100_000,
]


@pytest.mark.usefixtures("gc_paused")  # b"[" * 100_000 is parsed to the recursion limit
@pytest.mark.parametrize("raw", GARBAGE, ids=range(len(GARBAGE)))
def test_an_entry_that_cannot_be_read_is_a_miss(raw: bytes) -> None:
    store = InMemoryByteStore()
    cache = MetasoStoreCache(store)
    cache.set(KEY, ANSWER)
    [stored_key] = store.yield_keys()
    store.mset([(stored_key, raw)])
    assert cache.get(KEY) is None
    assert asyncio.run(cache.aget(KEY)) is None
    cache.set(KEY, ANSWER)  # the next answer replaces it
    assert cache.get(KEY) == ANSWER


def test_keys_differ_by_request_and_namespace_and_never_hold_the_request() -> None:
    store = InMemoryByteStore()
    cache = MetasoStoreCache(store)
    other = MetasoStoreCache(store, namespace="other")
    keys = [
        KEY,
        cache_key("search", "https://metaso.cn/api/v1", {"q": "秘塔", "size": 3}),
        cache_key("search", "https://api.302.ai/metaso", {"q": "秘塔", "size": 4}),
        cache_key("reader", "https://api.302.ai/metaso", {"url": "https://a.b"}, expect="text"),
        cache_key("chat/completions", "https://api.302.ai/metaso", {"q": "秘塔"}),
        "a key the HTTP core did not make",
    ]
    for number, key in enumerate(keys):
        cache.set(key, number)
    other.set(KEY, "other")
    stored = list(store.yield_keys())
    assert len(stored) == len(keys) + 1
    assert all(FILE_SAFE.match(key) and len(key) < 80 for key in stored)
    assert not any("秘塔" in key for key in stored)
    assert any(key.startswith("metaso/chat_completions/") for key in stored)
    assert any(key.startswith("metaso/call/") for key in stored)
    assert [cache.get(key) for key in keys] == list(range(len(keys)))
    assert other.get(KEY) == "other"


def test_a_lone_surrogate_in_an_answer_survives() -> None:
    cache = MetasoStoreCache(InMemoryByteStore())
    cache.set(KEY, {"title": "broken \ud800 秘塔"})
    assert cache.get(KEY) == {"title": "broken \ud800 秘塔"}


@pytest.mark.parametrize(("ttl", "namespace"), [(0, "metaso"), (-5, "metaso"), (10, "")])
def test_bad_store_settings_are_rejected(ttl: float, namespace: str) -> None:
    with pytest.raises(ValueError, match=r"ttl|namespace"):
        MetasoStoreCache(InMemoryByteStore(), ttl, namespace=namespace)


# --- what the HTTP core calls: sync and async, failures tolerated ---------------------


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

    async def scenario() -> tuple[Any, int]:
        await acache_call(None, cache, "set", "k", {"x": 1})
        return await acache_call(None, cache, "get", "k"), threading.get_ident()

    value, loop_thread = asyncio.run(scenario())
    assert value == {"x": 1}
    assert len(cache.threads) == 2
    assert loop_thread not in cache.threads


def test_a_cache_with_async_methods_is_awaited_directly() -> None:
    cache = RecordingAsyncCache()

    async def scenario() -> Any:
        await acache_call(None, cache, "set", "k", "v")
        return await acache_call(None, cache, "get", "k")

    assert asyncio.run(scenario()) == "v"
    assert cache.async_calls == ["aset", "aget"]
    assert cache.threads == []  # the sync methods were not used


def test_in_memory_cache_has_async_methods_over_the_same_entries() -> None:
    cache = InMemoryCache()
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
        await acache_call(None, cache, "set", "k", 1)
        return await acache_call(None, cache, "get", "k")

    assert asyncio.run(scenario()) is None
    assert cache_call(None, cache, "get", "k") is None
    cache_call(None, cache, "set", "k", 1)
    assert caplog.text.count("cache server down") == 4
    assert "Metaso cache get failed" in caplog.text
    assert "Metaso cache set failed" in caplog.text


# --- through the public classes -------------------------------------------------------


def test_a_cache_hit_sends_no_request(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    retriever = make(MetasoRetriever, k=3, cache=InMemoryCache())
    first = invoke(retriever, "秘塔 缓存")
    second = invoke(retriever, "秘塔 缓存")
    assert emulator.stats.requests == 1
    assert [d.page_content for d in second] == [d.page_content for d in first]
    assert [d.metadata for d in second] == [d.metadata for d in first]
    invoke(retriever, "另一个 问题")
    assert emulator.stats.requests == 2


def entries(cache: InMemoryCache | MetasoStoreCache) -> int:
    if isinstance(cache, InMemoryCache):
        return len(cache)
    return len(list(cache.store.yield_keys()))


@pytest.mark.parametrize("kind", [InMemoryCache, MetasoStoreCache])
def test_the_tool_and_retriever_share_a_cache_for_the_same_request(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, kind: type[Any]
) -> None:
    cache = InMemoryCache() if kind is InMemoryCache else MetasoStoreCache(InMemoryByteStore())
    tool = make(MetasoSearchTool, size=3, cache=cache)
    retriever = make(MetasoRetriever, k=3, cache=cache)
    documents = invoke(retriever, "秘塔")
    assert invoke(retriever, "秘塔") == documents
    message = invoke(tool, tool_call(tool.name, query="秘塔"))
    assert message.artifact == documents
    assert "秘塔" in message.content
    assert emulator.stats.requests == 1
    assert entries(cache) == 1


def test_a_different_base_url_is_a_different_entry(make: Make, emulator: MetasoEmulator) -> None:
    cache = InMemoryCache()
    retriever = make(MetasoRetriever, cache=cache)
    retriever.invoke("q")
    moved = retriever.model_copy(update={"base_url": "https://metaso.cn/api/v1"})
    moved.invoke("q")
    assert emulator.stats.requests == 2
    assert len(cache) == 2


def test_an_expired_entry_sends_the_request_again(make: Make, emulator: MetasoEmulator) -> None:
    clock = FakeClock()
    retriever = make(MetasoRetriever, cache=InMemoryCache(ttl=60, clock=clock))
    retriever.invoke("q")
    clock.advance(59)
    retriever.invoke("q")
    assert emulator.stats.requests == 1
    clock.advance(2)
    retriever.invoke("q")
    assert emulator.stats.requests == 2


def test_errors_are_not_cached(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    cache = RecordingCache()
    retriever = make(MetasoRetriever, cache=cache, max_retries=0)
    emulator.script(Fault.status(503))
    with pytest.raises(MetasoServerError):
        invoke(retriever, "q")
    emulator.script(Fault.business_error(1000, "参数错误"))
    with pytest.raises(Exception, match="参数错误"):
        invoke(retriever, "q")
    emulator.script(Fault.garbage())
    with pytest.raises(Exception, match="HTML page"):
        invoke(retriever, "q")
    assert cache.store == {}
    docs = invoke(retriever, "q")  # the next call asks the server, and now caches
    assert docs
    assert emulator.stats.requests == 4
    assert len(cache.store) == 1


def test_cache_keys_are_the_request_and_never_hold_the_api_key(make: Make) -> None:
    cache = RecordingCache()
    retriever = make(MetasoRetriever, k=2, scope="scholar", cache=cache)
    retriever.invoke("大语言模型")
    assert cache.keys
    for key in cache.keys:
        assert TEST_KEY not in key
        assert "大语言模型" in key
        assert "scholar" in key
        assert "https://api.302.ai/metaso" in key
        assert "search" in key
    assert cache.store
    assert TEST_KEY not in json.dumps(cache.store, ensure_ascii=False)  # nor the values


def test_a_failing_cache_backend_does_not_fail_the_search(
    make: Make, emulator: MetasoEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    retriever = make(MetasoRetriever, k=2, cache=FailingCache())
    with caplog.at_level(logging.WARNING, logger="langchain_metaso"):
        docs = retriever.invoke("q")
    assert len(docs) == 2
    assert emulator.stats.requests == 1
    assert "cache server down" in caplog.text


def test_an_instance_with_a_cache_survives_deepcopy_sharing_it(make: Make) -> None:
    cache = InMemoryCache()
    retriever = make(MetasoRetriever, cache=cache)
    clone = copy.deepcopy(retriever)
    assert clone.cache is cache


def test_reader_formats_sharing_a_cache_do_not_collide(
    make: Make, emulator: MetasoEmulator
) -> None:
    cache = InMemoryCache()
    as_json = make(MetasoReaderTool, cache=cache, reader_format="json")
    as_text = make(MetasoReaderTool, cache=cache, reader_format="text")
    url = "https://example.com/a"
    first = as_json.invoke({"url": url})
    second = as_text.invoke({"url": url})
    assert isinstance(first, str)
    assert isinstance(second, str)
    assert emulator.stats.requests == 2
    assert len(cache) == 2


def test_a_cache_entry_that_no_longer_parses_is_a_miss(
    make: Make, emulator: MetasoEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    cache = InMemoryCache()
    retriever = make(MetasoRetriever, k=2, cache=cache)
    retriever.invoke("q")
    for key in list(cache._entries):
        cache.set(key, {"unexpected": "shape"})  # e.g. written by another version
    docs = retriever.invoke("q")
    assert len(docs) == 2
    assert emulator.stats.requests == 2
    assert "did not parse" in caplog.text


def test_a_sync_only_cache_is_used_off_the_event_loop(make: Make, emulator: MetasoEmulator) -> None:
    cache = SyncOnlyCache()
    retriever = make(MetasoRetriever, cache=cache)

    async def twice() -> int:
        await retriever.ainvoke("秘塔")
        await retriever.ainvoke("秘塔")
        return threading.get_ident()

    loop_thread = asyncio.run(twice())
    assert len(emulator.requests) == 1  # the second call was served from the cache
    assert cache.threads
    assert loop_thread not in cache.threads


# --- on Redis -------------------------------------------------------------------------


def test_an_unreachable_redis_does_not_fail_the_search(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    retriever = make(MetasoRetriever, k=2, cache=MetasoStoreCache.from_redis_url(dead))
    assert len(invoke(retriever, "秘塔")) == 2
    assert len(emulator.requests) == 1
    assert "Metaso cache get failed" in caplog.text


def test_a_second_process_gets_the_first_ones_search_from_redis(
    emulator: MetasoEmulator, emulator_url: str, redis_url: str
) -> None:
    first = run_elsewhere(
        search_with_cache, base_url=emulator_url, redis_url=redis_url, query="秘塔"
    )
    assert len(emulator.requests) == 1
    second = run_elsewhere(
        search_with_cache, base_url=emulator_url, redis_url=redis_url, query="秘塔", use_async=True
    )
    assert len(emulator.requests) == 1  # the second process sent nothing
    assert second == first
    assert "秘塔" in first["content"]
    assert len(first["urls"]) == 3
