"""``MetasoAnswerTool``: a search-grounded answer with its sources, as an agent tool."""

from __future__ import annotations

from collections.abc import Callable

from langchain_core.documents import Document
from pydantic import BaseModel, Field

from langchain_metaso._http import Call
from langchain_metaso._parsing import Query
from langchain_metaso.chat import (
    CHAT_PATH,
    Answer,
    AnswerFormat,
    AnswerRequest,
    ChatModel,
    ChatPath,
    chat_call,
)
from langchain_metaso.scopes import Scope, describe_scope
from langchain_metaso.tools.base import MetasoTool, QueryInput

__all__ = ["MetasoAnswerInput", "MetasoAnswerTool"]


class MetasoAnswerInput(QueryInput):
    """Arguments of a ``metaso_answer`` call."""

    query: Query = Field(description="The question to answer, in Chinese or English.")


class MetasoAnswerTool(MetasoTool):
    """Metaso (秘塔) AI answers as an agent tool: a question in, a cited answer out.

    Setup:
        See ``MetasoConfig``: the package, ``METASO_API_KEY`` and every connection setting.

    Key init args:
        model: str
            ``fast`` (default), ``fast_thinking`` or ``ds-r1``.
        scope: str
            Default scope of the sources: ``webpage``, ``document``, ``scholar``,
            ``podcast``, ``video`` or ``image``.
        model_args: tuple[str, ...] | None
            ``None`` (default): a model may set ``scope``; ``[]``: the question only.
        answer_format: str
            The shape asked of the API, ``simple`` (default) or ``chat_completions``;
            both are understood either way.
        concise_snippet: bool | None
            Ask for shorter source snippets.
        chat_path: str
            The chat endpoint under ``base_url`` (default ``chat/completions``).

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
    """

    name: str = "metaso_answer"
    description: str = (
        "Ask Metaso (秘塔 AI search) a question and get a short answer grounded in web "
        "search, with numbered citations [n] and its sources listed. Strongest on "
        "Chinese-language sources. Use scope='scholar' for answers from academic papers."
    )
    args_schema: type[BaseModel] = MetasoAnswerInput

    # The class docstring says what each field is.
    model: ChatModel = "fast"
    scope: Scope = "webpage"
    answer_format: AnswerFormat = "simple"
    concise_snippet: bool | None = None
    chat_path: ChatPath = CHAT_PATH  # configurable: 302.AI documents it without its path

    def _describe(self) -> str:
        if "scope" in self._given_by_model():
            return super()._describe()
        return (
            "Ask Metaso (秘塔 AI search) a question and get a short answer grounded in a "
            f"search of {describe_scope(self.scope)}, with numbered citations [n] and its "
            "sources listed. Strongest on Chinese-language sources."
        )

    def _plan_call(
        self, query: str, scope: Scope | None = None
    ) -> tuple[Call[Answer], Callable[[Answer], tuple[str, list[Document]]]]:
        request = AnswerRequest(
            query=query,
            model=self.model,
            scope=scope or self.scope,
            format=self.answer_format,
            concise_snippet=self.concise_snippet,
        )

        def answer(reply: Answer) -> tuple[str, list[Document]]:
            return reply.content(), reply.to_documents(query=query)

        return chat_call(request, self.chat_path), answer
