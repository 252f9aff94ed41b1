"""The connection pool an instance and its copies share: connections, their lifetime, and
the cooldown after a 429."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import FakeClock

from langchain_metaso import (
    MetasoRateLimitError,
    MetasoReaderTool,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoToolkit,
)
from langchain_metaso.testing import Fault, MetasoEmulator

Invoke = Callable[..., Any]
KEY = "test-key"


@pytest.fixture
def served() -> Iterator[tuple[MetasoEmulator, str]]:
    emulator = MetasoEmulator(api_key=KEY)
    with emulator.serve() as base_url:
        yield emulator, base_url


def settle(emulator: MetasoEmulator) -> int:
    """Open connections at the emulator once closings have reached it."""
    for _ in range(100):
        if emulator.stats.connections_open == 0:
            break
        time.sleep(0.02)
    return emulator.stats.connections_open


# --- the shared cooldown ----------------------------------------------------------------


def test_after_a_429_with_retry_after_no_copy_sends_before_it_is_over(
    clock: FakeClock, make: Any, emulator: MetasoEmulator, invoke: Invoke
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
    clock: FakeClock, make: Any, emulator: MetasoEmulator
) -> None:
    search, reader, _ = make(MetasoToolkit, max_retries=0).get_tools()
    emulator.script(Fault.status(429, retry_after=12))
    assert search.invoke({"query": "秘塔"}).startswith("Metaso search failed with HTTP 429")
    reader.invoke({"url": "https://example.com/"})
    assert clock.slept == [12]


def test_a_cooldown_too_long_to_wait_refuses_at_once_without_sending(
    clock: FakeClock, make: Any, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    first = make(MetasoRetriever, max_retries=0)
    emulator.script(Fault.status(429, retry_after=3600))
    with pytest.raises(MetasoRateLimitError):
        invoke(first, "秘塔")
    with pytest.raises(MetasoRateLimitError) as caught:
        invoke(first.model_copy(), "秘塔")
    assert emulator.stats.requests == 1
    assert clock.slept == []
    assert caught.value.retry_after == 3600
    assert "not sent" in str(caught.value)
    assert "wait 3600 s" in str(caught.value)


def test_a_separate_instance_has_its_own_cooldown(
    clock: FakeClock, make: Any, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(Fault.status(429, retry_after=3600))
    with pytest.raises(MetasoRateLimitError):
        invoke(make(MetasoRetriever, max_retries=0), "秘塔")
    assert invoke(make(MetasoRetriever, k=1), "秘塔")
    assert clock.slept == []


# --- lifetime ---------------------------------------------------------------------------


def test_with_closes_the_connections(served: tuple[MetasoEmulator, str]) -> None:
    emulator, base_url = served
    with MetasoSearchTool(metaso_api_key=KEY, base_url=base_url) as tool:
        tool.invoke({"query": "秘塔"})
        assert emulator.stats.connections_open == 1
    assert settle(emulator) == 0


def test_async_with_closes_the_connections(served: tuple[MetasoEmulator, str]) -> None:
    emulator, base_url = served

    async def run() -> int:
        async with MetasoRetriever(metaso_api_key=KEY, base_url=base_url) as retriever:
            await retriever.ainvoke("秘塔")
            retriever.invoke("秘塔")  # a sync connection too
            assert emulator.stats.connections_open == 2
        return settle(emulator)

    assert asyncio.run(run()) == 0


def test_a_dropped_instance_leaves_no_socket_and_no_warning(
    served: tuple[MetasoEmulator, str],
) -> None:
    emulator, base_url = served

    def use_and_drop() -> None:
        reader = MetasoReaderTool(metaso_api_key=KEY, base_url=base_url)
        reader.invoke({"url": "https://example.com/"})

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        use_and_drop()
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert settle(emulator) == 0


def test_a_closed_instance_still_works(served: tuple[MetasoEmulator, str]) -> None:
    emulator, base_url = served
    retriever = MetasoRetriever(metaso_api_key=KEY, base_url=base_url, k=1)
    retriever.close()
    assert len(retriever.invoke("秘塔")) == 1
    retriever.close()
    assert settle(emulator) == 0
