"""The retry policy: what is retried, after how long, and within which limits (total_timeout).

Time limits are checked on a fake clock (the ``clock`` fixture): a server that never answers
or trickles bytes moves the clock as the real one would move, and the tests read the clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import FakeClock

from langchain_metaso import MetasoRetriever, MetasoServerError, MetasoTimeoutError
from langchain_metaso._http.retry import MAX_BACKOFF, MAX_RETRY_AFTER, RetryPolicy
from langchain_metaso.errors import MetasoAuthenticationError, MetasoRateLimitError
from langchain_metaso.testing import load_seed_response

Invoke = Callable[..., Any]


def policy(**overrides: Any) -> RetryPolicy:
    settings: dict[str, Any] = {
        "max_retries": 2,
        "backoff": 0.5,
        "timeout": 30.0,
        "total_timeout": 60.0,
        **overrides,
    }
    return RetryPolicy(**settings)


def server_error(retry_after: float | None = None) -> MetasoServerError:
    return MetasoServerError("x", status_code=503, endpoint="search", retry_after=retry_after)


# --- the policy on its own -------------------------------------------------------------


def test_transient_errors_are_retried_and_others_are_not() -> None:
    assert policy().retry_delay(server_error(), 0) is not None
    assert policy().retry_delay(MetasoTimeoutError("t", endpoint="search"), 0) is not None
    limited = MetasoRateLimitError("r", status_code=429, endpoint="search")
    assert policy().retry_delay(limited, 0) is not None
    wrong_key = MetasoAuthenticationError("k", status_code=401, endpoint="search")
    assert policy().retry_delay(wrong_key, 0) is None


def test_retries_stop_after_max_retries() -> None:
    assert policy(max_retries=2).retry_delay(server_error(), 1) is not None
    assert policy(max_retries=2).retry_delay(server_error(), 2) is None
    assert policy(max_retries=0).retry_delay(server_error(), 0) is None


def test_retry_after_sets_the_wait_unless_it_is_too_long() -> None:
    assert policy().retry_delay(server_error(retry_after=7), 0) == 7
    assert policy().retry_delay(server_error(retry_after=MAX_RETRY_AFTER + 1), 0) is None


def test_backoff_doubles_with_equal_jitter_and_is_capped() -> None:
    for attempt in range(8):
        ceiling = min(MAX_BACKOFF, 0.5 * 2**attempt)
        delays = [policy(max_retries=9).retry_delay(server_error(), attempt) for _ in range(50)]
        assert all(d is not None and ceiling / 2 <= d <= ceiling for d in delays)


def test_attempt_timeout_never_reaches_past_the_deadline(clock: FakeClock) -> None:
    rules = policy(timeout=30, total_timeout=60)
    deadline = rules.deadline(clock.now)
    assert rules.attempt_timeout(deadline) == 30
    clock.advance(45)
    assert rules.attempt_timeout(deadline) == pytest.approx(15)
    assert rules.attempt_timeout(deadline, delay=10) == pytest.approx(5)
    assert policy(total_timeout=None).deadline(clock.now) is None


def test_a_retry_that_cannot_finish_in_time_is_not_started(clock: FakeClock) -> None:
    rules = policy(timeout=30, total_timeout=60)
    deadline = rules.deadline(clock.now)
    assert rules.fits(10, deadline)
    assert not rules.fits(59.5, deadline)
    assert policy(total_timeout=None).fits(3600, None)


# --- total_timeout through the whole stack -------------------------------------------


def never_answers(clock: FakeClock, attempts: list[float]) -> httpx.MockTransport:
    """A server that accepts and never answers: each attempt waits out its read timeout."""

    def handler(request: httpx.Request) -> httpx.Response:
        read = request.extensions["timeout"]["read"]
        attempts.append(read)
        clock.advance(read)
        raise httpx.ReadTimeout("timed out", request=request)

    return httpx.MockTransport(handler)


class Trickle(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A server that answers 200 and then sends one byte every 10 s, for ever (bounded)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent = 0

    def _byte(self) -> bytes:
        self.sent += 1
        self.clock.advance(10)
        return b" "

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        trickle = self

        class Stream(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for _ in range(1000):
                    yield trickle._byte()

        return httpx.Response(200, headers={"content-type": "application/json"}, stream=Stream())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        trickle = self

        class Stream(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                for _ in range(1000):
                    yield trickle._byte()
                    await asyncio.sleep(0)

        return httpx.Response(200, headers={"content-type": "application/json"}, stream=Stream())


def fails(invoke: Invoke, retriever: MetasoRetriever) -> BaseException:
    with pytest.raises(Exception) as caught:
        invoke(retriever, "秘塔")
    return caught.value


def retriever_on(transport: Any, **settings: Any) -> MetasoRetriever:
    return MetasoRetriever(metaso_api_key="test-key", transport=transport, **settings)


def test_a_server_that_never_answers_is_given_up_on_at_total_timeout(
    clock: FakeClock, invoke: Invoke
) -> None:
    attempts: list[float] = []
    start = clock.now
    retriever = retriever_on(
        never_answers(clock, attempts), timeout=30, total_timeout=60, max_retries=5
    )
    error = fails(invoke, retriever)
    assert isinstance(error, MetasoTimeoutError)
    # Two attempts fit in 60 s; the second is given only what was left.
    assert len(attempts) == 2
    assert attempts[0] == 30
    assert attempts[1] < 30
    assert clock.now - start <= 60
    assert "total_timeout=60 s" in str(error)
    assert "Raise total_timeout" in str(error)


def test_without_total_timeout_every_retry_runs(clock: FakeClock, invoke: Invoke) -> None:
    attempts: list[float] = []
    retriever = retriever_on(
        never_answers(clock, attempts), timeout=30, total_timeout=None, max_retries=3
    )
    error = fails(invoke, retriever)
    assert isinstance(error, MetasoTimeoutError)
    assert attempts == [30, 30, 30, 30]
    assert "timeout=30 s for each step of an attempt" in str(error)
    assert "total_timeout" not in str(error)


def test_a_trickling_server_cannot_hold_a_call_past_total_timeout(
    clock: FakeClock, invoke: Invoke
) -> None:
    trickle = Trickle(clock)
    start = clock.now
    retriever = retriever_on(trickle, timeout=30, total_timeout=60)
    error = fails(invoke, retriever)
    assert isinstance(error, MetasoTimeoutError)
    assert "total_timeout" in str(error)
    # Each byte comes within the read timeout, so only the deadline stops it: about
    # six bytes of a thousand, and never more than one byte's wait past the deadline.
    assert trickle.sent <= 7
    assert clock.now - start <= 60 + 10


def test_a_retry_after_longer_than_what_is_left_is_not_waited(
    clock: FakeClock, invoke: Invoke
) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, headers={"retry-after": "59.5"}, json={"message": "busy"})

    start = clock.now
    error = fails(invoke, retriever_on(httpx.MockTransport(handler), total_timeout=60))
    assert isinstance(error, MetasoTimeoutError)
    assert isinstance(error.__cause__, MetasoServerError)
    assert "no time left for another attempt within total_timeout=60 s" in str(error)
    assert len(calls) == 1
    assert clock.now == start  # it did not sleep the 59.5 s first


def test_answers_in_time_are_not_affected(clock: FakeClock, invoke: Invoke) -> None:
    seed = load_seed_response()

    def handler(request: httpx.Request) -> httpx.Response:
        clock.advance(5)
        return httpx.Response(200, json=seed)

    docs = invoke(retriever_on(httpx.MockTransport(handler), total_timeout=6), "秘塔")
    assert len(docs) == 10
