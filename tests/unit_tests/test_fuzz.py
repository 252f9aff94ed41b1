"""Issue 6, bad input fuzzed with hypothesis.

The answer path: any body of an HTTP 200 answer (any JSON value, any nesting, fields of
any type, huge strings, bytes that are not UTF-8) goes through the real HTTP core to the
public classes. The only outcomes allowed are a result, ``MetasoResponseError``, or
``MetasoAPIError`` for a body that carries an error code; tools never raise.

The input path: queries, scopes, sizes, pages, URLs and base URLs of any value end in a
validation error before any request, or in one well-formed request; nothing else.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import TEST_KEY, tool_call
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from pydantic import ValidationError

from langchain_metaso import (
    SCOPES,
    MetasoAPIError,
    MetasoResponseError,
    MetasoRetriever,
    MetasoSearchTool,
    SearchResponse,
)
from langchain_metaso.chat import Answer, AnswerRequest, chat_call
from langchain_metaso.reader import ReaderPage
from langchain_metaso.tools.answer import MetasoAnswerTool
from langchain_metaso.tools.reader import MetasoReaderTool

FUZZ = settings(
    deadline=None,
    max_examples=150,
    # The only function-scoped fixture is conftest's autouse one that clears the
    # environment, which every example may share.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RESULT_FIELDS = (
    "title",
    "link",
    "score",
    "snippet",
    "summary",
    "position",
    "authors",
    "date",
    "duration",
    "content",
    "imageUrl",
    "imageWidth",
    "imageHeight",
)
ERROR_KEYS = ("errCode", "err_code", "error")


class Recorder:
    """An ``httpx.MockTransport`` handler: records requests, answers ``reply(request)``."""

    def __init__(self, reply: Callable[[httpx.Request], httpx.Response]) -> None:
        self.reply = reply
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def make(cls: type[Any], recorder: Recorder, **kwargs: Any) -> Any:
    return cls(metaso_api_key=TEST_KEY, transport=recorder.transport(), max_retries=0, **kwargs)


def run_tool(tool: Any, args: dict[str, Any], mode: str) -> ToolMessage:
    """A tool call, sync or async; a tool must never raise, so nothing is caught."""
    call = tool_call(tool.name, **args)
    message = tool.invoke(call) if mode == "sync" else asyncio.run(tool.ainvoke(call))
    assert isinstance(message, ToolMessage)
    assert isinstance(message.content, str)
    assert message.content
    assert message.status in ("success", "error")
    return message


# --- strategies -------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    # Digits Python calls digits but int() refuses, and numbers beyond int()'s digit limit.
    | st.sampled_from(["²", "①", "٣", " 7 ", "-1", "1e3", "9" * 5000])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner),
    max_leaves=40,
)
# The HTTP core hands the parsers JSON objects only.
json_objects = st.dictionaries(st.text(), json_values, max_size=6)
result_items = st.dictionaries(
    st.sampled_from(RESULT_FIELDS) | st.text(max_size=12), json_values, max_size=8
)
search_payloads = st.fixed_dictionaries(
    {"webpages": st.lists(result_items | json_values, max_size=6)},
    optional={
        "total": json_values,
        "credits": json_values,
        "searchParameters": json_values,
        "scope": json_values,
        "results": json_values,
        "model_config": json_values,
        **{key: json_values for key in ERROR_KEYS},
    },
)


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


@st.composite
def broken_utf8(draw: st.DrawFn) -> bytes:
    """A search answer with bytes that are not UTF-8 spliced into it."""
    body = _dump(draw(search_payloads))
    at = draw(st.integers(0, len(body)))
    junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
    return body[:at] + junk + body[at:]


bodies = st.one_of(
    search_payloads.map(_dump),
    json_values.map(_dump),
    broken_utf8(),
    st.binary(max_size=200),
    # Nesting around the parser's recursion limit, inside a result and as the body.
    st.integers(1, 5000).map(lambda n: b'{"webpages": [{"title": ' + b"[" * n + b"]" * n + b"}]}"),
    st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n),
    # Huge strings.
    st.integers(10_000, 2_000_000).map(
        lambda n: b'{"webpages": [{"title": "' + b"\xe7\xa7\x98" * n + b'"}], "total": 1}'
    ),
)


# Nesting this shallow is read wherever it is parsed. Nearer Python's recursion limit the
# HTTP core may refuse a body as absurdly nested or read it, as deep as the stack already is.
SURELY_READ = 900


def is_object_with_list(body: bytes) -> dict[str, Any] | None:
    """The body parsed, if it is a JSON object holding a ``webpages`` list and no error
    field: the answers whose results must come through, however odd their fields. None
    also for a body with ``SURELY_READ`` brackets or more, which may be refused."""
    if body.count(b"[") + body.count(b"{") >= SURELY_READ:
        return None
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("webpages"), list):
        return None
    if any(key in payload for key in ERROR_KEYS):
        return None
    return payload


def has_error_field(body: bytes) -> bool:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(payload, dict) and any(key in payload for key in ERROR_KEYS)


def answer_with(body: bytes) -> Recorder:
    return Recorder(lambda request: httpx.Response(200, content=body))


# Bodies nested near the recursion limit: see the fixture.
pytestmark = pytest.mark.usefixtures("gc_paused")


# --- the answer path --------------------------------------------------------------------


@FUZZ
@given(body=bodies)
@example(body=b'{"webpages": [{"title": "t", "position": "\xc2\xb2"}]}')
@example(body=b'{"webpages": [{"title": "t"}], "total": "' + b"9" * 5000 + b'"}')
@example(body=b'{"webpages": [{"title": "\\ud800"}]}')
# A lone surrogate as a key (raw bytes or escaped): pydantic refuses such keys.
@example(body=b'{"webpages": [{}, {"\xed\xa0\x80": 1}], "\xed\xa0\x80": null}')
@example(body=b'{"webpages": [{"t": 1}], "searchParameters": {"\\udc00": 1}}')
def test_retriever_gets_documents_or_a_typed_error(body: bytes) -> None:
    retriever = make(MetasoRetriever, answer_with(body), k=100)
    try:
        documents = retriever.invoke("q")
    except MetasoResponseError:
        assert is_object_with_list(body) is None, "a result list must be read, whatever it holds"
        return
    except MetasoAPIError:
        assert has_error_field(body)
        return
    assert isinstance(documents, list)
    assert all(isinstance(doc, Document) and doc.page_content for doc in documents)
    payload = is_object_with_list(body)
    if payload is not None:
        assert len(documents) == sum(isinstance(item, dict) for item in payload["webpages"])


@FUZZ
@given(body=bodies, mode=st.sampled_from(["sync", "async"]))
@example(body=b'{"webpages": [{}, {}], "\xed\xa0\x80": null}', mode="sync")
def test_search_tool_never_raises_on_any_answer(body: bytes, mode: str) -> None:
    message = run_tool(make(MetasoSearchTool, answer_with(body)), {"query": "q"}, mode)
    if is_object_with_list(body) is not None:
        assert message.status == "success", message.content


@FUZZ
@given(payload=json_objects | search_payloads, scope=st.sampled_from(SCOPES))
def test_search_response_from_payload_reads_or_raises_value_error(
    payload: dict[str, Any], scope: str
) -> None:
    if "webpages" in payload:
        payload = {**payload, f"{scope}s": payload["webpages"]}
    try:
        response = SearchResponse.from_payload(payload, scope=scope)
    except ValueError:
        assert not isinstance(payload.get(f"{scope}s"), list)
        return
    assert response.scope == scope
    assert all(result.text()[0] for result in response.results)


reader_payloads = st.fixed_dictionaries(
    {},
    optional={
        key: json_values | st.text()
        for key in ("markdown", "title", "url", "author", "date", "credits", "source")
    },
)
answer_payloads = st.fixed_dictionaries(
    {},
    optional={
        "answer": json_values | st.text(),
        "sources": json_values,
        "citations": json_values,
        "credits": json_values,
        "choices": st.lists(
            st.fixed_dictionaries({}, optional={"message": json_values | result_items}),
            max_size=2,
        )
        | json_values,
    },
)


@FUZZ
@given(payload=reader_payloads | json_objects)
def test_reader_page_from_payload_reads_or_raises_value_error(payload: dict[str, Any]) -> None:
    try:
        page = ReaderPage.from_payload(payload, source="https://example.com/")
    except ValueError:
        assert not isinstance(payload.get("markdown"), str)
        return
    assert isinstance(page.to_document(), Document)


@FUZZ
@given(payload=answer_payloads | json_objects)
def test_answer_from_payload_reads_or_raises_value_error(payload: dict[str, Any]) -> None:
    try:
        answer = Answer.from_payload(payload)
    except ValueError:
        return
    assert isinstance(answer.content(), str)
    assert all(isinstance(doc, Document) for doc in answer.to_documents(query="q"))


@FUZZ
@given(
    body=bodies | reader_payloads.map(_dump) | answer_payloads.map(_dump),
    tool=st.sampled_from([MetasoReaderTool, MetasoAnswerTool]),
    mode=st.sampled_from(["sync", "async"]),
)
def test_reader_and_answer_tools_never_raise_on_any_answer(
    body: bytes, tool: type[Any], mode: str
) -> None:
    args = {"url": "https://example.com/"} if tool is MetasoReaderTool else {"query": "q"}
    run_tool(make(tool, answer_with(body)), args, mode)


# --- the input path ---------------------------------------------------------------------

# Any Unicode, lone surrogates and control characters included (text() leaves them out).
any_text = st.text(st.characters(codec=None, exclude_categories=())) | st.sampled_from(
    ["", " ", "\t\n", "\x00", "\ud800", "a\udfffb", "秘塔\u200b", "\u3000", "q" * 100_000]
)
any_value = st.none() | st.booleans() | st.integers() | st.floats() | any_text | st.just([1])
scopes = st.sampled_from(SCOPES) | any_value


def search_reply(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(200, json={body["scope"] + "s": [{"title": body["q"], "summary": "s"}]})


def assert_well_formed_search(recorder: Recorder, query: str) -> dict[str, Any]:
    [request] = recorder.requests
    assert request.url.path == "/metaso/search"
    body: dict[str, Any] = json.loads(request.content.decode("utf-8"))
    assert body["q"] == query.strip()
    assert body["q"]
    assert body["scope"] in SCOPES
    # A size or a page, never both (the API rejects both together).
    if "page" in body:
        assert type(body["page"]) is int
        assert body["page"] >= 1
        assert "size" not in body
    else:
        assert type(body["size"]) is int
        assert 1 <= body["size"] <= 100
    assert isinstance(body["includeSummary"], bool)
    return body


@FUZZ
@given(query=any_text, k=any_value, scope=scopes)
@example(query="q" * 100_000, k=100, scope="scholar")
@example(query="\ud800", k=None, scope=None)
@example(query=" 秘塔\x00 ", k=1, scope="webpage")
@example(query="q", k="5", scope="video")
def test_retriever_input_is_rejected_or_sent_well_formed(query: str, k: Any, scope: Any) -> None:
    recorder = Recorder(search_reply)
    retriever = make(MetasoRetriever, recorder)
    try:
        documents = retriever.invoke(query, k=k, scope=scope)
    except ValidationError:
        assert recorder.requests == []
        return
    body = assert_well_formed_search(recorder, query)
    assert documents[0].page_content == "s"
    if type(k) is int:  # other accepted values ("5", 5.0) are coerced by pydantic
        assert body["size"] == k


@FUZZ
@given(
    args=st.fixed_dictionaries(
        {"query": any_text | any_value},
        optional={"scope": scopes, "size": any_value, "page": any_value},
    ),
    mode=st.sampled_from(["sync", "async"]),
)
@example(args={"query": "\ud800"}, mode="sync")
@example(args={"query": "q" * 100_000, "size": 100, "page": 3}, mode="sync")
def test_search_tool_input_is_rejected_or_sent_well_formed(args: dict[str, Any], mode: str) -> None:
    recorder = Recorder(search_reply)
    tool = make(MetasoSearchTool, recorder)
    message = run_tool(tool, args, mode)
    if message.status == "error":
        assert message.content.startswith("Invalid arguments"), message.content
        assert recorder.requests == []
        return
    body = assert_well_formed_search(recorder, args["query"])
    if type(args.get("page")) is int:
        # The API takes a size or a page, not both.
        assert body["page"] == args["page"]
        assert "size" not in body
    elif type(args.get("size")) is int:
        assert body["size"] == min(args["size"], tool.size_limit)  # a model's size is capped


def reader_reply(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"markdown": "# page\n\ntext", "credits": 1})


urls = (
    any_text
    | st.builds(
        lambda scheme, host, path: f"{scheme}://{host}/{path}",
        st.sampled_from(["http", "https", "HTTP", "ftp", "javascript", "file", ""]),
        st.text(string.ascii_letters + string.digits + ".-:@[]%", max_size=20) | any_text,
        any_text,
    )
    | any_value
)


@FUZZ
@given(url=urls, mode=st.sampled_from(["sync", "async"]))
@example(url="https://example.com/\ud800", mode="sync")
@example(url="javascript:alert(1)", mode="sync")
@example(url="  https://example.com/a  ", mode="sync")
def test_reader_tool_url_is_rejected_or_sent_well_formed(url: Any, mode: str) -> None:
    recorder = Recorder(reader_reply)
    message = run_tool(make(MetasoReaderTool, recorder), {"url": url}, mode)
    if message.status == "error":
        assert message.content.startswith("Invalid arguments"), message.content
        assert recorder.requests == []
        return
    [request] = recorder.requests
    assert request.url.path == "/metaso/reader"
    sent = json.loads(request.content.decode("utf-8"))["url"]
    assert sent == url.strip()
    # The URL goes to the API inside the body: it must be http(s) with a host, no more.
    parts = urlsplit(sent)
    assert parts.scheme.lower() in ("http", "https")
    assert parts.hostname


def answer_reply(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"answer": json.loads(request.content)["q"], "sources": []})


@FUZZ
@given(query=any_text | any_value, scope=scopes, mode=st.sampled_from(["sync", "async"]))
@example(query="\ud800", scope=None, mode="sync")
def test_answer_tool_input_is_rejected_or_sent_well_formed(
    query: Any, scope: Any, mode: str
) -> None:
    recorder = Recorder(answer_reply)
    message = run_tool(make(MetasoAnswerTool, recorder), {"query": query, "scope": scope}, mode)
    if message.status == "error":
        assert message.content.startswith("Invalid arguments"), message.content
        assert recorder.requests == []
        return
    [request] = recorder.requests
    body = json.loads(request.content.decode("utf-8"))
    assert body["q"] == query.strip()
    assert body["scope"] in SCOPES


@FUZZ
@given(
    # Text, or OpenAI-style content parts.
    content=any_text
    | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": any_text}), max_size=3),
    role=st.sampled_from(["user", "system", "assistant"]),
)
@example(content="\ud800", role="user")
def test_answer_messages_are_rejected_or_sent_well_formed(content: Any, role: str) -> None:
    # OpenAI-style messages reach the HTTP core as given: nothing in them may crash it.
    recorder = Recorder(lambda request: httpx.Response(200, json={"answer": "a"}))
    tool = make(MetasoAnswerTool, recorder)
    messages = [{"role": role, "content": content}]
    try:
        call = chat_call(AnswerRequest(messages=messages))
    except ValidationError:
        return
    assert tool.client.request(call).text == "a"
    [request] = recorder.requests
    assert json.loads(request.content.decode("utf-8"))["messages"] == messages


base_urls = (
    any_text
    | st.builds(
        lambda scheme, rest: f"{scheme}://{rest}",
        st.sampled_from(["http", "https", "ftp", "HTTPS"]),
        any_text | st.text(string.printable, max_size=30),
    )
    | st.sampled_from(
        ["http://127.0.0.1:1", "https://api.302.ai/metaso/", "http://[::1]:8080/v1", "http://:80"]
    )
)


@FUZZ
@given(base_url=base_urls)
@example(base_url="http://ex\x00ample.com")
@example(base_url="http://exa mple.com")
def test_base_url_is_rejected_or_used_as_given(base_url: str) -> None:
    recorder = Recorder(search_reply)
    try:
        retriever = make(MetasoRetriever, recorder, base_url=base_url)
    except ValidationError:
        return
    retriever.invoke("q")
    [request] = recorder.requests
    assert request.url.scheme in ("http", "https")
    assert request.url.host
    assert request.url == httpx.URL(retriever.base_url + "/search")


@pytest.mark.parametrize("query", ["", " ", "\n\t\u3000"])
def test_blank_queries_are_refused_before_any_request(query: str) -> None:
    recorder = Recorder(search_reply)
    with pytest.raises(ValidationError, match="query must not be empty"):
        make(MetasoRetriever, recorder).invoke(query)
    message = run_tool(make(MetasoSearchTool, recorder), {"query": query}, "sync")
    assert message.status == "error"
    assert "query" in message.content
    assert recorder.requests == []
