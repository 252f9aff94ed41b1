"""The cache in front of a call: one request for identical calls (while a call is in
flight, an identical one waits for it), and cache calls bounded by the call's deadline.

"Identical" means the same cache key (endpoint, base URL, answer format and body) on the
same cache object and the same API key, so it spans an instance, its copies and every
instance sharing its cache and key, in this process; without a cache nothing is shared.
Followers get the leader's decoded answer, or their own copy of its error; only the
leader spends credits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import hashlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretStr

from langchain_metaso._http.body import time_left
from langchain_metaso.cache import InMemoryCache, MetasoCache

__all__ = ["Abandoned", "Flight", "acache_call", "cache_call", "join"]

logger = logging.getLogger("langchain_metaso")
# Sync cache calls that must finish within total_timeout run here, so that a cache that
# does not answer (a Redis that accepts and never replies) is given up on, not waited for.
_CACHE_THREADS = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="metaso-cache")
_SKIPPED = "Metaso cache: skipped, it did not answer within total_timeout"
_FAILED = "Metaso cache %s failed (%s); going without"

_lock = threading.Lock()
_flights: dict[tuple[int, str], Flight] = {}


class Abandoned(Exception):
    """The leader was cancelled or interrupted: a follower must send the call itself."""


class Flight:
    """One call in flight. Its leader sets ``answer`` inside ``with flight:``; leaving the
    block hands the answer, or the error it left with, to every follower."""

    def __init__(self, slot: tuple[int, str]) -> None:
        self.answer: Any = None
        self._slot = slot
        # Resolved with the error the leader left with (None: it answered). Running, so
        # that a cancelled async follower cannot cancel it for the others.
        self._done: concurrent.futures.Future[BaseException | None] = concurrent.futures.Future()
        self._done.set_running_or_notify_cancel()

    def __enter__(self) -> Flight:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        with _lock:
            del _flights[self._slot]
        self._done.set_result(exc)

    def wait(self) -> Any:
        """Block until the leader is done; its answer, or its error raised."""
        return self._outcome(self._done.result())

    async def wait_async(self) -> Any:
        """``wait`` without blocking the event loop (the leader may be in any thread)."""
        return self._outcome(await asyncio.wrap_future(self._done))

    def _outcome(self, error: BaseException | None) -> Any:
        if isinstance(error, Exception):
            # Each follower raises its own copy: one shared object's traceback would grow
            # with every follower that raised it.
            try:
                copied = copy.copy(error)
            except Exception:  # an exception that cannot be rebuilt: the shared one it is
                copied = error
            raise copied from error.__cause__
        if error is not None:
            raise Abandoned
        return self.answer


def join(cache: object, key: str, api_key: SecretStr) -> tuple[Flight, bool]:
    """The flight of ``key`` on ``cache`` for ``api_key``, and whether the caller leads it
    (a new one) or follows it (one already in the air). Callers with different keys never
    share a request (one's 401 is not another's); the key is hashed, never kept."""
    secret = api_key.get_secret_value().encode("utf-8", "surrogatepass")
    slot = (id(cache), f"{hashlib.sha256(secret).hexdigest()[:32]} {key}")
    with _lock:
        flight = _flights.get(slot)
        if flight is not None:
            return flight, False
        flight = _flights[slot] = Flight(slot)
        return flight, True


def cache_call(deadline: float | None, cache: MetasoCache, action: str, *args: Any) -> Any:
    """``cache.get(key)`` or ``cache.set(key, value)`` (``action``), or ``None``: a backend
    that fails is logged and bypassed, one that takes a quarter of what the call has left
    before ``deadline`` is given up on (a hung cache leaves time for the call itself). An
    in-process cache never blocks: called directly."""
    method = getattr(cache, action)
    left = _cache_time(deadline)
    if left is None or isinstance(cache, InMemoryCache):
        return _tolerated(action, method, *args)
    try:
        return _CACHE_THREADS.submit(_tolerated, action, method, *args).result(timeout=left)
    except concurrent.futures.TimeoutError:
        logger.warning(_SKIPPED)
        return None


async def acache_call(deadline: float | None, cache: MetasoCache, action: str, *args: Any) -> Any:
    """``cache_call`` on the running event loop: the cache's ``aget``/``aset``, else its
    ``get``/``set`` in a worker thread."""
    # getattr, not isinstance: a runtime protocol check costs ~10 µs, more than a hit.
    native = getattr(cache, "a" + action, None)
    if native is None:
        op = asyncio.to_thread(_tolerated, action, getattr(cache, action), *args)
    else:
        op = _atolerated(action, native, *args)
    try:
        return await asyncio.wait_for(op, _cache_time(deadline))
    except asyncio.TimeoutError:
        logger.warning(_SKIPPED)
        return None


def _tolerated(action: str, method: Callable[..., Any], *args: Any) -> Any:
    try:
        return method(*args)
    except Exception as exc:  # a cache backend that fails must not fail the call
        logger.warning(_FAILED, action, exc)
        return None


async def _atolerated(action: str, method: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    try:
        return await method(*args)
    except Exception as exc:
        logger.warning(_FAILED, action, exc)
        return None


def _cache_time(deadline: float | None) -> float | None:
    left = time_left(deadline)
    return None if left is None else left / 4
