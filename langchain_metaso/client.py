"""The HTTP core: every request of every public class goes through ``MetasoClient``.

Building a request, retrying, mapping errors and parsing the answer live here once, in
``MetasoClient._exchange``, a generator that never does I/O itself: it yields
``(delay, request)`` steps and is sent back each outcome. ``request`` (sync) and
``arequest`` (async) drive it and differ only in the lines that sleep and send.
``stream`` and ``astream`` drive the same generator for a server-sent event stream,
then read its lines through the pure parser of ``langchain_metaso.sse``.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import random
import re
import ssl
import threading
import time
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Generator,
    Iterator,
    Mapping,
)
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, Literal, TypeVar

import httpx
from langchain_core.rate_limiters import BaseRateLimiter
from pydantic import SecretStr

from langchain_metaso.cache import MetasoCache, cache_key
from langchain_metaso.errors import (
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoConnectionError,
    MetasoError,
    MetasoInsufficientCreditsError,
    MetasoRateLimitError,
    MetasoResponseError,
    MetasoServerError,
    MetasoTimeoutError,
)
from langchain_metaso.sse import ServerSentEvent, SSEDecoder, aiter_events, iter_events

__all__ = ["Call", "ConnectionPool", "MetasoClient"]

logger = logging.getLogger("langchain_metaso")

T = TypeVar("T")
R = TypeVar("R")

USER_AGENT = "langchain-metaso"
EXCERPT_CHARS = 300
MAX_BACKOFF = 20.0
# A Retry-After longer than this is not waited out inside one call: the error goes
# back to the caller (an agent can decide to do something else meanwhile).
MAX_RETRY_AFTER = 60.0
_CREDITS_WORDS = re.compile(
    r"balance|insufficient|out of credits|quota|余额|积分不足|额度不足", re.IGNORECASE
)
_RETRYABLE = (MetasoConnectionError, MetasoRateLimitError, MetasoServerError)

Outcome = httpx.Response | httpx.RequestError
Step = tuple[float, httpx.Request]
Flow = Generator[Step, Outcome | None, R]
_ACCEPT = {"json": "application/json", "text": "text/plain", "events": "text/event-stream"}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: where it goes, what it sends, how its answer is read.

    ``parse`` gets the decoded answer (a JSON object when ``expect`` is ``"json"``,
    the text when ``"text"``) and raises ``ValueError`` if its shape is unusable. An
    ``"events"`` call is a server-sent event stream, sent with ``MetasoClient.stream``
    or ``astream``: ``parse`` then gets each event's JSON data in turn.
    """

    endpoint: str
    body: Mapping[str, Any]
    parse: Callable[[Any], T]
    expect: Literal["json", "text", "events"] = "json"


Key = tuple[Any, int]  # (transport, max_concurrency)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: building one loads the CA bundle (~40 ms),
    which would otherwise be paid by every new event loop (each ``asyncio.run``)."""
    return httpx.create_ssl_context()


@dataclass
class _LoopLanes:
    """One event loop's async clients, each with the semaphore that bounds its requests."""

    lanes: dict[Key, tuple[httpx.AsyncClient, asyncio.Semaphore]] = field(default_factory=dict)
    closer: AsyncGenerator[None, None] | None = None


