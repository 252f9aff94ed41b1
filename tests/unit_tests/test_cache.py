"""The result cache: the in-memory LRU/TTL store, and its use by every public class."""

from __future__ import annotations

import copy
import pickle
import threading

import pytest

from langchain_metaso.cache import InMemoryCache, MetasoCache, cache_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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
