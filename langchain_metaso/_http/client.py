"""``MetasoClient``: the driver of every request of every public class.

Building a request, retrying, mapping errors and parsing the answer live here once, in
``MetasoClient._exchange``, a generator that never does I/O itself: it yields
``(delay, request, deadline)`` steps and is sent back each outcome. ``request`` (sync)
and ``arequest`` (async) drive it and differ only in the lines that sleep and send;
``stream`` and ``astream`` drive the same generator for a server-sent event stream.
The retry policy is ``retry.RetryPolicy``; the error table is ``error_table``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from contextlib import aclosing, closing, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from langchain_core.rate_limiters import BaseRateLimiter
from pydantic import SecretStr

from langchain_metaso._http.call import ACCEPT, Call
from langchain_metaso._http.error_table import meaning
from langchain_metaso._http.pool import ConnectionPool
from langchain_metaso._http.retry import RetryPolicy, parse_retry_after
from langchain_metaso._http.single_flight import Abandoned, join
from langchain_metaso._http.sse import ServerSentEvent, SSEDecoder, aiter_events, iter_events
from langchain_metaso.cache import (
    MetasoCache,
    acache_get,
    acache_set,
    cache_get,
    cache_key,
    cache_set,
)
from langchain_metaso.errors import (
    MetasoAPIError,
    MetasoConnectionError,
    MetasoError,
    MetasoRateLimitError,
    MetasoResponseError,
    MetasoTimeoutError,
)
from langchain_metaso.usage import Budget, areserve, credits_from, record_usage, reserve

__all__ = ["MetasoClient"]

logger = logging.getLogger("langchain_metaso")

T = TypeVar("T")
R = TypeVar("R")

USER_AGENT = "langchain-metaso"
EXCERPT_CHARS = 300

# What an attempt came back with: the response and its body (None while an event
# stream is still unread), or the transport's error.
Outcome = tuple[httpx.Response, bytes | None] | httpx.RequestError
Step = tuple[float, httpx.Request, float | None]
Flow = Generator[Step, Outcome | None, R]


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

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy of this client's calls."""
        return RetryPolicy(
            max_retries=self.max_retries,
            backoff=self.retry_backoff,
            timeout=self.timeout,
            total_timeout=self.total_timeout,
        )

    def request(self, call: Call[T]) -> T:
        """Run ``call`` synchronously, with retries; raise a ``MetasoError`` on failure.

        With a cache, an identical earlier answer is served from it, and an identical call
        in flight is waited for rather than sent again.
        """
        cache = self.cache
        if cache is None or call.expect == "events":
            return self._send(call)[1]
        key = cache_key(call.endpoint, self.base_url, call.body, expect=call.expect)
        while True:
            hit = self._from_cache(call, cache_get(cache, key))
            if hit is not None:
                return hit
            flight, leader = join(cache, key)
            if not leader:
                try:
                    return self._shared(call, flight.wait())
                except Abandoned:
                    continue
            with flight:
                flight.answer, result = self._send(call)
                cache_set(cache, key, flight.answer)
                return result

    async def arequest(self, call: Call[T]) -> T:
        """``request`` on the running event loop; the cache is read without blocking it."""
        cache = self.cache
        if cache is None or call.expect == "events":
            return (await self._asend(call))[1]
        key = cache_key(call.endpoint, self.base_url, call.body, expect=call.expect)
        while True:
            hit = self._from_cache(call, await acache_get(cache, key))
            if hit is not None:
                return hit
            flight, leader = join(cache, key)
            if not leader:
                try:
                    return self._shared(call, await flight.wait_async())
                except Abandoned:
                    continue
            with flight:
                flight.answer, result = await self._asend(call)
                await acache_set(cache, key, flight.answer)
                return result

    def _send(self, call: Call[T]) -> tuple[Any, T]:
        """Send ``call`` (no cache): its decoded answer and its parsed result."""
        with reserve(call.endpoint, self.budget) as reservation:
            answer: tuple[Any, T] = self._drive(self._exchange(call, self._interpret), stream=False)
            reservation.settle(credits_from(answer[0]))
            return answer

    async def _asend(self, call: Call[T]) -> tuple[Any, T]:
        async with areserve(call.endpoint, self.budget) as reservation:
            flow: Flow[tuple[Any, T]] = self._exchange(call, self._interpret)
            answer = await self._adrive(flow, stream=False)
            await reservation.asettle(credits_from(answer[0]))
            return answer

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
        _, slot = self.pool.sync_lane(self.transport, self.max_concurrency)
        with reserve(call.endpoint, self.budget) as reservation, slot:
            deadline = self.policy.deadline(time.monotonic())
            response = self._drive(self._exchange(call, self._opened, deadline), stream=True)
            tally = _Tally(deadline)
            try:
                for event in iter_events(response.iter_lines(), self._decoder(call)):
                    yield self._on_event(call, event, tally)
            except httpx.RequestError as exc:
                raise self._connection_error(call, exc) from exc
            finally:
                response.close()
                reservation.settle(tally.credits)

    async def astream(self, call: Call[T]) -> AsyncIterator[T]:
        """``stream`` on the running event loop."""
        _, slot = await self.pool.async_lane(self.transport, self.max_concurrency)
        async with areserve(call.endpoint, self.budget) as reservation, slot:
            deadline = self.policy.deadline(time.monotonic())
            flow = self._exchange(call, self._opened, deadline)
            response = await self._adrive(flow, stream=True)
            tally = _Tally(deadline)
            try:
                async for event in aiter_events(response.aiter_lines(), self._decoder(call)):
                    yield self._on_event(call, event, tally)
            except httpx.RequestError as exc:
                raise self._connection_error(call, exc) from exc
            finally:
                await response.aclose()
                await reservation.asettle(tally.credits)

    def _drive(self, flow: Flow[R], *, stream: bool) -> R:
        client, slots = self.pool.sync_lane(self.transport, self.max_concurrency)
        steps = _Steps(flow)
        for delay, request, deadline in steps:
            if delay:
                time.sleep(delay)
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            # A stream's caller already holds its slot, for as long as it reads.
            with nullcontext() if stream else slots:
                try:
                    response = client.send(request, stream=True)
                    body = None
                    if not (stream and _is_event_stream(response)):
                        with closing(response):
                            body = [_in_time(deadline, c) for c in response.iter_bytes()]
                    steps.outcome = _answer(response, body)
                except httpx.RequestError as exc:
                    steps.outcome = exc
        return steps.result

    async def _adrive(self, flow: Flow[R], *, stream: bool) -> R:
        client, slots = await self.pool.async_lane(self.transport, self.max_concurrency)
        steps = _Steps(flow)
        for delay, request, deadline in steps:
            if delay:
                await asyncio.sleep(delay)
            if self.rate_limiter is not None:
                await self.rate_limiter.aacquire()
            async with nullcontext() if stream else slots:
                try:
                    response = await client.send(request, stream=True)
                    body = None
                    if not (stream and _is_event_stream(response)):
                        async with aclosing(response):
                            body = [_in_time(deadline, c) async for c in response.aiter_bytes()]
                    steps.outcome = _answer(response, body)
                except httpx.RequestError as exc:
                    steps.outcome = exc
        return steps.result

    # --- everything below is shared by sync and async, and does no I/O ---

    def url(self, endpoint: str) -> str:
        return f"{self.base_url.rstrip('/')}/{endpoint}"

    def _exchange(
        self,
        call: Call[Any],
        interpret: Callable[[Call[Any], Outcome], R],
        deadline: float | None = None,
    ) -> Flow[R]:
        policy = self.policy
        if deadline is None:
            deadline = policy.deadline(time.monotonic())
        content = _encode(call.body)
        delay, attempt = 0.0, 0
        while True:
            delay = max(delay, self._cooldown(call, policy, deadline))
            request = self._build(call, content, policy.attempt_timeout(deadline, delay))
            outcome = yield delay, request, deadline
            assert outcome is not None  # the drivers always send one back
            try:
                return interpret(call, outcome)
            except MetasoError as exc:
                if isinstance(exc, MetasoRateLimitError) and exc.retry_after:
                    self.pool.cool_down(exc.retry_after)  # for every copy, not just this call
                wait = policy.retry_delay(exc, attempt)
                if wait is None:
                    raise
                if not policy.fits(wait, deadline):
                    raise self._out_of_time(call, exc) from exc
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
            _parsed_url(self.url(call.endpoint)),
            headers={
                "Authorization": f"Bearer {self.api_key.get_secret_value()}",
                "Content-Type": "application/json",
                "Accept": ACCEPT[call.expect],
                "User-Agent": USER_AGENT,
            },
            content=content,
            # No pool timeout: waiting for a free connection is how max_concurrency
            # queues requests, and each request ahead is bounded by its own timeout.
            extensions={"timeout": httpx.Timeout(timeout, pool=None).as_dict()},
        )

    def _cooldown(self, call: Call[Any], policy: RetryPolicy, deadline: float | None) -> float:
        """The wait before the next attempt that the shared cooldown imposes.

        Raises:
            MetasoRateLimitError: the cooldown lasts longer than a call should wait.
        """
        left = self.pool.cooldown_left()
        if not left:
            return 0.0
        wait = policy.cooldown_wait(left, deadline)
        if wait is None:
            raise MetasoRateLimitError(
                "not sent: an earlier request was answered HTTP 429 and the wait it asked "
                "for is not over",
                status_code=429,
                endpoint=call.endpoint,
                url=self.url(call.endpoint),
                retry_after=round(left, 1),
            )
        return wait

    def _shared(self, call: Call[T], answer: Any) -> T:
        """The result of an identical call's answer: it cost this call nothing."""
        record_usage(call.endpoint, None, cache_hit=True)
        return call.parse(answer)

    def _interpret(self, call: Call[T], outcome: Outcome) -> tuple[Any, T]:
        response, body = self._answered(call, outcome)
        if call.expect == "text":
            if _is_html(response, body):  # not the reader's Markdown: a wrong base_url
                raise self._web_page(call)
            decoded: Any = body.decode(response.encoding or "utf-8", errors="replace")
        else:
            decoded = self._decode_json(call, response, body)
        try:
            result = call.parse(decoded)
        except ValueError as exc:
            raise MetasoResponseError(
                self._redact(str(exc)),
                endpoint=call.endpoint,
                body_excerpt=self._excerpt(body),
                url=self.url(call.endpoint),
            ) from exc
        return decoded, result

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

    def _opened(self, call: Call[Any], outcome: Outcome) -> httpx.Response:
        """The response of a stream call, its body still unread, once it is an event stream."""
        if isinstance(outcome, tuple) and outcome[1] is None and outcome[0].status_code < 300:
            return outcome[0]
        response, body = self._answered(call, outcome)
        # Metaso reports bad parameters as HTTP 200 JSON, even to a stream request.
        self._decode_json(call, response, body)
        content_type = response.headers.get("content-type", "no content type")
        raise MetasoResponseError(
            f"expected a server-sent event stream (text/event-stream), got {content_type}",
            endpoint=call.endpoint,
            body_excerpt=self._excerpt(body),
            url=self.url(call.endpoint),
        )

    def _answered(self, call: Call[Any], outcome: Outcome) -> tuple[httpx.Response, bytes]:
        """The response and its body, if it is a success; else the error it stands for."""
        if isinstance(outcome, httpx.RequestError):
            raise self._connection_error(call, outcome) from outcome
        response, body = outcome
        status = response.status_code
        logger.debug("Metaso %s: HTTP %d from %s", call.endpoint, status, self.url(call.endpoint))
        if status >= 300:
            raise self._http_error(call, response, body or b"")
        return response, body or b""

    def _connection_error(self, call: Call[Any], exc: httpx.RequestError) -> MetasoError:
        problem = self._redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        url = self.url(call.endpoint)
        if not isinstance(exc, httpx.TransportError):  # e.g. a body that fails to decompress
            return MetasoResponseError(problem, endpoint=call.endpoint, url=url)
        if isinstance(exc, httpx.TimeoutException):
            limits = f"timeout={self.timeout:g} s for each step of an attempt"
            if self.total_timeout is not None:
                limits += f", total_timeout={self.total_timeout:g} s for the whole call"
            return MetasoTimeoutError(
                problem,
                endpoint=call.endpoint,
                url=url,
                advice=(
                    f"No answer in time ({limits}). Check the network and the base URL, "
                    "then retry, or raise these limits for a slow service."
                ),
            )
        return MetasoConnectionError(problem, endpoint=call.endpoint, url=url)

    def _out_of_time(self, call: Call[Any], last: MetasoError) -> MetasoTimeoutError:
        """The error of a call whose next retry could not finish within total_timeout."""
        return MetasoTimeoutError(
            f"{type(last).__name__}, and no time left for another attempt within "
            f"total_timeout={self.total_timeout:g} s: {last}",
            endpoint=call.endpoint,
            url=self.url(call.endpoint),
            advice="Raise total_timeout (None for no bound) or retry later.",
        )

    def _decoder(self, call: Call[Any]) -> SSEDecoder:
        return SSEDecoder(call.endpoint, excerpt=self._shorten)

    def _on_event(self, call: Call[T], event: ServerSentEvent, tally: _Tally) -> T:
        """One event of a stream, parsed; its credits counted; the deadline checked."""
        _check_deadline(tally.deadline)
        tally.credits = credits_from(event.data) or tally.credits
        return self._parse_event(call, event)

    def _parse_event(self, call: Call[T], event: ServerSentEvent) -> T:
        # A server that fails once the stream has started can only say so in an event.
        if isinstance(event.data, dict) and _is_error(event.data):
            raise self._api_error(call, 200, event.data)
        try:
            return call.parse(event.data)
        except ValueError as exc:
            raise MetasoResponseError(
                self._redact(str(exc)),
                endpoint=call.endpoint,
                body_excerpt=self._shorten(json.dumps(event.data, ensure_ascii=False)),
            ) from exc

    def _decode_json(self, call: Call[Any], response: httpx.Response, body: bytes) -> Any:
        url = self.url(call.endpoint)
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
            if _is_html(response, body):
                raise self._web_page(call) from exc
            content_type = response.headers.get("content-type", "no content type")
            raise MetasoResponseError(
                f"the body is not JSON ({content_type})",
                endpoint=call.endpoint,
                body_excerpt=self._excerpt(body),
                url=url,
            ) from exc
        if not isinstance(payload, dict):
            raise MetasoResponseError(
                f"expected a JSON object, got {type(payload).__name__}",
                endpoint=call.endpoint,
                body_excerpt=self._excerpt(body),
                url=url,
            )
        if _is_error(payload):
            raise self._api_error(call, response.status_code, payload)
        return payload

    def _web_page(self, call: Call[Any]) -> MetasoResponseError:
        """A web page where an answer was expected: ``base_url`` is not the API."""
        # The page is never pasted into the message: it only says where we landed.
        return MetasoResponseError(
            "an HTML page, not an answer of the Metaso API",
            endpoint=call.endpoint,
            url=self.url(call.endpoint),
            fails_every_request=True,
        )

    def _http_error(self, call: Call[Any], response: httpx.Response, body: bytes) -> MetasoError:
        if response.is_redirect:
            location = response.headers.get("location", "elsewhere")
            return MetasoAPIError(
                self._redact(f"redirected to {location}"),
                status_code=response.status_code,
                endpoint=call.endpoint,
                url=self.url(call.endpoint),
                hint="Set base_url (or METASO_BASE_URL) to the address it redirects to.",
                fails_every_request=True,
            )
        html = _is_html(response, body)
        payload: Any = None
        if not html:
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError):
                payload = None
        if not isinstance(payload, dict):
            text = "" if html else self._excerpt(body)
            payload = {"message": text or response.reason_phrase}
        return self._api_error(
            call,
            response.status_code,
            payload,
            retry_after=parse_retry_after(response),
            html=html,
        )

    def _api_error(
        self,
        call: Call[Any],
        status: int,
        payload: dict[str, Any],
        *,
        retry_after: float | None = None,
        html: bool = False,
    ) -> MetasoAPIError:
        error = payload.get("error")
        source = error if isinstance(error, dict) else payload
        message = next(
            (
                str(source[key])
                for key in ("errMsg", "message", "msg", "detail", "error")
                if isinstance(source.get(key), str | int) and str(source[key])
            ),
            "",
        )
        if html:
            # A web page is never pasted into the message: it only says where we landed.
            message = f"an HTML page, not an answer of the Metaso API ({message or 'no text'})"
        code = next(
            (
                source[key]
                for key in ("errCode", "err_code", "code")
                if isinstance(source.get(key), str | int)
            ),
            None,
        )
        # Cut short: a provider may echo the whole request (a 10,000-character query).
        message = self._shorten(message)
        found = meaning(status, code, message, html=html)
        return found.error(
            message,
            status_code=status,
            endpoint=call.endpoint,
            url=self.url(call.endpoint),
            code=code,
            retry_after=retry_after,
            hint=found.hint,
            fails_every_request=found.fails_every_request,
        )

    def _excerpt(self, body: bytes) -> str:
        return self._shorten(body[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace"))

    def _shorten(self, text: str) -> str:
        text = self._redact(text)
        return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"

    def _redact(self, text: str) -> str:
        secret = self.api_key.get_secret_value()
        return text.replace(secret, "***") if secret else text


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        # The drivers turn a transport error into the call's MetasoTimeoutError.
        raise httpx.ReadTimeout("total_timeout passed while the answer was arriving")


def _in_time(deadline: float | None, chunk: bytes) -> bytes:
    """``chunk``, read before the deadline: a body is read chunk by chunk, so that a
    server trickling bytes cannot hold a call past its total_timeout."""
    _check_deadline(deadline)
    return chunk


def _answer(response: httpx.Response, chunks: list[bytes] | None) -> Outcome:
    """A response and its body, or ``None`` for an event stream still to be read."""
    return response, None if chunks is None else b"".join(chunks)


class _Steps(Generic[R]):
    """The steps of an exchange, for a driver to loop over: it sets ``outcome`` after
    each step, which the next one is sent; ``result`` is the exchange's, once done."""

    def __init__(self, flow: Flow[R]) -> None:
        self._flow = flow
        self.outcome: Outcome | None = None

    def __iter__(self) -> Iterator[Step]:
        try:
            while True:
                yield self._flow.send(self.outcome)
        except StopIteration as stop:
            self.result: R = stop.value


@dataclass
class _Tally:
    """What a stream's reader keeps: its deadline and the credits the stream reported."""

    deadline: float | None
    credits: float | None = None


def _is_error(payload: dict[str, Any]) -> bool:
    """Whether a JSON answer is an error: Metaso's business errors (``errCode``) and
    302.AI's envelope come with HTTP 200 too."""
    code = payload.get("errCode", payload.get("err_code"))
    return code not in (None, 0, "0") or isinstance(payload.get("error"), dict)


def _is_event_stream(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    return response.status_code < 300 and content_type.startswith("text/event-stream")


def _is_html(response: httpx.Response, body: bytes) -> bool:
    """Whether the body is a web page (a typo in base_url, a proxy's error page)."""
    content_type = response.headers.get("content-type", "").lower()
    start = body[:64].lstrip().lower()
    return "html" in content_type or start.startswith((b"<!doctype html", b"<html"))


@functools.lru_cache(maxsize=64)
def _parsed_url(url: str) -> httpx.URL:
    # Parsing a URL is half the cost of building a request; a client calls a few, often.
    return httpx.URL(url)


def _encode(body: Mapping[str, Any]) -> bytes:
    try:
        # Unescaped Chinese is a third of the bytes of its \uXXXX form.
        return json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only its escaped form is valid UTF-8
        return json.dumps(body).encode("ascii")
