"""The server-sent events parser on its own, then the HTTP core's stream methods end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_metaso._http import Call, MetasoClient
from langchain_metaso._http.sse import ServerSentEvent, SSEDecoder, aiter_events, iter_events
from langchain_metaso.chat import Answer, AnswerRequest, chat_call
from langchain_metaso.config import MetasoConfig
from langchain_metaso.errors import (
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoConnectionError,
    MetasoResponseError,
    MetasoTimeoutError,
)
from langchain_metaso.testing import Fault, MetasoEmulator

Make = Callable[..., Any]  # the ``make`` fixture of conftest
TEST_KEY = "test-key"
QUESTION = "秘塔 AI 搜索是什么"


def events(lines: list[str]) -> list[ServerSentEvent]:
    return list(iter_events(lines, SSEDecoder("chat/completions")))


# --- the parser ---


def test_events_come_in_order_and_done_ends_the_stream() -> None:
    lines = ['data: {"n": 1}', "", 'data: {"n": 2}', "", "data: [DONE]", "", 'data: {"n": 3}', ""]
    assert [event.data for event in events(lines)] == [{"n": 1}, {"n": 2}]


def test_nothing_after_done_is_read() -> None:
    read: list[str] = []

    def lines() -> Iterator[str]:
        for line in ['data: {"n": 1}', "", "data: [DONE]", "never read", "nor this"]:
            read.append(line)
            yield line

    assert [event.data for event in iter_events(lines(), SSEDecoder("x"))] == [{"n": 1}]
    assert read == ['data: {"n": 1}', "", "data: [DONE]"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    lines = ['data: {"text":', 'data: "two lines"}', "", "data: [DONE]"]
    assert [event.data for event in events(lines)] == [{"text": "two lines"}]
    decoder = SSEDecoder("x")
    for line in ["data: [1,", "data:2]"]:
        assert decoder.feed(line) is None
    event = decoder.feed("")
    assert event is not None
    assert event.data == [1, 2]


def test_comments_keep_alives_and_unknown_fields_are_ignored() -> None:
    lines = [
        ": keep-alive",
        "",
        ":",
        "retry: 3000",
        "foo: bar",
        'data: {"n": 1}',
        ": a comment inside an event",
        "",
        "",
        "data: [DONE]",
    ]
    assert [event.data for event in events(lines)] == [{"n": 1}]


def test_event_name_and_id_are_kept_and_the_id_carries_over() -> None:
    lines = ["event: delta", "id: 7", 'data: {"n": 1}', "", 'data: {"n": 2}', "", "data: [DONE]"]
    first, second = events(lines)
    assert (first.event, first.id, first.data) == ("delta", "7", {"n": 1})
    # Per the SSE rules the event type resets after each event, the last id does not.
    assert (second.event, second.id, second.data) == ("message", "7", {"n": 2})


def test_space_after_colon_is_optional_and_line_endings_and_bom_are_dropped() -> None:
    lines = ['\ufeffdata:{"a": 1}\r\n', "\r\n", 'data:  {"b": 2}\n', "\n", "data:[DONE]\r\n"]
    assert [event.data for event in events(lines)] == [{"a": 1}, {"b": 2}]


def test_done_without_a_blank_line_after_it_ends_the_stream() -> None:
    assert [event.data for event in events(['data: {"n": 1}', "", "data: [DONE]"])] == [{"n": 1}]
    decoder = SSEDecoder("x")
    assert decoder.feed("data: [DONE]") is None
    assert decoder.done
    assert decoder.feed('data: {"late": true}') is None
    assert decoder.feed("") is None


def test_malformed_json_event_is_a_response_error() -> None:
    with pytest.raises(MetasoResponseError) as caught:
        events(['data: {"n": 1}', "", "data: {not json", "", "data: [DONE]"])
    assert caught.value.endpoint == "chat/completions"
    assert caught.value.body_excerpt == "{not json"
    assert "not JSON" in str(caught.value)


def test_excerpt_hook_shapes_what_an_error_shows() -> None:
    decoder = SSEDecoder("chat/completions", excerpt=lambda text: text.replace("secret", "***"))
    with pytest.raises(MetasoResponseError) as caught:
        list(iter_events(["data: secret <html>", ""], decoder))
    assert caught.value.body_excerpt == "*** <html>"


def test_stream_that_ends_without_done_is_a_response_error() -> None:
    with pytest.raises(MetasoResponseError, match=r"ended before 'data: \[DONE\]'"):
        events(['data: {"n": 1}', ""])
    # A last event without its blank line is still read before the check fails.
    with pytest.raises(MetasoResponseError):
        events(['data: {"n": 1}'])
    assert events(["data: [DONE]"]) == []


@pytest.mark.asyncio
async def test_async_lines_give_the_same_events() -> None:
    lines = [": ping", 'data: {"n": 1}', "", 'data: {"n":', "data: 2}", "", "data: [DONE]", "x"]

    async def source() -> AsyncIterator[str]:
        for line in lines:
            yield line

    got = [event async for event in aiter_events(source(), SSEDecoder("x"))]
    assert got == events(lines)
    assert [event.data for event in got] == [{"n": 1}, {"n": 2}]

    async def cut_short() -> AsyncIterator[str]:
        yield 'data: {"n": 1}'

    with pytest.raises(MetasoResponseError):
        _ = [event async for event in aiter_events(cut_short(), SSEDecoder("x"))]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    st.lists(st.tuples(json_values, st.booleans(), st.booleans()), max_size=8),
)
def test_any_json_values_survive_framing(items: list[tuple[Any, bool, bool]]) -> None:
    lines: list[str] = []
    for value, pretty, ping in items:
        if ping:
            lines += [": keep-alive", ""]
        text = json.dumps(value, ensure_ascii=False, indent=1 if pretty else None)
        # Pretty-printed JSON spans several data lines; the parser joins them back.
        lines += [f"data: {part}" for part in text.split("\n")] + [""]
    lines.append("data: [DONE]")
    assert [event.data for event in events(lines)] == [value for value, _, _ in items]


# --- the HTTP core's stream methods ---


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


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


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
    make: Make, emulator: MetasoEmulator, emulator_url: str
) -> None:
    # One connection only: were it kept by the abandoned streams, the last call would wait.
    config = make(MetasoConfig, transport=None, base_url=emulator_url, max_concurrency=1)
    for _ in range(2):
        for _chunk in config.client.stream(stream_call()):
            break
    chunks = list(config.client.stream(stream_call()))
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert emulator.stats.requests == 3
    config.close()
