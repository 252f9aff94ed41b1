"""Issue 6, faults: every public caller against the emulator over a real socket.

Each caller (search tool, retriever, reader tool, answer tool, loader) goes through the
same matrix, sync and async:

- a transient fault ``max_retries`` times, then success: the call succeeds, after exactly
  ``max_retries + 1`` attempts at the server;
- the same fault forever: the typed error after ``max_retries + 1`` attempts, the last
  transport error chained as ``__cause__``, within a time derived from the settings; and
  the instance still works afterwards;
- permanent errors (401, 402, business errors, bodies that are not the API's): one
  attempt, the right error, a message that says what to do. (Each status and code on its
  own, the 400s and a wrong base URL among them, is in ``test_http_failures.py``.)

Tools never raise: their failures come back as an error ``ToolMessage``. A new caller
is one more entry in ``CALLERS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from conftest import TEST_KEY, tool_call
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from pydantic import SecretStr

from langchain_metaso import (
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoConfig,
    MetasoConnectionError,
    MetasoError,
    MetasoInsufficientCreditsError,
    MetasoRateLimitError,
    MetasoResponseError,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoServerError,
    MetasoTimeoutError,
)
from langchain_metaso.document_loaders import MetasoLoader
from langchain_metaso.testing import Fault, MetasoEmulator
from langchain_metaso.tools.answer import MetasoAnswerTool
from langchain_metaso.tools.reader import MetasoReaderTool

TEXT = "秘塔 可靠性"
# Far above a loopback answer on a loaded machine: an attempt that timed out before it
# reached the server would go uncounted. Only the read-timeout case, which waits for it
# on every attempt, uses the short one, so the matrix still runs fast.
TIMEOUT = 10.0
SHORT_TIMEOUT = 0.15
BACKOFF = 0.005
MAX_RETRIES = 2
RETRY_AFTER = 0.05

SERVER_HINT = "wait a moment and retry"
RATE_HINT = "Rate limited"
NETWORK_HINT = "Check the network and the base URL"
AUTH_HINT = "METASO_API_KEY"
CREDITS_HINT = "Top up"
PARAMS_HINT = "Check the request parameters"
BODY_HINT = "Check that the base URL points at the Metaso API"


# --- callers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """One public class, driven the way its users drive it.

    ``call``/``acall`` take an instance and a text (the query, or what a URL is made
    of) and return what the class returns: a ``ToolMessage`` for a tool (which must
    never raise), else the value, raising ``MetasoError`` on failure.
    """

    name: str
    endpoint: str
    build: Callable[..., MetasoConfig]
    call: Callable[[Any, str], Any]
    acall: Callable[[Any, str], Awaitable[Any]]
    matches: Callable[[str, Any], bool]
    """Whether a successful value is the answer to this text (not another call's)."""
    is_tool: bool


def tool_caller(
    cls: type[Any], endpoint: str, args: Callable[[str], dict[str, Any]], matches: Any
) -> Caller:
    def call(tool: Any, text: str) -> Any:
        return tool.invoke(tool_call(tool.name, **args(text)))

    async def acall(tool: Any, text: str) -> Any:
        return await tool.ainvoke(tool_call(tool.name, **args(text)))

    return Caller(cls.__name__, endpoint, cls, call, acall, matches, is_tool=True)


def page_url(text: str) -> str:
    return f"https://example.com/{quote(text)}"


def titled(text: str, documents: list[Document]) -> bool:
    """Every document is a result for ``text``: the emulator puts the query in each title."""
    return bool(documents) and all(
        text in (doc.metadata.get("title") or doc.page_content) for doc in documents
    )


def search_matches(text: str, message: ToolMessage) -> bool:
    return titled(text, message.artifact) and text in str(message.content)


def reader_matches(text: str, message: ToolMessage) -> bool:
    url = page_url(text)
    return message.artifact.metadata["source"] == url and urlsplit(url).path in message.content


def answer_matches(text: str, message: ToolMessage) -> bool:
    return titled(text, message.artifact) and text in str(message.content)


def loader_matches(text: str, documents: list[Document]) -> bool:
    return [doc.metadata["source"] for doc in documents] == [page_url(text)]


def loader_build(**settings: Any) -> MetasoLoader:
    # strict: a page that fails raises, as the other classes do, instead of being skipped.
    return MetasoLoader(urls=[page_url("placeholder")], strict=True, **settings)


def loader_for(loader: MetasoLoader, text: str) -> MetasoLoader:
    # A copy shares the pool, so the connections counted are the instance's own.
    return loader.model_copy(update={"urls": [page_url(text)]})


async def loader_aload(loader: MetasoLoader, text: str) -> list[Document]:
    return await loader_for(loader, text).aload()


async def retriever_ainvoke(retriever: MetasoRetriever, text: str) -> list[Document]:
    return await retriever.ainvoke(text)


CALLERS = [
    tool_caller(MetasoSearchTool, "search", lambda text: {"query": text}, search_matches),
    Caller(
        "MetasoRetriever",
        "search",
        MetasoRetriever,
        lambda retriever, text: retriever.invoke(text),
        retriever_ainvoke,
        titled,
        is_tool=False,
    ),
    tool_caller(MetasoReaderTool, "reader", lambda text: {"url": page_url(text)}, reader_matches),
    tool_caller(MetasoAnswerTool, "chat/completions", lambda text: {"query": text}, answer_matches),
    Caller(
        "MetasoLoader",
        "reader",
        loader_build,
        lambda loader, text: loader_for(loader, text).load(),
        loader_aload,
        loader_matches,
        is_tool=False,
    ),
]


@dataclass
class Outcome:
    """How one call ended: a value, or an error (raised, or in an error ToolMessage)."""

    value: Any = None
    error: MetasoError | None = None
    text: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.text)