async def _close_at_loop_shutdown(
    state: _LoopLanes, forget: Callable[[], object]
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
        # The finished generator still points at the loop (its finalizer hook).
        state.closer = None
        lanes, state.lanes = list(state.lanes.values()), {}
        for client, _ in lanes:
            await client.aclose()


class ConnectionPool:
    """Lazily created ``httpx`` clients, shared by an instance and its shallow copies.

    Each client comes with a semaphore of ``max_concurrency`` slots: requests beyond
    it wait in line before they reach ``httpx`` (whose own pool queue is far slower
    to scan under load). Async clients are kept per event loop, because connections
    belong to the loop that opened them: a new ``asyncio.run`` gets fresh ones and
    closes them when it ends, a long-lived (Jupyter) loop keeps reusing its own.
    Copies made by ``copy.deepcopy`` and pickling start empty.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: dict[Key, tuple[httpx.Client, threading.BoundedSemaphore]] = {}
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopLanes] = (
            weakref.WeakKeyDictionary()
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> ConnectionPool:
        return ConnectionPool()

    def __reduce__(self) -> tuple[type[ConnectionPool], tuple[()]]:
        return ConnectionPool, ()

    @staticmethod
    def _limits(max_concurrency: int) -> httpx.Limits:
        return httpx.Limits(
            max_connections=max_concurrency, max_keepalive_connections=max_concurrency
        )

    def sync_lane(
        self, transport: Any, max_concurrency: int
    ) -> tuple[httpx.Client, threading.BoundedSemaphore]:
        key = (transport, max_concurrency)
        with self._lock:
            lane = self._sync.get(key)
            if lane is None:
                client = httpx.Client(
                    transport=transport, limits=self._limits(max_concurrency), verify=_tls()
                )
                lane = self._sync[key] = (client, threading.BoundedSemaphore(max_concurrency))
            return lane

    async def async_lane(
        self, transport: Any, max_concurrency: int
    ) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
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
                state = self._async[loop] = _LoopLanes()
                state.closer = _close_at_loop_shutdown(state, partial(self._async.pop, loop, None))
            lane = state.lanes.get(key)
            if lane is None:
                client = httpx.AsyncClient(
                    transport=transport, limits=self._limits(max_concurrency), verify=_tls()
                )
                lane = state.lanes[key] = (client, asyncio.Semaphore(max_concurrency))
        if first_in_loop and state.closer is not None:
            await anext(state.closer)  # registers it with the loop's shutdown
        return lane

    def close(self) -> None:
        """Close the sync connections; async ones close with ``aclose``."""
        with self._lock:
            lanes, self._sync = list(self._sync.values()), {}
        for client, _ in lanes:
            client.close()

    async def aclose(self) -> None:
        """Close the connections of both kinds opened in the running loop."""
        self.close()
        with self._lock:
            state = self._async.pop(asyncio.get_running_loop(), None)
        if state is not None and state.closer is not None:
            await state.closer.aclose()


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

    def request(self, call: Call[T]) -> T:
        """Run ``call`` synchronously, with retries; raise a ``MetasoError`` on failure."""
        key = self._cache_key(call)
        cached = self._from_cache(call, key)
        if cached is not None:
            return cached
        return self._drive(self._exchange(call, partial(self._interpret, call, key)), stream=False)

    async def arequest(self, call: Call[T]) -> T:
        """Run ``call`` on the running event loop, with retries."""
        key = self._cache_key(call)
        cached = self._from_cache(call, key)
        if cached is not None:
            return cached
        return await self._adrive(
            self._exchange(call, partial(self._interpret, call, key)), stream=False
        )

    def stream(self, call: Call[T]) -> Iterator[T]:
        """Send an ``"events"`` call; yield ``call.parse`` of each event's data, in order.

        Failures before the stream starts are retried as in ``request``; once events
        flow, a broken connection raises at once (what came is not sent twice). The
        stream must end with ``data: [DONE]``, else ``MetasoResponseError``. The stream
        holds one of the ``max_concurrency`` slots until it is closed.
        """
        _, slot = self.pool.sync_lane(self.transport, self.max_concurrency)
        with slot:
            flow = self._exchange(call, partial(self._opened, call))
            response = self._drive(flow, stream=True)
            try:
                for event in iter_events(response.iter_lines(), self._decoder(call)):
                    yield self._parse_event(call, event)
            except httpx.RequestError as exc:
                raise self._connection_error(call, exc) from exc
            finally:
                response.close()

    async def astream(self, call: Call[T]) -> AsyncIterator[T]:
        """``stream`` on the running event loop."""
        _, slot = await self.pool.async_lane(self.transport, self.max_concurrency)
        async with slot:
            flow = self._exchange(call, partial(self._opened, call))
            response = await self._adrive(flow, stream=True)
            try:
                async for event in aiter_events(response.aiter_lines(), self._decoder(call)):
                    yield self._parse_event(call, event)
            except httpx.RequestError as exc:
                raise self._connection_error(call, exc) from exc
            finally:
                await response.aclose()

    def _drive(self, flow: Flow[R], *, stream: bool) -> R:
        client, slots = self.pool.sync_lane(self.transport, self.max_concurrency)
        outcome: Outcome | None = None
        try:
            while True:
                delay, request = flow.send(outcome)
                if delay:
                    time.sleep(delay)
                if self.rate_limiter is not None:
                    self.rate_limiter.acquire()
                # A stream's caller already holds its slot, for as long as it reads.
                with nullcontext() if stream else slots:
                    try:
                        outcome = client.send(request, stream=stream)
                        if stream and _needs_body(outcome):
                            try:
                                outcome.read()
                            finally:
                                outcome.close()
                    except httpx.RequestError as exc:
                        outcome = exc
        except StopIteration as stop:
            result: R = stop.value
            return result

    async def _adrive(self, flow: Flow[R], *, stream: bool) -> R:
        client, slots = await self.pool.async_lane(self.transport, self.max_concurrency)
        outcome: Outcome | None = None
        try:
            while True:
                delay, request = flow.send(outcome)
                if delay:
                    await asyncio.sleep(delay)
                if self.rate_limiter is not None:
                    await self.rate_limiter.aacquire()
                async with nullcontext() if stream else slots:
                    try:
                        outcome = await client.send(request, stream=stream)
                        if stream and _needs_body(outcome):
                            try:
                                await outcome.aread()
                            finally:
                                await outcome.aclose()
                    except httpx.RequestError as exc:
                        outcome = exc
        except StopIteration as stop:
            result: R = stop.value
            return result

    # --- everything below is shared by sync and async, and does no I/O ---

    def url(self, endpoint: str) -> str:
        return f"{self.base_url.rstrip('/')}/{endpoint}"

    def _exchange(self, call: Call[Any], interpret: Callable[[Outcome], R]) -> Flow[R]:
        request = self._build(call)
        delay = 0.0
        attempt = 0
        while True:
            outcome = yield delay, request
            assert outcome is not None  # the drivers always send one back
            try:
                return interpret(outcome)
            except _RETRYABLE as exc:
                if attempt >= self.max_retries or not self._may_retry(exc):
                    raise
                delay = self._backoff(attempt, exc)
                attempt += 1
                logger.info(
                    "Metaso %s: attempt %d failed (%s); retrying in %.2f s",
                    call.endpoint,
                    attempt,
                    type(exc).__name__,
                    delay,
                )

    def _build(self, call: Call[Any]) -> httpx.Request:
        return httpx.Request(
            "POST",
            _parsed_url(self.url(call.endpoint)),
            headers={
                "Authorization": f"Bearer {self.api_key.get_secret_value()}",
                "Content-Type": "application/json",
                "Accept": _ACCEPT[call.expect],
                "User-Agent": USER_AGENT,
            },
            content=_encode(call.body),
            # No pool timeout: waiting for a free connection is how max_concurrency
            # queues requests, and each request ahead is bounded by its own timeout.
            extensions={"timeout": httpx.Timeout(self.timeout, pool=None).as_dict()},
        )

    def _interpret(self, call: Call[T], cache_as: str | None, outcome: Outcome) -> T:
        response = self._answered(call, outcome)
        if call.expect == "text":
            decoded: Any = response.text
        else:
            decoded = self._decode_json(call.endpoint, self.url(call.endpoint), response)
        try:
            result = call.parse(decoded)
        except ValueError as exc:
            raise MetasoResponseError(
                self._redact(str(exc)), endpoint=call.endpoint, body_excerpt=self._excerpt(response)
            ) from exc
        if cache_as is not None:
            # Only an answer that parsed is stored: errors and garbage are never cached.
            self._use_cache("set", cache_as, decoded)
        return result

    def _cache_key(self, call: Call[Any]) -> str | None:
        """The call's key in the cache, or None when it is not to be cached."""
        if self.cache is None or call.expect == "events":
            return None
        return cache_key(call.endpoint, self.base_url, call.body, expect=call.expect)

    def _from_cache(self, call: Call[T], key: str | None) -> T | None:
        """The parsed answer of an identical earlier call, if the cache holds one."""
        decoded = None if key is None else self._use_cache("get", key)
        if decoded is None:
            return None
        try:
            result = call.parse(decoded)
        except Exception as exc:  # a stale or foreign entry: ask the server instead
            logger.warning("Metaso cache: ignored an entry that did not parse (%s)", exc)
            return None
        logger.debug("Metaso %s: answered from the cache", call.endpoint)
        return result

    def _use_cache(self, action: Literal["get", "set"], key: str, *value: Any) -> Any:
        try:
            return getattr(self.cache, action)(key, *value)
        except Exception as exc:  # a cache backend that fails must not fail the search
            logger.warning("Metaso cache %s failed (%s); going without", action, exc)
            return None

    def _opened(self, call: Call[Any], outcome: Outcome) -> httpx.Response:
        """The response of a stream call, its body still unread, once it is an event stream."""
        response = self._answered(call, outcome)
        if _needs_body(response):
            # Metaso reports bad parameters as HTTP 200 JSON, even to a stream request.
            self._decode_json(call.endpoint, self.url(call.endpoint), response)
            content_type = response.headers.get("content-type", "no content type")
            raise MetasoResponseError(
                f"expected a server-sent event stream (text/event-stream), got {content_type}",
                endpoint=call.endpoint,
                body_excerpt=self._excerpt(response),
            )
        return response

    def _answered(self, call: Call[Any], outcome: Outcome) -> httpx.Response:
        """The response, if it is a success; else the error it stands for, raised."""
        url = self.url(call.endpoint)
        if isinstance(outcome, httpx.RequestError):
            raise self._connection_error(call, outcome) from outcome
        logger.debug("Metaso %s: HTTP %d from %s", call.endpoint, outcome.status_code, url)
        if outcome.status_code >= 300:
            raise self._http_error(call.endpoint, url, outcome)
        return outcome

    def _connection_error(self, call: Call[Any], exc: httpx.RequestError) -> MetasoError:
        problem = self._redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if not isinstance(exc, httpx.TransportError):  # e.g. a body that fails to decompress
            return MetasoResponseError(problem, endpoint=call.endpoint)
        kind = (
            MetasoTimeoutError if isinstance(exc, httpx.TimeoutException) else MetasoConnectionError
        )
        return kind(problem, endpoint=call.endpoint, url=self.url(call.endpoint))

    def _decoder(self, call: Call[Any]) -> SSEDecoder:
        return SSEDecoder(call.endpoint, excerpt=self._shorten)

    def _parse_event(self, call: Call[T], event: ServerSentEvent) -> T:
        try:
            return call.parse(event.data)
        except ValueError as exc:
            raise MetasoResponseError(
                self._redact(str(exc)),
                endpoint=call.endpoint,
                body_excerpt=self._shorten(json.dumps(event.data, ensure_ascii=False)),
            ) from exc

    def _decode_json(self, endpoint: str, url: str, response: httpx.Response) -> Any:
        try:
            payload = json.loads(response.content)
        except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
            content_type = response.headers.get("content-type", "no content type")
            raise MetasoResponseError(
                f"the body is not JSON ({content_type})",
                endpoint=endpoint,
                body_excerpt=self._excerpt(response),
            ) from exc
        if not isinstance(payload, dict):
            raise MetasoResponseError(
                f"expected a JSON object, got {type(payload).__name__}",
                endpoint=endpoint,
                body_excerpt=self._excerpt(response),
            )
        code = payload.get("errCode", payload.get("err_code"))
        if code not in (None, 0, "0") or isinstance(payload.get("error"), dict):
            raise self._api_error(endpoint, url, response.status_code, payload)
        return payload

    def _http_error(self, endpoint: str, url: str, response: httpx.Response) -> MetasoError:
        try:
            payload: Any = json.loads(response.content)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            payload = {"message": self._excerpt(response) or response.reason_phrase}
        if response.is_redirect:
            location = response.headers.get("location", "elsewhere")
            return MetasoAPIError(
                self._redact(f"redirected to {location}"),
                status_code=response.status_code,
                endpoint=endpoint,
                url=url,
                hint="Set base_url (or METASO_BASE_URL) to the address it redirects to.",
            )
        return self._api_error(
            endpoint, url, response.status_code, payload, retry_after=_retry_after(response)
        )

    def _api_error(
        self,
        endpoint: str,
        url: str,
        status: int,
        payload: dict[str, Any],
        *,
        retry_after: float | None = None,
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
        code = next(
            (
                source[key]
                for key in ("errCode", "err_code", "code")
                if isinstance(source.get(key), str | int)
            ),
            None,
        )
        args: dict[str, Any] = {
            "status_code": status,
            "endpoint": endpoint,
            "url": url,
            "code": code,
            "retry_after": retry_after,
        }
        message = self._redact(message)
        if status == 429:
            return MetasoRateLimitError(message, **args)
        if status == 404:
            return MetasoAPIError(
                message,
                hint="Check the base URL (base_url= or METASO_BASE_URL): nothing answers there.",
                **args,
            )
        if status in (401, 403):
            return MetasoAuthenticationError(message, **args)
        if status == 402 or _CREDITS_WORDS.search(message):
            return MetasoInsufficientCreditsError(message, **args)
        if status >= 500:
            return MetasoServerError(message, **args)
        return MetasoAPIError(message, **args)

    def _may_retry(self, exc: MetasoError) -> bool:
        # A server that asks for a long pause is answered at once: waiting a minute
        # inside a tool call would stall the agent.
        retry_after = getattr(exc, "retry_after", None)
        return retry_after is None or retry_after <= MAX_RETRY_AFTER

    def _backoff(self, attempt: int, exc: MetasoError) -> float:
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        ceiling = min(MAX_BACKOFF, self.retry_backoff * 2**attempt)
        # Equal jitter: at least half the ceiling, so retries spread without collapsing to 0.
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 (not crypto)

    def _excerpt(self, response: httpx.Response) -> str:
        return self._shorten(
            response.content[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
        )

    def _shorten(self, text: str) -> str:
        text = self._redact(text)
        return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"

    def _redact(self, text: str) -> str:
        secret = self.api_key.get_secret_value()
        return text.replace(secret, "***") if secret else text


def _needs_body(response: httpx.Response) -> bool:
    """Whether a streamed response must be read whole: errors and answers that are
    not an event stream are interpreted like any other answer."""
    content_type = response.headers.get("content-type", "").lower()
    return response.status_code >= 300 or not content_type.startswith("text/event-stream")


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


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
