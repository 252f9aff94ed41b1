"""The reader endpoint (``reader.py``): URL checks, the request, and both answer modes read
into a page, without any I/O."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.documents import Document
from pydantic import ValidationError

from langchain_metaso.reader import ReaderPage, ReaderRequest, check_url, reader_call

URL = "https://news.example.com/2025/秘塔-ai"


BAD_URLS = [
    "ftp://example.com/file",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "example.com/no-scheme",
    "https://",
    "http:///path-only",
    "",
    "   ",
    "https://example.com/a\x00b",
    "https://example.com/\ud800",  # a lone surrogate cannot even be sent as UTF-8
]


# --- URL checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://example.com", "https://example.com"),
        ("  http://example.com/a?b=c#d \n", "http://example.com/a?b=c#d"),
        ("HTTPS://Example.com/Path", "HTTPS://Example.com/Path"),
        ("https://127.0.0.1:8080/x", "https://127.0.0.1:8080/x"),
    ],
)
def test_http_urls_are_accepted(given: str, kept: str) -> None:
    assert check_url(given) == kept
    assert ReaderRequest(url=given).url == kept


@pytest.mark.parametrize("url", BAD_URLS)
def test_other_urls_are_rejected_naming_the_url(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_url(url)
    assert repr(url) in str(caught.value)
    assert "http://" in str(caught.value)
    with pytest.raises(ValidationError):
        ReaderRequest(url=url)


# --- reading an answer -----------------------------------------------------------------------


def test_json_answer_becomes_a_document_field_by_field() -> None:
    page = ReaderPage.from_payload(
        {
            "title": "标题",
            "url": URL,
            "author": "张伟",
            "date": "2025年03月17日",
            "markdown": "# 标题\n\n正文",
            "credits": 1,
        },
        source=URL,
    )
    document = page.to_document()
    assert document.page_content == "# 标题\n\n正文"
    assert document.metadata == {
        "source": URL,
        "title": "标题",
        "author": "张伟",
        "date": "2025年03月17日",
        "credits": 1,
    }


def test_missing_or_odd_fields_fall_back_gracefully() -> None:
    page = ReaderPage.from_payload(
        {
            "markdown": "intro\n# The heading\n\ntext",
            "title": "  ",
            "author": ["not", "a", "string"],
            "date": None,
            "credits": "2",
            "url": "https://example.com/after-redirect",
            "lang": "zh",
        },
        source="https://example.com/before",
    )
    assert page.to_document().metadata == {
        "source": "https://example.com/before",
        "title": "The heading",  # the Markdown's first heading
        "credits": 2,
        "url": "https://example.com/after-redirect",
        "lang": "zh",  # unknown fields are kept
    }
    bare = ReaderPage.from_payload({"markdown": "no heading"}, source=URL).to_document()
    assert bare.metadata == {"source": URL}


@pytest.mark.parametrize("payload", [{}, {"markdown": None}, {"markdown": 3}, {"text": "x"}])
def test_json_answer_without_markdown_is_unusable(payload: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no 'markdown' text"):
        ReaderPage.from_payload(payload, source=URL)


def test_text_answer_is_the_markdown_titled_by_its_first_heading() -> None:
    page = ReaderPage.from_text("# 标题\n\n正文\n# 第二", source=URL)
    assert page.to_document() == Document(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, URL)),  # a search result's id for the URL
        page_content="# 标题\n\n正文\n# 第二",
        metadata={"source": URL, "title": "标题"},
    )


def test_reader_call_in_each_mode() -> None:
    json_call = reader_call(ReaderRequest(url=URL))
    text_call = reader_call(ReaderRequest(url=URL, format="text"))
    assert (json_call.endpoint, json_call.body, json_call.expect) == (
        "reader",
        {"url": URL},
        "json",
    )
    assert (text_call.endpoint, text_call.body, text_call.expect) == (
        "reader",
        {"url": URL},
        "text",
    )
    assert text_call.parse("# T\nx").title == "T"
    assert json_call.parse({"markdown": "m"}).source == URL
