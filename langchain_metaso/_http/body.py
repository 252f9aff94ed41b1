"""Reading an answer's bytes within ``max_response_bytes`` (decompressed here chunk by
chunk, so that a gzip bomb never expands past the bound) and ``total_timeout`` (checked
at every chunk, so that a server trickling bytes or keep-alive comments cannot hold a
call past it); ``EventReader`` turns an event stream's chunks into parsed items."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import re
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Generic, TypeVar

import httpx

from langchain_metaso._http.call import Call
from langchain_metaso._http.failures import CallErrors, is_error
from langchain_metaso._http.pool import DEADLINE, DeadlineStream
from langchain_metaso.errors import MetasoResponseError

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DRAIN_SECONDS",
    "BodyReader",
    "EventReader",
    "drain_async",
    "drain_sync",
    "time_left",
]

T = TypeVar("T")

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""Far above any real answer (a search of 100 results with raw content is a few MiB)."""
DRAIN_SECONDS = 0.5
"""How long a finished stream waits for the rest of its response, so that its connection
goes back to the pool; a server that keeps it open longer has it closed."""

_LINE_END = re.compile(r"\r\n|\r|\n")
DONE = "[DONE]"


def time_left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (0 once passed), ``None`` without one."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class BodyReader:
    """Decodes the raw chunks of one response: decompressed within the bound, counted,
    and each read before the deadline."""

    def __init__(
        self, errors: CallErrors, response: httpx.Response, deadline: float | None
    ) -> None:
        self.errors = errors
        self.response = response
        self.deadline = deadline
        self._left = errors.max_response_bytes
        self._read = response.is_stream_consumed  # built in memory: already decoded
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if self._read:
            encoding = "identity"
        # 47: a gzip or zlib header, detected; deflate is sent with a zlib header or none.
        wbits = {"identity": None, "": None, "gzip": 47, "x-gzip": 47, "deflate": 47}
        # Refused at the first chunk, not here: the caller closes the response from there.
        self._unsupported = None if encoding in wbits else encoding
        self._raw_deflate = encoding == "deflate"
        bits = wbits.get(encoding)
        self._zlib = None if bits is None else zlib.decompressobj(bits)

    def decode(self, raw: bytes) -> bytes:
        """One raw chunk as bytes of the answer.

        Raises:
            httpx.ReadTimeout: ``total_timeout`` has passed.
            httpx.DecodingError: the chunk does not decompress.
            MetasoResponseError: the answer is past ``max_response_bytes``.
        """
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise httpx.ReadTimeout("total_timeout passed while the answer was arriving")
        if self._unsupported is not None:
            raise httpx.DecodingError(f"unsupported content-encoding {self._unsupported!r}")
        data = raw if self._zlib is None else self._inflate(raw)
        self._left -= len(data)
        if self._left < 0:
            raise self.errors.too_large()
        return data

    def raw(self) -> Iterator[bytes]:
        """The response's raw chunks, to ``decode`` one by one."""
        response = self.response
        return response.iter_bytes() if self._read else response.iter_raw()

    def araw(self) -> AsyncIterator[bytes]:
        response = self.response
        return response.aiter_bytes() if self._read else response.aiter_raw()

    def read(self) -> bytes:
        """The whole body, decoded; the response closed."""
        with contextlib.closing(self.response):
            return b"".join(map(self.decode, self.raw()))

    async def aread(self) -> bytes:
        async with contextlib.aclosing(self.response):
            return b"".join([self.decode(chunk) async for chunk in self.araw()])

    def _inflate(self, raw: bytes) -> bytes:
        assert self._zlib is not None
        try:
            # At most one byte past what is left: enough to know the bound is passed,
            # without expanding a bomb.
            data = self._zlib.decompress(raw, self._left + 1)
        except zlib.error as exc:
            if not self._raw_deflate:
                raise httpx.DecodingError(f"{exc}") from exc
            self._raw_deflate, self._zlib = False, zlib.decompressobj(-zlib.MAX_WBITS)
            return self._inflate(raw)
        self._raw_deflate = False
        if self._zlib.unconsumed_tail:
            raise self.errors.too_large()
        return data

    @staticmethod
    def charset(response: httpx.Response) -> str:
        """The response's charset if it is a text encoding, else UTF-8 (``rot13``,
        ``base64`` and unknown names are no way to read text)."""
        name = response.charset_encoding
        try:
            info = codecs.lookup(name or "utf-8")
        except LookupError:
            return "utf-8"
        return info.name if getattr(info, "_is_text_encoding", True) else "utf-8"


