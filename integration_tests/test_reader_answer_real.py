"""Reader, loader, answer, toolkit and the event stream against each target (see
``conftest.py``): the real Metaso API when ``METASO_API_KEY`` is set (skipped otherwise,
with one reason), and the emulator over a socket always.

Requests stay few and small because against the real API each one costs credits.
"""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.documents import Document

from integration_tests.conftest import Target, tool_message
from langchain_metaso._http import Call
from langchain_metaso.config import MetasoConfig
from langchain_metaso.document_loaders import MetasoLoader
from langchain_metaso.errors import MetasoAuthenticationError
from langchain_metaso.toolkits import MetasoToolkit
from langchain_metaso.tools.answer import MetasoAnswerTool
from langchain_metaso.tools.reader import MetasoReaderTool

# Stable pages, kept by IANA for exactly this kind of use.
PAGES = ["https://example.com/", "https://www.iana.org/help/example-domains"]
QUESTION = "秘塔 AI 搜索是哪家公司开发的?"
WRONG_KEY = "wrong-key-for-integration-tests"


def test_reader_tool_reads_a_page(metaso_target: Target) -> None:
    message = tool_message(metaso_target.make(MetasoReaderTool, max_chars=500), url=PAGES[0])
    assert message.status == "success", message.content
    assert message.content.strip()
    assert len(message.content) <= 500 + len("\n\n[… cut: 1,000,000 more characters]")
    document = message.artifact
    assert isinstance(document, Document)
    assert document.page_content.startswith(message.content.split("\n\n[… cut:")[0])
    assert document.metadata["source"] == PAGES[0]


def test_reader_in_text_mode(metaso_target: Target) -> None:
    tool = metaso_target.make(MetasoReaderTool, reader_format="text")
    message = tool_message(tool, url=PAGES[0])
    assert message.status == "success", message.content
    assert message.artifact.page_content.strip()


@pytest.mark.asyncio
async def test_loader_reads_urls_concurrently_in_order(metaso_target: Target) -> None:
    loader = metaso_target.make(MetasoLoader, urls=PAGES, max_concurrency=2)
    try:
        docs = await loader.aload()
    finally:
        await loader.aclose()
    assert loader.failures == []
    assert [doc.metadata["source"] for doc in docs] == PAGES
    for doc in docs:
        assert doc.page_content.strip()
        assert set(doc.metadata) >= {"source"}
        assert all(isinstance(doc.metadata.get(key, ""), str) for key in ("title", "author"))


def test_loader_turns_a_question_into_pages(metaso_target: Target) -> None:
    loader = metaso_target.make(MetasoLoader, query="秘塔 AI 搜索", k=2)
    docs = loader.load()
    # A page the reader cannot open is reported, not fatal.
    assert 1 <= len(docs) + len(loader.failures) <= 2
    assert docs
    for doc in docs:
        assert doc.metadata["source"].startswith(("http://", "https://"))
        assert doc.metadata["query"] == "秘塔 AI 搜索"


@pytest.mark.parametrize("answer_format", ["simple", "chat_completions"])
def test_answer_tool_answers_with_sources(metaso_target: Target, answer_format: str) -> None:
    tool = metaso_target.make(MetasoAnswerTool, answer_format=answer_format)
    message = tool_message(tool, query=QUESTION)
    assert message.status == "success", message.content
    assert message.content.strip()
    assert "[[" not in message.content
    documents = message.artifact
    assert isinstance(documents, list)
    if documents:
        assert "\nSources:\n[1] " in message.content
        assert [doc.metadata["citation"] for doc in documents] == list(range(1, len(documents) + 1))


def test_event_stream_of_an_answer(metaso_target: Target) -> None:
    client = metaso_target.make(MetasoConfig).client
    call = Call("chat/completions", {"q": QUESTION, "stream": True}, lambda data: data, "events")
    chunks = list(client.stream(call))
    text = "".join(
        choice.get("delta", {}).get("content") or ""
        for chunk in chunks
        for choice in chunk.get("choices", [])
    )
    assert text.strip()


def test_toolkit_tools_all_work(metaso_target: Target) -> None:
    toolkit = metaso_target.make(MetasoToolkit)
    args = {
        "metaso_search": {"query": "秘塔", "size": 2},
        "metaso_reader": {"url": PAGES[0]},
        "metaso_answer": {"query": QUESTION},
    }
    for tool in toolkit.get_tools():
        message = tool_message(tool, **args[tool.name])
        assert message.status == "success", message.content
    toolkit.close()


def test_wrong_key_is_an_authentication_error(metaso_target: Target) -> None:
    tool = metaso_target.make(MetasoReaderTool, metaso_api_key=WRONG_KEY)
    message = tool_message(tool, url=PAGES[0])
    assert message.status == "error"
    assert "METASO_API_KEY" in message.content
    assert WRONG_KEY not in message.content
    loader = metaso_target.make(MetasoLoader, urls=PAGES[:1], strict=True, metaso_api_key=WRONG_KEY)
    with pytest.raises(MetasoAuthenticationError):
        asyncio.run(loader.aload())
