"""One request for identical calls: while a call is in flight, an identical one waits for it.

"Identical" means the same cache key (endpoint, base URL, answer format and body) on the
same cache object, so it spans an instance, its copies and every instance sharing its
cache, in this process; without a cache nothing is shared. Followers get the leader's
decoded answer, or its error; only the leader spends credits.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

__all__ = ["Abandoned", "Flight", "join"]

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
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def __enter__(self) -> Flight:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        with _lock:
            del _flights[self._slot]
            self._error = exc
            self._done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    def wait(self) -> Any:
        """Block until the leader is done; its answer, or its error raised."""
        self._done.wait()
        return self._outcome()

    async def wait_async(self) -> Any:
        """``wait`` without blocking the event loop (the leader may be in any thread)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with _lock:
            if self._done.is_set():
                future.set_result(None)
            else:
                self._waiters.append((loop, future))
        await future
        return self._outcome()

    def _outcome(self) -> Any:
        if isinstance(self._error, Exception):
            raise self._error
        if self._error is not None:
            raise Abandoned
        return self.answer


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def join(cache: object, key: str) -> tuple[Flight, bool]:
    """The flight of ``key`` on ``cache``, and whether the caller leads it (a new one)
    or follows it (one already in the air)."""
    slot = (id(cache), key)
    with _lock:
        flight = _flights.get(slot)
        if flight is not None:
            return flight, False
        flight = _flights[slot] = Flight(slot)
        return flight, True
