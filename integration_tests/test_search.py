"""Search against each target (see ``conftest.py``): LangChain's standard suites for the tool
and the retriever, every scope, paging, a wrong key, and the async paths.

Requests stay small (2-3 results) because against the real API each one costs credits.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests, ToolsIntegrationTests

from integration_tests.conftest import OnTarget, Target, tool_call, tool_message
from langchain_metaso import (
    SCOPES,
    MetasoAuthenticationError,
    MetasoRetriever,
    MetasoSearchTool,
)

QUERY = "人工智能"
WRONG_KEY = "wrong-key-for-integration-tests"


class TestMetasoSearchToolStandard(OnTarget, ToolsIntegrationTests):
    tool_constructor = MetasoSearchTool
    tool_invoke_params_example: ClassVar[dict[str, Any]] = {
        "query": QUERY,
        "scope": "webpage",
        "size": 2,
    }

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {**self.target.settings, "size": 2}


class TestMetasoRetrieverStandard(OnTarget, RetrieversIntegrationTests):
    retriever_constructor = MetasoRetriever
    retriever_query_example = QUERY

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {**self.target.settings, "k": 3}


def check_documents(docs: list[Document], *, scope: str, query: str, k: int) -> None:
    assert 1 <= len(docs) <= k
    for doc in docs:
        assert doc.page_content.strip()
        assert doc.metadata["source"].startswith(("http://", "https://"))
        assert doc.metadata["scope"] == scope
        assert doc.metadata["query"] == query


@pytest.mark.parametrize("scope", SCOPES)
def test_every_scope_returns_well_formed_documents(metaso_target: Target, scope: str) -> None:
    retriever = metaso_target.make(MetasoRetriever, k=2, scope=scope)
    check_documents(retriever.invoke(QUERY), scope=scope, query=QUERY, k=2)


@pytest.mark.asyncio
async def test_every_scope_async_and_concurrently(metaso_target: Target) -> None:
    retriever = metaso_target.make(MetasoRetriever, k=2)
    try:
        batches = await asyncio.gather(*(retriever.ainvoke(QUERY, scope=s) for s in SCOPES))
    finally:
        await retriever.aclose()
    for scope, docs in zip(SCOPES, batches, strict=True):
        check_documents(docs, scope=scope, query=QUERY, k=2)


def test_tool_call_returns_text_for_the_model_and_documents(metaso_target: Target) -> None:
    tool = metaso_target.make(MetasoSearchTool, size=2)
    message = tool_message(tool, query=QUERY, scope="scholar")

    assert message.status == "success"
    assert message.content.startswith(f"Metaso scholar search for {QUERY!r}")
    check_documents(message.artifact, scope="scholar", query=QUERY, k=2)
    for doc in message.artifact:
        assert doc.metadata["source"] in message.content


def page_sources(tool: MetasoSearchTool, page: int) -> list[str]:
    message = tool_message(tool, query=QUERY, page=page)
    assert message.status == "success", message.content
    return [doc.metadata["source"] for doc in message.artifact]


def test_paging_returns_different_results(metaso_target: Target) -> None:
    tool = metaso_target.make(MetasoSearchTool, size=3)
    first, second = page_sources(tool, 1), page_sources(tool, 2)

    assert first
    assert second
    assert not set(first) & set(second)


def check_wrong_key_error(error: MetasoAuthenticationError) -> None:
    assert error.status_code in (401, 403)
    assert "METASO_API_KEY" in str(error)
    assert WRONG_KEY not in str(error)
    assert WRONG_KEY not in repr(error)


def test_wrong_key_raises_authentication_error_without_the_key(metaso_target: Target) -> None:
    retriever = metaso_target.make(MetasoRetriever, k=1, metaso_api_key=WRONG_KEY)
    with pytest.raises(MetasoAuthenticationError) as caught:
        retriever.invoke(QUERY)
    check_wrong_key_error(caught.value)


@pytest.mark.asyncio
async def test_wrong_key_async(metaso_target: Target) -> None:
    retriever = metaso_target.make(MetasoRetriever, k=1, metaso_api_key=WRONG_KEY)
    try:
        with pytest.raises(MetasoAuthenticationError) as caught:
            await retriever.ainvoke(QUERY)
    finally:
        await retriever.aclose()
    check_wrong_key_error(caught.value)


@pytest.mark.asyncio
async def test_wrong_key_reaches_an_agent_as_an_error_message(metaso_target: Target) -> None:
    tool = metaso_target.make(MetasoSearchTool, size=1, metaso_api_key=WRONG_KEY)
    try:
        message = await tool.ainvoke(tool_call(tool.name, query=QUERY))
    finally:
        await tool.aclose()

    assert message.status == "error"
    assert "METASO_API_KEY" in message.content
    assert WRONG_KEY not in message.content