# --- the server: the emulator, and a relay in front of it that can reset connections ----


class _RelayHandler(socketserver.BaseRequestHandler):
    server: _RelayServer

    def handle(self) -> None:
        relay = self.server.relay
        with socket.create_connection(("127.0.0.1", relay.upstream_port)) as upstream:
            back = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
            back.start()
            with contextlib.suppress(OSError):
                while data := self.request.recv(65536):
                    # Requests on a connection come one at a time, so the first bytes
                    # after an answer start a request: reset instead of forwarding it.
                    if relay.take_reset():
                        _reset(self.request)
                        break
                    upstream.sendall(data)
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)
            back.join(5)


def _reset(connection: socket.socket) -> None:
    # SO_LINGER 0 makes close() abort the connection with a RST instead of a FIN.
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


class _RelayServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    relay: ResetRelay


class ResetRelay:
    """A TCP relay to the emulator that resets (RST) the next ``n`` requests it relays.

    The emulator can close a connection (``Fault.drop``) but not reset it; a reset
    reaches the client as a different error (``ConnectionResetError``).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.resets_done = 0
        self._pending = 0
        self._lock = threading.Lock()
        self._server = _RelayServer(("127.0.0.1", 0), _RelayHandler)
        self._server.relay = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def reset_next(self, count: int) -> None:
        with self._lock:
            self._pending = count

    def take_reset(self) -> bool:
        with self._lock:
            if self._pending <= 0:
                return False
            self._pending -= 1
            self.resets_done += 1
            return True

    def clear(self) -> None:
        with self._lock:
            self._pending = self.resets_done = 0

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@dataclass
class Harness:
    """The emulator over a socket, the relay, one event loop for async calls, and one
    instance per caller and base URL, reused across tests as an application would
    (building an ``httpx`` client costs more than a call)."""

    emulator: MetasoEmulator
    url: str
    relay: ResetRelay
    loop: asyncio.AbstractEventLoop
    instances: dict[tuple[str, str], Any] = field(default_factory=dict)

    def attempts(self, expected: int = 0) -> int:
        """Requests that reached the emulator, plus requests the relay reset, once at least
        ``expected`` did (or 10 s passed): a client that gave up on a request (a timeout)
        may return before the server's thread has read it, on a loaded machine."""
        deadline = time.monotonic() + 10
        while self._attempts() < expected and time.monotonic() < deadline:
            time.sleep(0.005)
        return self._attempts()

    def _attempts(self) -> int:
        return self.emulator.stats.requests + self.relay.resets_done

    def clear(self) -> None:
        self.emulator.reset()
        self.relay.clear()
        # A 429 asking for an hour holds its instance (and copies) back for an hour, as
        # it should: the next test starts with a new instance instead.
        for key, instance in list(self.instances.items()):
            if instance._pool.cooldown_left():
                del self.instances[key]

    def instance(self, caller: Caller, base_url: str, **update: Any) -> Any:
        """The shared instance of ``caller`` for ``base_url``; with ``update``, a copy
        with those settings (copies share the pool)."""
        key = (caller.name, base_url)
        if key not in self.instances:
            self.instances[key] = caller.build(
                metaso_api_key=TEST_KEY,
                base_url=base_url,
                timeout=TIMEOUT,
                max_retries=MAX_RETRIES,
                retry_backoff=BACKOFF,
            )
        shared = self.instances[key]
        return shared.model_copy(update=update) if update else shared

    def run(self, caller: Caller, instance: Any, text: str, mode: str) -> Outcome:
        """One call, sync or on the harness's event loop."""
        try:
            if mode == "sync":
                raw = caller.call(instance, text)
            else:
                raw = self.loop.run_until_complete(caller.acall(instance, text))
        except MetasoError as exc:
            if caller.is_tool:
                pytest.fail(f"{caller.name} raised {exc!r} into the agent")
            return Outcome(error=exc, text=str(exc))
        if not caller.is_tool:
            return Outcome(value=raw)
        assert isinstance(raw, ToolMessage), raw
        if raw.status == "error":
            assert raw.content, "an error ToolMessage must say what went wrong"
            return Outcome(text=str(raw.content))
        return Outcome(value=raw)

    def close(self) -> None:
        for instance in self.instances.values():
            self.loop.run_until_complete(instance.aclose())


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    emulator = MetasoEmulator(api_key=TEST_KEY)
    loop = asyncio.new_event_loop()
    with emulator.serve() as url:
        relay = ResetRelay(int(url.rsplit(":", 1)[1]))
        state = Harness(emulator, url, relay, loop)
        try:
            yield state
        finally:
            state.close()
            loop.close()
            relay.stop()


