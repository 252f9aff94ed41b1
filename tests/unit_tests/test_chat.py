"""The chat endpoint's module, chat.py: requests, whole answers and streamed chunks.

The streamed chunks are those of the reconstructed stream of the API reference
(``fixtures/chat_stream.reconstructed.txt``), and variations on them.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from emulator_support import chat_stream_events
from langchain_core.documents import Document
from pydantic import ValidationError

from langchain_metaso.chat import (
    CHAT_MODELS,
    Answer,
    AnswerDelta,
    AnswerRequest,
    TokenUsage,
    chat_call,
    chat_stream_call,
)

QUESTION = "秘塔 AI 搜索是哪家公司做的"
SOURCES = [
    {"title": "秘塔科技", "link": "https://a.example.com/1", "snippet": "秘塔科技成立于 2018 年"},
    {"title": "Metaso", "url": "https://b.example.com/2", "summary": "An AI search engine"},
    {"link": "https://c.example.com/3"},
]


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
        ({"query": "q", "model": "  "}, "fast_thinking"),
        ({"query": "q", "max_tokens": 0}, "max_tokens"),
        ({"query": "q", "scope": "web"}, "webpage"),
        ({"query": "q", "format": "markdown"}, "chat_completions"),
    ],
)
def test_invalid_requests_are_rejected_before_any_io(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        AnswerRequest(**kwargs)


def test_models() -> None:
    assert CHAT_MODELS == ("fast", "fast_thinking", "ds-r1")


def test_a_model_the_package_does_not_know_is_sent_as_given() -> None:
    assert AnswerRequest(query="q", model=" fast-2099 ").to_body()["model"] == "fast-2099"


def test_temperature_and_max_tokens_are_sent_only_when_set() -> None:
    assert {"temperature", "max_tokens"}.isdisjoint(AnswerRequest(query="q").to_body())
    body = AnswerRequest(query="q", temperature=0, max_tokens=100).to_body()
    assert (body["temperature"], body["max_tokens"]) == (0, 100)


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
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, "https://a.example.com/1")),
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
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, "https://b.example.com/2")),
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
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, "https://c.example.com/3")),
            page_content="https://c.example.com/3",
            metadata={"source": "https://c.example.com/3", "citation": 3, "query": QUESTION},
        ),
    ]


def test_chat_call() -> None:
    call = chat_call(AnswerRequest(query="q"))
    assert (call.endpoint, call.expect) == ("chat/completions", "json")
    assert call.body == {"q": "q", "model": "fast", "scope": "webpage", "format": "simple"}
    assert call.parse({"answer": "a"}).text == "a"


def test_chat_stream_call() -> None:
    call = chat_stream_call(AnswerRequest(query="q"), "v1/chat")
    assert (call.endpoint, call.expect) == ("v1/chat", "events")
    assert call.body == {
        "q": "q",
        "model": "fast",
        "scope": "webpage",
        "format": "simple",
        "stream": True,
    }
    assert call.parse({"choices": [{"delta": {"content": "a"}}]}).text == "a"


# --- streamed chunks -------------------------------------------------------------------------


def test_the_reconstructed_stream_reads_chunk_by_chunk() -> None:
    sources, thought, first, second, end = (AnswerDelta.from_event(e) for e in chat_stream_events())

    assert sources == AnswerDelta(
        sources=[
            {"title": "来源一", "link": "https://example.cn/s/1", "date": "2025-01-02"},
            {"title": "来源二", "link": "https://example.cn/s/2"},
        ],
        model="fast_thinking",
        id="c1",
    )
    assert (thought.reasoning, thought.text, thought.sources) == ("先看来源一……", "", None)
    assert (first.text, second.text) == ("答案在此[[1]]", "，另见[[2]]。")
    assert first.reasoning == second.reasoning == ""
    assert end.text == ""
    assert end.finish_reason == "stop"
    assert end.usage == TokenUsage(prompt_tokens=12, completion_tokens=9, total_tokens=21)
    assert all(delta.finish_reason is None for delta in (sources, thought, first, second))


def test_sources_beside_choices_and_credits_on_the_last_chunk() -> None:
    # Fields beside ``choices`` are read too (OpenAI-style proxies add theirs there).
    first = AnswerDelta.from_event(
        {"choices": [{"delta": {"role": "assistant", "content": ""}}], "citations": SOURCES[:1]}
    )
    last = AnswerDelta.from_event(
        {"choices": [{"delta": {}, "finish_reason": "stop"}], "credits": "3"}
    )
    assert first.sources == SOURCES[:1]
    assert (last.credits, last.finish_reason, last.sources) == (3, "stop", None)


def test_chunks_without_choices_but_with_usage_and_junk_fields() -> None:
    # OpenAI's usage chunk has no choices left; unknown and mistyped fields are tolerated.
    usage = AnswerDelta.from_event(
        {
            "choices": [],
            "usage": {
                "prompt_tokens": "5",
                "completion_tokens": 7,
                "completion_tokens_details": {"reasoning_tokens": 4},
                "extra": True,
            },
        }
    )
    assert usage.usage == TokenUsage(prompt_tokens=5, completion_tokens=7, reasoning_tokens=4)
    odd = AnswerDelta.from_event(
        {"choices": [{"delta": {"content": 7, "reasoning_content": None, "citations": "x"}}]}
    )
    assert odd == AnswerDelta()
    assert AnswerDelta.from_event({"citations": ["https://a.example.com"]}).sources == [
        {"link": "https://a.example.com"}
    ]


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ([], "list, not a JSON object"),
        ("text", "str, not a JSON object"),
        ({"answer": "x"}, "expected 'choices'"),
    ],
)
def test_other_events_are_unusable(payload: Any, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        AnswerDelta.from_event(payload)


def test_a_whole_answer_keeps_reasoning_usage_and_identity() -> None:
    answer = Answer.from_payload(
        {
            "id": "c9",
            "model": "ds-r1",
            "choices": [
                {
                    "message": {"content": "答[[1]]", "reasoning_content": "想"},
                    "finish_reason": "stop",
                }
            ],
            "citations": SOURCES,
            "highlights": ["重点"],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            "credits": 10,
        }
    )
    assert answer == Answer(
        text="答[[1]]",
        sources=SOURCES,
        credits=10,
        reasoning="想",
        highlights=["重点"],
        usage=TokenUsage(prompt_tokens=3, completion_tokens=2, total_tokens=5),
        model="ds-r1",
        id="c9",
        finish_reason="stop",
    )
    assert Answer.from_payload({"answer": "x", "usage": "n/a"}).usage is None
