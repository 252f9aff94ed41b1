"""The search the tool, the retriever and the loader all run: one request, or, with site
or date filters, up to three pages.

``paged_search`` plans it (a ``PagedSearch``); ``run_search`` and ``arun_search`` loop
over its pages, each sent through the client, and differ only in the line that sends.
Without an active filter the plan is the one request asked for, exactly.
Filters cost results, so with them further pages are fetched, at most ``MAX_REQUESTS``
requests a call (each one costs credits):

- no page asked for, ``size`` <= 10: pages 1, 2 and 3 (10 results each, no size sent);
- no page asked for, ``size`` > 10: ``size`` results, then the pages after them
  (``size // 10 + 1`` and the next; what they repeat of the first answer is dropped);
- page ``p`` asked for: pages ``p``, ``p + 1`` and ``p + 2``.

It stops as soon as ``size`` results passed, a page comes back short, the next page would
start past ``total``, or ``MAX_REQUESTS`` were sent. Across its pages, a result whose URL
(its link, or an image's URL) came before is dropped; never more than ``size`` are kept.
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

__all__ = [
    "MAX_REQUESTS",
    "PagedSearch",
    "SearchOptions",
    "SearchOutcome",
    "arun_search",
    "paged_search",
    "run_search",
]

logger = logging.getLogger("langchain_metaso")

MAX_REQUESTS = 3
"""The most search requests one filtered call sends."""


class SearchOptions(RequestOptions, FilterSettings):
    """The defaults the tool and the retriever are configured with: what a search asks
    for, and which of its results are kept (``FilterSettings``, applied by this client)."""

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


@dataclass(frozen=True)
class SearchOutcome:
    """What a search kept, and what its filters dropped.

    Attributes:
        request: The search asked for: its query, scope, size (how many to keep) and page.
        response: The kept results, in order, with the first answer's ``total`` and the
            ``credits`` of every request together.
        filtered: The same kept results, and how many the filters dropped for each reason.
        today: The day relative dates were read against, by the filters and for
            ``metadata["published"]`` alike.
        requests: How many requests were sent.
    """

    request: SearchRequest
    response: SearchResponse
    filtered: Filtered[SearchResult]
    today: date
    requests: int

    def to_documents(self) -> list[Document]:
        """One ``Document`` a kept result (see ``SearchResponse.to_documents``)."""
        return self.response.to_documents(self.request, today=self.today)


@dataclass
class PagedSearch:
    """The pages of one search, and what was kept of those that came (see the module's
    docstring). ``add`` each page's answer in turn, until it says to stop."""

    request: SearchRequest
    filters: SearchFilters
    today: date
    pages: list[SearchRequest]
    kept: Filtered[SearchResult] = field(default_factory=lambda: Filtered([]))
    seen: set[str] = field(default_factory=set)
    answers: list[SearchResponse] = field(default_factory=list)

    def add(self, page: SearchRequest, response: SearchResponse) -> bool:
        """Keep what ``page``'s answer holds that passes; whether the search is done."""
        self.answers.append(response)
        request = self.request
        asked, last = _asked_and_last(page)
        fresh = response.results[:asked]
        if self.filters.active:
            fresh = [result for result in fresh if _first_time(result, self.seen)]
            limit = request.size - len(self.kept.kept)
            self.kept += self.filters.apply(fresh, today=self.today, limit=limit)
        else:  # no filter to apply: the one answer as it came (a hot path)
            self.kept = Filtered(fresh[: request.size])
        return (
            len(self.kept.kept) >= request.size
            or len(response.results) < asked
            or (response.total is not None and last >= response.total)
        )

    def outcome(self) -> SearchOutcome:
        """What the search kept, once its pages are in."""
        first, kept, sent = self.answers[0], self.kept, len(self.answers)
        if kept.dropped:
            logger.info("Metaso search: %s (%d requests)", kept.describe(), sent)
        if not self.filters.active and len(kept.kept) == len(first.results):
            merged = first
        else:
            credits = [answer.credits for answer in self.answers if answer.credits is not None]
            merged = first.model_copy(
                update={"results": kept.kept, "credits": sum(credits) if credits else None}
            )
        return SearchOutcome(self.request, merged, kept, self.today, sent)


def paged_search(
    request: SearchRequest, filters: SearchFilters, *, today: date | None = None
) -> PagedSearch:
    """The search for ``request`` (``request.size`` results), keeping what ``filters`` pass.

    Args:
        request: The search asked for; ``size`` is how many results to keep.
        filters: Which results to keep; inactive filters send ``request`` alone.
        today: The day relative dates and ``recency_days`` count back from; default
            today in China.
    """
    pages = _pages_to_send(request, paged=filters.active)
    return PagedSearch(request, filters, today or today_in_china(), pages)


def run_search(client: MetasoClient, search: PagedSearch) -> SearchOutcome:
    """Send ``search``'s pages through ``client`` until it is done."""
    for page in search.pages:
        if search.add(page, client.request(search_call(page))):
            break
    return search.outcome()


async def arun_search(client: MetasoClient, search: PagedSearch) -> SearchOutcome:
    """``run_search`` on the running event loop."""
    for page in search.pages:
        if search.add(page, await client.arequest(search_call(page))):
            break
    return search.outcome()


def _pages_to_send(request: SearchRequest, *, paged: bool) -> list[SearchRequest]:
    """The requests to send, in turn (see the module's docstring)."""
    if not paged:
        return [request]
    if request.page is None and request.size > PAGE_SIZE:
        plan, start = [request], request.size // PAGE_SIZE + 1
    else:
        plan, start = [], request.page or 1
    left = MAX_REQUESTS - len(plan)
    plan += [request.model_copy(update={"page": number}) for number in range(start, start + left)]
    return plan


def _asked_and_last(request: SearchRequest) -> tuple[int, int]:
    """How many results ``request`` asks for, and the position of the last of them."""
    if request.page is None:
        return request.size, request.size
    return PAGE_SIZE, request.page * PAGE_SIZE


def _first_time(result: SearchResult, seen: set[str]) -> bool:
    """Whether no result with this one's URL came before (one without a URL always passes)."""
    url = result.url
    if url is None:
        return True
    if url in seen:
        return False
    seen.add(url)
    return True
