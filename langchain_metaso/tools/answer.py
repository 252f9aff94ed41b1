"""``MetasoAnswerTool``: a search-grounded answer with its sources, as an agent tool."""

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.documents import Document
from pydantic import BaseModel, Field, field_validator

from langchain_metaso._parsing import ScopeName, check_query
from langchain_metaso.chat import (
    CHAT_PATH,
    Answer,
    AnswerFormat,
    AnswerRequest,
    ChatModel,
    chat_call,
)
from langchain_metaso.scopes import Scope, describe_scopes
from langchain_metaso.tools.base import MetasoTool, as_tool_error

__all__ = ["MetasoAnswerInput", "MetasoAnswerTool"]


class MetasoAnswerInput(BaseModel):
    """Arguments of a ``metaso_answer`` call."""

    query: str = Field(description="The question to answer, in Chinese or English.")
    scope: ScopeName | None = Field(
        default=None,
        description=f"Where to look for sources: {describe_scopes()}.",
    )

    _check_query = field_validator("query")(check_query)


class MetasoAnswerTool(MetasoTool):
    """Metaso (秘塔) AI answers as an agent tool: a question in, a cited answer out.

    Setup:
        ``pip install -U langchain-metaso`` and set ``METASO_API_KEY`` (for a metaso.cn
        key also ``METASO_BASE_URL``); ``MetasoConfig`` lists every connection setting.

    Key init args:
        model: str
            ``fast`` (default), ``fast_thinking`` or ``ds-r1``.
        scope: str
            Default scope of the sources: ``webpage``, ``document``, ``scholar``,
            ``podcast``, ``video`` or ``image``. A call may pass its own.
        answer_format: str
            The shape asked of the API, ``simple`` (default) or ``chat_completions``;
            both are understood either way.
        concise_snippet: bool | None
            Ask for shorter source snippets.
        chat_path: str
            The chat endpoint under ``base_url`` (default ``chat/completions``).
        metaso_api_key, base_url, timeout, max_retries, max_concurrency:
            Connection settings, shared by every class of the package.

    Instantiate:
        .. code-block:: python

            from langchain_metaso import MetasoAnswerTool

            answer = MetasoAnswerTool(model="fast_thinking")

    Invoke directly with args:
        .. code-block:: python

            answer.invoke({"query": "秘塔 AI 搜索是哪家公司做的?"})
            # -> "... 秘塔科技 [1] ...\\n\\nSources:\\n[1] Title — https://..."

    Invoke with a tool call (as an agent does):
        .. code-block:: python

            message = answer.invoke(
                {"name": "metaso_answer", "args": {"query": "秘塔"}, "id": "1", "type": "tool_call"}
            )
            message.content    # the answer, marks [[n]] shown as [n], then "Sources:"
            message.artifact   # list[Document], one a source, metadata["citation"] = n

    Failures (bad arguments, a wrong key, rate limits, timeouts) come back as an
    error ``ToolMessage`` whose text tells the model what to do, not as an exception.
    """

    name: str = "metaso_answer"
    description: str = (
        "Ask Metaso (秘塔 AI search) a question and get a short answer grounded in web "
        "search, with numbered citations [n] and its sources listed. Strongest on "
        "Chinese-language sources. Use scope='scholar' for answers from academic papers."
    )
    args_schema: type[BaseModel] = MetasoAnswerInput

    model: ChatModel = "fast"
    """``fast``, ``fast_thinking`` or ``ds-r1``."""
    scope: Scope = "webpage"
    """Default scope of the sources; a call may pass its own."""
    answer_format: AnswerFormat = "simple"
    """The answer shape asked for; both are understood."""
    concise_snippet: bool | None = None
    """Ask for shorter source snippets."""
    chat_path: str = CHAT_PATH
    """The chat endpoint under ``base_url``: configurable because 302.AI documents it
    without its path."""

    @field_validator("chat_path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        path = value.strip().strip("/")
        if not path or "://" in path:
            raise ValueError(f"chat_path must be a path under base_url, got {value!r}")
        return path

    def _request(self, query: str, scope: Scope | None) -> AnswerRequest:
        return AnswerRequest(
            query=query,
            model=self.model,
            scope=scope or self.scope,
            format=self.answer_format,
            concise_snippet=self.concise_snippet,
        )

    @staticmethod
    def _answer(request: AnswerRequest, answer: Answer) -> tuple[str, list[Document]]:
        return answer.content(), answer.to_documents(query=request.query or "")

    def _run(
        self,
        query: str,
        scope: Scope | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> tuple[str, list[Document]]:
        request = self._request(query, scope)
        with as_tool_error():
            return self._answer(request, self.client.request(chat_call(request, self.chat_path)))

    async def _arun(
        self,
        query: str,
        scope: Scope | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> tuple[str, list[Document]]:
        request = self._request(query, scope)
        with as_tool_error():
            return self._answer(
                request, await self.client.arequest(chat_call(request, self.chat_path))
            )
