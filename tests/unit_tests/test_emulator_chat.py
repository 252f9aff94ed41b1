"""The emulator's chat endpoint: questions and conversations, both answer shapes, the stream."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from emulator_support import QUERY, business_error, fixture, search, sse_data

from langchain_metaso.scopes import SCOPES, result_key
from langchain_metaso.testing import Fault, MetasoEmulator

MODELS = ["fast", "fast_thinking", "ds-r1"]
THINKING = {"fast_thinking", "ds-r1"}
MARK = re.compile(r"\[\[(\d+)\]\]")


def chat(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/chat/completions", json=body)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    assert "errCode" not in answer, answer
    return answer


def stream(api: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    """The chunks of a streamed answer, checked to end with ``data: [DONE]``."""
    with api.stream("POST", "/chat/completions", json={**body, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_data(response.read().decode())
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


def kind(chunk: dict[str, Any]) -> str:
    """What a chunk carries: its delta's one key, or ``stop`` for the last one."""
    choice = chunk["choices"][0]
    if choice.get("finish_reason") == "stop":
        assert choice["delta"] == {}
        return "stop"
    (key,) = choice["delta"]
    return str(key)


# --- the two answer shapes -------------------------------------------------------------------


def test_simple_answer_cites_its_citations(api: httpx.Client) -> None:
    body = chat(api, q=QUERY)
    assert list(body) == ["answer", "citations", "credits"]
    assert QUERY in body["answer"]
    marks = {int(n) for n in MARK.findall(body["answer"])}
    assert marks == set(range(1, len(body["citations"]) + 1))
    assert all({"title", "link", "snippet", "position"} <= set(c) for c in body["citations"])
    assert body["credits"] == 3


@pytest.mark.parametrize("model", MODELS)
def test_chat_completions_answer_is_openai_shaped(api: httpx.Client, model: str) -> None:
    body = chat(api, q=QUERY, model=model, format="chat_completions")
    assert list(body) == ["id", "object", "model", "choices", "citations", "usage", "credits"]
    assert (body["object"], body["model"]) == ("chat.completion", model)
    (choice,) = body["choices"]
    assert (choice["index"], choice["finish_reason"]) == (0, "stop")
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["content"] == chat(api, q=QUERY, model=model)["answer"]
    # The reasoning models show their thinking beside the answer.
    assert ("reasoning_content" in message) == (model in THINKING)
    usage = body["usage"]
    assert list(usage) == ["prompt_tokens", "completion_tokens", "total_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert body["citations"] == chat(api, q=QUERY, model=model)["citations"]


@pytest.mark.parametrize("scope", SCOPES)
def test_citations_are_the_scopes_first_search_results(api: httpx.Client, scope: str) -> None:
    citations = chat(api, q=QUERY, scope=scope)["citations"]
    results = search(api, q=QUERY, scope=scope, size=len(citations))[result_key(scope)]
    for citation, result in zip(citations, results, strict=True):
        assert citation.items() <= result.items()
        assert "title" in citation
        assert ("link" in citation) == (scope != "image")


# --- questions and conversations -------------------------------------------------------------


def test_a_conversation_is_answered_at_its_last_user_message(api: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "..."},
        {"role": "user", "content": [{"type": "text", "text": QUERY}]},
    ]
    answer = chat(api, messages=messages)["answer"]
    assert QUERY in answer
    assert "first question" not in answer
    # Earlier turns change the answer, as they would in a conversation.
    single = chat(api, messages=[{"role": "user", "content": QUERY}])["answer"]
    assert single == chat(api, q=QUERY)["answer"]
    assert answer != single
    assert "3 条消息" in answer


