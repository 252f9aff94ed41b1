"""``MetasoLoader``: web pages, read by the Metaso reader, as LangChain ``Document``s."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TypeVar

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from pydantic import AliasChoices, Field, PrivateAttr, field_validator, model_validator

from langchain_metaso._http import Call
from langchain_metaso._parsing import Query, ScopeName
from langchain_metaso.config import MetasoConfig
from langchain_metaso.errors import MetasoError
from langchain_metaso.filters import FilterSettings
from langchain_metaso.paged_search import PagedSearch, arun_search, run_search
from langchain_metaso.reader import ReaderFormat, ReaderPage, ReaderRequest, check_url, reader_call
from langchain_metaso.search import MAX_SIZE, SearchRequest

__all__ = ["MetasoLoader"]

logger = logging.getLogger("langchain_metaso")
T = TypeVar("T")


class MetasoLoader(FilterSettings, MetasoConfig, BaseLoader):
    """Web pages as ``Document``s, read by Metaso (秘塔): given URLs, or a search's top hits.

    Setup:
        See ``MetasoConfig``: the package, ``METASO_API_KEY`` and every connection setting.

    Key init args:
        urls: list[str] | None
            The pages to read (http or https), one ``Document`` each, in this order.
        query: str | None
            Instead of ``urls``: search this, then read the top ``k`` results' pages.
        k: int
            How many search results to read (default 5; also accepted as ``size``);
            only with ``query``.
        scope: str
            Where to search (default ``webpage``); only with ``query``.
        strict: bool
            ``False`` (default): a page that fails is logged as a warning, kept in
            ``loader.failures`` and skipped; ``True``: the first failure raises.
            An error that fails every request (a missing or wrong key, credits used
            up, a ``base_url`` that is not the Metaso API) raises either way.
        reader_format: str
            ``"json"`` (default, with title/author/date/credits) or ``"text"``.
        show_progress: bool
            Show a progress bar over the pages as they are read (tqdm, an optional
            dependency: ``pip install tqdm``), in ``load`` and ``aload`` alike.
        include_domains, exclude_domains, recency_days, published_after, published_before,
        keep_undated:
            Which search results to read (sites, dates), only with ``query``; applied
            by this client, with up to 3 search requests (see ``FilterSettings``).

    Instantiate:
        .. code-block:: python

            from langchain_metaso import MetasoLoader

            loader = MetasoLoader(urls=["https://example.com/a", "https://example.com/b"])
            # or: MetasoLoader(query="大语言模型 幻觉", k=5, scope="webpage")

    Load:
        .. code-block:: python

            docs = loader.load()               # one page after another
            docs = await loader.aload()        # pages read concurrently, same order
            docs[0].page_content               # the page as Markdown
            docs[0].metadata                   # source, title, author, date, credits
            loader.failures                    # [(url, MetasoError), ...] of the last load

    With ``query``, a failed search raises (there is nothing to read); results without
    a web link are skipped, and each document's metadata also holds the ``query``.
    """

    # The class docstring says what each field is.
    urls: list[str] | None = None
    query: Query | None = None
    k: int = Field(default=5, ge=1, le=MAX_SIZE, validation_alias=AliasChoices("k", "size"))
    scope: ScopeName = "webpage"
    strict: bool = False
    reader_format: ReaderFormat = "json"
    show_progress: bool = False

    _failures: list[tuple[str, MetasoError]] = PrivateAttr(default_factory=list)

    @field_validator("urls")
    @classmethod
    def _check_urls(cls, urls: list[str] | None) -> list[str] | None:
        if urls is None:
            return None
        checked, bad = [], []
        for url in urls:
            try:
                checked.append(check_url(url))
            except ValueError:
                bad.append(url)
        if bad:
            raise ValueError(f"only http:// and https:// URLs with a host can be read; not {bad!r}")
        return checked

    @field_validator("show_progress")
    @classmethod
    def _check_tqdm(cls, show: bool) -> bool:
        # Checked now: a long load must not fail at its start for want of a bar.
        if show and importlib.util.find_spec("tqdm") is None:
            raise ValueError("show_progress=True needs tqdm: pip install tqdm")
        return show

    @model_validator(mode="after")
    def _one_source(self) -> MetasoLoader:
        if (self.urls is None) == (self.query is None):
            raise ValueError(
                "give exactly one of urls=[...] (pages to read) and query='...' "
                "(search, then read the top k results)"
            )
        if self.query is not None and self.scope == "image":
            raise ValueError(
                "MetasoLoader reads the pages of search results, and image results have no "
                "page (only an image URL): use MetasoRetriever(scope='image') for their "
                "titles and image URLs as Documents, or another scope here"
            )
        if self.urls is not None and self.search_filters().active:
            raise ValueError(
                "include_domains, exclude_domains, recency_days, published_after and "
                "published_before filter search results: use them with query='...', not with urls"
            )
        return self

    @property
    def failures(self) -> list[tuple[str, MetasoError]]:
        """``(url, error)`` of each page the latest load could not read, in input order
        (concurrent loads on one loader share it: use one loader each to tell them apart)."""
        return list(self._failures)

    def lazy_load(self) -> Iterator[Document]:
        """Read the pages one after another, yielding each ``Document`` as it comes."""
        self._failures = []
        client = self.client
        urls = self.urls
        if urls is None:
            urls = self._links(run_search(client, self._search()))
        for url in self._progress(urls, len(urls)):
            try:
                page = client.request(self._call(url))
            except MetasoError as exc:
                self._failed(url, exc)
                continue
            yield self._document(page)

    async def alazy_load(self) -> AsyncIterator[Document]:
        """Read up to ``max_concurrency`` pages at once; yield them in input order."""
        self._failures = []
        client = self.client
        urls = self.urls
        if urls is None:
            urls = self._links(await arun_search(client, self._search()))
        tasks = [asyncio.ensure_future(client.arequest(self._call(url))) for url in urls]
        try:
            for url, task in self._progress(zip(urls, tasks, strict=True), len(urls)):
                try:
                    page = await task
                except MetasoError as exc:
                    self._failed(url, exc)
                    continue
                yield self._document(page)
        finally:
            # Stopped early (a break, strict mode): do not read pages nobody will get.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _search(self) -> PagedSearch:
        assert self.query is not None  # the model validator guarantees it
        # Only the links are used: summaries would cost credits for nothing.
        request = SearchRequest(
            query=self.query, scope=self.scope, size=self.k, include_summary=False
        )
        return PagedSearch(request, self.search_filters())

    def _links(self, outcome: PagedSearch) -> list[str]:
        links: dict[str, None] = {}
        for result in outcome.response.results:
            try:
                links[check_url(result.link or "")] = None
            except ValueError:
                logger.info("Metaso loader: skipped a result without a web link: %r", result.link)
        return list(links)

    def _progress(self, pages: Iterable[T], total: int) -> Iterable[T]:
        """``pages``, under a tqdm bar with ``show_progress``: it counts a page once the
        loop has dealt with it (read or failed), and closes when the loop ends."""
        if not self.show_progress:
            return pages
        from tqdm.auto import tqdm

        bar: Iterable[T] = tqdm(pages, total=total, desc="Metaso pages", unit="page")
        return bar

    def _call(self, url: str) -> Call[ReaderPage]:
        return reader_call(ReaderRequest(url=url, format=self.reader_format))

    def _document(self, page: ReaderPage) -> Document:
        document = page.to_document()
        if self.query is not None:
            document.metadata["query"] = self.query
        return document

    def _failed(self, url: str, error: MetasoError) -> None:
        # A wrong key, used-up credits or a wrong base_url would fail every other page
        # too: skipping them all would turn the error into an empty result.
        if self.strict or error.fails_every_request:
            raise error
        self._failures.append((url, error))
        logger.warning("Metaso loader: could not read %s, skipped it: %s", url, error)
