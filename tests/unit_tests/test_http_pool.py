"""The connection pool an instance and its copies share (``_http/pool.py``): connections and
their lifetime, the bound on requests in flight, event loops, and the cooldown after a 429.

Counts at the server, never wall-clock limits.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from conftest import TEST_KEY, FakeClock, Invoke, Make, Served, settle

from langchain_metaso import (
    MetasoConfig,
    MetasoRateLimitError,
    MetasoReaderTool,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoToolkit,
)
from langchain_metaso._http import Call, MetasoClient
from langchain_metaso._http.pool import MAX_COOLDOWN
from langchain_metaso.testing import Fault, MetasoEmulator

# --- connections ------------------------------------------------------------------------


def test_sequential_sync_calls_reuse_one_connection(
    served: Served, emulator: MetasoEmulator
) -> None:
    target = served(MetasoRetriever, k=2)
    for index in range(5):
        assert len(target.invoke(f"问题 {index}")) == 2
    assert emulator.stats.requests == 5
    assert emulator.stats.connections_opened == 1


@pytest.mark.asyncio
async def test_async_calls_in_one_loop_reuse_one_connection(
    served: Served, emulator: MetasoEmulator
) -> None:
    target = served(MetasoRetriever, k=2)
    for index in range(5):
        assert len(await target.ainvoke(f"问题 {index}")) == 2
    assert emulator.stats.connections_opened == 1
    await target.aclose()


def test_copies_share_the_pool(served: Served, emulator: MetasoEmulator) -> None:
    target = served(MetasoRetriever, k=2)
    target.invoke("a")
    target.model_copy(update={"k": 3}).invoke("b")
    assert emulator.stats.connections_opened == 1


def test_sync_and_async_alternate(served: Served, emulator: MetasoEmulator) -> None:
    target = served(MetasoRetriever, k=1)
    for _ in range(2):
        assert len(target.invoke("a")) == 1
        assert len(asyncio.run(target.ainvoke("b"))) == 1
    assert emulator.stats.requests == 4


@pytest.mark.asyncio
async def test_calls_inside_a_running_loop(served: Served, emulator: MetasoEmulator) -> None:
    # As in Jupyter: the loop is already running and stays up between calls.
    target = served(MetasoRetriever, k=1)
    assert len(await target.ainvoke("a")) == 1
    assert len(target.invoke("b")) == 1  # a sync call from inside the loop works too
    assert len(await target.ainvoke("c")) == 1
    assert emulator.stats.requests == 3
    await target.aclose()


# --- the bound on requests in flight -----------------------------------------------------


def batch_on_threads(target: MetasoRetriever, queries: list[str]) -> list[Any]:
    return target.batch(queries, config={"max_concurrency": 8})


def gather_on_a_loop(target: MetasoRetriever, queries: list[str]) -> list[Any]:
    async def run() -> list[Any]:
        results = await asyncio.gather(*(target.ainvoke(query) for query in queries))
        await target.aclose()
        return results

    return asyncio.run(run())


@pytest.mark.parametrize("run", [batch_on_threads, gather_on_a_loop])
def test_calls_at_once_are_bounded_by_max_concurrency(
    served: Served, emulator: MetasoEmulator, run: Callable[[MetasoRetriever, list[str]], Any]
) -> None:
    emulator.latency = 0.05
    target = served(MetasoRetriever, k=1, max_concurrency=3)
    queries = [f"查询 {i}" for i in range(8)]
    results = run(target, queries)
    assert [docs[0].metadata["query"] for docs in results] == queries
    assert emulator.stats.requests == 8
    assert 1 <= emulator.stats.connections_opened <= 3
    assert 1 < emulator.stats.peak_in_flight <= 3


def test_abatch_of_copies_never_has_more_than_max_concurrency_in_flight(
    served: Served, emulator: MetasoEmulator
) -> None:
    emulator.latency = 0.05
    retriever = served(MetasoRetriever, k=1, max_concurrency=4)
    copy_of_it = retriever.model_copy()  # copies share the bound

    async def run() -> list[list[Any]]:
        results = await asyncio.gather(
            retriever.abatch([f"q{i}" for i in range(12)]),
            copy_of_it.abatch([f"r{i}" for i in range(12)]),
        )
        await retriever.aclose()
        return results

    assert [len(found) for found in asyncio.run(run())] == [12, 12]
    assert emulator.stats.requests == 24
    assert 1 < emulator.stats.peak_in_flight <= 4
    assert emulator.stats.connections_opened <= 4


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
    _, slot = client.pool.sync_client(client.transport, client.max_concurrency)
    chunks = client.stream(call)
    next(chunks)  # the stream is open and being read
    assert not slot.acquire(blocking=False)  # a second request would wait its turn
    chunks.close()
    assert slot.acquire(blocking=False)
    slot.release()


def test_an_async_stream_holds_its_concurrency_slot_until_closed(make: Make) -> None:
    client, call = one_slot_client_and_stream_call(make)

    async def run() -> tuple[bool, bool]:
        _, slot = await client.pool.async_client(client.transport, client.max_concurrency)
        chunks = client.astream(call)
        await anext(chunks)
        held = slot.locked()
        await chunks.aclose()
        return held, slot.locked()

    assert asyncio.run(run()) == (True, False)


# --- event loops --------------------------------------------------------------------------


def test_event_loops_that_end_leave_no_connection_open(
    served: Served, emulator: MetasoEmulator
) -> None:
    # A script calling asyncio.run(retriever.ainvoke(...)) again and again, never
    # calling aclose(): each run's loop is gone afterwards, and so must be its
    # connections, or a long-running process runs out of sockets.
    target = served(MetasoRetriever, k=2)
    runs = 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # how a dropped socket closes
        for number in range(runs):
            documents = asyncio.run(target.ainvoke(f"[{number}] 事件循环"))
            assert len(documents) == 2
            assert all(f"[{number}]" in doc.metadata["title"] for doc in documents)
        gc.collect()
    assert emulator.stats.requests == runs
    assert emulator.stats.connections_opened == runs
    assert settle(emulator, 1) <= 1, f"{emulator.stats.connections_open} of {runs} still open"


def test_finished_event_loops_are_not_kept(make: Make, emulator: MetasoEmulator) -> None:
    retriever = make(MetasoRetriever, k=2)
    for _ in range(3):
        assert len(asyncio.run(retriever.ainvoke("q"))) == 2
    for _ in range(2):  # loops closed without shutting down their async generators
        loop = asyncio.new_event_loop()
        loop.run_until_complete(retriever.ainvoke("q"))
        loop.close()
    asyncio.run(retriever.ainvoke("q"))
    gc.collect()
    assert len(retriever._pool._async) == 0
    assert len(emulator.requests) == 6


# --- lifetime ---------------------------------------------------------------------------


def test_with_closes_the_connections(emulator: MetasoEmulator, emulator_url: str) -> None:
    with MetasoSearchTool(metaso_api_key=TEST_KEY, base_url=emulator_url) as tool:
        tool.invoke({"query": "秘塔"})
        assert emulator.stats.connections_open == 1
    assert settle(emulator) == 0


def test_async_with_closes_the_connections(emulator: MetasoEmulator, emulator_url: str) -> None:
    async def run() -> int:
        async with MetasoRetriever(metaso_api_key=TEST_KEY, base_url=emulator_url) as retriever:
            await retriever.ainvoke("秘塔")
            retriever.invoke("秘塔")  # a sync connection too
            assert emulator.stats.connections_open == 2
        return settle(emulator)

    assert asyncio.run(run()) == 0


def test_a_dropped_instance_leaves_no_socket_and_no_warning(
    emulator: MetasoEmulator, emulator_url: str
) -> None:
    def use_and_drop() -> None:
        reader = MetasoReaderTool(metaso_api_key=TEST_KEY, base_url=emulator_url)
        reader.invoke({"url": "https://example.com/"})

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        use_and_drop()
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert settle(emulator) == 0


def test_a_closed_instance_still_works(served: Served, emulator: MetasoEmulator) -> None:
    target = served(MetasoRetriever, k=1)
    target.close()  # before any call: nothing to close yet
    target.invoke("a")
    target.close()
    assert len(target.invoke("b")) == 1
    assert emulator.stats.requests == 2
    assert emulator.stats.connections_opened == 2  # the second call opened a new one
    target.close()
    assert settle(emulator) == 0


# --- the shared cooldown ----------------------------------------------------------------


def test_after_a_429_with_retry_after_no_copy_sends_before_it_is_over(
    clock: FakeClock, make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    first = make(MetasoRetriever, max_retries=0, k=2)
    copy = first.model_copy()
    emulator.script(Fault.status(429, retry_after=30))
    with pytest.raises(MetasoRateLimitError):
        invoke(first, "秘塔")
    sent_at = clock.now
    docs = invoke(copy, "秘塔")
    assert len(docs) == 2
    assert clock.slept == [30]  # the copy waited the server's 30 s before sending
    assert clock.now - sent_at == 30
    assert emulator.stats.requests == 2


def test_a_toolkits_tools_share_the_cooldown(
    clock: FakeClock, make: Make, emulator: MetasoEmulator
) -> None:
    search, reader, _ = make(MetasoToolkit, max_retries=0).get_tools()
    emulator.script(Fault.status(429, retry_after=12))
    assert search.invoke({"query": "秘塔"}).startswith("Metaso search failed with HTTP 429")
    reader.invoke({"url": "https://example.com/"})
    assert clock.slept == [12]


def test_a_cooldown_too_long_to_wait_refuses_at_once_without_sending(
    clock: FakeClock, make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    first = make(MetasoRetriever, max_retries=0)
    emulator.script(Fault.status(429, retry_after=3600))
    with pytest.raises(MetasoRateLimitError):
        invoke(first, "秘塔")
    with pytest.raises(MetasoRateLimitError) as caught:
        invoke(first.model_copy(), "秘塔")
    assert emulator.stats.requests == 1
    assert clock.slept == []
    # The shared cooldown is capped (MAX_COOLDOWN): one absurd Retry-After cannot block
    # the instance for good; what is left of it is what the error reports.
    assert caught.value.retry_after == MAX_COOLDOWN
    assert "not sent" in str(caught.value)
    assert f"wait {MAX_COOLDOWN:g} s" in str(caught.value)


def test_a_separate_instance_has_its_own_cooldown(
    clock: FakeClock, make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(Fault.status(429, retry_after=3600))
    with pytest.raises(MetasoRateLimitError):
        invoke(make(MetasoRetriever, max_retries=0), "秘塔")
    assert invoke(make(MetasoRetriever, k=1), "秘塔")
    assert clock.slept == []