@pytest.mark.parametrize(
    ("messages", "code", "words"),
    [
        ([], 1001, "non-empty"),
        ("hello", 1001, "non-empty"),
        ([{"role": "system", "content": "be brief"}], 1001, "no user message"),
        ([{"role": "tool", "content": "x"}], 1000, "unsupported role 'tool'"),
        (["hello"], 1000, "unsupported role"),
        ([{"role": "user", "content": 42}], 1000, "content must be text"),
        ([{"role": "user", "content": "   "}], 1001, "required"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            1000,
            "only text content",
        ),
    ],
)
def test_bad_messages_are_business_errors(
    api: httpx.Client, messages: object, code: int, words: str
) -> None:
    error = business_error(api, "/chat/completions", {"messages": messages})
    assert error["errCode"] == code
    assert words in error["errMsg"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"q": QUERY, "model": "gpt-9"}, 1000),
        ({"q": QUERY, "format": "xml"}, 1000),
        ({"q": QUERY, "scope": "planet"}, 1002),
        ({"q": QUERY, "stream": "yes"}, 1000),
        ({}, 1001),
    ],
)
def test_bad_parameters_are_business_errors(
    api: httpx.Client, params: dict[str, Any], code: int
) -> None:
    assert business_error(api, "/chat/completions", params)["errCode"] == code


# --- the stream ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_stream_is_the_non_streamed_answer_in_chunks(api: httpx.Client, model: str) -> None:
    messages = [
        {"role": "user", "content": "earlier"},
        {"role": "assistant", "content": "..."},
        {"role": "user", "content": QUERY},
    ]
    full = chat(api, messages=messages, model=model, format="chat_completions")
    chunks = stream(api, messages=messages, model=model)
    kinds = [kind(chunk) for chunk in chunks]
    thinking = kinds.count("reasoning_content")
    answer = len(kinds) - thinking - 2
    # Citations, then the thinking (reasoning models only), then the answer, then the stop.
    assert kinds == [
        "citations",
        *["reasoning_content"] * thinking,
        *["content"] * answer,
        "stop",
    ]
    assert (thinking > 1) == (model in THINKING)
    assert kinds.count("content") > 5  # really streamed in pieces
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    message = full["choices"][0]["message"]
    assert "".join(d.get("content", "") for d in deltas) == message["content"]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == message.get(
        "reasoning_content", ""
    )
    assert deltas[0]["citations"] == full["citations"]
    assert chunks[-1]["usage"] == full["usage"]
    assert all((c["id"], c["model"]) == (full["id"], model) for c in chunks)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_stream_chunks_look_like_the_reconstructed_stream(api: httpx.Client) -> None:
    reconstructed = [json.loads(e) for e in sse_data(fixture("chat_stream.reconstructed.txt"))[:-1]]
    expected = {kind(chunk): chunk for chunk in reconstructed}
    for chunk in stream(api, q=QUERY, model="fast_thinking"):
        like = expected[kind(chunk)]
        assert list(chunk) == list(like)
        assert list(chunk["choices"][0]) == list(like["choices"][0])
    assert list(chunk["usage"]) == list(expected["stop"]["usage"])


def test_stream_ignores_the_format(api: httpx.Client) -> None:
    assert stream(api, q=QUERY, format="simple") == stream(api, q=QUERY, format="chat_completions")


def test_stream_is_chunked_and_keeps_the_connection(emulator: MetasoEmulator) -> None:
    headers = {"Authorization": "Bearer test-key"}
    with emulator.serve() as base_url, httpx.Client(base_url=base_url, headers=headers) as c:
        for _ in range(2):
            with c.stream("POST", "/chat/completions", json={"q": QUERY, "stream": True}) as r:
                assert r.headers["transfer-encoding"] == "chunked"
                assert r.read().endswith(b"data: [DONE]\n\n")
        assert emulator.stats.connections_opened == 1


def read_lines(response: httpx.Response, into: list[str]) -> None:
    """Keep the body's lines in ``into`` as they come, so they outlive a break."""
    for line in response.iter_lines():
        into.append(line)


@pytest.mark.parametrize("after", [0, 1, 3])
def test_a_fault_cuts_the_stream_after_n_events(
    api: httpx.Client, emulator: MetasoEmulator, after: int
) -> None:
    emulator.script(Fault.truncated(after=after))
    received: list[str] = []
    with api.stream("POST", "/chat/completions", json={"q": QUERY, "stream": True}) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            read_lines(response, received)
    events = [json.loads(data) for data in sse_data("\n".join(received))]
    assert events == stream(api, q=QUERY)[:after]


def test_truncated_stream_fails_midway_by_default(
    api: httpx.Client, emulator: MetasoEmulator
) -> None:
    emulator.script(Fault.truncated())
    with api.stream("POST", "/chat/completions", json={"q": QUERY, "stream": True}) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: {")
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            list(lines)
