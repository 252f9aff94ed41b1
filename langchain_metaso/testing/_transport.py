"""The in-process route: an httpx transport for both sync and async clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager

import httpx

from ._reply import Interruption, Plan, Reply

Exchange = Callable[[str, str, dict[str, str], bytes], AbstractContextManager[Plan]]


class _Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A reply's body; a truncated one fails midway, as a socket closed by the peer would."""

    def __init__(self, reply: Reply, request: httpx.Request) -> None:
        self._parts = reply.delivered()
        self._error: httpx.RemoteProtocolError | None = None
        if reply.truncated:
            # The messages httpx gives for the same failures on a real connection.
            detail = (
                "incomplete chunked read"
                if reply.streamed
                else f"received {len(self._parts[0])} bytes, expected {len(reply.body)}"
            )
            self._error = httpx.RemoteProtocolError(
                f"peer closed connection without sending complete message body: {detail}",
                request=request,
            )

    def __iter__(self) -> Iterator[bytes]:
        yield from self._parts
        if self._error is not None:
            raise self._error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            yield part
        if self._error is not None:
            raise self._error


def _response(plan: Plan, request: httpx.Request) -> httpx.Response:
    outcome = plan.outcome
    if outcome is Interruption.DROP:
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )
    if outcome is Interruption.TIMEOUT:
        raise httpx.ReadTimeout("timed out", request=request)
    if outcome is Interruption.RESET:
        # What a sync httpx client raises when the peer resets a real connection.
        raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
    return httpx.Response(
        outcome.status, headers=[*outcome.headers, outcome.framing], stream=_Body(outcome, request)
    )


def _wait(plan: Plan, request: httpx.Request) -> float:
    """The plan's delay, cut to the request's read timeout: past it, a read of a real
    server's socket would have timed out (``_response_after`` then raises as httpx does)."""
    read = request.extensions.get("timeout", {}).get("read")
    return plan.delay if read is None else min(plan.delay, read)


def _response_after(waited: float, plan: Plan, request: httpx.Request) -> httpx.Response:
    if waited < plan.delay:
        raise httpx.ReadTimeout("timed out", request=request)
    return _response(plan, request)


def _describe(request: httpx.Request) -> tuple[str, str, dict[str, str]]:
    return request.method, request.url.path, {k.lower(): v for k, v in request.headers.items()}


class EmulatorTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers requests without a network, like ``httpx.MockTransport``."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        with self._exchange(*_describe(request), body) as plan:
            if (wait := _wait(plan, request)) > 0:
                time.sleep(wait)
            return _response_after(wait, plan, request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        with self._exchange(*_describe(request), body) as plan:
            if (wait := _wait(plan, request)) > 0:
                await asyncio.sleep(wait)
            return _response_after(wait, plan, request)
