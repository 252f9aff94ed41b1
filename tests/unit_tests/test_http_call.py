"""``Call`` (``_http/call.py``): one API call as an endpoint module describes it, and what
the HTTP core makes of each of its parts."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest
from conftest import TEST_KEY

from langchain_metaso import MetasoConfig
from langchain_metaso._http import Call
from langchain_metaso._http.call import ACCEPT


def test_a_call_expects_json_unless_told_and_cannot_change() -> None:
    call: Call[Any] = Call("search", {"q": "秘塔"}, dict)
    assert call.expect == "json"
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.endpoint = "reader"  # type: ignore[misc]


def test_every_expectation_has_its_accept_header() -> None:
    assert ACCEPT == {
        "json": "application/json",
        "text": "text/plain",
        "events": "text/event-stream",
    }


class Answers:
    """Answers each request in the form its Accept header asks for, and records it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        accept = request.headers["accept"]
        if accept == "text/event-stream":
            body = b'data: {"n": 1}\n\ndata: {"n": 2}\n\ndata: [DONE]\n\n'
            return httpx.Response(200, headers={"content-type": accept}, content=body)
        if accept == "text/plain":
            return httpx.Response(200, text="# 标题\n\n正文")
        return httpx.Response(200, json={"answer": "秘塔"})


def test_a_call_is_sent_as_described_and_parse_gets_its_answer() -> None:
    answers = Answers()
    client = MetasoConfig(metaso_api_key=TEST_KEY, transport=httpx.MockTransport(answers)).client
    seen: list[Any] = []

    def parse(value: Any) -> Any:
        seen.append(value)
        return value

    client.request(Call("search", {"q": "秘塔", "size": 3}, parse))
    client.request(Call("reader", {"url": "https://a.cn/"}, parse, "text"))
    list(client.stream(Call("chat/completions", {"q": "秘塔", "stream": True}, parse, "events")))

    assert [request.url.path for request in answers.requests] == [
        "/metaso/search",
        "/metaso/reader",
        "/metaso/chat/completions",
    ]
    assert [json.loads(request.content) for request in answers.requests] == [
        {"q": "秘塔", "size": 3},
        {"url": "https://a.cn/"},
        {"q": "秘塔", "stream": True},
    ]
    assert [request.headers["accept"] for request in answers.requests] == [
        ACCEPT["json"],
        ACCEPT["text"],
        ACCEPT["events"],
    ]
    # A JSON object, the text, then each event's data in turn.
    assert seen == [{"answer": "秘塔"}, "# 标题\n\n正文", {"n": 1}, {"n": 2}]
