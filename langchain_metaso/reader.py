"""The reader call: ``POST {base_url}/reader`` turns a web page into Markdown. In JSON
mode every field of the answer but ``markdown`` may be missing or of another type; in text
mode the body is the Markdown itself."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from langchain_core.documents import Document
from pydantic import AfterValidator, BaseModel, ConfigDict

from langchain_metaso._http import Call
from langchain_metaso._parsing import Int, Text, stable_id

__all__ = ["ReaderFormat", "ReaderPage", "ReaderRequest", "check_url", "reader_call"]

ReaderFormat = Literal["json", "text"]
"""``json``: the page with its title, author, date and credits; ``text``: Markdown only."""


def check_url(value: str) -> str:
    """Return the URL stripped, or raise ``ValueError`` naming it if it is not http(s)."""
    url = value.strip()
    parts = urlsplit(url)
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        # Control characters and lone surrogates (which cannot even be sent as UTF-8).
        or not url.isprintable()
    ):
        raise ValueError(
            f"{value!r} is not a web page address: only http:// and https:// URLs with a "
            "host name and no control characters can be read, e.g. 'https://example.com/article'"
        )
    return url


class ReaderRequest(BaseModel):
    """One call to ``POST {base_url}/reader``, validated before any I/O."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: Annotated[str, AfterValidator(check_url)]
    format: ReaderFormat = "json"


class ReaderPage(BaseModel):
    """A page as the reader returns it. Unknown fields are kept as extras."""

    model_config = ConfigDict(extra="allow")

    source: str
    """The URL that was asked for."""
    markdown: str
    url: Text = None
    """The URL the reader reports (after redirects), when it says."""
    title: Text = None
    author: Text = None
    date: Text = None
    credits: Int = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any], *, source: str) -> ReaderPage:
        """Read a JSON answer; a missing title falls back to the Markdown's first heading.

        Raises:
            ValueError: the answer has no Markdown text.
        """
        markdown = payload.get("markdown")
        if not isinstance(markdown, str):
            raise ValueError("the answer has no 'markdown' text")
        page = cls.model_validate({**payload, "source": source, "markdown": markdown})
        if not (page.title and page.title.strip()):
            lines = markdown.splitlines()
            page.title = next((line[2:].strip() for line in lines if line.startswith("# ")), None)
        return page

    @classmethod
    def from_text(cls, markdown: str, *, source: str) -> ReaderPage:
        """Read a ``text/plain`` answer: the Markdown, titled by its first heading."""
        return cls.from_payload({"markdown": markdown}, source=source)

    def to_document(self) -> Document:
        """The Markdown as ``page_content``; ``source``, then title, author, date and
        credits when known, then any other field of the answer, as metadata."""
        metadata: dict[str, Any] = {"source": self.source}
        for name in ("title", "author", "date", "credits"):
            if (value := getattr(self, name)) is not None:
                metadata[name] = value
        if self.url and self.url != self.source:
            metadata["url"] = self.url
        metadata.update((k, v) for k, v in (self.model_extra or {}).items() if v is not None)
        # The id of the same URL as a search result's: one page, one id.
        return Document(id=stable_id(self.source), page_content=self.markdown, metadata=metadata)


def reader_call(request: ReaderRequest) -> Call[ReaderPage]:
    """The ``Call`` that reads ``request.url``, in JSON or text mode."""
    parse: Callable[..., ReaderPage] = (
        ReaderPage.from_text if request.format == "text" else ReaderPage.from_payload
    )
    return Call(
        endpoint="reader",
        body={"url": request.url},
        parse=partial(parse, source=request.url),
        expect=request.format,
    )
