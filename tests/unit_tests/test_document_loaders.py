"""MetasoLoader: documents field by field, both paths, order, concurrency, partial failures."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import TEST_KEY, Make
from emulator_support import answer_of
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from pydantic import ValidationError

from langchain_metaso.document_loaders import MetasoLoader
from langchain_metaso.errors import (
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoBudgetExceededError,
    MetasoInsufficientCreditsError,
    MetasoResponseError,
    MetasoServerError,
)
from langchain_metaso.testing import Fault, MetasoEmulator, load_seed_response

URLS = [f"https://site{n}.example.com/page/{n}" for n in range(6)]


def load(loader: MetasoLoader, mode: str) -> list[Document]:
    return loader.load() if mode == "sync" else asyncio.run(loader.aload())


class FailFor(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers reads of some URLs with an error status; hands the rest to the emulator."""

    def __init__(self, emulator: MetasoEmulator, failing: dict[str, int]) -> None:
        self.inner = emulator.transport()
        self.failing = failing

    def _fail(self, request: httpx.Request) -> httpx.Response | None:
        body = request.read()
        for url, status in self.failing.items():
            if url.encode() in body:
                return httpx.Response(status, json={"error": {"message": f"cannot read {url}"}})
        return None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._fail(request) or self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._fail(request) or await self.inner.handle_async_request(request)


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "exactly one of urls=[...] (pages to read) and query="),
        ({"urls": URLS, "query": "q"}, "exactly one of urls"),
        ({"urls": ["https://ok.example.com", "ftp://x", "nohost"]}, "not ['ftp://x', 'nohost']"),
        ({"query": "  "}, "empty"),
        ({"query": "q", "k": 0}, "greater than or equal to 1"),
        ({"query": "q", "scope": "web"}, "webpage"),
    ],
)
def test_invalid_configurations_are_clear_errors(
    make: Make, kwargs: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        make(MetasoLoader, **kwargs)
    assert words in str(caught.value)


def test_an_image_search_is_refused_saying_where_image_results_are(
    make: Make, emulator: MetasoEmulator
) -> None:
    with pytest.raises(ValidationError) as caught:
        make(MetasoLoader, query="秘塔", scope="image")
    assert "image results have no page" in str(caught.value)
    assert "MetasoRetriever(scope='image')" in str(caught.value)
    loader = make(MetasoLoader, query="秘塔")
    with pytest.raises(ValidationError, match="image results have no page"):
        loader.scope = "image"
    assert loader.scope == "webpage"
    assert emulator.requests == []


def test_is_a_base_loader_with_native_lazy_paths(make: Make) -> None:
    loader = make(MetasoLoader, urls=URLS)
    assert isinstance(loader, BaseLoader)
    assert type(loader).lazy_load is not BaseLoader.lazy_load
    assert type(loader).alazy_load is not BaseLoader.alazy_load
    assert TEST_KEY not in repr(loader)


# --- urls ------------------------------------------------------------------------------------


def test_one_document_per_url_field_by_field_in_order(
    make: Make, emulator: MetasoEmulator, mode: str
) -> None:
    expected = [answer_of(emulator, "reader", url=url) for url in URLS]
    emulator.reset()
    docs = load(make(MetasoLoader, urls=URLS), mode)
    assert len(docs) == len(URLS)
    for doc, url, page in zip(docs, URLS, expected, strict=True):
        assert doc.page_content == page["markdown"]
        assert doc.metadata["source"] == url
        assert doc.metadata["title"] == page["title"]
        assert doc.metadata["author"] == page["author"]
        assert doc.metadata["date"] == page["date"]
        assert doc.metadata["credits"] == page["credits"]
        assert set(doc.metadata) == {"source", "title", "author", "date", "credits"}
    assert sorted(request.json()["url"] for request in emulator.requests) == sorted(URLS)
    assert all(request.path == "/metaso/reader" for request in emulator.requests)


def test_text_mode_documents(make: Make, emulator: MetasoEmulator, mode: str) -> None:
    emulator.pages[URLS[0]] = "# 页面\n\n正文"
    (doc,) = load(make(MetasoLoader, urls=URLS[:1], reader_format="text"), mode)
    assert doc == Document(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, URLS[0])),
        page_content="# 页面\n\n正文",
        metadata={"source": URLS[0], "title": "页面"},
    )
    assert emulator.requests[0].headers["accept"] == "text/plain"


