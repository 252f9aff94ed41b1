"""Contract tests: the answers the real API sends, read by the package field by field.

Every answer captured in ``fixtures/`` (copied from the project's shared captures; the
package never reads them) and the seed response goes through the package as a user meets
it: served over a socket by the emulator, searched by the tool and the retriever, and
checked in what the model reads (the tool's text) and what the program gets (the
``Document``s, the parsed answer), and the chat stream through the server-sent events parser
(issue 11.1). The 302.AI error table of ``errors_302ai.json`` is checked code by code in
``test_http_failures.py``.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from conftest import Invoke, Make, Served, tool_call
from emulator_support import CHAT_STREAM, FIXTURES, fixture
from langchain_core.messages import ToolMessage

from langchain_metaso import (
    MetasoRetriever,
    MetasoSearchTool,
    SearchResponse,
)
from langchain_metaso._http import Call
from langchain_metaso._http.body import BodyReader, EventReader
from langchain_metaso._http.failures import CallErrors
from langchain_metaso.chat import Answer
from langchain_metaso.config import MetasoConfig
from langchain_metaso.filters import SearchFilters
from langchain_metaso.paged_search import PagedSearch, run_search
from langchain_metaso.search import SearchRequest
from langchain_metaso.testing import Fault, MetasoEmulator, load_seed_response

SEARCH_FILES = sorted(path.name for path in FIXTURES.glob("search_*.json"))
ERRORS_FILE = "errors_302ai.json"

# Written out rather than computed: this is what a model must read for the fixtures' values.
DURATIONS_SHOWN = {"617": "duration 10:17", "2999": "duration 49:59"}


def search_answers() -> list[tuple[str, dict[str, Any]]]:
    return [(name, fixture(name)) for name in SEARCH_FILES] + [("seed", load_seed_response())]


SEARCH_ANSWERS = search_answers()
each_answer = pytest.mark.parametrize(
    "payload", [payload for _, payload in SEARCH_ANSWERS], ids=[name for name, _ in SEARCH_ANSWERS]
)


def asked(payload: dict[str, Any]) -> tuple[str, str, int]:
    """The scope, query and size an answer was given for, as its echo says."""
    parameters = payload["searchParameters"]
    return parameters["scope"], parameters["q"], parameters["size"]


def items_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    scope = payload["searchParameters"]["scope"]
    items: list[dict[str, Any]] = payload[f"{scope}s"]
    return items


def iso(date_text: str) -> str:
    """``2025年05月16日`` or ``2023-06-01`` as ISO: the fixtures write whole days only."""
    return re.sub(r"\D+", "-", date_text).strip("-")


def test_every_fixture_is_a_response_under_contract() -> None:
    # A capture added later is picked up by the search tests below, or must be given its own.
    names = {path.name for path in FIXTURES.iterdir() if path.name != "README.md"}
    assert names == {*SEARCH_FILES, ERRORS_FILE, CHAT_STREAM.name}
    scopes = {fixture(name)["searchParameters"]["scope"] for name in SEARCH_FILES}
    assert scopes == {"webpage", "document", "scholar", "podcast", "video", "image"}


# --- search answers: what the program gets ---------------------------------------------------


@each_answer
def test_search_answer_parses_field_by_field(payload: dict[str, Any]) -> None:
    scope, _, _ = asked(payload)
    response = SearchResponse.from_payload(payload, scope=scope)
    assert (response.total, response.credits) == (payload["total"], payload["credits"])
    # The searchParameters echo is accepted as it comes (size a number, searchFile, format).
    assert response.search_parameters == payload["searchParameters"]
    items = items_of(payload)
    assert len(response.results) == len(items)
    for item, result in zip(items, response.results, strict=True):
        assert result.model_dump(by_alias=True, exclude_none=True) == item
        assert result.model_extra == {}  # every field of the live answers is typed
        assert result.url == (item.get("link") or item["imageUrl"])


@each_answer
def test_search_answer_through_the_tool_over_a_socket(
    served: Served, emulator: MetasoEmulator, payload: dict[str, Any]
) -> None:
    scope, query, size = asked(payload)
    tool = served(MetasoSearchTool, scope=scope, size=size)
    emulator.script(Fault.status(200, body=payload))
    message = tool.invoke(tool_call(tool.name, query=query))
    assert isinstance(message, ToolMessage)
    assert message.status == "success"
    sent = emulator.requests[0]
    assert json.loads(sent.body)["size"] == size  # a number, as the API echoes it
    assert f'"size": {size}'.encode() in sent.body
    check_documents(payload, message.artifact)
    check_text(payload, message.content)


def check_documents(payload: dict[str, Any], documents: list[Any]) -> None:
    """What the program gets: one ``Document`` an item, every field under its API name."""
    parameters = payload["searchParameters"]
    items = items_of(payload)
    assert len(documents) == len(items)
    for item, document in zip(items, documents, strict=True):
        metadata = document.metadata
        text_field = next(key for key in ("summary", "snippet", "title") if key in item)
        assert document.page_content == item[text_field]
        assert metadata["title"] == item["title"]  # also when the title is the text
        for key, value in item.items():
            if key != text_field or key == "title":
                assert metadata[key] == value, key
        assert text_field == "title" or text_field not in metadata
        source = item.get("link") or item["imageUrl"]  # images have no link
        assert metadata["source"] == source
        assert uuid.UUID(document.id).version == 5
        assert (metadata["scope"], metadata["query"]) == (parameters["scope"], parameters["q"])
        if "date" in item:
            assert metadata["published"] == iso(item["date"])
        else:
            assert "published" not in metadata
        assert "searchParameters" not in metadata
    # Stable ids tell results apart.
    assert len({document.id for document in documents}) == len(documents)


def check_text(payload: dict[str, Any], content: str) -> None:
    """What the model reads: a header with the total, then each item's fields in order."""
    parameters = payload["searchParameters"]
    items = items_of(payload)
    header = (
        f"Metaso {parameters['scope']} search for '{parameters['q']}': "
        f"{len(items)} of {payload['total']} results."
    )
    assert content.startswith(header + "\n\n[")
    assert "\\u" not in content
    assert "searchFile" not in content
    assert "chat_completions" not in content
    entries = content.split("\n\n")[1:]
    assert len(entries) == len(items)
    for item, entry in zip(items, entries, strict=True):
        lines = entry.split("\n")
        assert lines[0] == f"[{item['position']}] {item['title']}"
        assert lines[1] == (item.get("link") or item["imageUrl"])
        details = [
            item.get("date"),
            DURATIONS_SHOWN.get(item.get("duration", "")),
            ", ".join(item.get("authors", ())),
        ]
        if "imageWidth" in item:
            details.append(f"{item['imageWidth']}x{item['imageHeight']} pixels")
        assert lines[2] == " | ".join(part for part in details if part)
        text = item.get("summary") or item.get("snippet")
        assert "\n".join(lines[3:]) == (text.strip() if text else "")
        if not text:  # an image's only text is its title: shown once
            assert entry.count(item["title"]) == 1


