"""``RedisRateLimiter``: one request rate for every process that shares a Redis server.

Limits are checked by counting tokens granted, never by timing, except for one lower bound
on how long refilled tokens take (a slow machine only makes that longer).
"""

from __future__ import annotations

import asyncio
import pickle
import time
from typing import Any

import pytest
from conftest import Make
from redis_support import (
    finish,
    free_port,
    search_rate_limited,
    start_elsewhere,
    take_tokens,
)

from langchain_metaso import MetasoRetriever, RedisRateLimiter
from langchain_metaso.testing import MetasoEmulator

# Four tokens and a refill of one token in 2.7 hours: within a test, four is the limit.
FOUR_ONLY: dict[str, Any] = {"requests_per_second": 1e-4, "max_bucket_size": 4}


def test_two_processes_racing_share_one_limit(redis_url: str) -> None:
    racers = [
        start_elsewhere(take_tokens, redis_url=redis_url, limiter=FOUR_ONLY, tries=10, barrier="go")
        for _ in range(2)
    ]
    granted = [finish(racer) for racer in racers]
    assert sum(granted) == 4
    assert not RedisRateLimiter(redis_url, **FOUR_ONLY).acquire(blocking=False)


def test_searches_in_two_processes_are_held_to_one_limit(
    emulator: MetasoEmulator, emulator_url: str, redis_url: str
) -> None:
    workers = [
        start_elsewhere(
            search_rate_limited,
            base_url=emulator_url,
            redis_url=redis_url,
            limiter=FOUR_ONLY,
            queries=[f"q{worker}-{n}" for n in range(2)],
            barrier="go",
        )
        for worker in range(2)
    ]
    assert [finish(worker) for worker in workers] == [2, 2]
    assert len(emulator.requests) == 4
    # The processes spent the shared tokens: a fifth request here would have to wait.
    limiter = RedisRateLimiter(redis_url, **FOUR_ONLY)
    assert not limiter.acquire(blocking=False)
    assert not asyncio.run(limiter.aacquire(blocking=False))


def test_waiting_requests_go_at_the_refill_rate(redis_url: str) -> None:
    limiter = RedisRateLimiter(
        redis_url, requests_per_second=20, max_bucket_size=1, check_every_n_seconds=0.005
    )
    started = time.monotonic()
    for _ in range(5):
        assert limiter.acquire()
    # One token at once, then one each 1/20 s: at least 0.2 s (1% for clock skew).
    assert time.monotonic() - started >= 0.198


def test_async_acquire_works_in_one_event_loop_after_another(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url, requests_per_second=1e-4, max_bucket_size=2)
    assert asyncio.run(limiter.aacquire())
    assert asyncio.run(limiter.aacquire())
    assert not asyncio.run(limiter.aacquire(blocking=False))


def test_separate_keys_are_separate_limits(redis_url: str) -> None:
    one = RedisRateLimiter(redis_url, key="metaso/one", requests_per_second=1e-4)
    two = RedisRateLimiter(redis_url, key="metaso/two", requests_per_second=1e-4)
    assert one.acquire(blocking=False)
    assert not one.acquire(blocking=False)
    assert two.acquire(blocking=False)


def test_a_pickled_limiter_shares_the_bucket(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url, **FOUR_ONLY)
    clone = pickle.loads(pickle.dumps(limiter))
    assert sum(lim.acquire(blocking=False) for lim in [limiter, clone] * 3) == 4
    assert repr(clone) == repr(limiter)


def test_an_unreachable_redis_lets_requests_through_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", requests_per_second=1)
    assert limiter.acquire()
    assert asyncio.run(limiter.aacquire())
    assert caplog.text.count("Metaso rate limiter: Redis failed") == 2


def test_the_retriever_waits_for_the_limiter(redis_url: str, make: Make) -> None:
    limiter = RedisRateLimiter(redis_url, **FOUR_ONLY)
    retriever = make(MetasoRetriever, k=1, rate_limiter=limiter)
    assert len(retriever.batch(["a", "b", "c"])) == 3
    assert limiter.acquire(blocking=False)  # the fourth and last token
    assert not limiter.acquire(blocking=False)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"requests_per_second": 0}, "requests_per_second"),
        ({"requests_per_second": 1, "max_bucket_size": 0.5}, "max_bucket_size"),
        ({"requests_per_second": 1, "check_every_n_seconds": 0}, "check_every_n_seconds"),
    ],
)
def test_bad_settings_are_rejected(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RedisRateLimiter("redis://127.0.0.1:6379/0", **settings)
