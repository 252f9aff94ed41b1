"""The search the tool, the retriever and the loader all run: without an active filter
the one request asked for, exactly; with filters, up to ``MAX_REQUESTS`` pages as the
README's "Filters: sites and dates" says (from page ``p`` when one is asked for), a result
whose URL came before dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

from langchain_core.documents import Document

from langchain_metaso._http import MetasoClient
from langchain_metaso.dates import today_in_china
from langchain_metaso.filters import Filtered, FilterSettings, SearchFilters
from langchain_metaso.search import (
    PAGE_SIZE,
    RequestOptions,
    SearchRequest,
    SearchResponse,
    SearchResult,
    search_call,
)

__all__ = ["MAX_REQUESTS", "PagedSearch", "SearchOptions", "arun_search", "run_search"]

logger = logging.getLogger("langchain_metaso")

MAX_REQUESTS = 3


class SearchOptions(RequestOptions, FilterSettings):
    """The defaults the tool and the retriever are configured with: what a search asks
    for, and which of its results are kept."""

    def search_request(
        self, query: str, *, size: int, scope: str | None = None, page: int | None = None
    ) -> SearchRequest:
        """A validated request with these options; ``scope`` overrides the default."""
        options = {name: getattr(self, name) for name in RequestOptions.model_fields}
        options["scope"] = scope or self.scope
        return SearchRequest(query=query, size=size, page=page, **options)


@dataclass(eq=False)
class PagedSearch:
    """One search: the pages it sends, and what it kept.

    Attributes:
        request: The search asked for; its ``size`` is how many results to keep.
        today: The day relative dates are read against, by the filters and for
            ``metadata["published"]`` alike; default today in China.
        filtered: The kept results, and how many the filters dropped for each reason.
        answers: The answer to each request sent.
        response: Once finished, the kept results with the first answer's ``total`` and
            the ``credits`` of every request together.
    """

    request: SearchRequest
    filters: SearchFilters
    today: date = field(default_factory=today_in_china)
    pages: list[SearchRequest] = field(init=False)
    filtered: Filtered = field(init=False, default_factory=lambda: Filtered([]))
    answers: list[SearchResponse] = field(init=False, default_factory=list)
    response: SearchResponse = field(init=False, repr=False)
    _seen_urls: set[str] = field(init=False, repr=False, default_factory=set)

    def __post_init__(self) -> None:
        request = self.request
        self.pages = [request]
        if self.filters.active:
            if request.page is None and request.size > PAGE_SIZE:
                start = request.size // PAGE_SIZE + 1
            else:
                self.pages, start = [], request.page or 1
            numbers = range(start, start + MAX_REQUESTS - len(self.pages))
            self.pages += [request.model_copy(update={"page": n}) for n in numbers]

    def add(self, page: SearchRequest, answer: SearchResponse) -> bool:
        """Keep what ``page``'s answer holds that passes; whether the search is done."""
        self.answers.append(answer)
        size = self.request.size
        if page.page is None:
            asked = last = page.size
        else:
            asked, last = PAGE_SIZE, page.page * PAGE_SIZE
        fresh = answer.results[:asked]
        if self.filters.active:
            fresh = [result for result in fresh if _first_time(result, self._seen_urls)]
            limit = size - len(self.filtered.kept)
            self.filtered += self.filters.apply(fresh, today=self.today, limit=limit)
        else:  # no filter to apply: the one answer as it came (a hot path)
            self.filtered = Filtered(fresh[:size])
        return (
            len(self.filtered.kept) >= size
            or len(answer.results) < asked
            or (answer.total is not None and last >= answer.total)
        )

    def finish(self) -> PagedSearch:
        """Set ``response`` from the answers that came; this search."""
        first, kept = self.answers[0], self.filtered
        if kept.dropped:
            logger.info("Metaso search: %s (%d requests)", kept.describe(), len(self.answers))
        if not self.filters.active and len(kept.kept) == len(first.results):
            self.response = first
        else:
            credits = [answer.credits for answer in self.answers if answer.credits is not None]
            self.response = first.model_copy(
                update={"results": kept.kept, "credits": sum(credits) if credits else None}
            )
        return self

    def to_documents(self) -> list[Document]:
        """One ``Document`` a kept result (see ``SearchResponse.to_documents``)."""
        return self.response.to_documents(self.request, today=self.today)


def run_search(client: MetasoClient, search: PagedSearch) -> PagedSearch:
    """Send ``search``'s pages through ``client`` until it is done."""
    for page in search.pages:
        if search.add(page, client.request(search_call(page))):
            break
    return search.finish()


async def arun_search(client: MetasoClient, search: PagedSearch) -> PagedSearch:
    """``run_search`` on the running event loop."""
    for page in search.pages:
        if search.add(page, await client.arequest(search_call(page))):
            break
    return search.finish()


def _first_time(result: SearchResult, seen: set[str]) -> bool:
    """Whether no result with this one's URL came before (one without a URL always passes)."""
    url = result.url
    if url is None:
        return True
    if url in seen:
        return False
    seen.add(url)
    return True
