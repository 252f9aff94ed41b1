"""Ray worker processes sharing one Redis: a ``RedisCreditBudget``, a ``MetasoStoreCache``
and a ``RedisRateLimiter`` hold for all of them together."""

from __future__ import annotations

import os
import re
import sys
import time
from collections import Counter
from types import ModuleType
from typing import Any

import pytest
from ray_support import RAY_HINT, import_ray
from redis_support import TEST_KEY, meet

from langchain_metaso import (
    MetasoBudgetExceededError,
    MetasoRetriever,
    MetasoStoreCache,
    RedisCreditBudget,
    RedisRateLimiter,
)
from langchain_metaso.testing import MetasoEmulator

WORKERS = 4
RATE = 10.0  # requests a second, for all workers together


def search_each(
    base_url: str, shared: dict[str, Any], queries: list[str], barrier: str
) -> dict[str, Any]:
    """Runs in a Ray worker: each query searched through the shared Redis pieces. Its
    process id, and how many searches were answered and refused."""
    retriever = MetasoRetriever(metaso_api_key=TEST_KEY, base_url=base_url, k=3, **shared)
    meet(shared["cache"].store.connection.url, barrier, WORKERS)  # all at once
    counts: dict[str, Any] = {"pid": os.getpid(), "answered": 0, "refused": 0}
    for query in queries:
        try:
            retriever.invoke(query)
            counts["answered"] += 1
        except MetasoBudgetExceededError:
            counts["refused"] += 1
    return counts


# Hang guard only: four Ray workers starting on a loaded 2-core machine (another worker's
# cluster beside them) took over the suite's 120 s once.
@pytest.mark.timeout(600)
def test_ray_workers_share_one_budget_one_cache_and_one_rate(
    ray_cluster: ModuleType, redis_url: str, emulator: MetasoEmulator, emulator_url: str
) -> None:
    queries = [f"问题 {number}" for number in range(12)]
    shared = {
        "cache": MetasoStoreCache.from_redis_url(redis_url, ttl=600),
        "rate_limiter": RedisRateLimiter(redis_url, requests_per_second=RATE),
        "credit_budget": RedisCreditBudget(redis_url, credits=24),  # 8 searches of 3
    }
    ray = ray_cluster
    task = ray.remote(search_each).options(num_cpus=2 / WORKERS)
    started = time.monotonic()
    # First each worker searches its share of the queries, then every worker all of them.
    shares = [queries[worker::WORKERS] for worker in range(WORKERS)]
    first = ray.get([task.remote(emulator_url, shared, s, "first") for s in shares])
    again = ray.get([task.remote(emulator_url, shared, queries, "again") for _ in shares])
    elapsed = time.monotonic() - started

    assert len({counts["pid"] for counts in first}) == WORKERS  # met at once: 4 processes
    sent = Counter(request.json()["q"] for request in emulator.requests)
    assert set(sent.values()) == {1}  # each distinct query sent once, the rest from the cache
    assert len(sent) <= 8
    assert shared["credit_budget"].spent == 3 * len(sent) <= 24
    # The second time round every worker got every answer that was paid for, and only those.
    assert [counts["answered"] for counts in again] == [len(sent)] * WORKERS
    # A token bucket of one: the requests took at least (n - 1) / RATE seconds.
    assert elapsed >= (len(sent) - 1) / RATE


def test_without_ray_the_tests_skip_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=re.escape(RAY_HINT)):
        import_ray()


def test_without_ray_ci_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=re.escape(RAY_HINT)):
        import_ray()
