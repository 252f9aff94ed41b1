"""The server-sent events reader (``_http/body.py``'s ``EventReader``): an answer's chunks
read as lines and events; the HTTP core's stream methods that use it are tested in
``test_http_client.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_metaso._http import Call
from langchain_metaso._http.body import BodyReader, EventReader
from langchain_metaso._http.failures import CallErrors
from langchain_metaso.errors import MetasoResponseError


def event_reader(limit: int = 1 << 20, endpoint: str = "x") -> EventReader[Any]:
    call: Call[Any] = Call(endpoint, {}, parse=lambda data: data, expect="events")
    errors = CallErrors(endpoint, "http://test/x", "secret", 1.0, None, limit)
    response = httpx.Response(200, headers={"content-type": "text/event-stream"})
    return EventReader(call, BodyReader(errors, response, None))


def iter_events(lines: Iterator[str] | list[str], reader: EventReader[Any]) -> Iterator[Any]:
    """The data of the events of ``lines`` (each a whole line) in order, up to ``[DONE]``;
    then the end checked."""
    for line in lines:
        yield from reader.feed(line.encode() + (b"" if line.endswith("\n") else b"\n"))
        if reader.done:
            return
    yield from reader.feed(None)


def events(lines: list[str]) -> list[Any]:
    return list(iter_events(lines, event_reader(endpoint="chat/completions")))


def test_events_come_in_order_and_done_ends_the_stream() -> None:
    lines = ['data: {"n": 1}', "", 'data: {"n": 2}', "", "data: [DONE]", "", 'data: {"n": 3}', ""]
    assert events(lines) == [{"n": 1}, {"n": 2}]


def test_nothing_after_done_is_read() -> None:
    read: list[str] = []

    def lines() -> Iterator[str]:
        for line in ['data: {"n": 1}', "", "data: [DONE]", "never read", "nor this"]:
            read.append(line)
            yield line

    assert list(iter_events(lines(), event_reader())) == [{"n": 1}]
    assert read == ['data: {"n": 1}', "", "data: [DONE]"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    lines = ['data: {"text":', 'data: "two lines"}', "", "data: [DONE]"]
    assert events(lines) == [{"text": "two lines"}]
    reader = event_reader()
    for line in [b"data: [1,\n", b"data:2]\n"]:
        assert reader.feed(line) == []
    assert reader.feed(b"\n") == [[1, 2]]


def test_comments_keep_alives_and_unknown_fields_are_ignored() -> None:
    lines = [
        ": keep-alive",
        "",
        ":",
        "event: delta",
        "id: 7",
        "retry: 3000",
        "foo: bar",
        'data: {"n": 1}',
        ": a comment inside an event",
        "",
        "",
        "data: [DONE]",
    ]
    assert events(lines) == [{"n": 1}]


def test_space_after_colon_is_optional_and_line_endings_and_bom_are_dropped() -> None:
    lines = ['\ufeffdata:{"a": 1}\r\n', "\r\n", 'data:  {"b": 2}\n', "\n", "data:[DONE]\r\n"]
    assert events(lines) == [{"a": 1}, {"b": 2}]


def test_done_without_a_blank_line_after_it_ends_the_stream() -> None:
    assert events(['data: {"n": 1}', "", "data: [DONE]"]) == [{"n": 1}]
    reader = event_reader()
    assert reader.feed(b"data: [DONE]\n") == []
    assert reader.done
    assert reader.feed(b'data: {"late": true}\n') == []
    assert reader.feed(b"\n") == []


def test_malformed_json_event_is_a_response_error() -> None:
    with pytest.raises(MetasoResponseError) as caught:
        events(['data: {"n": 1}', "", "data: {not json", "", "data: [DONE]"])
    assert caught.value.endpoint == "chat/completions"
    assert caught.value.body_excerpt == "{not json"
    assert "not JSON" in str(caught.value)


def test_what_an_error_shows_is_redacted() -> None:
    with pytest.raises(MetasoResponseError) as caught:
        events(["data: secret <html>", ""])
    assert caught.value.body_excerpt == "*** <html>"


def test_stream_that_ends_without_done_is_a_response_error() -> None:
    with pytest.raises(MetasoResponseError, match=r"ended before 'data: \[DONE\]'"):
        events(['data: {"n": 1}', ""])
    # A last event without its blank line is still read before the check fails.
    with pytest.raises(MetasoResponseError):
        events(['data: {"n": 1}'])
    assert events(["data: [DONE]"]) == []


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_chunks_split_anywhere_give_the_same_events(size: int) -> None:
    lines = [": ping", 'data: {"n": 1}', "", 'data: {"n":', "data: 2}", "", "data: [DONE]", "x"]
    text = "\r\n".join(lines).encode()
    reader = event_reader()
    got: list[Any] = []
    for start in range(0, len(text), size):
        got += reader.feed(text[start : start + size])
        if reader.done:
            break
    assert got == events(lines) == [{"n": 1}, {"n": 2}]

    cut_short = event_reader()
    assert cut_short.feed(b'data: {"n": 1}\n\n') == [{"n": 1}]
    with pytest.raises(MetasoResponseError):
        cut_short.feed(None)


def test_a_line_that_never_ends_is_bounded_by_max_response_bytes() -> None:
    reader = event_reader(limit=4096)
    for _ in range(4):
        assert reader.feed(b"data: " + b"x" * 1000) == []  # no newline, ever
    with pytest.raises(MetasoResponseError, match="max_response_bytes=4096"):
        reader.feed(b"x" * 1000)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    st.lists(st.tuples(json_values, st.booleans(), st.booleans()), max_size=8),
)
def test_any_json_values_survive_framing(items: list[tuple[Any, bool, bool]]) -> None:
    lines: list[str] = []
    for value, pretty, ping in items:
        if ping:
            lines += [": keep-alive", ""]
        text = json.dumps(value, ensure_ascii=False, indent=1 if pretty else None)
        # Pretty-printed JSON spans several data lines; the parser joins them back.
        lines += [f"data: {part}" for part in text.split("\n")] + [""]
    lines.append("data: [DONE]")
    assert events(lines) == [value for value, _, _ in items]