def test_lazy_load_reads_one_page_per_document_taken(make: Make, emulator: MetasoEmulator) -> None:
    documents = make(MetasoLoader, urls=URLS).lazy_load()
    assert emulator.requests == []
    next(documents)
    next(documents)
    assert len(emulator.requests) == 2


def test_empty_url_list_loads_nothing(make: Make, emulator: MetasoEmulator, mode: str) -> None:
    assert load(make(MetasoLoader, urls=[]), mode) == []
    assert emulator.requests == []


# --- query -----------------------------------------------------------------------------------


def test_query_searches_then_reads_the_top_k_pages(
    make: Make, emulator: MetasoEmulator, mode: str
) -> None:
    search = answer_of(emulator, "search", q="大模型 幻觉", scope="scholar", size=3)
    links = [result["link"] for result in search["scholars"]]
    pages = [answer_of(emulator, "reader", url=link) for link in links]
    emulator.reset()
    docs = load(make(MetasoLoader, query="大模型 幻觉", k=3, scope="scholar"), mode)
    assert [doc.metadata["source"] for doc in docs] == links
    assert [doc.page_content for doc in docs] == [page["markdown"] for page in pages]
    assert [doc.metadata["title"] for doc in docs] == [page["title"] for page in pages]
    assert all(doc.metadata["query"] == "大模型 幻觉" for doc in docs)
    first, *reads = emulator.requests
    assert first.path == "/metaso/search"
    assert (first.json()["q"], first.json()["scope"], first.json()["size"]) == (
        "大模型 幻觉",
        "scholar",
        3,
    )
    assert sorted(request.json()["url"] for request in reads) == sorted(links)


def test_the_loader_does_not_pay_for_summaries_it_discards(
    make: Make, emulator: MetasoEmulator
) -> None:
    docs = make(MetasoLoader, query="秘塔", k=2).load()
    assert len(docs) == 2
    search = emulator.requests[0].json()
    assert search["includeSummary"] is False
    assert load_seed_response()["webpages"]  # the emulator's data is intact


