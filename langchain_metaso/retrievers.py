"""``MetasoRetriever``: Metaso search results as LangChain ``Document``s."""

from __future__ import annotations

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

from langchain_metaso.config import MetasoConfig
from langchain_metaso.search import MAX_SIZE, SearchOptions, SearchRequest, search_call

__all__ = ["MetasoRetriever"]


class MetasoRetriever(SearchOptions, MetasoConfig, BaseRetriever):
    """Metaso (秘塔) AI search as a retriever: one ``Document`` a result.

    Setup:
        ``pip install -U langchain-metaso`` and set ``METASO_API_KEY`` (for a metaso.cn
        key also ``METASO_BASE_URL``); ``MetasoConfig`` lists every connection setting.

    Key init args:
        k: int
            Results to return (1-100), also accepted by ``invoke(query, k=...)``.
        scope: str
            ``webpage`` (default), ``document``, ``scholar``, ``podcast``, ``video``
            or ``image``; also accepted by ``invoke(query, scope=...)``.
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

    ``page_content`` is the raw page text when asked for and returned, else the
    summary, else the snippet, else the title. ``metadata`` holds every other field
    of the result under its API name, plus ``source``, ``scope`` and ``query``.
    Errors raise the typed exceptions of ``langchain_metaso.errors``.
    """

    k: int = Field(default=10, ge=1, le=MAX_SIZE)
    """Number of results (1-100); ``invoke(query, k=...)`` overrides it."""

    def _request(self, query: str, k: int | None, scope: str | None) -> SearchRequest:
        return self.search_request(query, scope=scope, size=self.k if k is None else k)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        scope: str | None = None,
    ) -> list[Document]:
        request = self._request(query, k, scope)
        return self.client.request(search_call(request)).to_documents(request)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        scope: str | None = None,
    ) -> list[Document]:
        request = self._request(query, k, scope)
        return (await self.client.arequest(search_call(request))).to_documents(request)