@pytest.fixture
def server(harness: Harness) -> Harness:
    harness.clear()
    return harness


@pytest.fixture(params=CALLERS, ids=[caller.name for caller in CALLERS])
def caller(request: pytest.FixtureRequest) -> Caller:
    return request.param  # type: ignore[no-any-return]


# --- transient faults -------------------------------------------------------------------


@dataclass(frozen=True)
class Transient:
    name: str
    fault: Callable[[], Fault] | None
    """What the emulator does; None: the relay resets the connection."""
    error: type[MetasoError]
    hint: str
    retry_after: float | None = None
    """The Retry-After the fault sends, which replaces the backoff."""
    transport: bool = False
    """The failure is a transport error, chained as the typed error's ``__cause__``."""
    timeout: float = TIMEOUT
    """The client's timeout: short where the fault is waiting for it."""

    def arrange(self, server: Harness, times: int) -> None:
        if self.fault is None:
            server.relay.reset_next(times)
        else:
            server.emulator.script(*(self.fault() for _ in range(times)))

    def base_url(self, server: Harness) -> str:
        return server.relay.url if self.fault is None else server.url


TRANSIENT = [
    Transient("503", lambda: Fault.status(503), MetasoServerError, SERVER_HINT),
    Transient("502", lambda: Fault.status(502), MetasoServerError, SERVER_HINT),
    Transient("504", lambda: Fault.status(504), MetasoServerError, SERVER_HINT),
    Transient(
        "500 with an HTML body",
        lambda: Fault.status(500, body="<html><h1>Internal Server Error</h1></html>"),
        MetasoServerError,
        SERVER_HINT,
    ),
    Transient(
        "429 with Retry-After",
        lambda: Fault.status(429, retry_after=RETRY_AFTER),
        MetasoRateLimitError,
        f"wait {RETRY_AFTER:g} s",
        retry_after=RETRY_AFTER,
    ),
    Transient(
        "429 without Retry-After", lambda: Fault.status(429), MetasoRateLimitError, RATE_HINT
    ),
    Transient(
        "503 with Retry-After",
        lambda: Fault.status(503, retry_after=RETRY_AFTER),
        MetasoServerError,
        SERVER_HINT,
        retry_after=RETRY_AFTER,
    ),
    Transient("connection reset", None, MetasoConnectionError, NETWORK_HINT, transport=True),
    Transient(
        "connection dropped", Fault.drop, MetasoConnectionError, NETWORK_HINT, transport=True
    ),
    Transient(
        "read timeout",
        Fault.timeout,
        MetasoTimeoutError,
        NETWORK_HINT,
        transport=True,
        timeout=SHORT_TIMEOUT,
    ),
]


