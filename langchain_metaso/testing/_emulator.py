"""The emulator's state: recorded requests, scripted faults, load limits and statistics."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from ._api import answer
from ._faults import Fault
from ._reply import JSON_TYPE, Plan, Reply, http_error
from ._server import serve
from ._transport import EmulatorTransport

# Stands in for "no fault": normal answer, no extra delay.
_NO_FAULT = Fault("none")


@dataclass(frozen=True, repr=False)
class RecordedRequest:
    """One request as the emulator received it; header names are lower-cased.

    ``headers["authorization"]`` is kept verbatim so tests can check what a client sent,
    but the repr redacts it, so a failing assertion never prints a key.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The parsed body, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self) -> str:
        headers = {k: "Bearer ***" if k == "authorization" else v for k, v in self.headers.items()}
        return (
            f"RecordedRequest(method={self.method!r}, path={self.path!r}, "
            f"headers={headers!r}, body={self.body!r})"
        )


@dataclass
class EmulatorStats:
    """Live counters; ``in_flight`` and ``connections_open`` are gauges, the rest totals."""

    requests: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    connections_opened: int = 0
    connections_open: int = 0
    rejected_429: int = 0


@dataclass(eq=False)
class MetasoEmulator:
    """An offline stand-in for the Metaso search API.

    Reach it in process with ``transport()`` or over a socket with ``serve()``; both share
    one request-handling core. Each request, in order: is recorded; is answered 429 at once
    when ``max_in_flight`` requests are already in flight; consumes the next scripted fault
    if any (faults come before authorization, so they apply whatever the request); waits
    ``latency`` (plus a delay fault's seconds); then gets the fault's outcome or the API's
    answer (authorization, routing, validation, endpoint).

    ``reject_page_with_size`` reproduces a reported quirk of the real service: a search with
    both ``page`` and ``size`` gets HTTP 200 with ``errCode`` 1000. Set it to False to accept
    both, like a tolerant server. With ``page`` alone, pages hold the default 10 results.

    ``today`` is the day result dates count back from (``date.today()`` when built), so a
    test that fixes it gets the same answers on any day.

    ``fixed_answers`` maps exact paths to JSON bytes answered as they are (HTTP 200), before
    authorization and routing: a stand-in for another service, so a benchmark can serve a
    peer's endpoint from the same server as the API's.
    """

    # Out of the repr so the accepted key never shows up in logs.
    api_key: str | None = field(default=None, repr=False)
    latency: float = 0.0
    connection_delay: float = 0.0
    max_in_flight: int | None = None
    retry_after_seconds: float = 1
    reject_page_with_size: bool = True
    pages: dict[str, str] = field(default_factory=dict, repr=False)
    today: date = field(default_factory=date.today)
    fixed_answers: dict[str, bytes] = field(default_factory=dict, repr=False)
    requests: list[RecordedRequest] = field(default_factory=list, init=False, repr=False)
    stats: EmulatorStats = field(default_factory=EmulatorStats, init=False)
    _faults: deque[Fault] = field(default_factory=deque, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def transport(self) -> EmulatorTransport:
        """A transport for both ``httpx.Client`` and ``httpx.AsyncClient``."""
        return EmulatorTransport(self._exchange)

    def serve(self, port: int = 0) -> AbstractContextManager[str]:
        """Context manager: an HTTP/1.1 server on 127.0.0.1 (``port`` 0: any free one),
        yielding its base URL."""
        return serve(self, port)

    def script(self, *faults: Fault) -> None:
        """Queue faults; each following request consumes one, in order."""
        with self._lock:
            self._faults.extend(faults)

    def reset(self) -> None:
        """Forget requests, pending faults and totals; gauges keep counting what is still open."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self.stats.requests = self.stats.connections_opened = self.stats.rejected_429 = 0
            self.stats.peak_in_flight = self.stats.in_flight

    def _connection_opened(self) -> None:
        with self._lock:
            self.stats.connections_opened += 1
            self.stats.connections_open += 1

    def _connection_closed(self) -> None:
        with self._lock:
            self.stats.connections_open -= 1

    @contextmanager
    def _exchange(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Iterator[Plan]:
        """Plan one request's answer; the request counts as in flight until the block exits."""
        with self._lock:
            self.requests.append(RecordedRequest(method, path, headers, body))
            self.stats.requests += 1
            admitted = self.max_in_flight is None or self.stats.in_flight < self.max_in_flight
            if admitted:
                self.stats.in_flight += 1
                self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.stats.in_flight)
                fault = self._faults.popleft() if self._faults else None
            else:
                self.stats.rejected_429 += 1
        if not admitted:
            # Rejected at once: a saturated server sheds load without thinking about it.
            yield Plan(
                0.0,
                http_error(
                    429, "Too many requests in flight", retry_after=self.retry_after_seconds
                ),
            )
            return
        try:
            yield self._plan(fault, method, path, headers, body)
        finally:
            with self._lock:
                self.stats.in_flight -= 1

    def _plan(
        self, fault: Fault | None, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Plan:
        fault = fault or _NO_FAULT
        if fault.interruption is not None:
            return Plan(self.latency + fault.seconds, fault.interruption)
        reply = (
            fault.reply
            or self._fixed_answer(path)
            or answer(
                method,
                path,
                headers,
                body,
                api_key=self.api_key,
                pages=self.pages,
                reject_page_with_size=self.reject_page_with_size,
                today=self.today,
            )
        )
        return Plan(
            self.latency + fault.seconds, replace(reply, truncated=fault.truncate, keep=fault.keep)
        )

    def _fixed_answer(self, path: str) -> Reply | None:
        body = self.fixed_answers.get(path)
        return None if body is None else Reply(200, (("Content-Type", JSON_TYPE),), (body,))
