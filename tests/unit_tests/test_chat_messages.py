"""LangChain messages to and from the chat endpoint: what is sent, what is refused, stop
sequences cut alike whole or in pieces, and the standard content blocks of our messages."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_metaso._chat_messages import (
    StopCut,
    StreamReader,
    answer_message,
    to_api_messages,
    usage_metadata,
)
from langchain_metaso.chat import Answer, AnswerDelta, TokenUsage

SOURCES = [
    {"title": "来源一", "link": "https://example.cn/s/1", "date": "2025-01-02"},
    {"url": "https://example.cn/s/2", "snippet": "摘录"},
    {"title": "无链接", "imageUrl": "https://img.example.cn/1.png"},
]

# --- messages to the API ----------------------------------------------------------------------


def test_system_human_and_ai_turns_go_as_the_api_takes_them() -> None:
    sent = to_api_messages(
        [
            SystemMessage("简短回答"),
            HumanMessage("秘塔是什么?", name="alice"),
            AIMessage(
                [
                    {"type": "reasoning", "reasoning": "not sent back"},
                    {"type": "text", "text": "一个搜索引擎", "annotations": []},
                ]
            ),
            ChatMessage(role="user", content=["谁做的", {"type": "text", "text": "?"}]),
        ]
    )
    assert sent == [
        {"role": "system", "content": "简短回答"},
        {"role": "user", "content": "秘塔是什么?", "name": "alice"},
        {"role": "assistant", "content": "一个搜索引擎"},
        {"role": "user", "content": "谁做的?"},
    ]


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (ToolMessage("42", tool_call_id="1"), "a ToolMessage (role 'tool')"),
        (FunctionMessage("42", name="f"), "a FunctionMessage"),
        (ChatMessage(role="tool", content="x"), "a ChatMessage (role 'chat')"),
        (
            AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "1"}]),
            "an AI message with tool calls",
        ),
        (
            HumanMessage(
                [
                    {"type": "text", "text": "这是什么?"},
                    {"type": "image_url", "image_url": {"url": "https://x/1.png"}},
                ]
            ),
            "a 'image_url' content block (in a human message)",
        ),
        (
            HumanMessage([{"type": "image", "url": "https://x/1.png"}]),
            "a 'image' content block",
        ),
        (HumanMessage([{"type": "file", "file_id": "f1"}]), "a 'file' content block"),
    ],
)
def test_what_the_api_cannot_take_is_refused_saying_so(message: Any, words: str) -> None:
    with pytest.raises(ValueError, match="ChatMetaso cannot send") as caught:
        to_api_messages([HumanMessage("hi"), message])
    assert words in str(caught.value)
    assert "text only" in str(caught.value)


# --- stop sequences ---------------------------------------------------------------------------


def cut_in_pieces(stops: list[str], pieces: list[str]) -> str:
    cut = StopCut(stops)
    return "".join(cut.feed(piece) for piece in pieces) + cut.finish()


def first_cut(stops: list[str], text: str) -> str:
    found = [text.find(stop) for stop in stops if stop and stop in text]
    return text[: min(found)] if found else text


@pytest.mark.parametrize(
    ("stops", "pieces", "kept"),
    [
        ([], ["答案", "在此"], "答案在此"),
        (["。"], ["答案在此", "。另见"], "答案在此"),
        (["]]，另"], ["答案在此[[1]]", "，另见[[2]]。"], "答案在此[[1"),  # straddles pieces
        (["abc", "b"], ["a", "b", "c"], ""),  # the earlier one, though it ends later
        (["xaby", "a"], ["xa", "bz"], "x"),
        (["END"], ["E", "N"], "EN"),  # a stop that never completes is text after all
        ([""], ["text"], "text"),
    ],
)
def test_stop_sequences_cut_at_the_first(stops: list[str], pieces: list[str], kept: str) -> None:
    assert cut_in_pieces(stops, pieces) == kept
    assert cut_in_pieces(stops, ["".join(pieces)]) == kept


def test_after_a_stop_nothing_more_comes() -> None:
    cut = StopCut(["停"])
    assert cut.feed("前停后") == "前"
    assert cut.stopped
    assert cut.feed("更多") == cut.finish() == ""


@given(
    text=st.text(alphabet="ab。]]", max_size=40),
    stops=st.lists(st.text(alphabet="ab。]]", max_size=4), max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
)
def test_pieces_keep_what_the_whole_text_keeps(
    text: str, stops: list[str], cuts: list[int]
) -> None:
    bounds = sorted({0, len(text), *(min(cut, len(text)) for cut in cuts)})
    pieces = [text[start:end] for start, end in itertools.pairwise(bounds)]
    assert cut_in_pieces(stops, pieces) == first_cut(stops, text)


# --- messages from the API --------------------------------------------------------------------


def annotations_of(message: AIMessage) -> list[Any]:
    return [block.get("annotations") for block in message.content_blocks if block["type"] == "text"]


def test_a_whole_answer_becomes_a_message_with_cited_text_and_reasoning_apart() -> None:
    answer = Answer(
        text="答案[[1]]",
        sources=SOURCES,
        credits=5,
        reasoning="先想",
        usage=TokenUsage(prompt_tokens=3, completion_tokens=4),
        model="fast_thinking",
        id="c1",
        finish_reason="stop",
    )
    message = answer_message(answer, model="asked", stops=[])

    assert message.content == "答案[[1]]"
    assert message.id == "c1"
    assert message.additional_kwargs == {"reasoning_content": "先想"}
    assert message.response_metadata == {
        "model_provider": "metaso",
        "citations": SOURCES,
        "model_name": "fast_thinking",
        "finish_reason": "stop",
        "credits": 5,
    }
    assert message.usage_metadata == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    assert message.content_blocks == [
        {"type": "reasoning", "reasoning": "先想"},
        {
            "type": "text",
            "text": "答案[[1]]",
            "annotations": [
                {
                    "type": "citation",
                    "url": "https://example.cn/s/1",
                    "title": "来源一",
                    "extras": {"date": "2025-01-02"},
                },
                {
                    "type": "citation",
                    "url": "https://example.cn/s/2",
                    "extras": {"snippet": "摘录"},
                },
                {
                    "type": "citation",
                    "title": "无链接",
                    "extras": {"imageUrl": "https://img.example.cn/1.png"},
                },
            ],
        },
    ]


def test_an_answer_without_sources_says_so_and_keeps_the_asked_model() -> None:
    message = answer_message(Answer(text="答", sources=[]), model="fast", stops=["答"])
    assert message.content == ""
    assert message.response_metadata == {
        "model_provider": "metaso",
        "citations": [],
        "model_name": "fast",
    }
    assert message.content_blocks == []
    assert message.usage_metadata is None


def test_chunks_show_what_they_bring_and_add_up_to_the_whole_message() -> None:
    deltas = [
        AnswerDelta(sources=SOURCES[:2], id="c1", model="fast_thinking"),
        AnswerDelta(reasoning="先想", id="c1"),
        AnswerDelta(text="答案[[1]]", id="c1"),
        AnswerDelta(id="c1"),  # nothing to show: no chunk
        AnswerDelta(text="，另见[[2]]。", id="c1"),
        AnswerDelta(finish_reason="stop", usage=TokenUsage(prompt_tokens=1), credits=5),
    ]
    reader = StreamReader(model="asked", stops=[])
    chunks = [chunk for delta in deltas if (chunk := reader.read(delta)) is not None]
    chunks.append(reader.finish())

    assert len(chunks) == 5
    assert chunks[0].content_blocks == [
        {"type": "text", "text": "", "annotations": annotations_of(chunks[0])[0], "index": 1}
    ]
    assert [a["url"] for a in annotations_of(chunks[0])[0]] == [
        s.get("link") or s.get("url") for s in SOURCES[:2]
    ]
    assert chunks[1].content_blocks == [{"type": "reasoning", "reasoning": "先想", "index": 0}]
    assert chunks[2].content_blocks == [{"type": "text", "text": "答案[[1]]", "index": 1}]
    assert chunks[-1].chunk_position == "last"

    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    whole = answer_message(
        Answer(
            text="答案[[1]]，另见[[2]]。",
            sources=SOURCES[:2],
            credits=5,
            reasoning="先想",
            usage=TokenUsage(prompt_tokens=1),
            model="fast_thinking",
            id="c1",
            finish_reason="stop",
        ),
        model="asked",
        stops=[],
    )
    assert full.content == whole.content
    assert full.additional_kwargs == whole.additional_kwargs
    assert full.response_metadata == whole.response_metadata
    assert full.usage_metadata == whole.usage_metadata
    assert full.id == whole.id
    assert annotations_of(full) == annotations_of(whole)


def test_a_stopped_stream_drops_later_text_and_reasoning_but_keeps_the_end() -> None:
    reader = StreamReader(model="fast", stops=["停"])
    first = reader.read(AnswerDelta(text="前停后"))
    assert first is not None
    assert first.content == "前"
    assert reader.read(AnswerDelta(text="更多", reasoning="再想")) is None
    last = reader.finish()
    assert last.content == ""
    assert last.response_metadata["citations"] == []
    assert last.response_metadata["model_name"] == "fast"


def test_content_that_is_not_text_is_read_by_langchain_itself() -> None:
    message = AIMessage(
        [{"type": "text", "text": "x"}], response_metadata={"model_provider": "metaso"}
    )
    assert message.content_blocks == [{"type": "text", "text": "x"}]
    chunk = AIMessageChunk("", response_metadata={"model_provider": "metaso"})
    assert chunk.content_blocks == []


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, None),
        (TokenUsage(), None),
        (
            TokenUsage(prompt_tokens=2, completion_tokens=3, total_tokens=6, reasoning_tokens=1),
            {
                "input_tokens": 2,
                "output_tokens": 3,
                "total_tokens": 6,
                "output_token_details": {"reasoning": 1},
            },
        ),
        (
            TokenUsage(completion_tokens=3),
            {"input_tokens": 0, "output_tokens": 3, "total_tokens": 3},
        ),
    ],
)
def test_usage_metadata(usage: TokenUsage | None, expected: dict[str, Any] | None) -> None:
    assert usage_metadata(usage) == expected
