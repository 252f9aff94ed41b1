"""``MetasoStoreCache``: a cache on any LangChain ``ByteStore``, Redis included, shared
by processes."""

from __future__ import annotations

import asyncio
import json
import pickle
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import Make
from langchain_core.stores import ByteStore, InMemoryByteStore
from redis_support import (
    INSTALL_HINT,
    free_port,
    redis_server_binary,
    run_elsewhere,
    search_with_cache,
)

from langchain_metaso import MetasoRetriever, MetasoSearchTool, MetasoStoreCache
from langchain_metaso._redis import RedisByteStore, RedisConnection
from langchain_metaso.cache import MetasoAsyncCache, MetasoCache, cache_key
from langchain_metaso.testing import MetasoEmulator

KEY = cache_key("search", "https://api.302.ai/metaso", {"q": "秘塔", "size": 3})
ANSWER = {"webpages": [{"title": "秘塔AI搜索", "link": "https://metaso.cn"}], "credits": 3}
# The key rule of LangChain's LocalFileStore (langchain_classic.storage).
FILE_SAFE = re.compile(r"^[a-zA-Z0-9_.\-/]+$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


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


# --- any store ------------------------------------------------------------------------


def test_an_answer_comes_back_from_any_store(store: ByteStore) -> None:
    cache = MetasoStoreCache(store)
    assert cache.get(KEY) is None
    cache.set(KEY, ANSWER)
    assert cache.get(KEY) == ANSWER
    assert isinstance(cache, MetasoCache)
    assert isinstance(cache, MetasoAsyncCache)


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
def test_bad_settings_are_rejected(ttl: float, namespace: str) -> None:
    with pytest.raises(ValueError, match=r"ttl|namespace"):
        MetasoStoreCache(InMemoryByteStore(), ttl, namespace=namespace)


def test_the_tool_and_retriever_share_a_store_cache(
    make: Make, emulator: MetasoEmulator, invoke: Any
) -> None:
    cache = MetasoStoreCache(InMemoryByteStore())
    tool = make(MetasoSearchTool, size=3, cache=cache)
    retriever = make(MetasoRetriever, k=3, cache=cache)
    first = invoke(retriever, "秘塔")
    assert invoke(retriever, "秘塔") == first
    assert "秘塔" in invoke(tool, {"query": "秘塔"})
    assert len(emulator.requests) == 1
    assert len(list(cache.store.yield_keys())) == 1


# --- Redis ----------------------------------------------------------------------------


def test_from_redis_url_lets_redis_expire_the_keys_too(redis_url: str) -> None:
    cache = MetasoStoreCache.from_redis_url(redis_url, ttl=30, namespace="app")
    cache.set(KEY, ANSWER)
    client = redis.Redis.from_url(redis_url)
    [key] = client.keys("app/search/*")
    assert 0 < client.pttl(key) <= 30_000
    assert cache.get(KEY) == ANSWER
    client.close()


def test_a_cache_on_redis_survives_pickling_to_the_same_server(redis_url: str) -> None:
    cache = MetasoStoreCache.from_redis_url(redis_url, ttl=30)
    cache.set(KEY, ANSWER)
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.get(KEY) == ANSWER
    assert clone.ttl == 30


def test_the_redis_password_stays_out_of_the_repr() -> None:
    cache = MetasoStoreCache.from_redis_url("redis://:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in repr(cache)
    assert "127.0.0.1:6379" in repr(cache)


def test_from_redis_url_without_redis_py_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=re.escape('pip install "langchain-metaso[redis]"')):
        MetasoStoreCache.from_redis_url("redis://127.0.0.1:6379/0")


def test_an_unreachable_redis_does_not_fail_the_search(
    make: Make, emulator: MetasoEmulator, invoke: Any, caplog: pytest.LogCaptureFixture
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


# --- the Redis test server ------------------------------------------------------------


def test_without_redis_server_the_tests_skip_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=re.escape(INSTALL_HINT)):
        redis_server_binary()


def test_without_redis_server_ci_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=re.escape(INSTALL_HINT)):
        redis_server_binary()
