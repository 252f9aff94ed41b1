"""MetasoAnswerTool: its schema, cited answers in both shapes, settings, errors.

The chat call it makes (requests, answers, sources) is tested in ``test_chat.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from pydantic import ValidationError

from langchain_metaso import SCOPES
from langchain_metaso.chat import Answer
from langchain_metaso.testing import Fault, MetasoEmulator
from langchain_metaso.tools.answer import MetasoAnswerTool

Make = Callable[..., Any]  # the ``make`` fixture of conftest
Invoke = Callable[..., Any]
KEY = "test-key"
QUESTION = "秘塔 AI 搜索是哪家公司做的"


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


def test_model_args_keep_the_scope_the_developers(
    emulator: MetasoEmulator, emulator_url: str, invoke: Invoke
) -> None:
    tool = MetasoAnswerTool(api_key=KEY, base_url=emulator_url, scope="scholar", model_args=[])
    assert list(tool.tool_call_schema.model_json_schema()["properties"]) == ["query"]

    refused = message(invoke, tool, query="q", scope="video")
    assert refused.status == "error"
    assert "scope: not an argument of this tool" in refused.content
    assert emulator.requests == []
    assert message(invoke, tool, query="q").status == "success"
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
