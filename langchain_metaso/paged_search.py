"""The search the tool, the retriever and the loader all run: one request, or, with site
or date filters, up to three pages, as one sans-I/O flow.

``paged_search`` yields each ``SearchRequest`` to send and is sent back its
``SearchResponse``; ``run_search`` and ``arun_search`` drive it and differ only in the
line that sends. Without an active filter the flow is the one request asked for, exactly.
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
from collections.abc import Generator
from dataclasses import dataclass
from datetime import date

from langchain_core.documents import Document

from langchain_metaso._http import MetasoClient
from langchain_metaso.dates import today_in_china
from langchain_metaso.filters import Filtered, SearchFilters
from langchain_metaso.search import (
    PAGE_SIZE,
    SearchRequest,
    SearchResponse,
    SearchResult,
    search_call,
)

__all__ = [
    "MAX_REQUESTS",
    "SearchFlow",
    "SearchOutcome",
    "arun_search",
    "paged_search",
    "run_search",
]

logger = logging.getLogger("langchain_metaso")

MAX_REQUESTS = 3
"""The most search requests one filtered call sends."""


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


SearchFlow = Generator[SearchRequest, SearchResponse, SearchOutcome]


def paged_search(
    request: SearchRequest, filters: SearchFilters, *, today: date | None = None
) -> SearchFlow:
    """The search for ``request`` (``request.size`` results), keeping what ``filters`` pass.

    Args:
        request: The search asked for; ``size`` is how many results to keep.
        filters: Which results to keep; inactive filters send ``request`` alone.
        today: The day relative dates and ``recency_days`` count back from; default
            today in China.
    """
    today = today or today_in_china()
    kept: Filtered[SearchResult] = Filtered([])
    seen: set[str] = set()
    first: SearchResponse | None = None
    credits: list[int] = []
    sent = 0
    paged = filters.active
    for page in _plan(request, paged=paged):
        response = yield page
        sent += 1
        first = first or response
        if response.credits is not None:
            credits.append(response.credits)
        asked, last = _span(page)
        fresh = response.results[:asked]
        if paged:
            fresh = [result for result in fresh if _first_time(result, seen)]
            kept += filters.apply(fresh, today=today, limit=request.size - len(kept.kept))
        else:  # no filter to apply: the one answer as it came (a hot path)
            kept = Filtered(fresh[: request.size])
        if (
            len(kept.kept) >= request.size
            or len(response.results) < asked
            or (response.total is not None and last >= response.total)
        ):
            break
    assert first is not None  # a plan holds at least one request
    if kept.dropped:
        logger.info("Metaso search: %s (%d requests)", kept.describe(), sent)
    if not paged and len(kept.kept) == len(first.results):
        merged = first
    else:
        merged = first.model_copy(
            update={"results": kept.kept, "credits": sum(credits) if credits else None}
        )
    return SearchOutcome(request, merged, kept, today, sent)


def _plan(request: SearchRequest, *, paged: bool) -> list[SearchRequest]:
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


def _span(request: SearchRequest) -> tuple[int, int]:
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


def run_search(client: MetasoClient, flow: SearchFlow) -> SearchOutcome:
    """Drive ``flow`` synchronously, each request through ``client``."""
    try:
        request = next(flow)
        while True:
            request = flow.send(client.request(search_call(request)))
    except StopIteration as stop:
        outcome: SearchOutcome = stop.value
        return outcome


async def arun_search(client: MetasoClient, flow: SearchFlow) -> SearchOutcome:
    """Drive ``flow`` on the running event loop, each request through ``client``."""
    try:
        request = next(flow)
        while True:
            request = flow.send(await client.arequest(search_call(request)))
    except StopIteration as stop:
        outcome: SearchOutcome = stop.value
        return outcome
