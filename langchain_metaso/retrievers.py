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

from langchain_metaso.config import MetasoConfig, check_arguments
from langchain_metaso.filters import FilterSettings
from langchain_metaso.paged_search import (
    PagedSearch,
    SearchOptions,
    arun_search,
    run_search,
)
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
        include_summary: bool
            Ask for an AI summary of each result (default ``True``).
        include_raw_content: bool | None
            Ask for each page's full text; it then becomes ``page_content``.
        concise_snippet: bool | None
            Ask for shorter snippets.
        include_domains, exclude_domains, recency_days, published_after, published_before,
        keep_undated:
            Which results to keep (sites, dates), applied by this client, with up to
            3 requests a call (see ``FilterSettings``); each also accepted by
            ``invoke(query, include_domains=[...])`` in place of the setting.
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
    of the result under its API name (the title always), plus ``source`` (the link, or
    an image's URL), ``scope``, ``query`` and ``published`` (the date in ISO, when it can
    be read). ``id`` derives from the link (an image's URL): the same result gets the
    same id on every call, so vector stores and the indexing API de-duplicate it.
    Errors raise the typed exceptions of ``langchain_metaso.errors``.
    """

    # The class docstring says what each field is.
    k: int = Field(
        default=10, ge=1, le=MAX_SIZE, validation_alias=AliasChoices("k", "size", "max_results")
    )
    page: int | None = Field(default=None, ge=1)

    def _with_overrides(self, overrides: dict[str, Any]) -> MetasoRetriever:
        """This retriever with a call's overrides (``None``: the setting's own value),
        validated as its constructor validates them: errors name the argument as the
        caller wrote it."""
        given = {name: value for name, value in overrides.items() if value is not None}
        if not given:
            return self
        names = self.argument_names()
        per_call = ("k", "page", *RequestOptions.model_fields, *FilterSettings.model_fields)
        try:
            check_arguments(self._owner, given, {setting: names[setting] for setting in per_call})
        except ValueError as exc:  # raised as the constructor raises it, a ValidationError
            raise self._invalid((), str(exc), kind="unknown_argument") from None
        return self.model_copy(update=given)

    @property
    def _owner(self) -> str:
        return f"{type(self).__name__}.invoke"

    def _invalid(
        self, loc: tuple[str | int, ...], message: str, kind: str = "value_error"
    ) -> ValidationError:
        """A ``ValidationError`` of this retriever's ``invoke``: the caller's argument
        named, never the request class behind it."""
        detail = PydanticCustomError(kind, "{message}", {"message": message})
        return ValidationError.from_exception_data(
            self._owner, [InitErrorDetails(type=detail, loc=loc, input=None)], hide_input=True
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **overrides: Any
    ) -> list[Document]:
        settings = self._with_overrides(overrides)
        return run_search(settings.client, settings._paged_search(query)).to_documents()

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **overrides: Any
    ) -> list[Document]:
        settings = self._with_overrides(overrides)
        return (await arun_search(settings.client, settings._paged_search(query))).to_documents()

    def _paged_search(self, query: str) -> PagedSearch:
        try:
            request = self.search_request(query, size=self.k, page=self.page)
        except ValidationError as exc:  # the query: the settings were checked already
            [error] = exc.errors()
            message = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
            raise self._invalid(("query",), message) from None
        return PagedSearch(request, self.search_filters())