@pytest.fixture(params=TRANSIENT, ids=[case.name for case in TRANSIENT])
def transient(request: pytest.FixtureRequest) -> Transient:
    return request.param  # type: ignore[no-any-return]


def test_transient_faults_then_success(
    server: Harness, caller: Caller, mode: str, transient: Transient
) -> None:
    instance = server.instance(caller, transient.base_url(server), timeout=transient.timeout)
    transient.arrange(server, MAX_RETRIES)

    started = time.monotonic()
    outcome = server.run(caller, instance, TEXT, mode)
    elapsed = time.monotonic() - started

    assert not outcome.failed, outcome.text
    assert caller.matches(TEXT, outcome.value)
    assert server.attempts(MAX_RETRIES + 1) == MAX_RETRIES + 1
    assert all(r.path.endswith("/" + caller.endpoint) for r in server.emulator.requests)
    if transient.retry_after is not None:
        assert elapsed >= MAX_RETRIES * transient.retry_after  # the server's wait was honoured


def test_transient_faults_forever(
    server: Harness, caller: Caller, mode: str, transient: Transient
) -> None:
    instance = server.instance(caller, transient.base_url(server), timeout=transient.timeout)
    # More faults than attempts: one retry too many would meet a fault, not a success.
    transient.arrange(server, MAX_RETRIES + 2)

    outcome = server.run(caller, instance, TEXT, mode)

    assert outcome.failed
    assert server.attempts(MAX_RETRIES + 1) == MAX_RETRIES + 1
    assert transient.hint in outcome.text
    assert f"Metaso {caller.endpoint}" in outcome.text
    if outcome.error is not None:
        assert type(outcome.error) is transient.error
        cause = outcome.error.__cause__
        assert isinstance(cause, httpx.TransportError) if transient.transport else cause is None

    # The same instance recovers as soon as the server does (with the long timeout: a
    # real answer may take longer than SHORT_TIMEOUT on a loaded machine).
    server.clear()
    instance.timeout = TIMEOUT
    recovered = server.run(caller, instance, TEXT + " again", mode)
    assert not recovered.failed, recovered.text
    assert caller.matches(TEXT + " again", recovered.value)
    assert server.attempts() == 1


def test_an_answer_cut_off_after_200_is_not_sent_again(
    server: Harness, caller: Caller, mode: str
) -> None:
    # "200 OK", part of the body, then the connection closes: the server may have charged.
    instance = server.instance(caller, server.url)
    server.emulator.script(*(Fault.truncated() for _ in range(MAX_RETRIES + 1)))

    outcome = server.run(caller, instance, TEXT, mode)

    assert outcome.failed
    assert "cut off after HTTP 200" in outcome.text
    assert "not sent again" in outcome.text
    assert server.attempts(1) == 1
    if outcome.error is not None:
        assert type(outcome.error) is MetasoConnectionError
        assert isinstance(outcome.error.__cause__, httpx.TransportError)


