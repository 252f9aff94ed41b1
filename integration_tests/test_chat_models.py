"""``ChatMetaso`` against each target (see ``conftest.py``): LangChain's standard chat model
suite, then what the issue promises beyond it (the same sources and text streamed or not,
reasoning kept apart, multi-turn, a wrong key).

Against the real API every answer costs credits; the standard suite asks a few dozen short
questions.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests

from integration_tests.conftest import OnTarget, Target
from langchain_metaso import ChatMetaso, MetasoAuthenticationError

QUESTION = "秘塔 AI 搜索是哪家公司开发的?"
WRONG_KEY = "wrong-key-for-integration-tests"


class TestChatMetasoStandard(OnTarget, ChatModelIntegrationTests):
    chat_model_class = ChatMetaso
    has_tool_calling = False  # bind_tools exists only to say that the API does not call tools
    has_structured_output = False
    model_override_value = "fast_thinking"

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return dict(self.target.settings)


def summed(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    return total


def annotations(message: AIMessage) -> list[Any]:
    (text,) = [block for block in message.content_blocks if block["type"] == "text"]
    return list(text.get("annotations", []))


def test_stream_adds_up_to_invoke_text_and_sources(metaso_target: Target) -> None:
    chat = metaso_target.make(ChatMetaso)
    message = chat.invoke(QUESTION)
    chunks = list(chat.stream(QUESTION))
    full = summed(chunks)

    assert message.response_metadata["citations"]
    assert annotations(message)
    if metaso_target.name == "emulator":
        # The emulator answers the same question the same way; the real service need not.
        assert full.text == message.text
        assert full.response_metadata["citations"] == message.response_metadata["citations"]
        assert annotations(full) == annotations(message)
    # Sources come on the chunk where they arrive, before the text.
    first_with_sources = next(i for i, c in enumerate(chunks) if "citations" in c.response_metadata)
    first_with_text = next(i for i, c in enumerate(chunks) if c.text)
    assert first_with_sources <= first_with_text
    assert annotations(full)[0].get("url", "").startswith("http")


def test_multi_turn_conversation(metaso_target: Target) -> None:
    chat = metaso_target.make(ChatMetaso)
    message = chat.invoke(
        [
            SystemMessage("回答要简短。"),
            HumanMessage("秘塔 AI 搜索是什么?"),
            AIMessage("一个 AI 搜索引擎。"),
            HumanMessage("它是哪家公司开发的?"),
        ]
    )
    assert message.text
    assert message.response_metadata["model_provider"] == "metaso"


@pytest.mark.parametrize("model", ["fast_thinking", "ds-r1"])
def test_thinking_models_keep_reasoning_apart(metaso_target: Target, model: str) -> None:
    chat = metaso_target.make(ChatMetaso, model=model)
    message = chat.invoke(QUESTION)
    assert message.additional_kwargs["reasoning_content"]
    assert [block["type"] for block in message.content_blocks] == ["reasoning", "text"]
    full = summed(list(chat.stream(QUESTION)))
    reasoning = full.additional_kwargs["reasoning_content"]
    assert reasoning
    assert reasoning not in full.text
    assert [block["type"] for block in full.content_blocks] == ["reasoning", "text"]


def test_wrong_key_is_an_authentication_error_without_the_key(metaso_target: Target) -> None:
    chat = metaso_target.make(ChatMetaso, metaso_api_key=WRONG_KEY, max_retries=0)
    for call in (chat.invoke, lambda q: list(chat.stream(q))):
        with pytest.raises(MetasoAuthenticationError) as caught:
            call(QUESTION)
        assert "METASO_API_KEY" in str(caught.value)
        assert WRONG_KEY not in str(caught.value)
