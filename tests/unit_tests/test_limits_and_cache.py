"""What repeated and concurrent calls cost: the result cache, the in-flight bound, the
rate limiter, and what importing the package loads. Behaviour only: counts at the
server, never wall-clock limits."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from typing import Any

import pytest
from conftest import TEST_KEY, Make
from langchain_core.rate_limiters import BaseRateLimiter

from langchain_metaso import (
    InMemoryCache,
    MetasoConfig,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoServerError,
)
from langchain_metaso._http import Call, MetasoClient
from langchain_metaso.testing import Fault, MetasoEmulator


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingCache:
    """A dict-backed cache that records every key it is asked about."""

    def __init__(self) -> None:
        self.store: dict[str, Any] = {}
        self.keys: list[str] = []

    def get(self, key: str) -> Any | None:
        self.keys.append(key)
        return self.store.get(key)

    def set(self, key: str, value: Any) -> None:
        self.keys.append(key)
        self.store[key] = json.loads(json.dumps(value))  # as a JSON backend would


class BrokenCache:
    def get(self, key: str) -> Any | None:
        raise ConnectionError("cache server down")

    def set(self, key: str, value: Any) -> None:
        raise ConnectionError("cache server down")


class CountingRateLimiter(BaseRateLimiter):
    def __init__(self) -> None:
        self.sync_calls = 0
        self.async_calls = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.sync_calls += 1
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.async_calls += 1
        return True


# --- the cache ---------------------------------------------------------------------


def test_a_cache_hit_sends_no_request(make: Make, emulator: MetasoEmulator, invoke: Any) -> None:
    retriever = make(MetasoRetriever, k=3, cache=InMemoryCache())
    first = invoke(retriever, "秘塔 缓存")
    second = invoke(retriever, "秘塔 缓存")
    assert emulator.stats.requests == 1
    assert [d.page_content for d in second] == [d.page_content for d in first]
    assert [d.metadata for d in second] == [d.metadata for d in first]
    invoke(retriever, "另一个 问题")
    assert emulator.stats.requests == 2


def test_tool_and_retriever_share_a_cache_for_the_same_request(
    make: Make, emulator: MetasoEmulator
) -> None:
    cache = InMemoryCache()
    tool = make(MetasoSearchTool, size=4, cache=cache)
    retriever = make(MetasoRetriever, k=4, cache=cache)
    message = tool.invoke(
        {"name": "metaso_search", "args": {"query": "q"}, "id": "1", "type": "tool_call"}
    )
    docs = retriever.invoke("q")
    assert emulator.stats.requests == 1
    assert docs == message.artifact


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
    clock.now = 59
    retriever.invoke("q")
    assert emulator.stats.requests == 1
    clock.now = 61
    retriever.invoke("q")
    assert emulator.stats.requests == 2


def test_errors_are_not_cached(make: Make, emulator: MetasoEmulator, invoke: Any) -> None:
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


def test_a_failing_cache_backend_does_not_fail_the_search(
    make: Make, emulator: MetasoEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    retriever = make(MetasoRetriever, k=2, cache=BrokenCache())
    with caplog.at_level(logging.WARNING, logger="langchain_metaso"):
        docs = retriever.invoke("q")
    assert len(docs) == 2
    assert emulator.stats.requests == 1
    assert "cache server down" in caplog.text


def test_an_instance_with_a_cache_survives_deepcopy_sharing_it(make: Make) -> None:
    import copy

    cache = InMemoryCache()
    retriever = make(MetasoRetriever, cache=cache)
    clone = copy.deepcopy(retriever)
    assert clone.cache is cache


# --- the rate limiter ----------------------------------------------------------------


def test_the_rate_limiter_is_consulted_before_every_request(
    make: Make, emulator: MetasoEmulator
) -> None:
    limiter = CountingRateLimiter()
    retriever = make(MetasoRetriever, rate_limiter=limiter)
    emulator.script(Fault.status(503, retry_after=0))
    retriever.invoke("q")  # one retry: two requests
    assert limiter.sync_calls == 2
    asyncio.run(retriever.ainvoke("q"))
    assert limiter.async_calls == 1
    assert emulator.stats.requests == 3


def test_a_cache_hit_does_not_consult_the_rate_limiter(make: Make) -> None:
    limiter = CountingRateLimiter()
    retriever = make(MetasoRetriever, rate_limiter=limiter, cache=InMemoryCache())
    retriever.invoke("q")
    retriever.invoke("q")
    assert limiter.sync_calls == 1


# --- the in-flight bound ---------------------------------------------------------------


def test_abatch_never_has_more_than_max_concurrency_in_flight(
    emulator: MetasoEmulator, emulator_url: str
) -> None:
    emulator.latency = 0.05
    retriever = MetasoRetriever(
        metaso_api_key=TEST_KEY, base_url=emulator_url, k=1, max_concurrency=4
    )
    copy_of_it = retriever.model_copy()  # copies share the bound

    async def run() -> None:
        await asyncio.gather(
            retriever.abatch([f"q{i}" for i in range(12)]),
            copy_of_it.abatch([f"r{i}" for i in range(12)]),
        )

    asyncio.run(run())
    assert emulator.stats.requests == 24
    assert 1 < emulator.stats.peak_in_flight <= 4


def test_batch_on_threads_never_has_more_than_max_concurrency_in_flight(
    emulator: MetasoEmulator, emulator_url: str
) -> None:
    emulator.latency = 0.05
    tool = MetasoSearchTool(metaso_api_key=TEST_KEY, base_url=emulator_url, max_concurrency=3)
    results = tool.batch([{"query": f"q{i}"} for i in range(12)], config={"max_concurrency": 8})
    assert all("q" in text for text in results)
    assert emulator.stats.requests == 12
    assert 1 < emulator.stats.peak_in_flight <= 3
    assert emulator.stats.connections_opened <= 3


def test_under_a_429_limit_the_default_settings_lose_no_request(
    emulator: MetasoEmulator, emulator_url: str
) -> None:
    # The server refuses beyond 16 in flight; the default bound keeps below it, and
    # the retries absorb the 429s that a race at the server's counter may still cause.
    emulator.latency = 0.02
    emulator.max_in_flight = 16
    emulator.retry_after_seconds = 0.01
    retriever = MetasoRetriever(metaso_api_key=TEST_KEY, base_url=emulator_url, k=1)
    docs = asyncio.run(retriever.abatch([f"q{i}" for i in range(64)]))
    assert len(docs) == 64
    assert all(len(found) == 1 for found in docs)
    assert emulator.stats.peak_in_flight <= 16


# --- import cost -------------------------------------------------------------------------


def test_importing_a_class_loads_only_what_it_needs() -> None:
    code = (
        "import sys, langchain_metaso\n"
        "light = sorted(m for m in sys.modules if m.startswith('langchain_metaso'))\n"
        "from langchain_metaso import MetasoSearchTool, MetasoRetriever\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('langchain_metaso'))\n"
        "print(light); print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    light, loaded = eval(out[0]), eval(out[1])
    assert light == [
        "langchain_metaso",
        "langchain_metaso._lazy",
        "langchain_metaso.errors",
        "langchain_metaso.providers",
    ]
    for optional in (
        "reader",
        "chat",
        "tools.reader",
        "tools.answer",
        "document_loaders",
        "toolkits",
        "testing",
    ):
        assert f"langchain_metaso.{optional}" not in loaded
    assert "langchain_metaso.tools.search" in loaded
    assert "langchain_metaso.retrievers" in loaded


def test_every_public_name_resolves() -> None:
    import langchain_metaso

    for name in langchain_metaso.__all__:
        assert getattr(langchain_metaso, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        langchain_metaso.Nope  # noqa: B018


def one_slot_client_and_stream_call(make: Make) -> tuple[MetasoClient, Call[Any]]:
    client = make(MetasoConfig, max_concurrency=1).client
    call: Call[Any] = Call(
        endpoint="chat/completions",
        body={"q": "秘塔", "stream": True},
        parse=lambda data: data,
        expect="events",
    )
    return client, call


def test_a_stream_holds_its_concurrency_slot_until_closed(make: Make) -> None:
    client, call = one_slot_client_and_stream_call(make)
    _, slot = client.pool.sync_lane(client.transport, client.max_concurrency)
    chunks = client.stream(call)
    next(chunks)  # the stream is open and being read
    assert not slot.acquire(blocking=False)  # a second request would wait its turn
    chunks.close()
    assert slot.acquire(blocking=False)
    slot.release()


def test_an_async_stream_holds_its_concurrency_slot_until_closed(make: Make) -> None:
    client, call = one_slot_client_and_stream_call(make)

    async def run() -> tuple[bool, bool]:
        _, slot = await client.pool.async_lane(client.transport, client.max_concurrency)
        chunks = client.astream(call)
        await anext(chunks)
        held = slot.locked()
        await chunks.aclose()
        return held, slot.locked()

    assert asyncio.run(run()) == (True, False)
