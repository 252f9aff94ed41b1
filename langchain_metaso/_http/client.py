"""``MetasoClient``: the driver of every request of every public class.

``_attempts`` builds each attempt's request and reads its ``Reply``, with retries, doing
no I/O; ``_run`` (sync) and ``_arun`` (async) drive it and differ only in the lines that
wait and send."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
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
from langchain_metaso._http.single_flight import Abandoned, acache_call, cache_call, join
from langchain_metaso.cache import MetasoCache, cache_key
from langchain_metaso.errors import MetasoConnectionError, MetasoError, MetasoRateLimitError
from langchain_metaso.usage import Budget, Reservation, credits_from, record_usage

__all__ = ["MetasoClient"]

logger = logging.getLogger("langchain_metaso")

T = TypeVar("T")
R = TypeVar("R")

USER_AGENT = "langchain-metaso"

Attempts = Generator[tuple[float, httpx.Request], Reply, R]  # (delay, request)s
Read = Callable[[Call[T], CallErrors, Reply], R]  # a reply made a result, or an error


@dataclass(frozen=True, kw_only=True)
class MetasoClient(RetryPolicy):
    """A snapshot of one instance's settings, with the instance's connection pool; its
    retry settings (``max_retries``, ``retry_backoff``, ``timeout``, ``total_timeout``)
    make it the ``RetryPolicy`` its calls follow.

    Made afresh for each call (it is a few attribute copies), so a ``model_copy`` with
    a new ``base_url`` or ``timeout`` talks to the new settings at once.
    """

    api_key: SecretStr
    base_url: str
    max_concurrency: int
    transport: Any
    pool: ConnectionPool
    cache: MetasoCache | None = None
    rate_limiter: BaseRateLimiter | None = None
    budget: Budget | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def request(self, call: Call[T]) -> T:
        """Run ``call`` synchronously, with retries, behind the cache if there is one (an
        identical call answered or in flight: ``single_flight``); raise a ``MetasoError``
        on failure."""
        deadline = self.deadline(time.monotonic())
        cache = self.cache
        if cache is None or call.expect == "events":
            return self._send(call, deadline)[1]
        key = cache_key(call.endpoint, self.base_url, call.body, expect=call.expect)
        while True:
            hit = self._from_cache(call, cache_call(deadline, cache, "get", key))
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
                cache_call(deadline, cache, "set", key, flight.answer)
                return result

    async def arequest(self, call: Call[T]) -> T:
        """``request`` on the running event loop; the cache is read without blocking it."""
        deadline = self.deadline(time.monotonic())
        cache = self.cache
        if cache is None or call.expect == "events":
            return (await self._asend(call, deadline))[1]
        key = cache_key(call.endpoint, self.base_url, call.body, expect=call.expect)
        while True:
            hit = self._from_cache(call, await acache_call(deadline, cache, "get", key))
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
                await acache_call(deadline, cache, "set", key, flight.answer)
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
        deadline = self.deadline(time.monotonic())
        with Reservation(call.endpoint, self.budget) as reservation:
            response = self._run(call, self._opened, deadline)  # holds a slot until closed
            events = EventReader(call, BodyReader(self.errors(call), response, deadline))
            raw = events.body.raw()
            try:
                while not events.done:
                    yield from events.feed(next(raw, None))
                drain_sync(response, raw)  # so the connection goes back to the pool
            except httpx.RequestError as exc:
                raise events.errors.connection(exc, status=response.status_code) from exc
            finally:
                response.close()
                self.pool.sync_client(self.transport, self.max_concurrency)[1].release()
                reservation.settle(events.credits)

    async def astream(self, call: Call[T]) -> AsyncIterator[T]:
        """``stream`` on the running event loop."""
        deadline = self.deadline(time.monotonic())
        async with Reservation(call.endpoint, self.budget) as reservation:
            response = await self._arun(call, self._opened, deadline)
            events = EventReader(call, BodyReader(self.errors(call), response, deadline))
            raw = events.body.araw()
            try:
                while not events.done:
                    for item in events.feed(await anext(raw, None)):
                        yield item
                await drain_async(raw)  # so the connection goes back to the pool
            except httpx.RequestError as exc:
                raise events.errors.connection(exc, status=response.status_code) from exc
            finally:
                await response.aclose()
                (await self.pool.async_client(self.transport, self.max_concurrency))[1].release()
                await reservation.asettle(events.credits)

    def _send(self, call: Call[T], deadline: float | None) -> tuple[Any, T]:
        """``call``'s decoded answer and parsed result, its expected cost held on its
        budgets until answered."""
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
                raise errors.out_of_time()
            reply = Reply()
            bound = DEADLINE.set(deadline)
            try:
                reply.response = client.send(request, stream=True)
                if not reply.opened(call):
                    reply.body = BodyReader(errors, reply.response, deadline).read()
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

        async def fetch(reply: Reply, request: httpx.Request) -> None:
            reply.response = await client.send(request, stream=True)
            if not reply.opened(call):
                reply.body = await BodyReader(errors, reply.response, deadline).aread()

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
                raise errors.out_of_time() from None
            reply = Reply()

            try:  # within the deadline as a whole: headers trickled a byte at a time too
                await asyncio.wait_for(fetch(reply, request), time_left(deadline))
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

    # --- everything below is shared by sync and async, and does no I/O ---

    def errors(self, call: Call[Any]) -> CallErrors:
        return CallErrors(
            call.endpoint,
            f"{self.base_url.rstrip('/')}/{call.endpoint}",
            self.api_key.get_secret_value(),
            self.timeout,
            self.total_timeout,
            self.max_response_bytes,
        )

    def _attempts(
        self,
        call: Call[T],
        errors: CallErrors,
        read: Read[T, R],
        deadline: float | None,
    ) -> Attempts[R]:
        content = call.content()
        headers = {
            "Authorization": f"Bearer {self.api_key.get_secret_value()}",
            "Content-Type": "application/json",
            "Accept": ACCEPT[call.expect],
            # Only what ``body`` decompresses within max_response_bytes.
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": USER_AGENT,
        }
        delay, attempt = 0.0, 0
        while True:
            cooldown = self.pool.cooldown_left()
            if cooldown and (cooldown > MAX_RETRY_AFTER or not self.fits(cooldown, deadline)):
                raise errors.cooling_down(cooldown)  # as for a long Retry-After
            delay = max(delay, cooldown)
            # No pool timeout: the slots bound the requests in flight, so a free
            # connection is there for each one that holds a slot.
            timeout = httpx.Timeout(self.attempt_timeout(deadline, delay), pool=None)
            extensions = {"timeout": timeout.as_dict()}
            request = httpx.Request(
                "POST", errors.url, headers=headers, content=content, extensions=extensions
            )
            reply = yield delay, request
            try:
                return read(call, errors, reply)
            except MetasoError as exc:
                if isinstance(exc, MetasoRateLimitError) and exc.retry_after:
                    self.pool.cool_down(exc.retry_after)  # for every copy, not just this call
                wait = self.retry_delay(exc, attempt)
                if wait is None or reply.cut_off:  # a 2xx may already be charged for
                    raise
                if not self.fits(wait, deadline):  # an answer stays its own error (a 429's wait)
                    if not isinstance(exc, MetasoConnectionError):
                        raise
                    raise errors.out_of_time(exc) from exc
                delay = wait
                attempt += 1
                logger.info(
                    "Metaso %s: attempt %d failed (%s); retrying in %.2f s",
                    call.endpoint,
                    attempt,
                    type(exc).__name__,
                    delay,
                )

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
            raise errors.unusable(str(exc), errors.excerpt(body)) from exc
        return decoded, result

    def _opened(self, call: Call[Any], errors: CallErrors, reply: Reply) -> httpx.Response:
        """The response of a stream call, its body still unread, once it is an event stream."""
        response, body = errors.answered(reply)
        if not reply.opened(call):
            raise errors.not_event_stream(response, body)
        return response