def test_no_retries_when_max_retries_is_zero(server: Harness, caller: Caller, mode: str) -> None:
    instance = server.instance(caller, server.url, max_retries=0)
    server.emulator.script(Fault.status(503), Fault.status(503))

    outcome = server.run(caller, instance, TEXT, mode)

    assert outcome.failed
    assert SERVER_HINT in outcome.text
    assert server.attempts() == 1


# --- permanent errors -------------------------------------------------------------------


@dataclass(frozen=True)
class Permanent:
    name: str
    fault: Callable[[], Fault] | None
    """What the emulator answers; None: the instance sends a wrong key."""
    error: type[MetasoError]
    says: tuple[str, ...]
    """What the message must contain: what to do, and the server's own words."""
    attributes: dict[str, Any] = field(default_factory=dict)


PERMANENT = [
    Permanent(
        "401",
        lambda: Fault.status(401, body={"error": {"message": "令牌无效", "type": "auth"}}),
        MetasoAuthenticationError,
        (AUTH_HINT, "HTTP 401", "令牌无效"),
        {"status_code": 401},
    ),
    Permanent("403", lambda: Fault.status(403), MetasoAuthenticationError, (AUTH_HINT, "HTTP 403")),
    Permanent("wrong key", None, MetasoAuthenticationError, (AUTH_HINT, "HTTP 401")),
    Permanent(
        "402",
        lambda: Fault.status(402),
        MetasoInsufficientCreditsError,
        (CREDITS_HINT, "HTTP 402"),
        {"status_code": 402},
    ),
    Permanent(
        "business error",
        lambda: Fault.business_error(1000, "参数错误"),
        MetasoAPIError,
        (PARAMS_HINT, "参数错误", "code 1000"),
        {"status_code": 200, "code": 1000},
    ),
    Permanent(
        "business error about the balance",
        lambda: Fault.business_error(4003, "余额不足"),
        MetasoInsufficientCreditsError,
        (CREDITS_HINT, "余额不足"),
    ),
    Permanent("HTML at HTTP 200", Fault.garbage, MetasoResponseError, (BODY_HINT, "an HTML page")),
    Permanent(
        "JSON of another shape",
        lambda: Fault.status(200, body={"data": None}),
        MetasoResponseError,
        (BODY_HINT, '"data"'),
    ),
    Permanent(
        "JSON that is not an object",
        lambda: Fault.status(200, body="[1, 2, 3]"),
        MetasoResponseError,
        (BODY_HINT, "[1, 2, 3]"),
    ),
    Permanent(
        "429 asking for an hour",
        lambda: Fault.status(429, retry_after=3600),
        MetasoRateLimitError,
        ("wait 3600 s",),
        {"retry_after": 3600},
    ),
]


@pytest.mark.parametrize("case", PERMANENT, ids=[case.name for case in PERMANENT])
def test_permanent_errors_are_not_retried(
    server: Harness, caller: Caller, mode: str, case: Permanent
) -> None:
    if case.fault is None:
        instance = server.instance(caller, server.url, metaso_api_key=SecretStr("wrong-key"))
    else:
        instance = server.instance(caller, server.url)
        # Scripted twice: a retry would meet the same error, never a success.
        server.emulator.script(case.fault(), case.fault())

    outcome = server.run(caller, instance, TEXT, mode)

    assert outcome.failed
    assert server.attempts() == 1
    # The reader's refusal is of the page: it says to try another URL instead.
    reader = {PARAMS_HINT: "try another URL"} if caller.endpoint == "reader" else {}
    for words in (f"Metaso {caller.endpoint}", *case.says):
        assert reader.get(words, words) in outcome.text
    if outcome.error is not None:
        assert type(outcome.error) is case.error
        for name, value in case.attributes.items():
            assert getattr(outcome.error, name) == value
