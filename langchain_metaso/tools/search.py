"""``MetasoSearchTool``: Metaso search as a tool an agent can call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from langchain_core.documents import Document
from langchain_core.tools import ToolException
from pydantic import AliasChoices, BaseModel, Field, ValidationError, model_validator
from typing_extensions import Self

from langchain_metaso.filters import FilterSettings, SearchFilters
from langchain_metaso.paged_search import PagedSearch, SearchOptions
from langchain_metaso.scopes import Scope, describe_scope
from langchain_metaso.search import MAX_SIZE, PAGE_SIZE
from langchain_metaso.tools.base import MetasoTool, QueryInput, explain_invalid_arguments

__all__ = ["DEFAULT_MAX_SIZE", "MetasoSearchInput", "MetasoSearchTool", "format_results"]

DEFAULT_MAX_SIZE = 20
"""The most results a model may ask for unless the developer says otherwise: about
2,000 characters of results into its context from one call."""


class MetasoSearchInput(QueryInput):
    """Arguments of a ``metaso_search`` call."""

    size: int | None = Field(
        default=None,
        ge=1,
        # Tavily's name, which models and users bring along.
        validation_alias=AliasChoices("size", "max_results"),
        description="How many results to return.",
    )
    page: int | None = Field(
        default=None, ge=1, description="Result page, starting at 1 (10 results a page)."
    )
    # The filters a call may add: they narrow the tool's own, never lift them.
    # Plain lists: they are checked when the tool builds its filters.
    include_domains: list[str] | None = Field(
        default=None, description=FilterSettings.model_fields["include_domains"].description
    )
    exclude_domains: list[str] | None = Field(
        default=None, description=FilterSettings.model_fields["exclude_domains"].description
    )
    recency_days: int | None = Field(
        default=None, ge=1, description=FilterSettings.model_fields["recency_days"].description
    )


QUERY_SHOWN = 100
"""The most characters of a query the text for a model repeats (on one line, in quotes)."""


def format_results(search: PagedSearch, *, model_sets_page: bool = True) -> str:
    """Compact text for a model of a finished search: one entry a result, numbered from
    1, what its filters dropped, and, when they kept nothing, what they keep; after a
    page that kept fewer than wanted, the next page to ask for if the model may set
    ``page`` (``model_sets_page``) and one is left."""
    request, response = search.request, search.response
    line = " ".join(request.query.split())
    query = f"'{line if len(line) <= QUERY_SHOWN else line[: QUERY_SHOWN - 1] + '…'}'"
    note = search.filtered.describe()
    note = f" ({note})" if note else ""
    if not response.results:
        kept_to = _kept_to(search.filters, search.today) if note else ""
        if request.page and response.total:
            pages = -(-response.total // PAGE_SIZE)
            return (
                f"No {request.scope} results on page {request.page} for {query}{note}: the "
                f"search has {response.total} results, {pages} pages of {PAGE_SIZE}{kept_to}."
            )
        return f"No {request.scope} results found for {query}{note}{kept_to}."
    shown = min(len(response.results), request.size)
    of_total = f" of {response.total}" if response.total else ""
    lines = [f"Metaso {request.scope} search for {query}: {shown}{of_total} results{note}."]
    for index, result in enumerate(response.results[:shown], start=1):
        lines += ["", f"[{index}] {result.title or '(untitled)'}"]
        if result.link:
            lines.append(result.link)
        if result.image_url:  # an image's own URL, besides the page it is on
            lines.append(f"image: {result.image_url}" if result.link else result.image_url)
        details = [
            result.date,
            _duration(result.duration),
            ", ".join(result.authors or ()),
            f"{result.image_width}x{result.image_height} pixels"
            if result.image_width and result.image_height
            else None,
        ]
        if any(details):
            lines.append(" | ".join(part for part in details if part))
        # Summary or snippet even when raw content was fetched: whole pages would swamp
        # the model's context; they are in the artifact. A title or URL is shown already.
        text, used = result.text()
        if used in ("summary", "snippet"):
            lines.append(text.strip())
    if request.page and shown < request.size:
        lines += _next_page(search, request.page, model_sets_page)
    return "\n".join(lines)


def _next_page(search: PagedSearch, page: int, model_sets_page: bool) -> list[str]:
    """Where a call for ``page`` goes on, if results are left: a page holds ``PAGE_SIZE``
    and, with filters, the pages after it were read too."""
    following, total = page + len(search.answers), search.response.total
    short = len(search.answers[-1].results) < PAGE_SIZE
    if short or (total is not None and (following - 1) * PAGE_SIZE >= total):
        return []  # the last page: the count in the first line says so
    read = f"Page {page} holds at most {PAGE_SIZE} results"
    if following > page + 1:
        read = f"Read pages {page}-{following - 1}"
    advice = f"; page={following} gives the next ones" if model_sets_page else ""
    return [f"\n({read}{advice}.)"]


def _kept_to(filters: SearchFilters, today: date) -> str:
    """What the filters keep, as the end of a sentence: "; kept only results from gov.cn"."""
    cutoff, before = filters.cutoff(today), filters.published_before
    rules = [
        f"from {', '.join(filters.include_domains)}" if filters.include_domains else "",
        f"not from {', '.join(filters.exclude_domains)}" if filters.exclude_domains else "",
        f"dated on or after {cutoff.isoformat()}" if cutoff else "",
        f"dated on or before {before.isoformat()}" if before else "",
    ]
    return f"; kept only results {', '.join(rule for rule in rules if rule)}"


def _duration(value: str | None) -> str | None:
    """``"617"`` (seconds, as the API writes it) as ``"duration 10:17"``; other text as is."""
    text = (value or "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        return f"duration {text}"
    hours, rest = divmod(int(text), 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    return f"duration {clock}"


class MetasoSearchTool(SearchOptions, MetasoTool):
    """Metaso (秘塔) AI search as an agent tool.

    Setup:
        See ``MetasoConfig``: the package, ``METASO_API_KEY`` and every connection setting.

    Key init args:
        scope: str
            Default scope of a call: ``webpage``, ``document``, ``scholar``,
            ``podcast``, ``video`` or ``image``.
        size: int
            Default number of results (1-100; also accepted as ``max_results``).
        page: int | None
            Default result page (the API's pages hold 10 results; ``size`` is
            then not sent, as the API takes one or the other).
        max_size: int | None
            The most results a model may ask for (default: 20, or ``size`` if larger);
            a call asking for more gets ``max_size``, and the text says so.
        model_args: tuple[str, ...] | None
            The call arguments besides ``query`` a model may set: any of ``scope``,
            ``size``, ``page``, ``include_domains``, ``exclude_domains`` and
            ``recency_days``; ``None`` (default): all. The others take this tool's
            values; the schema and the description the model reads speak only of these.
        max_chars: int | None
            Longest text for the model (default 16,000; see ``MetasoTool``).
        include_summary, include_raw_content, concise_snippet:
            What each result carries (an AI summary, the page's full text, shorter
            snippets).
        include_domains, exclude_domains, recency_days, published_after,
        published_before, keep_undated:
            Which results to keep (sites, dates), applied by this client, with up to
            3 requests a call; see ``FilterSettings``.

    Instantiate:
        .. code-block:: python

            from langchain_metaso import MetasoSearchTool

            tool = MetasoSearchTool(size=5)
            scholar = MetasoSearchTool(scope="scholar", model_args=["size"], max_size=10)

    Invoke directly with args:
        .. code-block:: python

            tool.invoke({"query": "秘塔 AI 搜索", "scope": "webpage"})
            # -> "Metaso webpage search for '秘塔 AI 搜索': 5 of 86 results.\\n\\n[1] ..."

    Invoke with a tool call (as an agent does):
        .. code-block:: python

            message = tool.invoke(
                {"name": "metaso_search", "args": {"query": "秘塔"}, "id": "1", "type": "tool_call"}
            )
            message.content    # compact text for the model
            message.artifact   # list[Document], as MetasoRetriever builds them

    Failures come back to the model as an error ``ToolMessage`` (see ``MetasoTool``).
    """

    name: str = "metaso_search"
    description: str = (
        "Search the web with Metaso (秘塔 AI search), strongest on Chinese-language "
        "sources. Use it for current events and fresh facts, and with scope='scholar' "
        "for academic papers, 'document' for documents (文库), 'podcast', 'video' or "
        "'image' for media. Returns numbered results with title, URL, date and summary."
    )
    args_schema: type[BaseModel] = MetasoSearchInput

    size: int = Field(
        default=10, ge=1, le=MAX_SIZE, validation_alias=AliasChoices("size", "max_results")
    )
    page: int | None = Field(default=None, ge=1)
    max_size: int | None = Field(default=None, ge=1, le=MAX_SIZE)

    @model_validator(mode="after")
    def _size_within_max_size(self) -> Self:
        if self.max_size is None or self.size <= self.max_size:
            return self
        if "size" in self.model_fields_set:
            raise ValueError(
                f"size ({self.size}) is above max_size ({self.max_size}), the most "
                "results a model may ask for: lower size or raise max_size"
            )
        # The default, not the developer's choice: it follows the bound they chose.
        self.__dict__["size"] = self.max_size
        return self

    @property
    def size_limit(self) -> int:
        """The most results a call gets: ``max_size``, else 20 or ``size`` if larger."""
        return self.max_size or max(DEFAULT_MAX_SIZE, self.size)

    def _argument_notes(self) -> tuple[tuple[str, str, int | None], ...]:
        fields = MetasoSearchInput.model_fields
        limit, undated = self.size_limit, "kept" if self.keep_undated else "dropped"
        recency = f"{fields['recency_days'].description} Results whose date cannot be read are"
        return (
            *super()._argument_notes(),
            ("size", f"{fields['size'].description} At most {limit}.", limit),
            ("recency_days", f"{recency} {undated}.", None),
        )

    def _describe(self) -> str:
        if "scope" in self._given_by_model():
            return super()._describe()
        fresh = " Use it for current events and fresh facts." if self.scope == "webpage" else ""
        return (
            f"Search {describe_scope(self.scope)} with Metaso (秘塔 AI search), strongest "
            f"on Chinese-language sources.{fresh} Returns numbered results with title, "
            "URL, date and summary."
        )

    def _plan_call(
        self,
        query: str,
        scope: Scope | None = None,
        size: int | None = None,
        page: int | None = None,
        include_domains: list[str] | None = None,
        exclude_domains: list[str] | None = None,
        recency_days: int | None = None,
    ) -> tuple[PagedSearch, Callable[[PagedSearch], tuple[str, list[Document]]]]:
        limit = self.size_limit
        request = self.search_request(
            query, scope=scope, size=min(size or self.size, limit), page=page or self.page
        )
        cut = (
            f"\n\n(Asked for {size} results; this tool returns at most {limit} a call.)"
            if size and size > limit
            else ""
        )

        filters = self.search_filters()
        if include_domains or exclude_domains or recency_days:
            try:
                asked = SearchFilters(
                    include_domains=include_domains,
                    exclude_domains=exclude_domains,
                    recency_days=recency_days,
                )
                filters = filters.narrowed(asked)
            except ValidationError as exc:  # a value that is not a domain
                raise ToolException(explain_invalid_arguments(exc)) from None
            except ValueError as exc:  # e.g. sites the tool's own include_domains rule out
                raise ToolException(
                    f"Invalid arguments: {exc}. Fix the arguments and call the tool again."
                ) from None

        model_sets_page = "page" in self._given_by_model()

        def answer(search: PagedSearch) -> tuple[str, list[Document]]:
            text = format_results(search, model_sets_page=model_sets_page)
            return text + cut, search.to_documents()

        return PagedSearch(request, filters), answer
