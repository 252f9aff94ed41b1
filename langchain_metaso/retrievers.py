"""``MetasoRetriever``: Metaso search results as LangChain ``Document``s."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import AliasChoices, Field

from langchain_metaso.config import MetasoConfig, check_arguments
from langchain_metaso.search import MAX_SIZE, SearchOptions, SearchRequest, search_call

__all__ = ["MetasoRetriever"]


class MetasoRetriever(SearchOptions, MetasoConfig, BaseRetriever):
    """Metaso (秘塔) AI search as a retriever: one ``Document`` a result.

    Setup:
        ``pip install -U langchain-metaso`` and set ``METASO_API_KEY`` (for a metaso.cn
        key also ``METASO_BASE_URL``); ``MetasoConfig`` lists every connection setting.

    Key init args:
        k: int
            Results to return (1-100); also accepted as ``size``.
        scope: str
            ``webpage`` (default), ``document``, ``scholar``, ``podcast``, ``video``
            or ``image``.
        page: int | None
            Result page, 1-based (the API's pages hold 10 results, of which ``k``
            are kept); ``None`` (default): the first ``k`` results.
        include_summary: bool
            Ask for an AI summary of each result (default ``True``).
        include_raw_content: bool | None
            Ask for each page's full text; it then becomes ``page_content``.
        concise_snippet: bool | None
            Ask for shorter snippets.
        metaso_api_key, base_url, timeout, max_retries, max_concurrency:
            Connection settings, shared by every class of the package.

    Instantiate:
        .. code-block:: python

            from langchain_metaso import MetasoRetriever

            retriever = MetasoRetriever(k=5, scope="scholar")

    Invoke:
        .. code-block:: python

            docs = retriever.invoke("大语言模型 幻觉 评测")
            docs[0].page_content         # the summary (or snippet, or raw content)
            docs[0].metadata["source"]   # the result's URL

            # Any search setting for one call: k (or size), page, scope, include_summary,
            # include_raw_content, concise_snippet; anything else is an error.
            docs = retriever.invoke("大语言模型 幻觉 评测", k=3, scope="video", page=2)

    ``page_content`` is the raw page text when asked for and returned, else the
    summary, else the snippet, else the title. ``metadata`` holds every other field
    of the result under its API name, plus ``source``, ``scope`` and ``query``.
    Errors raise the typed exceptions of ``langchain_metaso.errors``.
    """

    k: int = Field(default=10, ge=1, le=MAX_SIZE, validation_alias=AliasChoices("k", "size"))
    """Number of results (1-100), also accepted as ``size``."""
    page: int | None = Field(default=None, ge=1)
    """Result page, 1-based; ``None``: the first ``k`` results."""

    def _for_call(self, overrides: dict[str, Any]) -> MetasoRetriever:
        """This retriever with a call's overrides, validated as its constructor validates
        them: errors name the argument as the caller wrote it."""
        if not overrides:
            return self
        names = self.argument_names()
        check_arguments(
            f"{type(self).__name__}.invoke",
            overrides,
            {setting: names[setting] for setting in ("k", "page", *SearchOptions.model_fields)},
        )
        return self.model_copy(update=overrides)

    def _request(self, query: str) -> SearchRequest:
        return self.search_request(query, size=self.k, page=self.page)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **overrides: Any
    ) -> list[Document]:
        settings = self._for_call(overrides)
        request = settings._request(query)
        return settings.client.request(search_call(request)).to_documents(request)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **overrides: Any
    ) -> list[Document]:
        settings = self._for_call(overrides)
        request = settings._request(query)
        return (await settings.client.arequest(search_call(request))).to_documents(request)
