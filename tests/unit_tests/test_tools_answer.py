"""The chat call and MetasoAnswerTool: requests, both answer shapes, citations, errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from pydantic import ValidationError

from langchain_metaso import SCOPES
from langchain_metaso.chat import CHAT_MODELS, Answer, AnswerRequest, chat_call
from langchain_metaso.testing import Fault, MetasoEmulator
from langchain_metaso.tools.answer import MetasoAnswerTool

Make = Callable[..., Any]  # the ``make`` fixture of conftest
Invoke = Callable[..., Any]
KEY = "test-key"
QUESTION = "秘塔 AI 搜索是哪家公司做的"
SOURCES = [
    {"title": "秘塔科技", "link": "https://a.example.com/1", "snippet": "秘塔科技成立于 2018 年"},
    {"title": "Metaso", "url": "https://b.example.com/2", "summary": "An AI search engine"},
    {"link": "https://c.example.com/3"},
]


def emulator_answer(emulator: MetasoEmulator, **body: Any) -> dict[str, Any]:
    """The emulator's raw chat answer, read with plain httpx."""
    with httpx.Client(transport=emulator.transport()) as client:
        response = client.post(
            "http://metaso.test/chat/completions",
            json={"q": QUESTION, **body},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    value: dict[str, Any] = response.json()
    return value


def tool_call(**args: Any) -> dict[str, Any]:
    return {"name": "metaso_answer", "args": args, "id": "call-1", "type": "tool_call"}


def message(invoke: Invoke, tool: MetasoAnswerTool, **args: Any) -> ToolMessage:
    result = invoke(tool, tool_call(**args))
    assert isinstance(result, ToolMessage)
    assert result.tool_call_id == "call-1"
    return result


# --- requests --------------------------------------------------------------------------------


def test_request_body_for_a_question() -> None:
    assert AnswerRequest(query="  问题  ").to_body() == {
        "q": "问题",
        "model": "fast",
        "scope": "webpage",
        "format": "simple",
    }
    request = AnswerRequest(
        query="q", model="ds-r1", scope="scholar", format="chat_completions", concise_snippet=True
    )
    assert request.to_body() == {
        "q": "q",
        "model": "ds-r1",
        "scope": "scholar",
        "format": "chat_completions",
        "conciseSnippet": True,
    }


def test_request_body_for_messages() -> None:
    messages = [{"role": "system", "content": "简短"}, {"role": "user", "content": "问题"}]
    body = AnswerRequest(messages=messages).to_body()
    assert body == {"messages": messages, "model": "fast", "scope": "webpage", "format": "simple"}
    assert "q" not in body


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "exactly one of query and messages"),
        ({"query": "q", "messages": [{"role": "user", "content": "q"}]}, "exactly one"),
        ({"messages": []}, "must not be empty"),
        ({"query": "  "}, "empty"),
        ({"query": "q", "model": "gpt-4"}, "fast_thinking"),
        ({"query": "q", "scope": "web"}, "webpage"),
        ({"query": "q", "format": "markdown"}, "chat_completions"),
    ],
)
def test_invalid_requests_are_rejected_before_any_io(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        AnswerRequest(**kwargs)


def test_models() -> None:
    assert CHAT_MODELS == ("fast", "fast_thinking", "ds-r1")


# --- answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"answer": "A [[1]]", "sources": SOURCES, "credits": 3},
        {"answer": "A [[1]]", "citations": SOURCES, "credits": 3},
        {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "A [[1]]"}}],
            "citations": SOURCES,
            "credits": 3,
        },
        {
            "choices": [{"message": {"content": "A [[1]]", "sources": SOURCES}}],
            "credits": "3",
        },
    ],
    ids=["simple-sources", "simple-citations", "chat-citations", "chat-message-sources"],
)
def test_both_answer_shapes_are_understood(payload: dict[str, Any]) -> None:
    answer = Answer.from_payload(payload)
    assert answer == Answer(text="A [[1]]", sources=SOURCES, credits=3)


