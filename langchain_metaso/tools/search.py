"""``MetasoSearchTool``: Metaso search as a tool an agent can call."""

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.documents import Document
from pydantic import BaseModel, Field, field_validator

from langchain_metaso._parsing import ScopeName, check_query
from langchain_metaso.scopes import Scope, describe_scopes
from langchain_metaso.search import (
    MAX_SIZE,
    SearchOptions,
    SearchRequest,
    SearchResponse,
    search_call,
)
from langchain_metaso.tools.base import MetasoTool, as_tool_error

__all__ = ["MetasoSearchInput", "MetasoSearchTool", "format_results"]


class MetasoSearchInput(BaseModel):
    """Arguments of a ``metaso_search`` call."""

    query: str = Field(description="What to search for, in Chinese or English.")
    scope: ScopeName | None = Field(
        default=None,
        description=f"Where to search: {describe_scopes()}.",
    )
    size: int | None = Field(
        default=None, ge=1, le=MAX_SIZE, description="How many results to return (1-100)."
    )
    page: int | None = Field(
        default=None, ge=1, description="Result page, starting at 1 (10 results a page)."
    )

    _check_query = field_validator("query")(check_query)


def format_results(request: SearchRequest, response: SearchResponse) -> str:
    """Compact text for a model: one numbered entry a result."""
    if not response.results:
        return f"No {request.scope} results found for {request.query!r}."
    shown = min(len(response.results), request.size)
    of_total = f" of {response.total}" if response.total else ""
    lines = [f"Metaso {request.scope} search for {request.query!r}: {shown}{of_total} results."]
    for index, result in enumerate(response.results[:shown], start=1):
        number = result.position or index
        details = [
            part for part in (result.date, result.duration, ", ".join(result.authors or ())) if part
        ]
        lines.append(f"\n[{number}] {result.title or '(untitled)'}")
        if result.link:
            lines.append(result.link)
        if details:
            lines.append(" | ".join(details))
        # Summary or snippet even when raw content was fetched: whole pages would swamp
        # the model's context; they are in the artifact.
        lines.append(result.text()[0].strip())
    return "\n".join(lines)


class MetasoSearchTool(SearchOptions, MetasoTool):
    """Metaso (秘塔) AI search as an agent tool.

    Setup:
        ``pip install -U langchain-metaso`` and set ``METASO_API_KEY`` (for a metaso.cn
        key also ``METASO_BASE_URL``); ``MetasoConfig`` lists every connection setting.

    Key init args:
        scope: str
            Default scope of a call: ``webpage``, ``document``, ``scholar``,
            ``podcast``, ``video`` or ``image``. A call may pass its own.
        size: int
            Default number of results (1-100). A call may pass its own.
        page: int | None
            Default result page (the API's pages hold 10 results; ``size`` is
            then not sent, as the API takes one or the other).
        include_summary, include_raw_content, concise_snippet:
            What each result carries (an AI summary, the page's full text, shorter
            snippets).
        metaso_api_key, base_url, timeout, max_retries, max_concurrency:
            Connection settings, shared by every class of the package.

    Instantiate:
        .. code-block:: python

            from langchain_metaso import MetasoSearchTool

            tool = MetasoSearchTool(size=5)

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

    Failures (bad arguments, a wrong key, rate limits, timeouts) come back as an
    error ``ToolMessage`` whose text tells the model what to do, not as an exception.
    """

    name: str = "metaso_search"
    description: str = (
        "Search the web with Metaso (秘塔 AI search), strongest on Chinese-language "
        "sources. Use it for current events and fresh facts, and with scope='scholar' "
        "for academic papers, 'document' for documents (文库), 'podcast', 'video' or "
        "'image' for media. Returns numbered results with title, URL, date and summary."
    )
    args_schema: type[BaseModel] = MetasoSearchInput

    size: int = Field(default=10, ge=1, le=MAX_SIZE)
    """Default number of results of a call."""
    page: int | None = Field(default=None, ge=1)
    """Default result page of a call."""

    def _request(
        self, query: str, scope: Scope | None, size: int | None, page: int | None
    ) -> SearchRequest:
        return self.search_request(
            query, scope=scope, size=size or self.size, page=page or self.page
        )

    @staticmethod
    def _answer(request: SearchRequest, response: SearchResponse) -> tuple[str, list[Document]]:
        return format_results(request, response), response.to_documents(request)

    def _run(
        self,
        query: str,
        scope: Scope | None = None,
        size: int | None = None,
        page: int | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> tuple[str, list[Document]]:
        request = self._request(query, scope, size, page)
        with as_tool_error():
            return self._answer(request, self.client.request(search_call(request)))

    async def _arun(
        self,
        query: str,
        scope: Scope | None = None,
        size: int | None = None,
        page: int | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> tuple[str, list[Document]]:
        request = self._request(query, scope, size, page)
        with as_tool_error():
            return self._answer(request, await self.client.arequest(search_call(request)))
