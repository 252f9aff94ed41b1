"""``ConnectionPool``: the pooled ``httpx`` clients an instance and its copies share."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import Any

import httpcore
import httpx

__all__ = ["DEADLINE", "MAX_COOLDOWN", "ConnectionPool", "DeadlineStream"]

DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "metaso_deadline", default=None
)
"""The ``time.monotonic()`` by which the sync call in this context must be over: every
socket read and write of the default transport waits at most until then, so that a server
trickling its headers a byte at a time cannot hold a call past its ``total_timeout``, nor
a finished stream's drain (``body.drain_sync``) last longer than it may."""

MAX_COOLDOWN = 120.0
"""The longest a 429's ``Retry-After`` holds back an instance and its copies: one absurd
value (``Retry-After: 1e9``) must not block them until the process restarts."""

Key = tuple[Any, int]  # (transport, max_concurrency)
SyncClients = dict[Key, tuple[httpx.Client, threading.BoundedSemaphore]]
LoopClients = dict[Key, tuple[httpx.AsyncClient, asyncio.Semaphore]]
# One event loop's clients, and the generator that closes them when the loop shuts down.
LoopState = tuple[LoopClients, AsyncGenerator[None, None]]


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: building one loads the CA bundle (~40 ms),
    which would otherwise be paid by every new event loop (each ``asyncio.run``)."""
    return httpx.create_ssl_context()


class DeadlineStream(httpcore.NetworkStream):
    """A socket whose every wait ends by ``DEADLINE``."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout))
        return DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    # TCP only: the transport built here has no ``uds``.
    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return DeadlineStream(super().connect_tcp(*args, **kwargs))


def _bounded(timeout: float | None) -> float | None:
    deadline = DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("total_timeout passed while the answer was arriving")
    return left if timeout is None else min(timeout, left)


def _sync_transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(limits=limits, verify=_tls())
    # httpx takes no network backend of its own; its pool's is swapped for one that
    # keeps to DEADLINE.
    transport._pool._network_backend = _DeadlineBackend()
    return transport


async def _close_at_loop_shutdown(
    clients: LoopClients, forget: Callable[[], object]
) -> AsyncGenerator[None, None]:
    """Close a loop's connections while that loop can still run the closing.

    Parked as one of the loop's async generators: ``asyncio.run`` (and Jupyter's or
    pytest's runners) finalize those while shutting the loop down, which closes these
    connections instead of leaving their sockets, and the dead loop, to leak.
    """
    try:
        yield
    finally:
        forget()
        pairs = list(clients.values())
        clients.clear()
        for client, _ in pairs:
            await client.aclose()


# Closings scheduled for pools nobody holds any more: a task is only weakly kept by its loop.
_CLOSING: set[asyncio.Future[None]] = set()


def _close_async(loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState]) -> None:
    """Close a dropped pool's async clients on their loops (their sockets belong there)."""
    for loop, (_, closer) in list(loops.items()):
        if not loop.is_closed():
            loop.call_soon_threadsafe(_close_soon, closer)


def _close_soon(closer: AsyncGenerator[None, None]) -> None:
    task = asyncio.ensure_future(closer.aclose())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


def _close_sync(pairs: SyncClients) -> None:
    clients = [client for client, _ in pairs.values()]
    pairs.clear()
    for client in clients:
        client.close()


class ConnectionPool:
    """Lazily created ``httpx`` clients, shared by an instance and its shallow copies.

    Each client comes with a semaphore of ``max_concurrency`` slots: requests beyond
    it wait in line before they reach ``httpx`` (whose own pool queue is far slower
    to scan under load). Async clients are kept per event loop, because connections
    belong to the loop that opened them: a new ``asyncio.run`` gets fresh ones and
    closes them when it ends, a long-lived (Jupyter) loop keeps reusing its own.
    Copies made by ``copy.deepcopy`` and pickling start empty. A pool nobody holds any
    more closes its connections (notebooks and scripts drop instances unclosed): sync
    ones at once, async ones on their loop.

    It also holds the cooldown its instances share: after a 429 with ``Retry-After``,
    none of them sends again before that time is up.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: SyncClients = {}
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._cooldown_until = 0.0
        weakref.finalize(self, _close_sync, self._sync)
        weakref.finalize(self, _close_async, self._async)

    def __reduce__(self) -> tuple[type[ConnectionPool], tuple[()]]:
        return ConnectionPool, ()  # copy.deepcopy and pickle: a fresh, empty pool

    def cool_down(self, seconds: float) -> None:
        """Hold every request of this pool back for ``seconds`` from now (at most
        ``MAX_COOLDOWN``)."""
        with self._lock:
            until = time.monotonic() + min(seconds, MAX_COOLDOWN)
            self._cooldown_until = max(self._cooldown_until, until)

    def cooldown_left(self) -> float:
        """Seconds until requests may be sent again (0 when they may now)."""
        return max(0.0, self._cooldown_until - time.monotonic())

    @staticmethod
    def _limits(max_concurrency: int) -> httpx.Limits:
        return httpx.Limits(
            max_connections=max_concurrency, max_keepalive_connections=max_concurrency
        )

    def sync_client(
        self, transport: Any, max_concurrency: int
    ) -> tuple[httpx.Client, threading.BoundedSemaphore]:
        """The sync client of ``transport`` and the semaphore of its ``max_concurrency`` slots."""
        key = (transport, max_concurrency)
        with self._lock:
            pair = self._sync.get(key)
            if pair is None:
                limits = self._limits(max_concurrency)
                client = httpx.Client(
                    transport=transport or _sync_transport(limits), limits=limits, verify=_tls()
                )
                pair = self._sync[key] = (client, threading.BoundedSemaphore(max_concurrency))
            return pair

    async def async_client(
        self, transport: Any, max_concurrency: int
    ) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """``sync_client`` for the running event loop."""
        loop = asyncio.get_running_loop()
        key = (transport, max_concurrency)
        with self._lock:
            state = self._async.get(loop)
            first_in_loop = state is None
            if state is None:
                # Loops closed without shutting down their async generators (a bare
                # loop.close()) never ran their closer: let go of their clients.
                for dead in [other for other in self._async if other.is_closed()]:
                    del self._async[dead]
                fresh: LoopClients = {}
                forget = functools.partial(self._async.pop, loop, None)
                state = self._async[loop] = (fresh, _close_at_loop_shutdown(fresh, forget))
            clients, closer = state
            pair = clients.get(key)
            if pair is None:
                client = httpx.AsyncClient(
                    transport=transport, limits=self._limits(max_concurrency), verify=_tls()
                )
                pair = clients[key] = (client, asyncio.Semaphore(max_concurrency))
        if first_in_loop:
            await anext(closer)  # registers it with the loop's shutdown
        return pair

    def close(self) -> None:
        """Close the sync connections; async ones close with ``aclose``."""
        with self._lock:
            _close_sync(self._sync)

    async def aclose(self) -> None:
        """Close the connections of both kinds opened in the running loop."""
        self.close()
        with self._lock:
            state = self._async.pop(asyncio.get_running_loop(), None)
        if state is not None:
            _, closer = state
            await closer.aclose()
