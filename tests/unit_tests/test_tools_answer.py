"""MetasoAnswerTool: its schema, cited answers in both shapes, settings, errors.

The chat call it makes (requests, answers, sources) is tested in ``test_chat.py``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import TEST_KEY, Invoke, Make, tool_message
from emulator_support import answer_of
from langchain_core.tools import BaseTool
from pydantic import ValidationError

from langchain_metaso import SCOPES
from langchain_metaso.chat import Answer
from langchain_metaso.testing import Fault, MetasoEmulator
from langchain_metaso.tools.answer import MetasoAnswerTool

QUESTION = "秘塔 AI 搜索是哪家公司做的"


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
    raw = answer_of(emulator, "chat/completions", q=QUESTION, format=answer_format)
    expected = Answer.from_payload(raw)
    emulator.reset()
    result = tool_message(
        invoke, make(MetasoAnswerTool, answer_format=answer_format), query=QUESTION
    )
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
    assert tool_message(invoke, tool, query="q").status == "success"
    assert tool_message(invoke, tool, query="q", scope="video").status == "success"
    first, second = (request.json() for request in emulator.requests)
    assert (first["model"], first["scope"], first["conciseSnippet"]) == ("ds-r1", "scholar", True)
    assert second["scope"] == "video"


def test_model_args_keep_the_scope_the_developers(
    emulator: MetasoEmulator, emulator_url: str, invoke: Invoke
) -> None:
    tool = MetasoAnswerTool(api_key=TEST_KEY, base_url=emulator_url, scope="scholar", model_args=[])
    assert list(tool.tool_call_schema.model_json_schema()["properties"]) == ["query"]

    refused = tool_message(invoke, tool, query="q", scope="video")
    assert refused.status == "error"
    assert "scope: fixed by the developer of this tool" in refused.content
    assert emulator.requests == []
    assert tool_message(invoke, tool, query="q").status == "success"
    assert emulator.requests[0].json()["scope"] == "scholar"


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
    result = tool_message(invoke, make(MetasoAnswerTool), **args)
    assert result.status == "error"
    for word in words:
        assert word in result.content
    assert emulator.requests == []


# --- the chat endpoint's path ----------------------------------------------------------------


def test_the_chat_path_is_configurable(make: Make, emulator: MetasoEmulator) -> None:
    seen: list[str] = []
    inner = emulator.transport()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        # The emulator routes on the path's ending: hand it the standard one.
        moved = httpx.Request(
            request.method,
            str(request.url).replace("/v2/answer", "/chat/completions"),
            headers=request.headers,
            content=request.content,
        )
        return inner.handle_request(moved)

    tool = make(MetasoAnswerTool, transport=httpx.MockTransport(handler), chat_path="/v2/answer/")
    assert tool.chat_path == "v2/answer"
    content = tool.invoke({"query": "秘塔是什么"})
    assert seen == ["/metaso/v2/answer"]
    assert "Sources:" in content


@pytest.mark.parametrize("bad", ["", "/", "https://elsewhere.example/chat"])
def test_a_chat_path_that_is_not_a_path_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="chat_path"):
        MetasoAnswerTool(metaso_api_key=TEST_KEY, chat_path=bad)


def test_without_scope_among_model_args_the_description_offers_no_scope(make: Make) -> None:
    assert "scope='scholar'" in make(MetasoAnswerTool).description
    for settings in ({"model_args": []}, {"scope": "scholar", "model_args": []}):
        tool = make(MetasoAnswerTool, **settings)
        assert "scope" not in tool.description
        assert "scope" not in str(tool.tool_call_schema.model_json_schema())
    scholar = make(MetasoAnswerTool, scope="scholar", model_args=[])
    assert "grounded in a search of academic papers (学术)" in scholar.description


def test_a_runaway_answer_is_cut_at_max_chars(make: Make, emulator: MetasoEmulator) -> None:
    emulator.script(Fault.status(200, body={"answer": "答" * 100_000, "citations": []}))
    tool = make(MetasoAnswerTool, max_chars=1000)
    message = tool.invoke(
        {"name": tool.name, "args": {"query": "q"}, "id": "1", "type": "tool_call"}
    )
    assert message.content == "答" * 1000 + "\n\n[… cut: 99,000 more characters]"
