"""MetasoReaderTool (``tools/reader.py``): its schema, both answer modes, the cut for the
model, errors as messages. The reader endpoint itself is tested in ``test_reader.py``."""

from __future__ import annotations

import asyncio

import pytest
from conftest import TEST_KEY, Invoke, Make, tool_call, tool_message
from emulator_support import answer_of
from langchain_core.documents import Document
from langchain_core.tools import BaseTool

from langchain_metaso.errors import MetasoResponseError
from langchain_metaso.reader import ReaderRequest, reader_call
from langchain_metaso.testing import Fault, MetasoEmulator
from langchain_metaso.tools.reader import MetasoReaderTool

URL = "https://news.example.com/2025/秘塔-ai"


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
    expected = answer_of(emulator, "reader", url=URL)
    emulator.reset()
    result = tool_message(invoke, make(MetasoReaderTool, max_chars=None), url=URL)
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
    result = tool_message(invoke, make(MetasoReaderTool, reader_format="text"), url=URL)
    assert result.content == "# 自定义页面\n\n内容"
    assert result.artifact.metadata == {"source": URL, "title": "自定义页面"}
    assert emulator.requests[0].headers["accept"] == "text/plain"


@pytest.mark.parametrize("reader_format", ["json", "text"])
def test_a_web_page_instead_of_the_reader_is_an_error_not_the_page(
    emulator: MetasoEmulator, emulator_url: str, invoke: Invoke, reader_format: str
) -> None:
    # What a base_url pointing at a website answers: an HTML page, at HTTP 200.
    emulator.script(Fault.garbage(b"<!DOCTYPE html><html><title>Welcome</title></html>"))
    tool = MetasoReaderTool(api_key=TEST_KEY, base_url=emulator_url, reader_format=reader_format)
    result = tool_message(invoke, tool, url=URL)
    assert result.status == "error"
    assert "an HTML page, not an answer of the Metaso API" in result.content
    assert "base URL" in result.content
    assert "Welcome" not in result.content


def test_long_page_is_cut_for_the_model_but_whole_in_the_artifact(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.pages[URL] = "# 长文\n\n" + "字" * 9_000
    whole = emulator.pages[URL]
    result = tool_message(invoke, make(MetasoReaderTool, max_chars=100), url=URL)
    assert result.content == whole[:100] + f"\n\n[… cut: {len(whole) - 100:,} more characters]"
    assert result.artifact.page_content == whole
    default = tool_message(invoke, make(MetasoReaderTool), url=URL)
    assert default.content.startswith(whole[:8000] + "\n\n[… cut: ")


def test_empty_page_says_so(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    emulator.pages[URL] = "  \n"
    result = tool_message(invoke, make(MetasoReaderTool), url=URL)
    assert result.status == "success"
    assert result.content == f"The page at {URL} has no readable text."


@pytest.mark.parametrize("url", ["ftp://example.com/file", "javascript:alert(1)", "example.com"])
def test_bad_url_is_an_error_message_before_any_request(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, url: str
) -> None:
    result = tool_message(invoke, make(MetasoReaderTool), url=url)
    assert result.status == "error"
    assert repr(url) in result.content
    assert "http://" in result.content
    assert "call the tool again" in result.content
    assert emulator.requests == []


def test_a_page_the_reader_refuses_says_to_try_another_url(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(Fault.business_error(1000, "页面无法访问"))
    result = tool_message(invoke, make(MetasoReaderTool), url=URL)
    assert result.status == "error"
    assert "页面无法访问" in result.content
    assert result.content.endswith("try another URL.")
    assert "request parameters" not in result.content


def test_missing_url_argument_is_an_error_message(make: Make, invoke: Invoke) -> None:
    result = invoke(make(MetasoReaderTool), tool_call("metaso_reader"))
    assert result.status == "error"
    assert "url" in result.content


def test_transient_failures_are_retried(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(Fault.status(503), Fault.timeout())
    result = tool_message(invoke, make(MetasoReaderTool), url=URL)
    assert result.status == "success"
    assert len(emulator.requests) == 3


def test_timeouts_after_retries_are_an_error_message(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(*[Fault.timeout()] * 2)
    result = tool_message(invoke, make(MetasoReaderTool, max_retries=1), url=URL)
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