def test_sources_given_as_urls_and_junk_are_handled(caplog: pytest.LogCaptureFixture) -> None:
    answer = Answer.from_payload(
        {"answer": "x", "citations": ["https://a.example.com", 7, None, {"title": "t"}]}
    )
    assert answer.sources == [{"link": "https://a.example.com"}, {"title": "t"}]
    assert "ignored 2 sources" in caplog.text
    assert Answer.from_payload({"answer": "x"}).sources == []
    assert Answer.from_payload({"answer": "x", "sources": "not a list"}).sources == []


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({}, "expected 'answer'"),
        ({"result": "x"}, "expected 'answer'"),
        ({"choices": []}, "expected 'answer'"),
        ({"choices": ["x"]}, "expected 'answer'"),
        ({"choices": [{"message": "x"}]}, "expected 'answer'"),
        ({"answer": None}, "NoneType, not a string"),
        ({"choices": [{"message": {"content": ["part"]}}]}, "list, not a string"),
    ],
)
def test_other_shapes_are_unusable(payload: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        Answer.from_payload(payload)


def test_content_resolves_marks_and_lists_sources() -> None:
    answer = Answer(text="秘塔科技[[1]],一家公司[[2]][[3]]。多处[[1, 3]]。\n", sources=SOURCES)
    assert answer.content() == (
        "秘塔科技[1],一家公司[2][3]。多处[1, 3]。\n"
        "\n"
        "Sources:\n"
        "[1] 秘塔科技 — https://a.example.com/1\n"
        "[2] Metaso — https://b.example.com/2\n"
        "[3] https://c.example.com/3"
    )


def test_content_without_sources_or_text() -> None:
    assert Answer(text="只有答案[[1]]", sources=[]).content() == "只有答案[1]"
    assert Answer(text=" ", sources=[]).content() == "(Metaso returned an empty answer.)"
    untitled = Answer(text="x", sources=[{"snippet": "only text"}]).content()
    assert untitled.endswith("Sources:\n[1] (untitled)")


def test_sources_become_documents_in_citation_order() -> None:
    documents = Answer(text="x", sources=SOURCES).to_documents(query=QUESTION)
    assert documents == [
        Document(
            page_content="秘塔科技成立于 2018 年",
            metadata={
                "title": "秘塔科技",
                "link": "https://a.example.com/1",
                "source": "https://a.example.com/1",
                "citation": 1,
                "query": QUESTION,
            },
        ),
        Document(
            page_content="An AI search engine",
            metadata={
                "title": "Metaso",
                "url": "https://b.example.com/2",
                "source": "https://b.example.com/2",
                "citation": 2,
                "query": QUESTION,
            },
        ),
        Document(
            page_content="https://c.example.com/3",
            metadata={"source": "https://c.example.com/3", "citation": 3, "query": QUESTION},
        ),
    ]


def test_chat_call() -> None:
    call = chat_call(AnswerRequest(query="q"))
    assert (call.endpoint, call.expect) == ("chat/completions", "json")
    assert call.body == {"q": "q", "model": "fast", "scope": "webpage", "format": "simple"}
    assert call.parse({"answer": "a"}).text == "a"


# --- the tool --------------------------------------------------------------------------------


def test_name_schema_and_async_path(make: Make) -> None:
    tool = make(MetasoAnswerTool)
    assert tool.name == "metaso_answer"
    assert tool.response_format == "content_and_artifact"
    schema = tool.tool_call_schema.model_json_schema()
    assert schema["required"] == ["query"]
    assert set(schema["properties"]) == {"query", "scope"}
    assert type(tool)._arun is not BaseTool._arun


@pytest.mark.parametrize("answer_format", ["simple", "chat_completions"])
def test_answers_with_citations_and_sources(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, answer_format: str
) -> None:
    raw = emulator_answer(emulator, format=answer_format)
    expected = Answer.from_payload(raw)
    emulator.reset()
    result = message(invoke, make(MetasoAnswerTool, answer_format=answer_format), query=QUESTION)
    assert result.status == "success"
    assert result.content == expected.content()
    assert "[[" not in result.content
    assert "[1]" in result.content
    assert "\n\nSources:\n[1] " in result.content
    # Every source is listed, numbered, with its title and URL.
    for number, source in enumerate(expected.sources, start=1):
        assert f"[{number}] {source['title']} — {source['link']}" in result.content
    documents = result.artifact
    assert [doc.metadata["source"] for doc in documents] == [s["link"] for s in expected.sources]
    assert [doc.metadata["citation"] for doc in documents] == list(
        range(1, len(expected.sources) + 1)
    )
    assert all(doc.metadata["query"] == QUESTION for doc in documents)
    (request,) = emulator.requests
    assert request.path == "/metaso/chat/completions"
    assert request.json() == {
        "q": QUESTION,
        "model": "fast",
        "scope": "webpage",
        "format": answer_format,
    }


def test_model_and_scope_reach_the_api(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    tool = make(MetasoAnswerTool, model="ds-r1", scope="scholar", concise_snippet=True)
    assert message(invoke, tool, query="q").status == "success"
    assert message(invoke, tool, query="q", scope="video").status == "success"
    first, second = (request.json() for request in emulator.requests)
    assert (first["model"], first["scope"], first["conciseSnippet"]) == ("ds-r1", "scholar", True)
    assert second["scope"] == "video"


def test_unknown_model_is_rejected_at_construction(make: Make) -> None:
    with pytest.raises(ValidationError, match="fast_thinking"):
        make(MetasoAnswerTool, model="gpt-4")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"query": "q", "scope": "web"}, ["scope", *SCOPES]),
        ({"query": "   "}, ["query", "empty"]),
        ({}, ["query"]),
    ],
)
def test_bad_arguments_are_error_messages_before_any_request(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, args: dict[str, Any], words: list[str]
) -> None:
    result = message(invoke, make(MetasoAnswerTool), **args)
    assert result.status == "error"
    for word in words:
        assert word in result.content
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault.status(401), ["HTTP 401", "METASO_API_KEY"]),
        (Fault.status(402), ["HTTP 402", "credits"]),
        (Fault.status(429, retry_after=120), ["HTTP 429", "wait 120 s"]),
        (Fault.business_error(1000, "参数错误"), ["参数错误", "code 1000"]),
        (Fault.garbage(), ["unusable answer"]),
        (Fault.status(200, body={"data": {"answer": "nested"}}), ["expected 'answer'"]),
    ],
)
def test_failures_become_error_messages(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, fault: Fault, words: list[str]
) -> None:
    emulator.script(fault)
    result = message(invoke, make(MetasoAnswerTool), query=QUESTION)
    assert result.status == "error"
    assert "chat/completions" in result.content
    for word in words:
        assert word in result.content
    assert KEY not in result.content
    assert len(emulator.requests) == 1
