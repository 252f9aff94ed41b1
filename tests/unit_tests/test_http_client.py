"""MetasoClient (``_http/client.py``): what is sent, answers that are not the API's,
transport failures, the key kept out of errors, the rate limiter, and streams."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import SECRET, TEST_KEY, Invoke, Make, Served, failure, tool_call
from langchain_core.rate_limiters import BaseRateLimiter

from langchain_metaso import (
    InMemoryCache,
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoConfig,
    MetasoConnectionError,
    MetasoResponseError,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoTimeoutError,
)
from langchain_metaso._http import Call, MetasoClient
from langchain_metaso.chat import Answer, AnswerRequest, chat_call
from langchain_metaso.testing import Fault, MetasoEmulator

QUESTION = "秘塔 AI 搜索是什么"


# --- what is sent ---------------------------------------------------------------------


def test_headers_sent(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    invoke(make(MetasoRetriever), "秘塔")
    [sent] = emulator.requests
    assert sent.method == "POST"
    assert sent.path == "/metaso/search"  # the default base URL, https://api.302.ai/metaso
    assert sent.headers["authorization"] == f"Bearer {emulator.api_key}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "application/json"


def test_body_is_json_with_chinese_unescaped(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    invoke(make(MetasoRetriever), "大语言模型 幻觉 评测")
    [sent] = emulator.requests
    assert "大语言模型 幻觉 评测".encode() in sent.body
    assert b"\\u" not in sent.body
    assert sent.json()["q"] == "大语言模型 幻觉 评测"


# --- answers that are not the API's ---------------------------------------------------


def test_non_json_body(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    emulator.script(Fault.garbage(b"upstream said no", content_type="text/plain"))
    error = failure(invoke, make(MetasoRetriever))
    assert type(error) is MetasoResponseError
    assert error.endpoint == "search"
    assert error.body_excerpt == "upstream said no"
    assert "not JSON (text/plain)" in str(error)
    assert "base URL" in str(error)
    assert len(emulator.requests) == 1


@pytest.mark.parametrize("body", ["x" * 5000, "中文" * 3000])
def test_non_json_body_is_cut_short(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, body: str
) -> None:
    emulator.script(Fault.garbage(body.encode(), content_type="text/plain"))
    error = failure(invoke, make(MetasoRetriever))
    assert isinstance(error, MetasoResponseError)
    assert error.body_excerpt.endswith("…")
    assert 100 <= len(error.body_excerpt) <= 1000
    assert error.body_excerpt[:-1] == body[: len(error.body_excerpt) - 1]
    assert len(str(error)) < 1500


@pytest.mark.parametrize(
    ("body", "kind"), [(b"[1, 2]", "list"), (b'"webpages"', "str"), (b"42", "int")]
)
def test_json_that_is_not_an_object(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, body: bytes, kind: str
) -> None:
    emulator.script(Fault.garbage(body, 200, "application/json"))
    error = failure(invoke, make(MetasoRetriever))
    assert type(error) is MetasoResponseError
    assert f"expected a JSON object, got {kind}" in str(error)
    assert error.body_excerpt == body.decode()


def test_json_without_the_result_list(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    emulator.script(Fault.garbage(b'{"total": 3, "scholars": []}', 200, "application/json"))
    error = failure(invoke, make(MetasoRetriever))
    assert type(error) is MetasoResponseError
    assert "'webpages'" in str(error)
    assert '"total": 3' in error.body_excerpt


def test_a_provider_message_echoing_a_long_query_is_cut_short(
    make: Make, emulator: MetasoEmulator
) -> None:
    query = "秘塔" * 5000
    emulator.script(Fault.business_error(1000, f"query too long: {query}"))
    with pytest.raises(MetasoAPIError) as info:
        make(MetasoRetriever).invoke(query)
    assert info.value.provider_message == f"query too long: {query}"[:300] + "…"
    assert len(str(info.value)) < 600
    assert "…. " not in str(info.value)


def corrupt_gzip(request: httpx.Request) -> httpx.Response:
    good = gzip.compress(b'{"webpages": []}')
    return httpx.Response(
        200,
        content=good[:10] + b"garbage" + good[10:],
        headers={"content-encoding": "gzip", "content-type": "application/json"},
    )


def test_a_body_that_fails_to_decompress_is_a_response_error_not_retried() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return corrupt_gzip(request)

    retriever = MetasoRetriever(metaso_api_key=TEST_KEY, transport=httpx.MockTransport(handler))
    with pytest.raises(MetasoResponseError, match="DecodingError"):
        retriever.invoke("q")
    with pytest.raises(MetasoResponseError, match="DecodingError"):
        asyncio.run(retriever.ainvoke("q"))
    assert len(requests) == 2  # one each: decoding again would not help

    tool = MetasoSearchTool(metaso_api_key=TEST_KEY, transport=httpx.MockTransport(handler))
    message = tool.invoke(tool_call(tool.name, query="q"))
    assert message.status == "error"
    assert "unusable answer" in message.content


def test_a_redirect_points_at_the_base_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"location": "https://api.302.ai/metaso/search"})

    retriever = MetasoRetriever(
        metaso_api_key=TEST_KEY,
        base_url="http://api.302.ai/metaso",
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(MetasoAPIError) as caught:
        retriever.invoke("q")
    assert caught.value.status_code == 301
    assert "https://api.302.ai/metaso/search" in str(caught.value)
    assert "base_url" in str(caught.value)


# --- transport failures ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected", "cause", "says"),
    [
        (
            Fault.drop,
            MetasoConnectionError,
            httpx.RemoteProtocolError,
            ["disconnected", "Check the network and the base URL"],  # what httpx said, what to do
        ),
        (Fault.timeout, MetasoTimeoutError, httpx.TimeoutException, ["ReadTimeout"]),
        # Cut off after "200 OK": not sent again (the server may have charged for it).
        (Fault.truncated, MetasoConnectionError, httpx.TransportError, ["cut off after HTTP 200"]),
    ],
)
def test_transport_failures_after_retries(
    make: Make,
    emulator: MetasoEmulator,
    invoke: Invoke,
    fault: Callable[[], Fault],
    expected: type[MetasoConnectionError],
    cause: type[Exception],
    says: list[str],
) -> None:
    emulator.script(*[fault() for _ in range(3)])
    error = failure(invoke, make(MetasoRetriever))
    assert type(error) is expected
    assert isinstance(error, MetasoConnectionError)
    assert isinstance(error.__cause__, cause)
    assert error.endpoint == "search"
    for words in says:
        assert words in str(error)
    assert len(emulator.requests) == (1 if fault == Fault.truncated else 3)


def test_socket_timeout_is_a_timeout_error(
    served: Served, emulator: MetasoEmulator, emulator_url: str
) -> None:
    emulator.script(Fault.timeout())
    target = served(MetasoRetriever, timeout=0.2, max_retries=0)
    with pytest.raises(MetasoTimeoutError) as info:
        target.invoke("q")
    assert isinstance(info.value.__cause__, httpx.TimeoutException)
    assert info.value.url == f"{emulator_url}/search"
    target.close()


def test_unreachable_server_is_a_connection_error(served: Served, invoke: Invoke) -> None:
    # Port 9 (discard) on loopback: nothing listens there in a test environment.
    target = served(MetasoRetriever, base_url="http://127.0.0.1:9", max_retries=1)
    error = failure(invoke, target)
    assert type(error) is MetasoConnectionError
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert "http://127.0.0.1:9/search" in str(error)


# --- the key never leaks --------------------------------------------------------------


def leaky(make: Make, fault: Fault) -> tuple[MetasoRetriever, MetasoEmulator]:
    emulator = MetasoEmulator(api_key=SECRET)
    emulator.script(fault)
    return make(MetasoRetriever, emulator=emulator, metaso_api_key=SECRET, max_retries=0), emulator


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(401, body={"error": {"message": f"invalid key {SECRET}"}}),
        Fault.status(500, body=f"upstream rejected Bearer {SECRET}"),
        Fault.status(429, body={"message": f"slow down, {SECRET}"}),
        Fault.business_error(1000, f"bad key {SECRET}"),
        Fault.garbage(f"Authorization: Bearer {SECRET}".encode(), content_type="text/plain"),
        Fault.garbage(json.dumps({"echo": SECRET}).encode(), 200, "application/json"),
        Fault.garbage(json.dumps([SECRET]).encode(), 200, "application/json"),
    ],
)
def test_key_echoed_by_the_server_is_redacted(make: Make, invoke: Invoke, fault: Fault) -> None:
    target, emulator = leaky(make, fault)
    error = failure(invoke, target)
    assert emulator.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    assert all(SECRET not in str(value) for value in vars(error).values())
    assert "***" in str(error)


def test_key_in_a_transport_error_is_redacted(make: Make, invoke: Invoke) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy refused {SECRET}", request=request)

    target = make(
        MetasoRetriever,
        metaso_api_key=SECRET,
        transport=httpx.MockTransport(handler),
        max_retries=0,
    )
    error = failure(invoke, target)
    assert isinstance(error, MetasoConnectionError)
    assert SECRET not in str(error)
    assert "proxy refused ***" in str(error)


# --- the rate limiter -----------------------------------------------------------------


class CountingRateLimiter(BaseRateLimiter):
    def __init__(self) -> None:
        self.sync_calls = 0
        self.async_calls = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.sync_calls += 1
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.async_calls += 1
        return True


def test_the_rate_limiter_is_consulted_before_every_request(
    make: Make, emulator: MetasoEmulator
) -> None:
    limiter = CountingRateLimiter()
    retriever = make(MetasoRetriever, rate_limiter=limiter)
    emulator.script(Fault.status(503, retry_after=0))
    retriever.invoke("q")  # one retry: two requests
    assert limiter.sync_calls == 2
    asyncio.run(retriever.ainvoke("q"))
    assert limiter.async_calls == 1
    assert emulator.stats.requests == 3


def test_a_cache_hit_does_not_consult_the_rate_limiter(make: Make) -> None:
    limiter = CountingRateLimiter()
    retriever = make(MetasoRetriever, rate_limiter=limiter, cache=InMemoryCache())
    retriever.invoke("q")
    retriever.invoke("q")
    assert limiter.sync_calls == 1


# --- streams --------------------------------------------------------------------------


def identity(data: Any) -> Any:
    return data


def stream_call(question: str = QUESTION, **body: Any) -> Call[Any]:
    return Call("chat/completions", {"q": question, "stream": True, **body}, identity, "events")


def collect(client: MetasoClient, call: Call[Any], mode: str) -> list[Any]:
    if mode == "sync":
        return list(client.stream(call))

    async def run() -> list[Any]:
        return [chunk async for chunk in client.astream(call)]

    return asyncio.run(run())


def expected_text(make: Make) -> str:
    answer = make(MetasoConfig).client.request(chat_call(AnswerRequest(query=QUESTION)))
    assert isinstance(answer, Answer)
    return answer.text


@pytest.mark.parametrize("route", ["transport", "socket"])
def test_stream_reads_the_emulators_chunks_in_order(
    make: Make, emulator: MetasoEmulator, mode: str, route: str
) -> None:
    text = expected_text(make)
    emulator.reset()
    if route == "socket":
        with emulator.serve() as base_url:
            config = make(MetasoConfig, transport=None, base_url=base_url)
            chunks = collect(config.client, stream_call(), mode)
            config.close()
    else:
        chunks = collect(make(MetasoConfig).client, stream_call(), mode)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert list(deltas[0]) == ["citations"]
    assert deltas[0]["citations"][0]["position"] == 1
    assert "".join(delta.get("content", "") for delta in deltas) == text
    assert len(chunks) > 5  # really streamed in pieces, not one event
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["total_tokens"] > 0
    (request,) = emulator.requests
    assert request.headers["accept"] == "text/event-stream"
    assert request.json() == {"q": QUESTION, "stream": True}


def test_stream_retries_a_failure_before_the_first_byte(
    make: Make, emulator: MetasoEmulator, mode: str
) -> None:
    emulator.script(Fault.status(503, retry_after=0), Fault.drop())
    chunks = collect(make(MetasoConfig).client, stream_call(), mode)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len(emulator.requests) == 3


def test_stream_does_not_retry_once_events_flow(
    make: Make, emulator: MetasoEmulator, mode: str
) -> None:
    emulator.script(Fault.truncated())
    with pytest.raises(MetasoConnectionError) as caught:
        collect(make(MetasoConfig).client, stream_call(), mode)
    assert caught.value.endpoint == "chat/completions"
    assert len(emulator.requests) == 1


def test_stream_maps_status_and_business_errors(
    make: Make, emulator: MetasoEmulator, mode: str
) -> None:
    with pytest.raises(MetasoAuthenticationError):
        collect(make(MetasoConfig, metaso_api_key="wrong-key").client, stream_call(), mode)
    # Bad parameters come back as HTTP 200 JSON even to a stream request.
    with pytest.raises(MetasoAPIError) as caught:
        collect(make(MetasoConfig).client, stream_call(model="gpt-9"), mode)
    assert caught.value.code == 1000
    assert "gpt-9" in str(caught.value)
    assert len(emulator.requests) == 2


def mock(handler: Any) -> MetasoClient:
    return MetasoConfig(
        metaso_api_key=TEST_KEY, transport=httpx.MockTransport(handler), retry_backoff=0.001
    ).client


def test_stream_rejects_a_json_answer_to_a_stream_request(mode: str) -> None:
    client = mock(lambda request: httpx.Response(200, json={"answer": "not streamed"}))
    with pytest.raises(MetasoResponseError, match="expected a server-sent event stream") as caught:
        collect(client, stream_call(), mode)
    assert "not streamed" in caught.value.body_excerpt


def sse_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def test_stream_redacts_the_key_from_a_malformed_event(mode: str) -> None:
    client = mock(lambda request: sse_response(f"data: oops {TEST_KEY}\n\n".encode()))
    with pytest.raises(MetasoResponseError) as caught:
        collect(client, stream_call(), mode)
    assert TEST_KEY not in str(caught.value)
    assert caught.value.body_excerpt == "oops ***"


def test_stream_parse_errors_are_response_errors(mode: str) -> None:
    def parse(data: Any) -> Any:
        raise ValueError("no choices in the chunk")

    client = mock(lambda request: sse_response(b'data: {"x": 1}\n\ndata: [DONE]\n\n'))
    call = Call("chat/completions", {"q": "q", "stream": True}, parse, "events")
    with pytest.raises(MetasoResponseError, match="no choices in the chunk") as caught:
        collect(client, call, mode)
    assert caught.value.body_excerpt == '{"x": 1}'


class _Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that sends its parts, then fails as a read timeout would."""

    def __init__(self, *parts: bytes) -> None:
        self.parts = parts

    def __iter__(self) -> Iterator[bytes]:
        yield from self.parts
        raise httpx.ReadTimeout("timed out")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part
        raise httpx.ReadTimeout("timed out")


def test_stream_timeout_mid_stream_is_a_timeout_error_after_the_events_read(mode: str) -> None:
    sent: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(1)
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=_Chunks(b'data: {"n": 1}\n\n', b'data: {"n": 2}\n\n'),
        )

    client = mock(handler)
    got: list[Any] = []

    def drain() -> None:
        if mode == "sync":
            got.extend(client.stream(stream_call()))
            return

        async def adrain() -> None:
            async for chunk in client.astream(stream_call()):
                got.append(chunk)

        asyncio.run(adrain())

    with pytest.raises(MetasoTimeoutError):
        drain()
    assert got == [{"n": 1}, {"n": 2}]
    assert sent == [1]


@pytest.mark.timeout(20)  # a leaked connection would make the last call wait forever
def test_leaving_a_stream_early_frees_its_connection(
    served: Served, emulator: MetasoEmulator
) -> None:
    # One connection only: were it kept by the abandoned streams, the last call would wait.
    config = served(MetasoConfig, max_concurrency=1)
    for _ in range(2):
        for _chunk in config.client.stream(stream_call()):
            break
    chunks = list(config.client.stream(stream_call()))
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert emulator.stats.requests == 3
    config.close()
