"""ChatMetaso: every way to call it, what it sends, and what comes back; and its converters
from LangChain messages to the API's and back (stop sequences cut alike whole or in pieces,
the standard content blocks of our messages).

Two sources of answers: the emulator (in process), and the reconstructed stream of the
API reference (``fixtures/chat_stream.reconstructed.txt``, a thinking model's answer with
sources, reasoning and usage) served by an ``httpx.MockTransport``, beside the same answer
in the non-streamed shape the API documents (``choices[0].message`` and ``citations``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from conftest import TEST_KEY, Invoke, Make
from emulator_support import CHAT_STREAM, answer_of, chat_stream_events
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.rate_limiters import InMemoryRateLimiter
from pydantic import BaseModel

import langchain_metaso
from langchain_metaso import (
    ChatMetaso,
    MetasoAPIError,
    MetasoConnectionError,
    MetasoServerError,
)
from langchain_metaso.chat import Answer, AnswerDelta, TokenUsage
from langchain_metaso.chat_models import (
    StopCut,
    _convert_answer_to_result,
    _convert_delta_to_chunk,
    _convert_message_to_dict,
    _last_chunk,
    _Stream,
    _usage_metadata,
)
from langchain_metaso.testing import Fault, MetasoEmulator

QUESTION = "秘塔 AI 搜索是哪家公司做的?"
SECRET_KEY = "mk-chat-SHOULD-NOT-LEAK"


def _whole_answer() -> dict[str, Any]:
    """The reconstructed stream's answer in the non-streamed shape."""
    events = chat_stream_events()
    deltas = [event["choices"][0]["delta"] for event in events]
    return {
        "id": events[0]["id"],
        "object": "chat.completion",
        "model": events[0]["model"],
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "".join(d.get("content", "") for d in deltas),
                    "reasoning_content": "".join(d.get("reasoning_content", "") for d in deltas),
                },
                "finish_reason": "stop",
            }
        ],
        "citations": deltas[0]["citations"],
        "usage": events[-1]["usage"],
    }


