"""The paged, filtered search every class runs (issue 15): its plan of requests and its
stops on a scripted server, then each rule end to end against the emulator over a socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import Invoke, Make, Served, tool_call
from pydantic import ValidationError

from langchain_metaso import MetasoLoader, MetasoRetriever, MetasoSearchTool
from langchain_metaso._http import Call
from langchain_metaso.dates import today_in_china
from langchain_metaso.filters import SearchFilters
from langchain_metaso.paged_search import (
    MAX_REQUESTS,
    PagedSearch,
    arun_search,
    run_search,
)
from langchain_metaso.search import SearchRequest
from langchain_metaso.testing import SEED_QUERY, Fault, MetasoEmulator, load_seed_response

TODAY = date(2025, 3, 31)
SITES = SearchFilters(include_domains=["a.com"])


def item(position: int, host: str = "a.com", day: str | None = "2025年03月01日") -> dict[str, Any]:
    result = {"title": f"t{position}", "link": f"https://{host}/{position}", "position": position}
    return result if day is None else {**result, "date": day}


class Server:
    """Answers searches as the API does, from a list of results: ``size`` gives the first
    ``size``, ``page`` the page of 10; ``total`` is the list's length unless given."""

    def __init__(self, items: list[dict[str, Any]], total: int | None = None) -> None:
        self.items = items
        self.total = len(items) if total is None else total
        self.bodies: list[dict[str, Any]] = []

    def answer(self, call: Call[Any]) -> Any:
        body = dict(call.body)
        self.bodies.append(body)
        assert not ("page" in body and "size" in body)  # the API takes one or the other
        page = body.get("page")
        chunk = self.items[: body["size"]] if page is None else self.items[(page - 1) * 10 :][:10]
        return call.parse({"webpages": chunk, "total": self.total, "credits": len(chunk)})

    # The two methods of MetasoClient the drivers use.
    request = answer

    async def arequest(self, call: Call[Any]) -> Any:
        return self.answer(call)


@pytest.fixture(params=["sync", "async"])
def search(request: pytest.FixtureRequest) -> Callable[..., PagedSearch]:
    """``search(server, filters, **request)``: through ``run_search``, then ``arun_search``."""

    def run(server: Server, filters: SearchFilters, **fields: Any) -> PagedSearch:
        flow = PagedSearch(SearchRequest(query="q", **fields), filters, today=TODAY)
        if request.param == "sync":
            return run_search(server, flow)  # type: ignore[arg-type]
        return asyncio.run(arun_search(server, flow))  # type: ignore[arg-type]

    return run


def positions(outcome: PagedSearch) -> list[int | None]:
    return [result.position for result in outcome.response.results]


# --- the plan of requests ----------------------------------------------------------------------


@pytest.mark.parametrize("fields", [{"size": 3}, {"size": 25}, {"size": 3, "page": 2}])
def test_without_filters_one_request_exactly_as_asked(
    search: Callable[..., PagedSearch], fields: dict[str, Any]
) -> None:
    server = Server([item(n, "b.com") for n in range(1, 51)])
    outcome = search(server, SearchFilters(keep_undated=False), **fields)
    assert server.bodies == [SearchRequest(query="q", **fields).to_body()]
    assert len(outcome.response.results) == (3 if "page" in fields else fields["size"])
    assert outcome.filtered.dropped == {}
    assert outcome.filtered.describe() == ""
    assert len(outcome.answers) == 1


def test_with_filters_and_k_up_to_10_pages_1_2_3_without_size(
    search: Callable[..., PagedSearch],
) -> None:
    server = Server([item(n, "b.com") for n in range(1, 51)])
    outcome = search(server, SITES, size=5)
    assert [(b.get("page"), "size" in b) for b in server.bodies] == [
        (1, False),
        (2, False),
        (3, False),
    ]
    assert outcome.response.results == []
    assert outcome.filtered.describe() == "0 of 30 kept: 30 outside the requested sites"
    assert len(outcome.answers) == MAX_REQUESTS == 3


def test_with_filters_and_k_over_10_size_then_the_pages_after_it(
    search: Callable[..., PagedSearch],
) -> None:
    server = Server([item(n, "b.com") for n in range(1, 101)])
    search(server, SITES, size=25)
    # Page 3 (21-30) holds the first results after the 25: 21-25 come twice.
    assert [(b.get("page"), b.get("size")) for b in server.bodies] == [
        (None, 25),
        (3, None),
        (4, None),
    ]
    hosts = ["a.com" if n % 4 == 0 else "b.com" for n in range(1, 61)]
    server = Server([item(n, host) for n, host in enumerate(hosts, 1)])
    outcome = search(server, SITES, size=15)
    assert [(b.get("page"), b.get("size")) for b in server.bodies] == [
        (None, 15),
        (2, None),
        (3, None),
    ]
    # Positions 11-15 come twice (the size and page 2): judged once.
    assert positions(outcome) == [4, 8, 12, 16, 20, 24, 28]
    assert outcome.filtered.seen == 30
    assert outcome.filtered.describe() == "7 of 30 kept: 23 outside the requested sites"


