"""The reader call and MetasoReaderTool: URL checks, both answer modes, the cut, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from pydantic import ValidationError

from langchain_metaso.errors import MetasoResponseError
from langchain_metaso.reader import ReaderPage, ReaderRequest, check_url, reader_call
from langchain_metaso.testing import Fault, MetasoEmulator
from langchain_metaso.tools.reader import MetasoReaderTool, cut_text

Make = Callable[..., Any]  # the ``make`` fixture of conftest
Invoke = Callable[..., Any]
KEY = "test-key"
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


def emulator_json(emulator: MetasoEmulator, url: str) -> dict[str, Any]:
    """What the emulator's reader answers in JSON mode, read with plain httpx."""
    with httpx.Client(transport=emulator.transport()) as client:
        response = client.post(
            "http://metaso.test/reader",
            json={"url": url},
            headers={"Authorization": f"Bearer {KEY}", "Accept": "application/json"},
        )
    value: dict[str, Any] = response.json()
    return value


def tool_call(**args: Any) -> dict[str, Any]:
    return {"name": "metaso_reader", "args": args, "id": "call-1", "type": "tool_call"}


def message(invoke: Invoke, tool: MetasoReaderTool, **args: Any) -> ToolMessage:
    result = invoke(tool, tool_call(**args))
    assert isinstance(result, ToolMessage)
    assert result.tool_call_id == "call-1"
    return result


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
        page_content="# 标题\n\n正文\n# 第二", metadata={"source": URL, "title": "标题"}
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


def test_cut_text_marks_what_was_left_out() -> None:
    assert cut_text("abcdef", 6) == "abcdef"
    assert cut_text("abcdef", None) == "abcdef"
    assert cut_text("abcdef", 4) == "abcd\n\n[… cut: 2 more characters]"
    assert cut_text("x" * 20_345, 8000).endswith("[… cut: 12,345 more characters]")


# --- the tool --------------------------------------------------------------------------------


def test_name_schema_and_async_path(make: Make) -> None:
    tool = make(MetasoReaderTool)
    assert tool.name == "metaso_reader"
    assert tool.response_format == "content_and_artifact"
    assert tool.max_chars == 8000
    schema = tool.tool_call_schema.model_json_schema()
    assert schema["required"] == ["url"]
    assert set(schema["properties"]) == {"url"}
    assert type(tool)._arun is not BaseTool._arun


def test_reads_a_page_as_markdown_with_the_document_as_artifact(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    expected = emulator_json(emulator, URL)
    emulator.reset()
    result = message(invoke, make(MetasoReaderTool, max_chars=None), url=URL)
    assert result.status == "success"
    assert result.content == expected["markdown"]
    document = result.artifact
    assert isinstance(document, Document)
    assert document.page_content == expected["markdown"]
    assert document.metadata == {
        "source": URL,
        "title": expected["title"],
        "author": expected["author"],
        "date": expected["date"],
        "credits": expected["credits"],
    }
    (request,) = emulator.requests
    assert request.path == "/metaso/reader"  # under the default base URL
    assert request.json() == {"url": URL}
    assert request.headers["accept"] == "application/json"


def test_text_mode_asks_for_plain_markdown(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.pages[URL] = "# 自定义页面\n\n内容"
    result = message(invoke, make(MetasoReaderTool, reader_format="text"), url=URL)
    assert result.content == "# 自定义页面\n\n内容"
    assert result.artifact.metadata == {"source": URL, "title": "自定义页面"}
    assert emulator.requests[0].headers["accept"] == "text/plain"


@pytest.mark.parametrize("reader_format", ["json", "text"])
def test_a_web_page_instead_of_the_reader_is_an_error_not_the_page(
    emulator: MetasoEmulator, emulator_url: str, invoke: Invoke, reader_format: str
) -> None:
    # What a base_url pointing at a website answers: an HTML page, at HTTP 200.
    emulator.script(Fault.garbage(b"<!DOCTYPE html><html><title>Welcome</title></html>"))
    tool = MetasoReaderTool(api_key=KEY, base_url=emulator_url, reader_format=reader_format)
    result = message(invoke, tool, url=URL)
    assert result.status == "error"
    assert "an HTML page, not an answer of the Metaso API" in result.content
    assert "base URL" in result.content
    assert "Welcome" not in result.content


def test_long_page_is_cut_for_the_model_but_whole_in_the_artifact(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.pages[URL] = "# 长文\n\n" + "字" * 9_000
    whole = emulator.pages[URL]
    result = message(invoke, make(MetasoReaderTool, max_chars=100), url=URL)
    assert result.content == whole[:100] + f"\n\n[… cut: {len(whole) - 100:,} more characters]"
    assert result.artifact.page_content == whole
    default = message(invoke, make(MetasoReaderTool), url=URL)
    assert default.content.startswith(whole[:8000] + "\n\n[… cut: ")


def test_empty_page_says_so(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    emulator.pages[URL] = "  \n"
    result = message(invoke, make(MetasoReaderTool), url=URL)
    assert result.status == "success"
    assert result.content == f"The page at {URL} has no readable text."


@pytest.mark.parametrize("url", ["ftp://example.com/file", "javascript:alert(1)", "example.com"])
def test_bad_url_is_an_error_message_before_any_request(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, url: str
) -> None:
    result = message(invoke, make(MetasoReaderTool), url=url)
    assert result.status == "error"
    assert repr(url) in result.content
    assert "http://" in result.content
    assert "call the tool again" in result.content
    assert emulator.requests == []


def test_missing_url_argument_is_an_error_message(make: Make, invoke: Invoke) -> None:
    result = invoke(make(MetasoReaderTool), tool_call())
    assert result.status == "error"
    assert "url" in result.content


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault.status(401), ["HTTP 401", "METASO_API_KEY"]),
        (Fault.status(402), ["HTTP 402", "credits"]),
        (Fault.business_error(1000, "url 无法访问"), ["url 无法访问", "code 1000"]),
        (Fault.garbage(), ["unusable answer", "HTML page"]),
        (Fault.status(200, body={"title": "no markdown"}), ["no 'markdown' text"]),
    ],
)
def test_failures_become_error_messages(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, fault: Fault, words: list[str]
) -> None:
    emulator.script(fault)
    result = message(invoke, make(MetasoReaderTool), url=URL)
    assert result.status == "error"
    for word in words:
        assert word in result.content
    assert KEY not in result.content
    assert result.artifact is None
    assert len(emulator.requests) == 1


def test_transient_failures_are_retried(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(Fault.status(503), Fault.timeout())
    result = message(invoke, make(MetasoReaderTool), url=URL)
    assert result.status == "success"
    assert len(emulator.requests) == 3


def test_timeouts_after_retries_are_an_error_message(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(*[Fault.timeout()] * 2)
    result = message(invoke, make(MetasoReaderTool, max_retries=1), url=URL)
    assert result.status == "error"
    assert "reader" in result.content
    assert "did not answer" in result.content or "timed out" in result.content
    assert len(emulator.requests) == 2


def test_direct_call_raises_tool_errors_as_exceptions(make: Make) -> None:
    # Without a tool call id there is no message to carry the error: it is raised.
    tool = make(MetasoReaderTool, reader_format="text")
    with pytest.raises(ValueError, match="ftp"):
        tool._run("ftp://example.com")


def test_response_error_is_typed_underneath(make: Make, emulator: MetasoEmulator) -> None:
    emulator.script(Fault.garbage())
    tool = make(MetasoReaderTool)
    with pytest.raises(MetasoResponseError):
        asyncio.run(tool.client.arequest(reader_call(ReaderRequest(url=URL))))