@each_answer
def test_search_answer_through_the_retriever_matches_the_tool(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, payload: dict[str, Any]
) -> None:
    scope, query, size = asked(payload)
    emulator.script(Fault.status(200, body=payload), Fault.status(200, body=payload))
    documents = invoke(make(MetasoRetriever, k=size, scope=scope), query)
    check_documents(payload, documents)
    again = invoke(make(MetasoRetriever, k=size, scope=scope), query)
    assert [d.id for d in again] == [d.id for d in documents]  # the same results, the same ids


@each_answer
def test_search_answer_credits_and_total_reach_the_program(
    make: Make, emulator: MetasoEmulator, payload: dict[str, Any]
) -> None:
    scope, query, _ = asked(payload)
    request = SearchRequest(query=query, scope=scope, size=100)
    emulator.script(Fault.status(200, body=payload))
    outcome = run_search(make(MetasoConfig).client, PagedSearch(request, SearchFilters()))
    assert (outcome.response.credits, outcome.response.total) == (
        payload["credits"],
        payload["total"],
    )
    assert len(outcome.answers) == 1


ECHOES = [
    {"q": "q", "scope": "webpage", "size": 3, "searchFile": False, "format": "chat_completions"},
    {"q": "q", "size": "3", "searchFile": "false", "format": None},
    {"size": {"nested": [1, 2]}, "page": 2, "unknown": True},
    "not an object",
    None,
]


@pytest.mark.parametrize("echo", ECHOES)
def test_search_parameters_echo_is_accepted_and_ignored(make: Make, echo: Any) -> None:
    payload = fixture("search_webpage.structure.json")
    plain = {key: value for key, value in payload.items() if key != "searchParameters"}
    request = SearchRequest(query="transformer 模型", size=3)
    with_echo = SearchResponse.from_payload({**plain, "searchParameters": echo}, scope="webpage")
    without = SearchResponse.from_payload(plain, scope="webpage")
    assert with_echo.results == without.results
    assert with_echo.to_documents(request) == without.to_documents(request)


@pytest.mark.parametrize("echo", ECHOES)
def test_search_parameters_echo_in_a_chat_answer_is_ignored(echo: Any) -> None:
    simple = {"answer": "答案[[1]]", "sources": [{"title": "t", "link": "https://a.cn/"}]}
    assert Answer.from_payload({**simple, "searchParameters": echo}) == Answer.from_payload(simple)


# --- the chat stream -------------------------------------------------------------------------

STREAM = CHAT_STREAM.read_text(encoding="utf-8")


def check_chunks(chunks: list[Any]) -> None:
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert len(chunks) == 5
    assert [c["title"] for c in deltas[0]["citations"]] == ["来源一", "来源二"]
    assert [c["link"] for c in deltas[0]["citations"]] == [
        "https://example.cn/s/1",
        "https://example.cn/s/2",
    ]
    assert deltas[1] == {"reasoning_content": "先看来源一……"}
    assert "".join(delta.get("content", "") for delta in deltas) == "答案在此[[1]]，另见[[2]]。"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
    assert {chunk["model"] for chunk in chunks} == {"fast_thinking"}


def test_chat_stream_is_read_by_the_event_parser() -> None:
    call: Call[Any] = Call("chat/completions", {}, dict, "events")
    errors = CallErrors("chat/completions", "http://test/x", "secret", 1.0, None, 1 << 20)
    response = httpx.Response(200, headers={"content-type": "text/event-stream"})
    reader = EventReader(call, BodyReader(errors, response, None))
    found = [item for line in STREAM.splitlines(True) for item in reader.feed(line.encode())]
    check_chunks(found + reader.feed(None))
    assert reader.done


def test_chat_stream_is_read_through_the_http_core() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream; charset=utf-8"}
        return httpx.Response(200, headers=headers, content=STREAM.encode("utf-8"))

    config = MetasoConfig(metaso_api_key="test-key", transport=httpx.MockTransport(handler))
    call: Call[Any] = Call("chat/completions", {"q": "q", "stream": True}, dict, "events")
    check_chunks(list(config.client.stream(call)))