def test_query_skips_results_without_a_web_link_and_duplicates(make: Make, mode: str) -> None:
    results = [
        {"title": "no link"},
        {"title": "a", "link": "https://a.example.com"},
        {"title": "not the web", "link": "ftp://files.example.com"},
        {"title": "a again", "link": "https://a.example.com"},
        {"title": "b", "link": "https://b.example.com"},
        {"title": "beyond k", "link": "https://c.example.com"},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/search"):
            return httpx.Response(200, json={"webpages": results, "total": 6})
        target = json.loads(request.read())["url"]
        return httpx.Response(200, json={"markdown": f"page {target}"})

    loader = make(MetasoLoader, query="q", k=5, transport=httpx.MockTransport(handler))
    docs = load(loader, mode)
    assert [doc.page_content for doc in docs] == [
        "page https://a.example.com",
        "page https://b.example.com",
    ]
    assert loader.failures == []


def test_failed_search_raises_even_when_not_strict(
    make: Make, emulator: MetasoEmulator, mode: str
) -> None:
    emulator.script(Fault.status(401))
    with pytest.raises(MetasoAuthenticationError):
        load(make(MetasoLoader, query="q"), mode)
    assert len(emulator.requests) == 1


# --- failures --------------------------------------------------------------------------------


def test_failed_urls_are_reported_and_the_others_kept(
    make: Make, emulator: MetasoEmulator, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    failing = {URLS[1]: 400, URLS[4]: 500}
    loader = make(MetasoLoader, urls=URLS, max_retries=0, transport=FailFor(emulator, failing))
    with caplog.at_level(logging.WARNING, logger="langchain_metaso"):
        docs = load(loader, mode)
    assert [doc.metadata["source"] for doc in docs] == [URLS[n] for n in (0, 2, 3, 5)]
    assert [url for url, _ in loader.failures] == [URLS[1], URLS[4]]
    (_, first), (_, second) = loader.failures
    assert type(first) is MetasoAPIError
    assert first.status_code == 400
    assert type(second) is MetasoServerError
    assert second.status_code == 500
    assert f"cannot read {URLS[1]}" in str(first)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert URLS[1] in warnings[0].getMessage()
    assert "HTTP 400" in warnings[0].getMessage()
    assert URLS[4] in warnings[1].getMessage()
    assert all(TEST_KEY not in record.getMessage() for record in caplog.records)


def test_failures_are_those_of_the_latest_load(
    make: Make, emulator: MetasoEmulator, mode: str
) -> None:
    transport = FailFor(emulator, {URLS[0]: 400})
    loader = make(MetasoLoader, urls=URLS[:2], transport=transport)
    load(loader, mode)
    assert len(loader.failures) == 1
    transport.failing.clear()
    assert len(load(loader, mode)) == 2
    assert loader.failures == []


def test_strict_mode_raises_the_typed_error(
    make: Make, emulator: MetasoEmulator, mode: str
) -> None:
    loader = make(MetasoLoader, urls=URLS, strict=True, transport=FailFor(emulator, {URLS[2]: 401}))
    with pytest.raises(MetasoAuthenticationError, match="HTTP 401"):
        load(loader, mode)


def test_strict_sync_load_stops_at_the_failure(make: Make, emulator: MetasoEmulator) -> None:
    loader = make(MetasoLoader, urls=URLS, strict=True, transport=FailFor(emulator, {URLS[2]: 401}))
    documents = loader.lazy_load()
    assert [next(documents).metadata["source"] for _ in range(2)] == URLS[:2]
    with pytest.raises(MetasoAuthenticationError):
        next(documents)
    # URLs 0 and 1 reached the emulator; 2 failed in the wrapper; nothing after it was read.
    assert len(emulator.requests) == 2


# --- errors that fail every request are raised, never an empty result --------------------------


async def _collect(loader: MetasoLoader) -> list[Document]:
    return [document async for document in loader.alazy_load()]


ENTRY_POINTS: dict[str, Callable[[MetasoLoader], list[Document]]] = {
    "load": lambda loader: loader.load(),
    "lazy_load": lambda loader: list(loader.lazy_load()),
    "aload": lambda loader: asyncio.run(loader.aload()),
    "alazy_load": lambda loader: asyncio.run(_collect(loader)),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("wrong key", MetasoAuthenticationError),
        ("credits used up", MetasoInsufficientCreditsError),
        ("base_url not the API", MetasoAPIError),
        ("base_url serves a web page", MetasoResponseError),
        ("credit budget spent", MetasoBudgetExceededError),
    ],
)
def test_errors_that_fail_every_request_raise_whatever_strict_says(
    emulator: MetasoEmulator, emulator_url: str, entry: str, setup: str, expected: type
) -> None:
    settings: dict[str, Any] = {"api_key": TEST_KEY, "base_url": emulator_url, "max_retries": 0}
    if setup == "wrong key":
        settings["api_key"] = "wrong-key"
    elif setup == "credits used up":
        emulator.script(Fault.status(402))
    elif setup == "credit budget spent":
        settings["credit_budget"] = 0
    elif setup == "base_url not the API":
        emulator.script(Fault.status(404))  # what a server without the endpoint answers
    elif setup == "base_url serves a web page":
        emulator.script(Fault.garbage())
    loader = MetasoLoader(urls=URLS[:3], strict=False, **settings)

    with pytest.raises(expected) as info:
        ENTRY_POINTS[entry](loader)
    assert info.value.fails_every_request


def test_a_page_that_cannot_be_read_is_still_skipped(
    emulator: MetasoEmulator, emulator_url: str
) -> None:
    emulator.script(Fault.business_error(1000, "无法读取该页面"))
    loader = MetasoLoader(api_key=TEST_KEY, base_url=emulator_url, urls=URLS[:3])
    docs = loader.load()
    assert [doc.metadata["source"] for doc in docs] == URLS[1:3]
    [(url, error)] = loader.failures
    assert url == URLS[0]
    assert not error.fails_every_request


def test_size_is_another_name_of_k(make: Make, emulator: MetasoEmulator) -> None:
    loader = make(MetasoLoader, query="大模型", size=2)
    assert loader.k == 2
    assert len(loader.load()) == 2
    assert emulator.requests[0].json()["size"] == 2


def test_a_rejected_change_leaves_the_loader_as_it_was(make: Make) -> None:
    loader = make(MetasoLoader, urls=URLS[:2])
    with pytest.raises(ValidationError, match="exactly one of urls"):
        loader.query = "大模型"
    assert (loader.urls, loader.query) == (URLS[:2], None)


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["transport", "socket"])
def test_async_load_is_concurrent_bounded_and_ordered(
    make: Make, emulator: MetasoEmulator, route: str
) -> None:
    urls = [f"https://bulk.example.com/{n}" for n in range(12)]
    emulator.latency = 0.05
    if route == "socket":
        with emulator.serve() as base_url:
            loader = make(
                MetasoLoader, urls=urls, max_concurrency=4, transport=None, base_url=base_url
            )
            docs = asyncio.run(loader.aload())
    else:
        docs = asyncio.run(make(MetasoLoader, urls=urls, max_concurrency=4).aload())
    assert [doc.metadata["source"] for doc in docs] == urls
    assert 1 < emulator.stats.peak_in_flight <= 4
    assert emulator.stats.requests == 12
    if route == "socket":
        assert emulator.stats.connections_opened <= 4