class EventReader(Generic[T]):
    """The items of a server-sent event stream, fed its raw chunks in turn (``None`` at its
    end). Lines follow the WHATWG rules (``field: value``, ``:`` comments, a blank line ends
    an event, multi-line ``data`` joined by ``\\n``) and the OpenAI convention the chat
    stream uses: each event's data is JSON, and ``data: [DONE]`` ends the stream."""

    def __init__(self, call: Call[T], body: BodyReader) -> None:
        self.call = call
        self.errors = body.errors
        self.body = body
        self.credits: float | None = None
        self.done = False  # data: [DONE] came
        charset = BodyReader.charset(body.response)
        self._text = codecs.getincrementaldecoder(charset)(errors="replace")
        self._pending = ""
        self._data: list[str] = []  # the data lines of the event being read
        self._first = True

    def feed(self, raw: bytes | None) -> list[T]:
        """The items the chunk completes; at the end (``None``), checks the stream ended
        with ``[DONE]``.

        Raises:
            MetasoResponseError: an event's data is not JSON, or the stream ended before
                ``data: [DONE]`` (e.g. cut short by a proxy): what came may be only part of
                the answer.
        """
        if self.done:
            return []
        if raw is None:
            lines = [self._pending + self._text.decode(b"", final=True)]
            self._pending = ""
        else:
            text = self._pending + self._text.decode(self.body.decode(raw))
            # A "\r" at the end may be the first half of "\r\n": wait for what follows.
            keep = text.endswith("\r")
            lines = _LINE_END.split(text[:-1] if keep else text)
            self._pending = lines.pop() + ("\r" if keep else "")
        items: list[T] = []
        for line in lines:
            items += map(self._item, self._line(line))
            if self.done:
                return items
        if raw is None:
            self._dispatch()  # a last event without its blank line: still checked
            if not self.done:
                raise MetasoResponseError(
                    f"the event stream ended before 'data: {DONE}', so it may be incomplete",
                    endpoint=self.call.endpoint,
                )
        return items

    def _line(self, line: str) -> list[Any]:
        """The data of the event ``line`` ends, if it ends one."""
        line = line.rstrip("\r\n")
        if self._first:
            self._first = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        name, _, value = line.partition(":")
        # Any other line is a comment (a keep-alive ping), or a field (event, id, retry)
        # that only a browser reconnecting needs.
        if name == "data":
            value = value.removeprefix(" ")
            if value.strip() == DONE and not self._data:
                self.done = True  # at once: a server may keep the connection open after it
            else:
                self._data.append(value)
        return []

    def _dispatch(self) -> list[Any]:
        data = "\n".join(self._data)
        self._data = []
        if data.strip() == DONE:
            self.done = True
        if not data or self.done:
            return []
        try:
            return [json.loads(data)]
        except (ValueError, RecursionError) as exc:
            raise MetasoResponseError(
                "an event's data is not JSON",
                endpoint=self.call.endpoint,
                body_excerpt=self.errors.shorten(data),
            ) from exc

    def _item(self, data: Any) -> T:
        # A server that fails once the stream has started can only say so in an event.
        if isinstance(data, dict) and is_error(data):
            raise self.errors.api_error(200, data)
        try:
            item = self.call.parse(data)
        except ValueError as exc:
            shown = self.errors.shorten(json.dumps(data, ensure_ascii=False))
            raise self.errors.unusable(str(exc), shown) from exc
        spent = getattr(item, "credits", None)  # read off the parsed item, not parsed again
        if isinstance(spent, int | float) and spent >= 0:
            self.credits = float(spent)
        return item


async def drain_async(raw: AsyncIterator[bytes]) -> None:
    """``drain_sync`` on the running event loop."""
    with contextlib.suppress(asyncio.TimeoutError, httpx.HTTPError):
        await asyncio.wait_for(_exhaust(raw), DRAIN_SECONDS)


async def _exhaust(raw: AsyncIterator[bytes]) -> None:
    async for _ in raw:
        pass


def drain_sync(response: httpx.Response, raw: Iterator[bytes]) -> None:
    """Read what is left of a finished stream's response, for at most ``DRAIN_SECONDS``,
    so that its connection can go back to the pool; past that the read times out, which
    closes the connection. Only the default transport's sockets keep to that bound
    (``pool.DEADLINE``): another transport's stream is not read on, and its connection
    closes with the response."""
    if not isinstance(response.extensions.get("network_stream"), DeadlineStream):
        return
    bound = DEADLINE.set(time.monotonic() + DRAIN_SECONDS)
    try:
        with contextlib.suppress(httpx.HTTPError):
            for _ in raw:
                pass
    finally:
        DEADLINE.reset(bound)