def test_with_filters_a_page_asked_for_starts_the_pages(
    search: Callable[..., PagedSearch],
) -> None:
    server = Server([item(n, "b.com") for n in range(1, 101)])
    search(server, SITES, size=5, page=4)
    assert [b.get("page") for b in server.bodies] == [4, 5, 6]


def test_stops_once_k_pass_and_never_keeps_more(search: Callable[..., PagedSearch]) -> None:
    server = Server([item(n, "b.com" if n in (2, 5) else "a.com") for n in range(1, 51)])
    outcome = search(server, SITES, size=4)
    assert len(server.bodies) == 1
    assert positions(outcome) == [1, 3, 4, 6]
    # Judged until 4 passed: what came after is not counted.
    assert outcome.filtered.describe() == "4 of 6 kept: 2 outside the requested sites"


def test_stops_at_a_short_page(search: Callable[..., PagedSearch]) -> None:
    # The total says there is more; the short second page says there is not.
    server = Server([item(n, "a.com" if n == 3 else "b.com") for n in range(1, 16)], total=86)
    outcome = search(server, SITES, size=5)
    assert [b["page"] for b in server.bodies] == [1, 2]
    assert positions(outcome) == [3]


def test_stops_past_total(search: Callable[..., PagedSearch]) -> None:
    server = Server([item(n, "b.com") for n in range(1, 21)])
    outcome = search(server, SITES, size=5)
    # Page 2 ends at 20, the total: no page 3.
    assert [b["page"] for b in server.bodies] == [1, 2]
    assert outcome.filtered.describe() == "0 of 20 kept: 20 outside the requested sites"


def test_results_repeated_across_pages_are_kept_once(search: Callable[..., PagedSearch]) -> None:
    first = [item(n) for n in range(1, 11)]
    server = Server([*first, *first[:5], *[item(n) for n in range(11, 16)]])
    outcome = search(server, SearchFilters(exclude_domains=["c.com"]), size=15)
    assert positions(outcome) == list(range(1, 16))
    assert outcome.filtered.seen == 15


def test_without_filters_an_answer_is_kept_as_it_came(search: Callable[..., PagedSearch]) -> None:
    server = Server([item(1), item(1), {"title": "x"}, {"title": "x"}])
    assert positions(search(server, SearchFilters(), size=4)) == [1, 1, None, None]


def test_with_filters_results_without_a_url_are_never_taken_for_repeats(
    search: Callable[..., PagedSearch],
) -> None:
    server = Server([item(1), item(1), {"title": "x"}, {"title": "x"}])
    outcome = search(server, SearchFilters(exclude_domains=["b.com"]), size=4)
    assert [r.title for r in outcome.response.results] == ["t1", "x", "x"]


def test_images_are_told_apart_by_their_image_url(search: Callable[..., PagedSearch]) -> None:
    def image(n: int) -> dict[str, Any]:
        return {"title": "同名", "imageUrl": f"https://img.a.com/{n % 12}.jpg", "position": n}

    server = Server([image(n) for n in range(1, 31)])
    outcome = search(server, SITES, size=20)
    # 12 distinct image URLs among 30 results, all with the same title.
    assert [r.image_url for r in outcome.response.results] == [
        f"https://img.a.com/{n}.jpg" for n in [*range(1, 12), 0]
    ]


def test_credits_add_up_and_total_is_the_first_answers(
    search: Callable[..., PagedSearch],
) -> None:
    server = Server([item(n, "b.com") for n in range(1, 41)])
    outcome = search(server, SITES, size=3)
    assert outcome.response.credits == 30  # three pages of 10, one credit a result here
    assert outcome.response.total == 40


def test_outcome_documents_read_dates_on_the_filters_day(
    search: Callable[..., PagedSearch],
) -> None:
    server = Server([item(1, day="3天前"), item(2, day="40天前"), item(3, day=None)])
    outcome = search(server, SearchFilters(recency_days=7), size=5)
    assert outcome.today == TODAY
    documents = outcome.to_documents()
    assert [d.metadata.get("published") for d in documents] == ["2025-03-28", None]
    assert outcome.filtered.describe() == "2 of 3 kept: 1 older than 2025-03-24"