def test_sync_load_is_sequential(make: Make, emulator: MetasoEmulator) -> None:
    emulator.latency = 0.01
    make(MetasoLoader, urls=URLS, max_concurrency=4).load()
    assert emulator.stats.peak_in_flight == 1


def test_leaving_the_async_load_early_cancels_the_rest(
    make: Make, emulator: MetasoEmulator
) -> None:
    urls = [f"https://bulk.example.com/{n}" for n in range(40)]
    emulator.latency = 0.05
    loader = make(MetasoLoader, urls=urls, max_concurrency=2)

    async def first_only() -> Document:
        documents = loader.alazy_load()
        try:
            return await anext(documents)
        finally:
            await documents.aclose()

    first = asyncio.run(first_only())
    assert first.metadata["source"] == urls[0]
    assert emulator.stats.requests < len(urls)
    assert emulator.stats.in_flight == 0


@pytest.mark.parametrize(
    "settings",
    [{"include_domains": ["a.com"]}, {"recency_days": 3}, {"published_after": "2025-01-01"}],
)
def test_filters_with_urls_are_rejected(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="filter search results: use them with query="):
        MetasoLoader(metaso_api_key="test-key", urls=["https://a.com/1"], **settings)


# --- progress ----------------------------------------------------------------------------


def test_show_progress_draws_a_bar_over_the_pages(
    make: Make, emulator: MetasoEmulator, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tqdm", reason="tqdm not installed: pip install tqdm")
    failing = FailFor(emulator, {URLS[1]: 400})
    loader = make(MetasoLoader, urls=URLS[:4], transport=failing, show_progress=True)
    docs = load(loader, mode)
    assert len(docs) == 3
    bar = capsys.readouterr().err
    assert "Metaso pages" in bar
    assert "4/4" in bar  # the failed page counts as done too
    quiet = make(MetasoLoader, urls=URLS[:2])
    load(quiet, mode)
    assert capsys.readouterr().err == ""


def test_show_progress_without_tqdm_says_what_to_install(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ValidationError, match="show_progress=True needs tqdm: pip install tqdm"):
        make(MetasoLoader, urls=URLS[:1], show_progress=True)
