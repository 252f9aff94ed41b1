"""``MetasoClient``: the driver of every request of every public class.

``MetasoClient._attempts`` builds each attempt's request and reads its ``Reply``, with
retries, never doing I/O itself; ``_run`` (sync) and ``_arun`` (async) drive it and differ
only in the lines that wait and send. Failed answers become typed errors in ``failures``;
an answer's bytes are counted, decompressed and timed in ``body``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import aclosing, closing
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from langchain_core.rate_limiters import BaseRateLimiter
from pydantic import SecretStr

from langchain_metaso._http.body import (
    DEFAULT_MAX_RESPONSE_BYTES,
    BodyReader,
    EventReader,
    drain_async,
    drain_sync,
    time_left,
)
from langchain_metaso._http.call import ACCEPT, Call
from langchain_metaso._http.failures import CallErrors, Reply, is_html
from langchain_metaso._http.pool import DEADLINE, ConnectionPool
from langchain_metaso._http.retry import MAX_RETRY_AFTER, RetryPolicy
from langchain_metaso._http.single_flight import Abandoned, ain_time, in_time, join
from langchain_metaso.cache import (
    MetasoCache,
    acache_get,
    acache_set,
    cache_get,
    cache_key,
    cache_set,
)
from langchain_metaso.errors import MetasoError, MetasoRateLimitError
from langchain_metaso.usage import Budget, Reservation, credits_from, record_usage

__all__ = ["MetasoClient"]

logger = logging.getLogger("langchain_metaso")

T = TypeVar("T")
R = TypeVar("R")

USER_AGENT = "langchain-metaso"

Step = tuple[float, httpx.Request]
Attempts = Generator[Step, Reply, R]
Read = Callable[[Call[T], CallErrors, Reply], R]  # a reply made a result, or an error


@dataclass(frozen=True)
class MetasoClient:
    """A snapshot of one instance's settings, with the instance's connection pool.

    Made afresh for each call (it is a few attribute copies), so a ``model_copy`` with
    a new ``base_url`` or ``timeout`` talks to the new settings at once.
    """

    api_key: SecretStr
    base_url: str
    timeout: float
    max_retries: int
    retry_backoff: float
    max_concurrency: int
    transport: Any
    pool: ConnectionPool
    cache: MetasoCache | None = None
    rate_limiter: BaseRateLimiter | None = None
    total_timeout: float | None = None
    budget: Budget | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    policy: RetryPolicy = field(init=False, repr=False)

    def __post_init__(self) -> None:
        policy = RetryPolicy(self.max_retries, self.retry_backoff, self.timeout, self.total_timeout)
        object.__setattr__(self, "policy", policy)

    def request(self, call: Call[T]) -> T:
        """Run ``call`` synchronously, with retries, behind the cache if there is one (an
        identical call answered or in flight: ``single_flight``); raise a ``MetasoError``
        on failure."""
        deadline = self.policy.deadline(time.monotonic())
        cache = self.cache
        if cache is None or call.expect == "events":
            return self._send(call, deadline)[1]
        key = cache_key(call.endpoint, self.base_url, call.body, expect=call.expect)
        while True:
            hit = self._from_cache(call, in_time(deadline, cache, cache_get, key))
            if hit is not None:
                return hit
            flight, leader = join(cache, key, self.api_key)
            if not leader:
                try:
                    return self._shared(call, flight.wait())
                except Abandoned:
                    continue
            with flight:
                flight.answer, result = self._send(call, deadline)
                in_time(deadline, cache, cache_set, key, flight.answer)
                return result

    async def arequest(self, call: Call[T]) -> T:
        """``request`` on the running event loop; the cache is read without blocking it."""
        deadline = self.policy.deadline(time.monotonic())
        cache = self.cache
        if cache is None or call.expect == "events":
            return (await self._asend(call, deadline))[1]
        key = cache_key(call.endpoint, self.base_url, call.body, expect=call.expect)
        while True:
            entry = await ain_time(deadline, acache_get(cache, key))
            hit = self._from_cache(call, entry)
            if hit is not None:
                return hit
            flight, leader = join(cache, key, self.api_key)
            if not leader:
                try:
                    return self._shared(call, await flight.wait_async())
                except Abandoned:
                    continue
            with flight:
                flight.answer, result = await self._asend(call, deadline)
                await ain_time(deadline, acache_set(cache, key, flight.answer))
                return result

    def stream(self, call: Call[T]) -> Iterator[T]:
        """Send an ``"events"`` call; yield ``call.parse`` of each event's data, in order.

        Failures before the stream starts are retried as in ``request``; once events
        flow, a broken connection raises at once (what came is not sent twice). The
        stream must end with ``data: [DONE]``, else ``MetasoResponseError``. The stream
        holds one of the ``max_concurrency`` slots until it is closed, and ends with
        ``MetasoTimeoutError`` once ``total_timeout`` has passed. Once opened, it is
        charged (budgets charge their expected price: streams report no credits), also
        when the caller stops reading early.
        """
        deadline = self.policy.deadline(time.monotonic())
        with Reservation(call.endpoint, self.budget) as reservation:
            response = self._run(call, self._opened, deadline)  # holds a slot until closed
            events = self._events(call, response, deadline)
            raw = events.body.raw(response)
            try:
                while not events.done:
                    chunk = next(raw, None)
                    yield from events.feed(chunk)
                drain_sync(response, raw)  # so the connection goes back to the pool
            except httpx.RequestError as exc:
                raise events.errors.connection(exc, status=response.status_code) from exc
            finally:
                response.close()
                self.pool.sync_client(self.transport, self.max_concurrency)[1].release()
                reservation.settle(events.credits)

    async def astream(self, call: Call[T]) -> AsyncIterator[T]:
        """``stream`` on the running event loop."""
        deadline = self.policy.deadline(time.monotonic())
        async with Reservation(call.endpoint, self.budget) as reservation:
            response = await self._arun(call, self._opened, deadline)
            events = self._events(call, response, deadline)
            raw = events.body.araw(response)
            try:
                while not events.done:
                    chunk = await anext(raw, None)
                    for item in events.feed(chunk):
                        yield item
                await drain_async(raw)  # so the connection goes back to the pool
            except httpx.RequestError as exc:
                raise events.errors.connection(exc, status=response.status_code) from exc
            finally:
                await response.aclose()
                (await self.pool.async_client(self.transport, self.max_concurrency))[1].release()
                await reservation.asettle(events.credits)

    def _send(self, call: Call[T], deadline: float | None) -> tuple[Any, T]:
        """Send ``call`` (no cache), its expected cost held on its budgets until answered:
        its decoded answer and its parsed result."""
        with Reservation(call.endpoint, self.budget) as reservation:
            answer = self._run(call, self._parsed, deadline)
            reservation.settle(credits_from(answer[0]))
            return answer

    async def _asend(self, call: Call[T], deadline: float | None) -> tuple[Any, T]:
        async with Reservation(call.endpoint, self.budget) as reservation:
            answer = await self._arun(call, self._parsed, deadline)
            await reservation.asettle(credits_from(answer[0]))
            return answer

    def _run(self, call: Call[T], read: Read[T, R], deadline: float | None) -> R:
        client, slots = self.pool.sync_client(self.transport, self.max_concurrency)
        errors = self.errors(call)
        attempts = self._attempts(call, errors, read, deadline)
        delay, request = next(attempts)
        while True:
            if delay:
                time.sleep(delay)
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            if not slots.acquire(timeout=time_left(deadline)):
                raise errors.out_of_time("waiting for a free max_concurrency slot")
            reply = Reply()
            bound = DEADLINE.set(deadline)
            try:
                reply.response = client.send(request, stream=True)
                if not reply.opened(call):
                    with closing(reply.response):
                        body = BodyReader(errors, reply.response, self.max_response_bytes, deadline)
                        reply.body = body.read(reply.response)
            except httpx.RequestError as exc:
                reply.error = exc
            finally:
                DEADLINE.reset(bound)
                if not reply.opened(call):
                    slots.release()  # an opened stream keeps it until closed
            try:
                delay, request = attempts.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    async def _arun(self, call: Call[T], read: Read[T, R], deadline: float | None) -> R:
        client, slots = await self.pool.async_client(self.transport, self.max_concurrency)
        errors = self.errors(call)
        attempts = self._attempts(call, errors, read, deadline)
        delay, request = next(attempts)
        while True:
            if delay:
                await asyncio.sleep(delay)
            if self.rate_limiter is not None:
                await self.rate_limiter.aacquire()
            try:
                if slots.locked():
                    await asyncio.wait_for(slots.acquire(), time_left(deadline))
                else:
                    await slots.acquire()
            except asyncio.TimeoutError:
                raise errors.out_of_time("waiting for a free max_concurrency slot") from None
            reply = Reply()
            try:  # within the deadline as a whole: headers trickled a byte at a time too
                fetch = self._afetch(client, request, call, errors, deadline, reply)
                await asyncio.wait_for(fetch, time_left(deadline))
            except httpx.RequestError as exc:
                reply.error = exc
            except asyncio.TimeoutError:
                reply.error = httpx.ReadTimeout("total_timeout passed while waiting")
            finally:
                if not reply.opened(call):
                    slots.release()
            try:
                delay, request = attempts.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    async def _afetch(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        call: Call[Any],
        errors: CallErrors,
        deadline: float | None,
        reply: Reply,
    ) -> None:
        reply.response = await client.send(request, stream=True)
        if not reply.opened(call):
            async with aclosing(reply.response):
                body = BodyReader(errors, reply.response, self.max_response_bytes, deadline)
                reply.body = await body.aread(reply.response)

    # --- everything below is shared by sync and async, and does no I/O ---

    def url(self, endpoint: str) -> str:
        return f"{self.base_url.rstrip('/')}/{endpoint}"

    def errors(self, call: Call[Any]) -> CallErrors:
        return CallErrors(
            call.endpoint,
            self.url(call.endpoint),
            self.api_key.get_secret_value(),
            self.timeout,
            self.total_timeout,
        )

    def _attempts(
        self,
        call: Call[T],
        errors: CallErrors,
        read: Read[T, R],
        deadline: float | None,
    ) -> Attempts[R]:
        policy = self.policy
        content = call.content()
        delay, attempt = 0.0, 0
        while True:
            delay = max(delay, self._cooldown(errors, deadline))
            request = self._build(call, content, policy.attempt_timeout(deadline, delay))
            reply = yield delay, request
            try:
                return read(call, errors, reply)
            except MetasoError as exc:
                if isinstance(exc, MetasoRateLimitError) and exc.retry_after:
                    self.pool.cool_down(exc.retry_after)  # for every copy, not just this call
                wait = policy.retry_delay(exc, attempt)
                if wait is None or reply.cut_off:  # a 2xx may already be charged for
                    raise
                if not policy.fits(wait, deadline):
                    raise errors.no_time_to_retry(exc) from exc
                delay = wait
                attempt += 1
                logger.info(
                    "Metaso %s: attempt %d failed (%s); retrying in %.2f s",
                    call.endpoint,
                    attempt,
                    type(exc).__name__,
                    delay,
                )

    def _build(self, call: Call[Any], content: bytes, timeout: float) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.url(call.endpoint),
            headers={
                "Authorization": f"Bearer {self.api_key.get_secret_value()}",
                "Content-Type": "application/json",
                "Accept": ACCEPT[call.expect],
                # Only what ``body`` decompresses within max_response_bytes.
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": USER_AGENT,
            },
            content=content,
            # No pool timeout: the slots bound the requests in flight, so a free
            # connection is there for each one that holds a slot.
            extensions={"timeout": httpx.Timeout(timeout, pool=None).as_dict()},
        )

    def _cooldown(self, errors: CallErrors, deadline: float | None) -> float:
        """The wait the shared cooldown imposes; ``MetasoRateLimitError`` if longer than a
        call should wait, as for a long ``Retry-After``."""
        left = self.pool.cooldown_left()
        if left and (left > MAX_RETRY_AFTER or not self.policy.fits(left, deadline)):
            raise errors.cooling_down(left)
        return left

    def _events(self, call: Call[T], response: httpx.Response, deadline: Any) -> EventReader[T]:
        errors = self.errors(call)
        body = BodyReader(errors, response, self.max_response_bytes, deadline)
        return EventReader(call, errors, body, BodyReader.charset(response))

    def _shared(self, call: Call[T], answer: Any) -> T:
        """The result of an identical call's answer: it cost this call nothing."""
        record_usage(call.endpoint, None, cache_hit=True)
        return call.parse(answer)

    def _from_cache(self, call: Call[T], entry: Any) -> T | None:
        """The parsed cache entry of an identical earlier call, if there is one that parses."""
        if entry is None:
            return None
        try:
            result = call.parse(entry)
        except Exception as exc:  # a stale or foreign entry: ask the server instead
            logger.warning("Metaso cache: ignored an entry that did not parse (%s)", exc)
            return None
        logger.debug("Metaso %s: answered from the cache", call.endpoint)
        record_usage(call.endpoint, None, cache_hit=True)
        return result

    def _parsed(self, call: Call[T], errors: CallErrors, reply: Reply) -> tuple[Any, T]:
        """A whole answer, decoded and parsed."""
        response, body = errors.answered(reply)
        if call.expect == "text":
            if is_html(response, body):  # not the reader's Markdown: a wrong base_url
                raise errors.web_page()
            decoded: Any = body.decode(BodyReader.charset(response), errors="replace")
        else:
            decoded = errors.json_payload(response, body)
        try:
            result = call.parse(decoded)
        except ValueError as exc:
            raise errors.unusable(exc, errors.excerpt(body)) from exc
        return decoded, result

    def _opened(self, call: Call[Any], errors: CallErrors, reply: Reply) -> httpx.Response:
        """The response of a stream call, its body still unread, once it is an event stream."""
        if reply.opened(call):
            assert reply.response is not None
            return reply.response
        response, body = errors.answered(reply)
        raise errors.not_event_stream(response, body)