class Recorded(httpx.MockTransport):
    """Serves the reconstructed answer, streamed or whole as asked, and keeps each body."""

    def __init__(self, stream: bytes | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.stream = CHAT_STREAM.read_bytes() if stream is None else stream
        super().__init__(self.answer)

    def answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if body.get("stream"):
            headers = {"content-type": "text/event-stream"}
            return httpx.Response(200, headers=headers, content=self.stream)
        return httpx.Response(200, json=_whole_answer())


def reconstructed(**kwargs: Any) -> tuple[ChatMetaso, Recorded]:
    transport = Recorded(kwargs.pop("stream", None))
    chat = ChatMetaso(api_key=TEST_KEY, transport=transport, retry_backoff=0.001, **kwargs)
    return chat, transport


def summed(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    return total


def stream(chat: Any, value: Any, mode: str, **kwargs: Any) -> list[AIMessageChunk]:
    if mode == "sync":
        return list(chat.stream(value, **kwargs))

    async def run() -> list[AIMessageChunk]:
        return [chunk async for chunk in chat.astream(value, **kwargs)]

    return asyncio.run(run())


def annotations(message: AIMessage) -> list[Any]:
    (text,) = [block for block in message.content_blocks if block["type"] == "text"]
    return list(text.get("annotations", []))


def same_answer(streamed: AIMessageChunk, whole: AIMessage) -> None:
    """The same text, reasoning, sources, usage and metadata; the API reports credits
    only with a whole answer."""
    assert streamed.content == whole.content
    assert streamed.additional_kwargs == whole.additional_kwargs
    whole_metadata = {k: v for k, v in whole.response_metadata.items() if k != "credits"}
    assert streamed.response_metadata == whole_metadata
    assert streamed.usage_metadata == whole.usage_metadata
    assert annotations(streamed) == annotations(whole)


# --- answers, streamed or not ----------------------------------------------------------------


def test_the_reconstructed_stream_arrives_chunk_by_chunk(mode: str) -> None:
    chat, _ = reconstructed(model="fast_thinking")
    sources, thought, first, second, last = stream(chat, QUESTION, mode)

    # The sources come first, on their own chunk, as citations of the (empty) text.
    assert [c["title"] for c in sources.response_metadata["citations"]] == ["来源一", "来源二"]
    assert annotations(sources) == [
        {
            "type": "citation",
            "url": "https://example.cn/s/1",
            "title": "来源一",
            "extras": {"date": "2025-01-02"},
        },
        {"type": "citation", "url": "https://example.cn/s/2", "title": "来源二"},
    ]
    assert sources.text == ""
    # The reasoning is never text.
    assert thought.text == ""
    assert thought.additional_kwargs == {"reasoning_content": "先看来源一……"}
    assert [b["type"] for b in thought.content_blocks] == ["reasoning"]
    assert (first.text, second.text) == ("答案在此[[1]]", "，另见[[2]]。")
    assert "reasoning_content" not in first.additional_kwargs
    # The end: how it ended, what it cost, who answered.
    assert last.chunk_position == "last"
    assert last.usage_metadata == {"input_tokens": 12, "output_tokens": 9, "total_tokens": 21}
    assert last.response_metadata["finish_reason"] == "stop"
    assert last.response_metadata["model_name"] == "fast_thinking"
    assert all("finish_reason" not in c.response_metadata for c in (sources, thought, first))


def test_stream_adds_up_to_invoke(mode: str, invoke: Invoke) -> None:
    chat, transport = reconstructed(model="fast_thinking")
    full = summed(stream(chat, QUESTION, mode))
    whole = invoke(chat, QUESTION)

    same_answer(full, whole)
    assert whole.text == "答案在此[[1]]，另见[[2]]。"
    assert [b["type"] for b in whole.content_blocks] == ["reasoning", "text"]
    assert [b["type"] for b in full.content_blocks] == ["reasoning", "text"]
    assert [body.get("stream") for body in transport.bodies] == [True, None]


@pytest.mark.parametrize(("model", "credits"), [("fast", 3), ("fast_thinking", 5)])
def test_the_emulators_answer_streamed_or_not(
    make: Make, mode: str, invoke: Invoke, model: str, credits: int
) -> None:
    chat = make(ChatMetaso, model=model)
    whole = invoke(chat, QUESTION)
    chunks = stream(chat, QUESTION, mode)

    same_answer(summed(chunks), whole)
    citations = whole.response_metadata["citations"]
    assert len(citations) >= 3
    assert [a["url"] for a in annotations(whole)] == [c["link"] for c in citations]
    assert [a["title"] for a in annotations(whole)] == [c["title"] for c in citations]
    assert "[[1]]" in whole.text
    assert len(chunks) > 5
    assert whole.response_metadata["credits"] == credits
    assert whole.usage_metadata
    # A thinking model's reasoning streams apart, before the text, and never in it.
    reasoning = whole.additional_kwargs.get("reasoning_content", "")
    assert bool(reasoning) == (model == "fast_thinking")
    shown = [
        block["type"]
        for chunk in chunks
        for block in chunk.content_blocks
        if block.get("reasoning") or block.get("text")
    ]
    assert shown == sorted(shown, key=["reasoning", "text"].index)
    assert ("reasoning" in shown) == bool(reasoning)
    assert not reasoning or reasoning not in whole.text


def test_batch_and_abatch(make: Make, emulator: MetasoEmulator) -> None:
    chat = make(ChatMetaso)
    questions = ["秘塔是什么?", "谁做的?", "在哪里?"]
    answers = chat.batch(questions)
    assert asyncio.run(chat.abatch(questions)) == answers
    expected = [emulator_answer_text(emulator, q) for q in questions]
    assert [answer.text for answer in answers] == expected


def emulator_answer_text(emulator: MetasoEmulator, question: str) -> str:
    answer = answer_of(emulator, "chat/completions", q=question, format="chat_completions")
    return str(answer["choices"][0]["message"]["content"])


def test_invoke_with_streaming_streams_underneath(make: Make, emulator: MetasoEmulator) -> None:
    chat = make(ChatMetaso, streaming=True)
    message = chat.invoke(QUESTION)
    assert isinstance(message, AIMessage)
    assert message.text == emulator_answer_text(emulator, QUESTION)
    assert emulator.requests[0].json()["stream"] is True


def test_output_version_v1_keeps_one_text_block_with_its_citations(mode: str) -> None:
    chat, _ = reconstructed(model="fast_thinking", output_version="v1")
    full = summed(stream(chat, QUESTION, mode))
    blocks = {block["type"]: block for block in full.content}  # type: ignore[index, union-attr]
    assert sorted(blocks) == ["reasoning", "text"]
    assert blocks["text"]["text"] == "答案在此[[1]]，另见[[2]]。"
    assert [a["title"] for a in blocks["text"]["annotations"]] == ["来源一", "来源二"]
    assert blocks["reasoning"]["reasoning"] == "先看来源一……"


# --- what is sent -----------------------------------------------------------------------------


def test_a_conversation_is_sent_as_messages(make: Make, emulator: MetasoEmulator) -> None:
    chat = make(ChatMetaso)
    chat.invoke(
        [
            SystemMessage("简短回答"),
            HumanMessage("秘塔是什么?"),
            AIMessage("一个 AI 搜索引擎[[1]]。"),
            HumanMessage("谁做的?"),
        ]
    )
    list(chat.stream("谁做的?"))
    whole, streamed = (request.json() for request in emulator.requests)
    assert whole == {
        "messages": [
            {"role": "system", "content": "简短回答"},
            {"role": "user", "content": "秘塔是什么?"},
            {"role": "assistant", "content": "一个 AI 搜索引擎[[1]]。"},
            {"role": "user", "content": "谁做的?"},
        ],
        "model": "fast",
        "scope": "webpage",
        "format": "chat_completions",
    }
    assert streamed == {
        "messages": [{"role": "user", "content": "谁做的?"}],
        "model": "fast",
        "scope": "webpage",
        "format": "chat_completions",
        "stream": True,
    }
    assert all(request.path == "/metaso/chat/completions" for request in emulator.requests)


def test_settings_and_per_call_overrides_reach_the_api(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    chat = make(
        ChatMetaso,
        model="ds-r1",
        scope="scholar",
        concise_snippet=True,
        temperature=0.2,
        max_tokens=50,
        chat_path="/chat/completions/",
    )
    invoke(chat, "q")
    invoke(chat.bind(scope="video"), "q", model="fast_thinking", max_tokens=10)
    first, second = (request.json() for request in emulator.requests)
    assert {k: v for k, v in first.items() if k != "messages"} == {
        "model": "ds-r1",
        "scope": "scholar",
        "format": "chat_completions",
        "conciseSnippet": True,
        "temperature": 0.2,
        "max_tokens": 50,
    }
    assert (second["model"], second["scope"]) == ("fast_thinking", "video")
    assert second["max_tokens"] == 10


def test_a_model_the_package_does_not_know_is_sent_as_given(mode: str) -> None:
    chat, transport = reconstructed(model="fast-2099")
    stream(chat, "q", mode)
    assert transport.bodies[0]["model"] == "fast-2099"


def test_the_api_refusing_an_unknown_model_says_so(make: Make, emulator: MetasoEmulator) -> None:
    # The emulator knows only today's models, as the real API may.
    with pytest.raises(MetasoAPIError, match="fast-2099") as caught:
        make(ChatMetaso, model="fast-2099").invoke("q")
    assert caught.value.code == 1000


@pytest.mark.parametrize(
    "message",
    [
        ToolMessage("42", tool_call_id="1"),
        HumanMessage([{"type": "image", "url": "https://example.com/1.png"}]),
    ],
)
def test_messages_the_api_cannot_take_fail_before_any_request(
    make: Make, emulator: MetasoEmulator, mode: str, message: Any
) -> None:
    with pytest.raises(ValueError, match="ChatMetaso cannot send"):
        stream(make(ChatMetaso), [HumanMessage("hi"), message], mode)
    with pytest.raises(ValueError, match="text only"):
        make(ChatMetaso).invoke([message])
    assert emulator.requests == []


def test_arguments_it_does_not_take_are_refused(make: Make, emulator: MetasoEmulator) -> None:
    with pytest.raises(ValueError, match=r"does not take 'top_p'.*model, scope"):
        make(ChatMetaso).invoke("q", top_p=0.5)
    with pytest.raises(ValueError, match="scope"):
        make(ChatMetaso).invoke("q", scope="web")
    assert emulator.requests == []


# --- stop sequences ---------------------------------------------------------------------------


def test_stop_cuts_streamed_and_whole_answers_alike(mode: str) -> None:
    # "]]，另" straddles the reconstructed stream's two text chunks.
    chat, _ = reconstructed(stop=["]]，另"])
    full = summed(stream(chat, QUESTION, mode))
    whole = chat.invoke(QUESTION)
    assert full.text == whole.text == "答案在此[[1"
    same_answer(full, whole)
    # A call's own stop sequences replace the instance's.
    assert chat.invoke(QUESTION, stop=["另"]).text == "答案在此[[1]]，"


def test_stop_on_the_emulators_answer(make: Make, emulator: MetasoEmulator, mode: str) -> None:
    chat = make(ChatMetaso)
    text = emulator_answer_text(emulator, QUESTION)
    cut = text[: text.index("[[2]]")]
    assert summed(stream(chat, QUESTION, mode, stop=["[[2]]"])).text == cut
    assert chat.invoke(QUESTION, stop=["[[2]]"]).text == cut


# --- failures ---------------------------------------------------------------------------------


def test_a_failure_before_the_first_chunk_is_retried(
    make: Make, emulator: MetasoEmulator, mode: str
) -> None:
    emulator.script(Fault.status(503, retry_after=0), Fault.drop())
    chunks = stream(make(ChatMetaso), QUESTION, mode)
    assert summed(chunks).text == emulator_answer_text(emulator, QUESTION)
    assert emulator.stats.requests == 4  # two failures, the answer, and the check above


def test_a_stream_broken_midway_raises_after_what_came(
    make: Make, emulator: MetasoEmulator, mode: str
) -> None:
    emulator.script(Fault.truncated(after=4))  # the sources, then three pieces of text
    got: list[AIMessageChunk] = []

    async def adrain() -> None:
        async for chunk in make(ChatMetaso).astream(QUESTION):
            got.append(chunk)

    def drain() -> None:
        if mode == "sync":
            got.extend(make(ChatMetaso).stream(QUESTION))
        else:
            asyncio.run(adrain())

    with pytest.raises(MetasoConnectionError, match="chat/completions"):
        drain()
    # What came was delivered; then an error, not a retry or a silently shorter answer.
    assert len(got) == 4
    assert "citations" in got[0].response_metadata
    assert all(chunk.text for chunk in got[1:])
    assert all(chunk.chunk_position is None for chunk in got)
    assert len(emulator.requests) == 1


def test_invoke_streaming_underneath_fails_rather_than_answer_short(
    make: Make, emulator: MetasoEmulator
) -> None:
    emulator.script(Fault.truncated())
    with pytest.raises(MetasoConnectionError):
        make(ChatMetaso, streaming=True).invoke(QUESTION)


def test_an_error_sent_inside_the_stream_is_a_typed_error(mode: str) -> None:
    first = chat_stream_events()[0]
    error = {"error": {"message": "upstream overloaded", "type": "server_error"}}
    body = f"data: {json.dumps(first)}\n\ndata: {json.dumps(error)}\n\n".encode()
    chat, _ = reconstructed(stream=body)
    with pytest.raises(MetasoAPIError, match="upstream overloaded") as caught:
        stream(chat, QUESTION, mode)
    assert caught.value.status_code == 200
    assert caught.value.endpoint == "chat/completions"


def test_a_stream_without_done_is_not_a_complete_answer(mode: str) -> None:
    cut_short = CHAT_STREAM.read_bytes().replace(b"data: [DONE]", b"")
    chat, _ = reconstructed(stream=cut_short)
    with pytest.raises(langchain_metaso.MetasoResponseError, match=r"\[DONE\]"):
        stream(chat, QUESTION, mode)


def test_server_errors_are_typed_and_never_show_the_key(
    make: Make, emulator: MetasoEmulator, mode: str
) -> None:
    emulator.script(*[Fault.status(500)] * 3)
    with pytest.raises(MetasoServerError) as caught:
        stream(make(ChatMetaso), QUESTION, mode)
    assert "chat/completions" in str(caught.value)
    assert TEST_KEY not in str(caught.value)
    assert len(emulator.requests) == 3


# --- cancellation -----------------------------------------------------------------------------


def test_leaving_a_stream_early_leaves_the_instance_usable(make: Make) -> None:
    chat = make(ChatMetaso, max_concurrency=1)
    client = chat.client
    _, slot = client.pool.sync_client(client.transport, 1)
    chunks = chat.stream(QUESTION)
    next(chunks)
    assert not slot.acquire(blocking=False)  # the open stream holds the only slot
    chunks.close()
    assert slot.acquire(blocking=False)
    slot.release()
    for _chunk in chat.stream(QUESTION):
        break  # the stream, dropped, is closed at once
    assert slot.acquire(blocking=False)
    slot.release()
    assert chat.invoke(QUESTION).text


class Stalls(httpx.AsyncBaseTransport):
    """Streams the reconstructed answer's first event, then waits forever; answers a
    whole answer at once."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not json.loads(await request.aread()).get("stream"):
            return httpx.Response(200, json=_whole_answer())
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_StalledBody()
        )


class _StalledBody(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield CHAT_STREAM.read_bytes().split(b"\n\n")[0] + b"\n\n"
        await asyncio.Event().wait()


def test_a_stream_cancelled_while_it_waits_frees_its_slot_at_once() -> None:
    chat = ChatMetaso(api_key=TEST_KEY, transport=Stalls(), max_concurrency=1)

    async def run() -> tuple[bool, bool, str]:
        client = chat.client
        _, slot = await client.pool.async_client(client.transport, 1)
        first = asyncio.Event()

        async def read() -> None:
            async for _ in chat.astream(QUESTION):
                first.set()  # then the stream waits for a second event that never comes

        task = asyncio.ensure_future(read())
        await first.wait()
        held = slot.locked()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return held, slot.locked(), (await chat.ainvoke(QUESTION)).text

    assert asyncio.run(run()) == (True, False, "答案在此[[1]]，另见[[2]]。")


@pytest.mark.timeout(20)  # a slot kept by the abandoned stream would make the last call wait
def test_a_stream_whose_reader_is_cancelled_leaves_the_instance_usable(make: Make) -> None:
    chat = make(ChatMetaso, max_concurrency=1)

    async def run() -> str:
        started = asyncio.Event()

        async def read() -> None:
            async for _ in chat.astream(QUESTION):
                started.set()
                await asyncio.Event().wait()  # a slow reader, cancelled between chunks

        task = asyncio.ensure_future(read())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The event loop closes the stream it left before this call gets the slot.
        return str((await chat.ainvoke(QUESTION)).text)

    assert asyncio.run(run())


# --- LangChain's machinery --------------------------------------------------------------------


def test_tracing_names_the_provider_and_the_model() -> None:
    chat = ChatMetaso(api_key=TEST_KEY, model="ds-r1", stop=["。"], temperature=0.5, max_tokens=9)
    assert chat._llm_type == "metaso-chat"
    assert chat._get_ls_params() == {
        "ls_provider": "metaso",
        "ls_model_name": "ds-r1",
        "ls_model_type": "chat",
        "ls_temperature": 0.5,
        "ls_max_tokens": 9,
        "ls_stop": ["。"],
    }
    assert chat._get_ls_params(stop=["!"], model="fast")["ls_model_name"] == "fast"
    assert chat._get_ls_params(stop=["!"])["ls_stop"] == ["!"]
    params = chat._identifying_params
    assert (params["model"], params["scope"], params["base_url"]) == (
        "ds-r1",
        "webpage",
        "https://api.302.ai/metaso",
    )
    assert TEST_KEY not in repr(chat)
    assert TEST_KEY not in str(params)


def test_tools_and_structured_output_are_not_offered_and_say_why() -> None:
    chat = ChatMetaso(api_key=TEST_KEY)

    class Answer(BaseModel):
        text: str

    with pytest.raises(NotImplementedError, match="does not call tools"):
        chat.bind_tools([Answer])
    with pytest.raises(NotImplementedError, match="no tool calling, JSON mode or response schema"):
        chat.with_structured_output(Answer)


class Tokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


def test_callbacks_see_each_chunk_once(make: Make) -> None:
    handler = Tokens()
    chunks = list(make(ChatMetaso).stream(QUESTION, config={"callbacks": [handler]}))
    assert handler.tokens == [chunk.text for chunk in chunks]


def test_langchains_cache_answers_a_repeated_question(make: Make, emulator: MetasoEmulator) -> None:
    chat = make(ChatMetaso, cache=InMemoryCache())
    first = chat.invoke(QUESTION)
    again = chat.invoke(QUESTION)
    assert again.text == first.text
    assert again.response_metadata == first.response_metadata
    assert again.content_blocks == first.content_blocks
    assert len(emulator.requests) == 1
    list(chat.stream(QUESTION))  # streams are not cached
    assert len(emulator.requests) == 2


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("", "empty or blank human message"),
        ("  \n ", "empty or blank human message"),
        ("秘塔\ud800", "not valid text (a lone surrogate)"),
        ([SystemMessage("简短回答")], "no human message"),
        ([SystemMessage(" "), HumanMessage("q")], "empty or blank system message"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
def test_a_blank_or_invalid_message_is_refused_before_sending(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, question: Any, words: str, streamed: bool
) -> None:
    chat = make(ChatMetaso, streaming=streamed)
    with pytest.raises(ValueError, match="ChatMetaso") as caught:
        invoke(chat, question)
    assert words in str(caught.value)
    assert not isinstance(caught.value, UnicodeError)
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"scope": "news"}, ["scope='news'", "'webpage'", "'scholar'", "'image'"]),
        ({"model": " "}, ["model=' '", "fast, fast_thinking, ds-r1"]),
        ({"max_tokens": 0}, ["max_tokens=0", "greater than or equal to 1"]),
    ],
)
def test_a_bad_call_argument_is_named_with_its_valid_values(
    make: Make, emulator: MetasoEmulator, override: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(ValueError, match="ChatMetaso got an invalid value") as caught:
        make(ChatMetaso).invoke(QUESTION, **override)
    for word in words:
        assert word in str(caught.value)
    assert "AnswerRequest" not in str(caught.value)
    assert emulator.requests == []


def test_an_earlier_empty_answer_may_stay_in_the_conversation(
    make: Make, emulator: MetasoEmulator
) -> None:
    make(ChatMetaso).invoke([HumanMessage("q1"), AIMessage(""), HumanMessage("q2")])
    assert [m["role"] for m in emulator.requests[0].json()["messages"]] == [
        "user",
        "assistant",
        "user",
    ]


def test_the_packages_search_cache_is_refused_naming_the_cache_a_chat_model_takes() -> None:
    with pytest.raises(ValueError, match="LangChain's chat-model cache") as caught:
        ChatMetaso(api_key=TEST_KEY, cache=langchain_metaso.InMemoryCache())
    message = str(caught.value)
    assert "langchain_core.caches.BaseCache" in message
    assert "not a InMemoryCache" in message
    assert "MetasoAnswerTool" in message
    assert "is_instance_of" not in message
    ChatMetaso(api_key=TEST_KEY, cache=False)  # LangChain's own values still work


@pytest.mark.filterwarnings("ignore:The function `loads` is in beta")
def test_it_serializes_as_langchain_chat_models_do_with_the_key_a_secret() -> None:
    from langchain_core.load import dumps, loads

    chat = ChatMetaso(api_key=SECRET_KEY, model="ds-r1", scope="scholar", max_tokens=50)
    text = dumps(chat)
    assert SECRET_KEY not in text
    data = json.loads(text)
    assert data["type"] == "constructor"
    assert data["id"] == ["langchain_metaso", "chat_models", "ChatMetaso"]
    assert data["kwargs"]["metaso_api_key"] == {"lc": 1, "type": "secret", "id": ["METASO_API_KEY"]}
    copy = loads(
        text,
        secrets_map={"METASO_API_KEY": "k2"},
        valid_namespaces=["langchain_metaso"],
        allowed_objects=[ChatMetaso],
    )
    assert isinstance(copy, ChatMetaso)
    assert (copy.model, copy.scope, copy.max_tokens) == ("ds-r1", "scholar", 50)
    assert copy.metaso_api_key.get_secret_value() == "k2"


def test_the_rate_limiter_is_asked_once_a_call(make: Make, emulator: MetasoEmulator) -> None:
    class Counting(InMemoryRateLimiter):
        asked = 0

        def acquire(self, *, blocking: bool = True) -> bool:
            Counting.asked += 1
            return True

    emulator.script(Fault.status(503, retry_after=0))
    chat = make(ChatMetaso, rate_limiter=Counting())
    chat.invoke(QUESTION)
    list(chat.stream(QUESTION))
    assert (Counting.asked, len(emulator.requests)) == (2, 3)


def test_the_key_by_its_langchain_name_and_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ChatMetaso(api_key=" k1 ").metaso_api_key.get_secret_value() == "k1"
    monkeypatch.setenv("METASO_API_KEY", "k2")
    assert ChatMetaso().metaso_api_key.get_secret_value() == "k2"
    assert langchain_metaso.ChatMetaso is ChatMetaso


# --- the converters: LangChain messages to the API and back ----------------------------------

SOURCES = [
    {"title": "来源一", "link": "https://example.cn/s/1", "date": "2025-01-02"},
    {"url": "https://example.cn/s/2", "snippet": "摘录"},
    {"title": "无链接", "imageUrl": "https://img.example.cn/1.png"},
]

# --- messages to the API ----------------------------------------------------------------------


def test_system_human_and_ai_turns_go_as_the_api_takes_them() -> None:
    sent = [
        _convert_message_to_dict(message)
        for message in [
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
    ]
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
        _convert_message_to_dict(message)
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
    message = (
        _convert_answer_to_result(answer, _Stream(StopCut([]), model="asked"))
        .generations[0]
        .message
    )

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
    stream = _Stream(StopCut(["答"]), model="fast")
    message = (
        _convert_answer_to_result(Answer(text="答", sources=[]), stream).generations[0].message
    )
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
    stream = _Stream(StopCut([]), model="asked")
    chunks = [
        chunk for delta in deltas if (chunk := _convert_delta_to_chunk(delta, stream)) is not None
    ]
    chunks.append(_last_chunk(stream))

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
    whole = (
        _convert_answer_to_result(
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
            _Stream(StopCut([]), model="asked"),
        )
        .generations[0]
        .message
    )
    assert full.content == whole.content
    assert full.additional_kwargs == whole.additional_kwargs
    assert full.response_metadata == whole.response_metadata
    assert full.usage_metadata == whole.usage_metadata
    assert full.id == whole.id
    assert annotations_of(full) == annotations_of(whole)


def test_a_stopped_stream_drops_later_text_and_reasoning_but_keeps_the_end() -> None:
    stream = _Stream(StopCut(["停"]), model="fast")
    first = _convert_delta_to_chunk(AnswerDelta(text="前停后"), stream)
    assert first is not None
    assert first.content == "前"
    assert _convert_delta_to_chunk(AnswerDelta(text="更多", reasoning="再想"), stream) is None
    last = _last_chunk(stream)
    assert last.content == ""
    assert last.response_metadata["citations"] == []
    assert last.response_metadata["model_name"] == "fast"


def test_a_whole_answer_cut_at_a_stop_keeps_its_reasoning() -> None:
    # The reasoning came before the answer, so the cut leaves it, as it always did.
    stream = _Stream(StopCut(["停"]), model="fast")
    answer = Answer(text="前停后", sources=[], reasoning="先想")
    message = _convert_answer_to_result(answer, stream).generations[0].message
    assert message.content == "前"
    assert message.additional_kwargs == {"reasoning_content": "先想"}


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
    assert _usage_metadata(usage) == expected
