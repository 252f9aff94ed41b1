"""The search endpoint, ``POST {base_url}/search``: its request, its answer, and the
``Call`` that joins them. Answers are read leniently (``langchain_metaso._parsing``)."""

from __future__ import annotations

import datetime
import logging
from functools import partial
from typing import Any

from langchain_core.documents import Document
from pydantic import BaseModel, ConfigDict, Field

from langchain_metaso._http import Call
from langchain_metaso._parsing import (
    Int,
    JsonObject,
    Query,
    ScopeName,
    Text,
    TextList,
    lenient,
    stable_id,
)
from langchain_metaso.dates import iso_date, today_in_china
from langchain_metaso.scopes import result_key

__all__ = [
    "MAX_SIZE",
    "PAGE_SIZE",
    "RequestOptions",
    "SearchRequest",
    "SearchResponse",
    "SearchResult",
    "search_call",
]

logger = logging.getLogger("langchain_metaso")

MAX_SIZE = 100
PAGE_SIZE = 10
"""Results in a page the API is asked for by ``page`` (without a ``size``)."""


class RequestOptions(BaseModel):
    """What a search asks the API for besides the query, its size and its page (documented
    where they are settings: ``MetasoRetriever``, ``MetasoSearchTool``)."""

    scope: ScopeName = "webpage"
    include_summary: bool = True
    include_raw_content: bool | None = None
    concise_snippet: bool | None = None


class SearchRequest(RequestOptions):
    """One call to ``POST {base_url}/search``, validated before any I/O."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: Query
    size: int = Field(default=10, ge=1, le=MAX_SIZE)
    page: int | None = Field(default=None, ge=1)

    def to_body(self) -> dict[str, Any]:
        """The JSON body in the API's names; optional fields only when set.

        ``size`` and ``page`` are "choose one of the two" for the API (both together have
        been answered with errCode 1000), so a page is asked for without a size: it then
        holds the API's default 10 results (``PAGE_SIZE``), of which ``size`` are kept.
        """
        body: dict[str, Any] = {
            "q": self.query,
            "scope": self.scope,
            "includeSummary": self.include_summary,
        }
        optional = {
            "size": self.size if self.page is None else None,
            "page": self.page,
            "includeRawContent": self.include_raw_content,
            "conciseSnippet": self.concise_snippet,
        }
        body.update((key, value) for key, value in optional.items() if value is not None)
        return body


class SearchResult(BaseModel):
    """One search result (the README's "Scopes and their metadata" says which fields each
    scope's carry). Every field is optional; unknown fields are kept as extras."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    title: Text = None
    link: Text = None
    score: Text = None
    snippet: Text = None
    summary: Text = None
    position: Int = None
    authors: TextList = None
    date: Text = None
    duration: Text = None
    content: Text = None
    image_url: Text = Field(default=None, alias="imageUrl")
    image_width: Int = Field(default=None, alias="imageWidth")
    image_height: Int = Field(default=None, alias="imageHeight")
    cover_image: Text = Field(default=None, alias="coverImage")

    @property
    def url(self) -> str | None:
        """The URL that stands for the result (and its site, to the filters): its ``link``,
        else (an image has no link) its ``image_url``."""
        for value in (self.link, self.image_url):
            if value and value.strip():
                return value
        return None

    def text(self, *, prefer_content: bool = False) -> tuple[str, str]:
        """The best text of the result (see the README's "Scopes and their metadata"), and
        the name of the field it came from; the URL when there is no other."""
        order = ("content",) if prefer_content else ()
        for name in (*order, "summary", "snippet", "title", "link", "image_url"):
            value = getattr(self, name)
            if value and value.strip():
                return value, name
        return "(untitled result)", ""

    def to_document(
        self,
        *,
        scope: str,
        query: str,
        prefer_content: bool = False,
        today: datetime.date | None = None,
    ) -> Document:
        """The result as the README's "Scopes and their metadata" describes its
        ``Document``; without a URL, the id derives from the title and text.

        Args:
            today: The day relative dates (``3天前``) count back from; default today in China.
        """
        page_content, used = self.text(prefer_content=prefer_content)
        dropped = used if used in _TEXT_FIELDS else None
        # Read off the fields directly: half the time of model_dump(by_alias=True,
        # exclude_none=True), on a hot path for k=100.
        metadata = {
            _API_NAMES.get(name, name): value
            for name, value in self.__dict__.items()
            if value is not None and name != dropped
        }
        if self.__pydantic_extra__:
            metadata.update(
                (name, value)
                for name, value in self.__pydantic_extra__.items()
                if value is not None
            )
        url = self.url
        metadata["source"] = url or ""
        metadata["scope"] = scope
        metadata["query"] = query
        published = iso_date(self.date, today=today or today_in_china()) if self.date else None
        if published is not None:
            metadata["published"] = published
        identity = url.strip() if url else f"{self.title or ''}\n{self.text()[0]}"
        return Document(id=stable_id(identity), page_content=page_content, metadata=metadata)


# The text fields that leave the metadata when they become page_content; the title and
# the URL stay, as every scope's documents carry them.
_TEXT_FIELDS = frozenset({"content", "summary", "snippet"})
_API_NAMES = {name: field.alias for name, field in SearchResult.model_fields.items() if field.alias}


class SearchResponse(BaseModel):
    """The answer of ``POST {base_url}/search``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    scope: str
    results: list[SearchResult]
    total: Int = None
    credits: Int = None
    search_parameters: JsonObject = Field(default=None, alias="searchParameters")

    @classmethod
    def from_payload(cls, payload: dict[str, Any], *, scope: str) -> SearchResponse:
        """Read the result list from the scope's own key (``webpages``, ``scholars``...).

        Raises:
            ValueError: the payload holds no result list for the scope.
        """
        key = result_key(scope)
        items = payload.get(key)
        if items is None and payload.get("total") == 0:
            items = []  # some answers with no hit leave the list out
        if not isinstance(items, list):
            raise ValueError(f"the answer has no {key!r} list")
        results = [lenient(SearchResult, item) for item in items if isinstance(item, dict)]
        if len(results) < len(items):
            logger.warning(
                "Metaso search: ignored %d %s entries that were not objects",
                len(items) - len(results),
                key,
            )
        extras = {k: v for k, v in payload.items() if k != key and k not in ("scope", "results")}
        return lenient(cls, {**extras, "scope": scope, "results": results})

    def to_documents(
        self, request: SearchRequest, *, today: datetime.date | None = None
    ) -> list[Document]:
        """One ``Document`` a result (see ``SearchResult.to_document``), in the server's
        order, at most ``request.size`` (a server may return more). What the call cost is not
        on them (it would count once a result, and again on a cache hit): ``metaso_usage()``
        sums it."""
        prefer_content = bool(request.include_raw_content)
        today = today or today_in_china()
        return [
            result.to_document(
                scope=self.scope,
                query=request.query,
                prefer_content=prefer_content,
                today=today,
            )
            for result in self.results[: request.size]
        ]


def search_call(request: SearchRequest) -> Call[SearchResponse]:
    """The ``Call`` that sends ``request`` and reads its answer."""
    return Call(
        endpoint="search",
        body=request.to_body(),
        parse=partial(SearchResponse.from_payload, scope=request.scope),
    )