# --- every rule, against the emulator over a socket ------------------------------------------

SEED_ITEMS = load_seed_response()["webpages"]


def seed_links(*hosts: str) -> list[str]:
    return [i["link"] for i in SEED_ITEMS if any(h in i["link"] for h in hosts)]


def test_include_domains_keep_only_those_sites(
    served: Served, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    retriever = served(MetasoRetriever, include_domains=["huanqiu.com", "https://www.ce.cn/x"])
    documents = invoke(retriever, SEED_QUERY)
    assert [d.metadata["source"] for d in documents] == seed_links("huanqiu.com", "ce.cn")
    # Page 1 is the seed; the emulator's pages 2 and 3 are on other sites.
    assert [r.json()["page"] for r in emulator.requests] == [1, 2, 3]
    assert all("size" not in r.json() for r in emulator.requests)


def test_a_domain_covers_its_subdomains_not_lookalikes(
    served: Served, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    items = [item(1, "news.a.com"), item(2, "a.com"), item(3, "bad-a.com"), item(4, "a.com.cn")]
    emulator.script(Fault.status(200, body={"webpages": items, "total": 4}))
    documents = invoke(served(MetasoRetriever, k=4, include_domains=["a.com"]), "q")
    assert [d.metadata["title"] for d in documents] == ["t1", "t2"]
    assert len(emulator.requests) == 1  # a short page: there is no other


def test_exclude_domains_drop_those_sites_and_fetch_more(
    served: Served, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    documents = invoke(served(MetasoRetriever, exclude_domains=["huanqiu.com"]), SEED_QUERY)
    assert len(documents) == 10
    sources = [d.metadata["source"] for d in documents]
    assert sources[:9] == [i["link"] for i in SEED_ITEMS[1:]]
    assert "huanqiu.com" not in " ".join(sources)
    assert [r.json()["page"] for r in emulator.requests] == [1, 2]


def test_published_after_drops_older_results(served: Served, invoke: Invoke) -> None:
    retriever = served(MetasoRetriever, k=5, published_after="2022-01-01")
    documents = invoke(retriever, SEED_QUERY)
    expected = [i["link"] for i in SEED_ITEMS if int(i["date"][:4]) >= 2022][:5]
    assert [d.metadata["source"] for d in documents] == expected
    assert all(d.metadata["published"] >= "2022-01-01" for d in documents)


def test_recency_days_counts_back_from_today_in_china(served: Served, invoke: Invoke) -> None:
    days = (today_in_china() - date(2022, 1, 1)).days
    by_recency = invoke(served(MetasoRetriever, k=5, recency_days=days), SEED_QUERY)
    by_date = invoke(served(MetasoRetriever, k=5, published_after="2022-01-01"), SEED_QUERY)
    assert [d.id for d in by_recency] == [d.id for d in by_date]
    assert len(by_recency) == 5


@pytest.mark.parametrize(("keep_undated", "kept"), [(True, ["t1", "t3"]), (False, ["t1"])])
def test_keep_undated_decides_results_without_a_readable_date(
    served: Served, emulator: MetasoEmulator, invoke: Invoke, keep_undated: bool, kept: list[str]
) -> None:
    today = today_in_china()
    items = [item(1, day=today.isoformat()), item(2, day="2001-01-01"), item(3, day="2025年")]
    emulator.script(Fault.status(200, body={"webpages": items, "total": 3}))
    retriever = served(MetasoRetriever, recency_days=30, keep_undated=keep_undated)
    documents = invoke(retriever, "q")
    assert [d.metadata["title"] for d in documents] == kept
    published = [d.metadata.get("published") for d in documents]
    assert published == [today.isoformat(), None][: len(kept)]


def test_filters_send_nothing_to_the_api(served: Served, emulator: MetasoEmulator) -> None:
    served(MetasoRetriever, include_domains=["a.com"], recency_days=3).invoke("秘塔")
    for request in emulator.requests:
        body = request.json()
        assert set(body) == {"q", "scope", "includeSummary", "page"}
        assert body["q"] == "秘塔"  # no site: operator


def test_over_10_results_size_then_pages_without_overlap(
    served: Served, emulator: MetasoEmulator
) -> None:
    retriever = served(MetasoRetriever, k=15, include_domains=["nowhere.cn"])
    assert retriever.invoke("秘塔") == []
    assert [(r.json().get("size"), r.json().get("page")) for r in emulator.requests] == [
        (15, None),
        (None, 2),
        (None, 3),
    ]


def test_the_tool_says_what_filters_dropped(
    served: Served, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    tool = served(MetasoSearchTool, size=2, include_domains=["ce.cn", "360doc.cn"])
    message = invoke(tool, tool_call(tool.name, query=SEED_QUERY))
    assert message.content.startswith(
        f"Metaso webpage search for '{SEED_QUERY}': 2 of 86 results "
        "(2 of 3 kept: 1 outside the requested sites).\n\n[1] "
    )
    assert [d.metadata["source"] for d in message.artifact] == seed_links("ce.cn", "360doc.cn")


def test_site_and_date_filters_on_the_emulators_varied_results(make: Make, invoke: Invoke) -> None:
    today = today_in_china()
    emulator = MetasoEmulator(api_key="test-key", today=today)
    settings = {"include_domains": ["example.com"], "recency_days": 365, "keep_undated": False}
    with emulator.serve() as base_url:
        tool = make(MetasoSearchTool, transport=None, base_url=base_url, **settings)
        message = invoke(tool, tool_call(tool.name, query="秘塔"))
        tool.close()
    cutoff = (today - timedelta(days=365)).isoformat()
    assert message.artifact
    for document in message.artifact:
        host = urlsplit(document.metadata["source"]).hostname or ""
        assert host == "example.com" or host.endswith(".example.com")  # not badexample.com
        assert document.metadata["published"] >= cutoff
    kept = len(message.artifact)
    assert f"{kept} of 30 kept: " in message.content
    assert "outside the requested sites" in message.content
    assert f"older than {cutoff}" in message.content
    assert len(emulator.requests) == MAX_REQUESTS


def test_the_tool_says_when_filters_dropped_everything(served: Served, invoke: Invoke) -> None:
    tool = served(MetasoSearchTool, size=3, include_domains=["nowhere.cn"])
    content = invoke(tool, {"query": SEED_QUERY})
    assert content == (
        f"No webpage results found for '{SEED_QUERY}' "
        "(0 of 30 kept: 30 outside the requested sites); kept only results from nowhere.cn."
    )


def test_the_loader_reads_only_the_pages_that_pass(
    served: Served, emulator: MetasoEmulator
) -> None:
    loader = served(MetasoLoader, query=SEED_QUERY, k=3, exclude_domains=["huanqiu.com", "ce.cn"])
    documents = loader.load()
    read = [r.json()["url"] for r in emulator.requests if r.path.endswith("/reader")]
    assert read == [i["link"] for i in SEED_ITEMS[2:5]]
    assert [d.metadata["source"] for d in documents] == read
    search = emulator.requests[0].json()
    assert (search["page"], search["includeSummary"]) == (1, False)


def test_the_loader_async_path_filters_too(served: Served, emulator: MetasoEmulator) -> None:
    loader = served(MetasoLoader, query=SEED_QUERY, k=2, published_after="2025-01-01")
    documents = asyncio.run(loader.aload())
    assert [d.metadata["source"] for d in documents] == [
        i["link"] for i in SEED_ITEMS if i["date"].startswith("2025")
    ][:2]


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"recency_days": 0}, ["recency_days", "at least 1"]),
        ({"recency_days": True}, ["recency_days", "number of days"]),
        ({"include_domains": ["localhost"]}, ["'localhost' is not a domain", "no dot"]),
        ({"exclude_domains": ["a b.com"]}, ["is not a domain", "space"]),
        ({"published_after": "last week"}, ["published_after"]),
        (
            {"include_domains": ["news.a.com"], "exclude_domains": ["a.com"]},
            ["exclude_domains excludes", "no result from it could be kept"],
        ),
    ],
)
@pytest.mark.parametrize("cls", [MetasoSearchTool, MetasoRetriever, MetasoLoader])
def test_bad_filter_settings_fail_at_construction(
    cls: type[Any], settings: dict[str, Any], words: list[str]
) -> None:
    extra = {"query": "q"} if cls is MetasoLoader else {}
    with pytest.raises(ValidationError) as caught:
        cls(metaso_api_key="test-key", **extra, **settings)
    for word in words:
        assert word in str(caught.value)


def test_filter_settings_are_read_once_normalised(make: Make) -> None:
    retriever = make(
        MetasoRetriever,
        include_domains="Example.COM, https://news.b.cn/x",
        published_after=date(2025, 1, 1),
        recency_days=3,
    )
    assert retriever.include_domains == ("example.com", "news.b.cn")
    filters = retriever.search_filters()
    assert filters.cutoff(TODAY) == date(2025, 3, 28)
