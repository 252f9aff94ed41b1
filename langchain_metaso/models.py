"""Typed requests and answers of the Metaso search API.

Answers are parsed leniently: any field may be missing, null or of an unexpected type
(it then reads as ``None``), and unknown fields are kept. Requests are validated
strictly, before any I/O.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal, TypeVar, get_args

from langchain_core.documents import Document
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

logger = logging.getLogger("langchain_metaso")

Scope = Literal["webpage", "document", "scholar", "podcast", "video", "image"]
"""What to search: web pages, documents (文库), papers (学术), podcasts, videos, images."""

SCOPES: tuple[str, ...] = get_args(Scope)

MAX_SIZE = 100


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    # Numbers sometimes come where text is documented (e.g. a numeric title).
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:  # not a number, or digits int() rejects (e.g. "²")
            return None
    return None


def _as_text_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return None


def _as_dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


Text = Annotated[str | None, BeforeValidator(_as_text)]
Int = Annotated[int | None, BeforeValidator(_as_int)]
TextList = Annotated[list[str] | None, BeforeValidator(_as_text_list)]
# dict[Any, Any]: its keys are not re-validated, so one that is not valid text passes.
Mapping = Annotated[dict[Any, Any] | None, BeforeValidator(_as_dict)]


M = TypeVar("M", bound=BaseModel)


def _lenient(model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data``, whose every field is lenient, so that only a key that is not
    valid text (a lone surrogate, which JSON can carry) can fail: such keys are dropped."""
    try:
        return model.model_validate(data)
    except ValidationError:
        return model.model_validate({k: v for k, v in data.items() if _is_text(k)})


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_query(value: str) -> str:
    """Return the query stripped, or raise ``ValueError`` if nothing is left."""
    stripped = value.strip()
    if not stripped:
        raise ValueError("query must not be empty or only whitespace")
    if not _is_text(stripped):
        raise ValueError("query holds a character that is not valid text (a lone surrogate)")
    return stripped


class SearchOptions(BaseModel):
    """What a search asks for besides the query and its size: the defaults that the
    tool and the retriever are configured with."""

    scope: Scope = "webpage"
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
    search_parameters: Mapping = Field(default=None, alias="searchParameters")

    @classmethod
    def from_payload(cls, payload: dict[str, Any], *, scope: str) -> SearchResponse:
        """Read the result list from the scope's own key (``webpages``, ``scholars``...).

        Raises:
            ValueError: the payload holds no result list for the scope.
        """
        key = f"{scope}s"
        items = payload.get(key)
        if items is None and payload.get("total") == 0:
            items = []  # some answers with no hit leave the list out
        if not isinstance(items, list):
            raise ValueError(f"the answer has no {key!r} list")
        results = [_lenient(SearchResult, item) for item in items if isinstance(item, dict)]
        if len(results) < len(items):
            logger.warning(
                "Metaso search: ignored %d %s entries that were not objects",
                len(items) - len(results),
                key,
            )
        extras = {k: v for k, v in payload.items() if k != key and k not in ("scope", "results")}
        return _lenient(cls, {**extras, "scope": scope, "results": results})

    def to_documents(self, request: SearchRequest) -> list[Document]:
        """One ``Document`` a result, in the server's order, at most ``request.size``.

        The cut guards against a server that returns more than was asked for.
        """
        prefer_content = bool(request.include_raw_content)
        return [
            result.to_document(scope=self.scope, query=request.query, prefer_content=prefer_content)
            for result in self.results[: request.size]
        ]
