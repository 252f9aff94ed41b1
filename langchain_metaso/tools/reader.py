"""``MetasoReaderTool``: a web page as Markdown, as a tool an agent can call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from langchain_core.documents import Document
from pydantic import AfterValidator, BaseModel, Field

from langchain_metaso._http import Call
from langchain_metaso.reader import ReaderFormat, ReaderPage, ReaderRequest, check_url, reader_call
from langchain_metaso.tools.base import MetasoTool

__all__ = ["MetasoReaderInput", "MetasoReaderTool"]


class MetasoReaderInput(BaseModel, extra="forbid"):  # as QueryInput
    """Arguments of a ``metaso_reader`` call."""

    url: Annotated[str, AfterValidator(check_url)] = Field(
        description="The page to read: a full http:// or https:// URL."
    )


class MetasoReaderTool(MetasoTool):
    """Metaso (秘塔) reader as an agent tool: a web page, read as Markdown.

    Setup:
        See ``MetasoConfig``: the package, ``METASO_API_KEY`` and every connection setting.

    Key init args:
        max_chars: int | None
            Longest page text handed to the model (default 8000; see ``MetasoTool``).
        reader_format: str
            ``"json"`` (default): the page with title, author, date and credits;
            ``"text"``: Markdown only (title from its first heading).

    Instantiate:
        .. code-block:: python

            from langchain_metaso import MetasoReaderTool

            reader = MetasoReaderTool(max_chars=4000)

    Invoke with a tool call (as an agent does), or directly with args:
        .. code-block:: python

            call = {"url": "https://example.com/article"}
            message = reader.invoke(
                {"name": "metaso_reader", "args": call, "id": "1", "type": "tool_call"}
            )
            message.content    # the Markdown, cut to max_chars
            message.artifact   # the whole page as a Document (source, title, author, ...)
            reader.invoke(call)  # the Markdown alone: "# The article's title\\n\\n..."

    Only ``http`` and ``https`` URLs are read: another comes back, before any request, as
    an error ``ToolMessage``, as failures do (see ``MetasoTool``).
    """

    name: str = "metaso_reader"
    description: str = (
        "Read a web page with Metaso's reader and get its full text as Markdown. Use it "
        "to read a search result (or any page) in full when its snippet is not enough. "
        "Input: the page's http(s) URL."
    )
    args_schema: type[BaseModel] = MetasoReaderInput

    max_chars: int | None = Field(default=8000, ge=1)
    reader_format: ReaderFormat = "json"

    def _plan_call(
        self, url: str
    ) -> tuple[Call[ReaderPage], Callable[[ReaderPage], tuple[str, Document]]]:
        return reader_call(ReaderRequest(url=url, format=self.reader_format)), self._answer

    def _answer(self, page: ReaderPage) -> tuple[str, Document]:
        if not page.markdown.strip():
            return f"The page at {page.source} has no readable text.", page.to_document()
        return page.markdown, page.to_document()
