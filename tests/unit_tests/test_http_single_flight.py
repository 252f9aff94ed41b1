"""One request for identical calls: concurrent identical calls sharing a cache wait for one."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import Make, Served

from langchain_metaso import (
    InMemoryCache,
    MetasoAuthenticationError,
    MetasoRetriever,
    MetasoSearchTool,
    metaso_usage,
)
from langchain_metaso.testing import Fault, MetasoEmulator

CALLS = 50


@pytest.fixture(autouse=True)
def _slow_answers(emulator: MetasoEmulator) -> None:
    # Each answer takes a while, so the identical calls really overlap.
    emulator.latency = 0.2


def titles(docs: list[Any]) -> list[str]:
    return [doc.metadata["title"] for doc in docs]


def test_concurrent_identical_async_calls_make_one_request(
    served: Served, emulator: MetasoEmulator
) -> None:
    target = served(MetasoRetriever, k=3, cache=InMemoryCache())

    async def run() -> list[list[Any]]:
        return await asyncio.gather(*(target.ainvoke("秘塔") for _ in range(CALLS)))

    with metaso_usage() as usage:
        results = asyncio.run(run())
    assert emulator.stats.requests == 1
    assert len(results) == CALLS
    assert all(titles(docs) == titles(results[0]) for docs in results)
    assert len(results[0]) == 3
    assert usage.requests == 1  # sent; the others cost nothing
    assert usage.cache_hits == CALLS - 1


def test_concurrent_identical_calls_from_threads_make_one_request(
    served: Served, emulator: MetasoEmulator
) -> None:
    target = served(MetasoRetriever, k=3, cache=InMemoryCache())
    start = threading.Barrier(CALLS)

    def call(_: int) -> list[Any]:
        start.wait()
        return target.invoke("秘塔")

    with ThreadPoolExecutor(CALLS) as pool:
        results = list(pool.map(call, range(CALLS)))
    assert emulator.stats.requests == 1
    assert all(titles(docs) == titles(results[0]) for docs in results)


def test_instances_sharing_a_cache_share_the_request(
    served: Served, emulator: MetasoEmulator
) -> None:
    cache = InMemoryCache()
    first, second = (
        served(MetasoRetriever, k=3, cache=cache),
        served(MetasoRetriever, k=3, cache=cache),
    )
    tool = served(MetasoSearchTool, size=3, cache=cache)

    async def run() -> Any:
        return await asyncio.gather(
            first.ainvoke("秘塔"),
            second.ainvoke("秘塔"),
            first.model_copy().ainvoke("秘塔"),
            tool.ainvoke({"query": "秘塔"}),
        )

    *docs, text = asyncio.run(run())
    assert emulator.stats.requests == 1
    assert titles(docs[0]) == titles(docs[1]) == titles(docs[2])
    assert all(title in text for title in titles(docs[0]))


def test_followers_get_the_same_typed_error(served: Served, emulator: MetasoEmulator) -> None:
    emulator.script(Fault.status(401))
    target = served(MetasoRetriever, k=3, cache=InMemoryCache())

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(target.ainvoke("秘塔") for _ in range(CALLS)), return_exceptions=True
        )

    outcomes = asyncio.run(run())
    assert emulator.stats.requests == 1
    assert all(isinstance(outcome, MetasoAuthenticationError) for outcome in outcomes)


def test_without_a_cache_nothing_is_shared(served: Served, emulator: MetasoEmulator) -> None:
    target = served(MetasoRetriever, k=3)

    async def run() -> list[Any]:
        return await asyncio.gather(*(target.ainvoke("秘塔") for _ in range(5)))

    asyncio.run(run())
    assert emulator.stats.requests == 5


def test_different_calls_are_not_merged(served: Served, emulator: MetasoEmulator) -> None:
    target = served(MetasoRetriever, k=3, cache=InMemoryCache())

    async def run() -> list[Any]:
        return await asyncio.gather(target.ainvoke("秘塔"), target.ainvoke("秘塔", k=2))

    wide, narrow = asyncio.run(run())
    assert emulator.stats.requests == 2
    assert (len(wide), len(narrow)) == (3, 2)


def test_a_cancelled_leader_lets_a_follower_send(served: Served, emulator: MetasoEmulator) -> None:
    target = served(MetasoRetriever, k=3, cache=InMemoryCache())

    async def run() -> list[Any]:
        leader = asyncio.ensure_future(target.ainvoke("秘塔"))
        await asyncio.sleep(0.05)  # the leader is now waiting for its answer
        follower = asyncio.ensure_future(target.ainvoke("秘塔"))
        await asyncio.sleep(0.05)
        leader.cancel()
        return await follower

    docs = asyncio.run(run())
    assert len(docs) == 3
    assert emulator.stats.requests == 2


class FailsWhenCalled:
    """A cache whose every method raises at once: its ``aget``/``aset`` are plain functions
    (a sync wrapper), so they fail before there is anything to await."""

    def get(self, key: str) -> Any:
        raise ConnectionError("the cache is down")

    def set(self, key: str, value: Any) -> None:
        raise ConnectionError("the cache is down")

    aget, aset = get, set


@pytest.mark.asyncio
async def test_an_async_cache_that_fails_when_called_is_bypassed(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    retriever = make(MetasoRetriever, cache=FailsWhenCalled(), k=2)
    assert len(await retriever.ainvoke("秘塔")) == 2
    assert "Metaso cache get failed (the cache is down); going without" in caplog.text
    assert "Metaso cache set failed (the cache is down); going without" in caplog.text
