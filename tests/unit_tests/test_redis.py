"""Redis under ``MetasoStoreCache.from_redis_url``, ``RedisRateLimiter`` and
``RedisCreditBudget`` (``_redis.py``): the connection they hold (pickled as its URL, shown
without its password, needing redis-py), the byte store whose keys Redis expires, one
budget spent by several processes, and the test session's own server."""

from __future__ import annotations

import pickle
import re
import sys
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis_support import (
    INSTALL_HINT,
    finish,
    free_port,
    redis_server_binary,
    search_on_budget,
    start_elsewhere,
)

from langchain_metaso import MetasoStoreCache, RedisCreditBudget, RedisRateLimiter
from langchain_metaso._redis import RedisByteStore, RedisConnection, masked_url
from langchain_metaso.cache import cache_key
from langchain_metaso.testing import MetasoEmulator

KEY = cache_key("search", "https://api.302.ai/metaso", {"q": "秘塔", "size": 3})
ANSWER = {"webpages": [{"title": "秘塔AI搜索", "link": "https://metaso.cn"}], "credits": 3}

# What holds a Redis connection, and what its repr shows besides the server.
USERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "cache": (MetasoStoreCache.from_redis_url, "127.0.0.1:6379"),
    "rate limiter": (
        lambda url: RedisRateLimiter(url, requests_per_second=5),
        "requests_per_second=5",
    ),
    "budget": (lambda url: RedisCreditBudget(url, credits=5), "credits=5"),
}


# --- the connection ------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
def test_the_redis_password_stays_out_of_the_repr(user: str) -> None:
    build, shown = USERS[user]
    built = build("redis://user:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in repr(built)
    assert shown in repr(built)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user:pw@host:6379/0", "redis://***@host:6379/0"),
        ("redis://host/0?password=pw", "redis://host/0?password=***"),
        ("redis://host/0?db=1&pass%77ord=pw&x=y", "redis://host/0?db=1&pass%77ord=***&x=y"),
        ("rediss://u:pw@host/0?password=pw", "rediss://***@host/0?password=***"),
        ("redis://[::1/0?password=pw", "***"),  # not a URL: nothing of it is shown
    ],
)
def test_a_redis_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert masked_url(url) == shown


@pytest.mark.parametrize("user", USERS)
def test_without_redis_py_it_says_what_to_install(
    user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    build, _ = USERS[user]
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=re.escape('pip install "langchain-metaso[redis]"')):
        build("redis://127.0.0.1:6379/0")


def test_a_cache_on_redis_survives_pickling_to_the_same_server(redis_url: str) -> None:
    cache = MetasoStoreCache.from_redis_url(redis_url, ttl=30)
    cache.set(KEY, ANSWER)
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.get(KEY) == ANSWER
    assert clone.ttl == 30


def test_a_pickled_connection_keeps_its_options(redis_url: str) -> None:
    connection = RedisConnection(redis_url, socket_timeout=5)
    clone = pickle.loads(pickle.dumps(connection))
    assert (clone.url, clone.options) == (connection.url, connection.options)
    assert clone.options["socket_timeout"] == 5
    assert clone.options["socket_connect_timeout"] == 2.0  # the short default stays
    assert clone.client.ping()


# --- the byte store --------------------------------------------------------------------


def test_from_redis_url_lets_redis_expire_the_keys_too(redis_url: str) -> None:
    cache = MetasoStoreCache.from_redis_url(redis_url, ttl=30, namespace="app")
    cache.set(KEY, ANSWER)
    client = redis.Redis.from_url(redis_url)
    [key] = client.keys("app/search/*")
    assert 0 < client.pttl(key) <= 30_000
    assert cache.get(KEY) == ANSWER
    client.close()


def test_a_key_prefix_is_taken_literally(redis_url: str) -> None:
    store = RedisByteStore(RedisConnection(redis_url))
    store.mset([("a*/1", b"x"), ("ab/2", b"y"), ("a[b]/3", b"z")])
    assert list(store.yield_keys(prefix="a*")) == ["a*/1"]
    assert list(store.yield_keys(prefix="a[b]")) == ["a[b]/3"]
    assert sorted(store.yield_keys()) == ["a*/1", "a[b]/3", "ab/2"]


def test_nothing_to_read_or_delete_asks_nothing_of_redis() -> None:
    store = RedisByteStore(RedisConnection(f"redis://127.0.0.1:{free_port()}/0"))
    assert store.mget([]) == []
    store.mdelete([])  # no server listens there: a command would fail


# --- one budget, several processes -----------------------------------------------------


def test_processes_sharing_a_redis_budget_send_only_what_it_can_pay(
    redis_url: str, emulator: MetasoEmulator, emulator_url: str
) -> None:
    """4 processes, 20 calls each at 3 credits, 30 credits: at most 10 calls are sent."""
    processes = [
        start_elsewhere(
            search_on_budget,
            base_url=emulator_url,
            redis_url=redis_url,
            credits=30,
            calls=20,
            barrier="start",
            parties=4,
        )
        for _ in range(4)
    ]
    counts = [finish(process) for process in processes]
    sent = sum(count["sent"] for count in counts)
    assert sum(count["refused"] for count in counts) == 80 - sent
    assert 0 < sent == len(emulator.requests) <= 10  # the refused ones sent nothing
    assert RedisCreditBudget(redis_url, credits=30).spent == 3 * sent


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
