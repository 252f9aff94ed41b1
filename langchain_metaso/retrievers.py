"""``MetasoRetriever``: Metaso search results as LangChain ``Document``s."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import AliasChoices, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from langchain_metaso._http import MetasoClient
from langchain_metaso.config import MetasoConfig, check_arguments
from langchain_metaso.filters import FilterSettings
from langchain_metaso.paged_search import PagedSearch, SearchOptions, arun_search, run_search
from langchain_metaso.search import MAX_SIZE, RequestOptions

__all__ = ["MetasoRetriever"]


class MetasoRetriever(SearchOptions, MetasoConfig, BaseRetriever):
    """Metaso (秘塔) AI search as a retriever: one ``Document`` a result.

    Setup:
        See ``MetasoConfig``: the package, ``METASO_API_KEY`` and every connection setting.

    Key init args:
        k: int
            Results to return (1-100); also accepted as ``size`` or ``max_results``
            (here, per call, and as an attribute).
        scope: str
            ``webpage`` (default), ``document``, ``scholar``, ``podcast``, ``video``
            or ``image``.
        page: int | None
            Result page, 1-based (the API's pages hold 10 results, of which ``k``
            are kept); ``None`` (default): the first ``k`` results.
        include_summary, include_raw_content, concise_snippet:
            What each result carries: an AI summary (default ``True``), the page's full
            text (then its ``page_content``), shorter snippets.
        include_domains, exclude_domains, recency_days, published_after, published_before,
        keep_undated:
            Which results to keep (sites, dates), applied by this client, with up to
            3 requests a call (see ``FilterSettings``); each also accepted by
            ``invoke(query, include_domains=[...])`` in place of the setting.

    Instantiate:
        .. code-block:: python

            from langchain_metaso import MetasoRetriever

            retriever = MetasoRetriever(k=5, scope="scholar")

    Invoke:
        .. code-block:: python

            docs = retriever.invoke("大语言模型 幻觉 评测")
            docs[0].page_content         # the summary (or snippet, or raw content)
            docs[0].metadata["source"]   # the result's URL

            # Any search setting above (not a connection's) for one call; nothing else.
            docs = retriever.invoke("大语言模型 幻觉 评测", k=3, scope="video", page=2)

    The README says what each ``Document`` holds. Errors raise the typed exceptions of
    ``langchain_metaso.errors``.
    """

    # The class docstring says what each field is.
    k: int = Field(
        default=10, ge=1, le=MAX_SIZE, validation_alias=AliasChoices("k", "size", "max_results")
    )
    page: int | None = Field(default=None, ge=1)

    def _search(self, query: str, overrides: dict[str, Any]) -> tuple[MetasoClient, PagedSearch]:
        """The client and the search of one call, with its overrides (``None``: the
        setting's own value) validated as the constructor validates them; errors name the
        argument as the caller wrote it, never the request class behind it."""
        owner = f"{type(self).__name__}.invoke"
        settings = self
        given = {name: value for name, value in overrides.items() if value is not None}
        if given:
            names = self.argument_names()
            per_call = ("k", "page", *RequestOptions.model_fields, *FilterSettings.model_fields)
            try:
                check_arguments(owner, given, {setting: names[setting] for setting in per_call})
            except ValueError as exc:  # raised as the constructor raises it, a ValidationError
                raise _invalid(owner, (), str(exc), kind="unknown_argument") from None
            settings = self.model_copy(update=given)
        try:
            request = settings.search_request(query, size=settings.k, page=settings.page)
        except ValidationError as exc:  # the query: the settings were checked already
            [error] = exc.errors()
            message = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
            raise _invalid(owner, ("query",), message) from None
        return settings.client, PagedSearch(request, settings.search_filters())

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **overrides: Any
    ) -> list[Document]:
        return run_search(*self._search(query, overrides)).to_documents()

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **overrides: Any
    ) -> list[Document]:
        return (await arun_search(*self._search(query, overrides))).to_documents()


def _invalid(
    owner: str, loc: tuple[str | int, ...], message: str, kind: str = "value_error"
) -> ValidationError:
    """A ``ValidationError`` of ``owner`` (``MetasoRetriever.invoke``)."""
    detail = PydanticCustomError(kind, "{message}", {"message": message})
    return ValidationError.from_exception_data(
        owner, [InitErrorDetails(type=detail, loc=loc, input=None)], hide_input=True
    )
