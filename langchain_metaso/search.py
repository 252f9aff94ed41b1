"""The search endpoint, ``POST {base_url}/search``: its request, its answer, and the
``Call`` that joins them.

Requests are validated strictly, before any I/O; answers are read leniently (see
``langchain_metaso._parsing``).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from langchain_core.documents import Document
from pydantic import BaseModel, ConfigDict, Field, field_validator

from langchain_metaso._http import Call
from langchain_metaso._parsing import (
    Int,
    JsonObject,
    ScopeName,
    Text,
    TextList,
    check_query,
    lenient,
)
from langchain_metaso.scopes import SCOPES, Scope, result_key

__all__ = [
    "MAX_SIZE",
    "SCOPES",
    "Scope",
    "ScopeName",
    "SearchOptions",
    "SearchRequest",
    "SearchResponse",
    "SearchResult",
    "search_call",
]

logger = logging.getLogger("langchain_metaso")

MAX_SIZE = 100


class SearchOptions(BaseModel):
    """What a search asks for besides the query and its size: the defaults that the
    tool and the retriever are configured with."""

    scope: ScopeName = "webpage"
    """Where to search (one of ``SCOPES``)."""
    include_summary: bool = True
    """Ask for an AI summary of each result."""
    include_raw_content: bool | None = None
    """Ask for each page's full text (it then becomes ``page_content``)."""
    concise_snippet: bool | None = None
    """Ask for shorter snippets."""

    def search_request(
        self, query: str, *, size: int, scope: str | None = None, page: int | None = None
    ) -> SearchRequest:
        """A validated request with these options; ``scope`` overrides the default."""
        return SearchRequest(
            query=query,
            scope=scope or self.scope,
            size=size,
            page=page,
            include_summary=self.include_summary,
            include_raw_content=self.include_raw_content,
            concise_snippet=self.concise_snippet,
        )


class SearchRequest(SearchOptions):
    """One call to ``POST {base_url}/search``, validated before any I/O."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str
    size: int = Field(default=10, ge=1, le=MAX_SIZE)
    page: int | None = Field(default=None, ge=1)

    _check_query = field_validator("query")(check_query)

    def to_body(self) -> dict[str, Any]:
        """The JSON body in the API's names; optional fields only when set.

        ``size`` and ``page`` are "choose one of the two" for the API (both together
        have been answered with errCode 1000), so a page is asked for without a size:
        it then holds the API's default 10 results, of which ``size`` are kept.
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
    """One search result. Every field is optional; unknown fields are kept as extras."""

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

    def text(self, *, prefer_content: bool = False) -> tuple[str, str]:
        """The best text of the result and the name of the field it came from.

        Raw page text when asked for and present, else the summary, else the
        snippet, else the title, else the link: a result never reads as empty.
        """
        order = ("content",) if prefer_content else ()
        for name in (*order, "summary", "snippet", "title", "link"):
            value = getattr(self, name)
            if value and value.strip():
                return value, name
        return "(untitled result)", ""

    def to_document(self, *, scope: str, query: str, prefer_content: bool = False) -> Document:
        """A ``Document`` whose metadata holds every other field under its API name."""
        page_content, used = self.text(prefer_content=prefer_content)
        # Read off the fields directly (not model_dump): a hot path for k=100, and the
        # documents then share the parsed strings instead of copies.
        metadata = {
            _API_NAMES.get(name, name): value
            for name, value in self.__dict__.items()
            if value is not None and name != used
        }
        if self.__pydantic_extra__:
            metadata.update(
                (name, value)
                for name, value in self.__pydantic_extra__.items()
                if value is not None
            )
        metadata["source"] = self.link or ""
        metadata["scope"] = scope
        metadata["query"] = query
        return Document(page_content=page_content, metadata=metadata)


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

    def to_documents(self, request: SearchRequest) -> list[Document]:
        """One ``Document`` a result, in the server's order, at most ``request.size``.

        The cut guards against a server that returns more than was asked for.
        """
        prefer_content = bool(request.include_raw_content)
        return [
            result.to_document(scope=self.scope, query=request.query, prefer_content=prefer_content)
            for result in self.results[: request.size]
        ]


def search_call(request: SearchRequest) -> Call[SearchResponse]:
    """The ``Call`` that sends ``request`` and reads its answer."""
    return Call(
        endpoint="search",
        body=request.to_body(),
        parse=partial(SearchResponse.from_payload, scope=request.scope),
    )
