"""``ChatMetaso``: Metaso's search-grounded answers as a LangChain chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from langchain_metaso._chat_messages import (
    PROVIDER,
    StreamReader,
    answer_message,
    to_api_messages,
)
from langchain_metaso._http import MetasoClient
from langchain_metaso.chat import (
    CHAT_PATH,
    AnswerRequest,
    ChatPath,
    ModelName,
    chat_call,
    chat_stream_call,
)
from langchain_metaso.config import MetasoConfig
from langchain_metaso.scopes import Scope

__all__ = ["ChatMetaso"]

# What a call may override (``invoke(..., model="ds-r1")``, ``bind(scope="scholar")``).
_PER_CALL = ("model", "scope", "concise_snippet", "temperature", "max_tokens")


class ChatMetaso(MetasoConfig, BaseChatModel):
    """Metaso (秘塔) AI search as a chat model: each answer comes from a fresh web search
    and cites its sources.

    Setup:
        ``pip install -U langchain-metaso`` and set ``METASO_API_KEY`` (for a metaso.cn
        key also ``METASO_BASE_URL``); ``MetasoConfig`` lists every connection setting.

    Key init args — completion params:
        model: str
            ``fast`` (default), ``fast_thinking`` or ``ds-r1`` (``CHAT_MODELS``); any
            other name is sent as given, so newer models work without a new release.
        scope: str
            Where the sources come from: ``webpage`` (default), ``document``,
            ``scholar``, ``podcast``, ``video`` or ``image``.
        concise_snippet: bool | None
            Ask for shorter source snippets.
        stop: list[str] | None
            Stop sequences. The API takes none: the text is cut here, at the first one,
            streamed or not (a stop sequence may straddle chunks).
        temperature: float | None, max_tokens: int | None
            Sent under these OpenAI names only when set. Metaso does not document
            them, so whether the service honours them is up to the service.
        streaming: bool
            Let ``invoke`` stream underneath (callbacks then see each token).

    Key init args — client params:
        metaso_api_key (alias ``api_key``), base_url, max_retries, max_concurrency, ...:
            As for every class of the package (``MetasoConfig``); ``timeout`` (120 s) and
            ``total_timeout`` (300 s) are longer here, because a thinking model may take
            minutes and a non-streamed answer arrives only once it is complete.
        chat_path: str
            The chat endpoint under ``base_url`` (default ``chat/completions``).
        cache, rate_limiter:
            LangChain's own, as for any chat model: ``cache`` is a ``BaseCache`` of
            whole answers (streams are not cached), and the rate limiter is consulted
            once a call.

    Instantiate:
        .. code-block:: python

            from langchain_metaso import ChatMetaso

            chat = ChatMetaso(model="fast", scope="webpage")

    Invoke:
        .. code-block:: python

            message = chat.invoke("秘塔 AI 搜索是哪家公司做的?")
            message.content  # the answer; [[n]] marks cite the n-th source
            message.response_metadata["citations"]  # the sources, as the API gave them
            [block["annotations"] for block in message.content_blocks if block["type"] == "text"]
            # -> [[{"type": "citation", "url": "https://...", "title": "...", "extras": {...}}]]

    Stream:
        .. code-block:: python

            full = None
            for chunk in chat.stream("秘塔 AI 搜索是哪家公司做的?"):
                print(chunk.text, end="", flush=True)
                full = chunk if full is None else full + chunk
            full.response_metadata["citations"]  # the same sources as invoke's

        Sources arrive on the first chunk, before any text; the last chunk carries
        ``finish_reason``, ``model_name``, ``credits`` and ``usage_metadata``.

    Reasoning (``fast_thinking``, ``ds-r1``):
        .. code-block:: python

            message = ChatMetaso(model="ds-r1").invoke("...")
            message.additional_kwargs["reasoning_content"]  # never part of .content
            [b for b in message.content_blocks if b["type"] == "reasoning"]

    Multi-turn:
        System, human and AI messages go to the API as its ``messages``. Tool messages,
        tool calls, images and files cannot be sent: they raise ``ValueError``.

    Not offered by the API:
        ``bind_tools`` and ``with_structured_output`` raise ``NotImplementedError``.

    Errors are the package's typed ``MetasoError``s. Failures before the answer starts
    are retried; a stream that breaks once it has started raises (never a silently
    shortened answer).
    """

    model: ModelName = "fast"
    """``fast``, ``fast_thinking``, ``ds-r1``, or any newer model's name."""
    scope: Scope = "webpage"
    """Where the sources come from; a call may pass its own."""
    concise_snippet: bool | None = None
    """Ask for shorter source snippets."""
    stop: list[str] | None = None
    """Stop sequences, applied to the text here (the API takes none)."""
    temperature: float | None = None
    """Sent as ``temperature`` when set; not documented by Metaso."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Sent as ``max_tokens`` when set; not documented by Metaso."""
    streaming: bool = False
    """Whether ``invoke`` streams underneath."""
    chat_path: ChatPath = CHAT_PATH
    """The chat endpoint under ``base_url``: configurable because 302.AI documents it
    without its path."""
    timeout: float = Field(default=120.0, gt=0)
    """Seconds each step of an attempt may take; a non-streamed answer comes in one
    step, once the model has finished."""
    total_timeout: float | None = Field(default=300.0, gt=0)
    """Seconds a whole call may take, retries and waits included; ``None`` for no bound."""
    cache: BaseCache | bool | None = Field(default=None, exclude=True)  # type: ignore[assignment]
    """LangChain's cache of chat answers (a ``BaseCache``, or ``True`` for the global one)."""

    @property
    def _llm_type(self) -> str:
        return "metaso-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        # Also LangChain's cache key: a different API or endpoint answers differently.
        return {
            "model": self.model,
            "scope": self.scope,
            "concise_snippet": self.concise_snippet,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "base_url": self.base_url,
            "chat_path": self.chat_path,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = PROVIDER
        stops = self._stops(stop)
        if stops:
            params["ls_stop"] = stops
        return params

    @property
    def client(self) -> MetasoClient:
        """The HTTP core, without the cache and the rate limiter: LangChain applies its
        own once a call (``BaseChatModel``), and must not be doubled."""
        return replace(super().client, cache=None, rate_limiter=None)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Not offered: Metaso's chat endpoint does not call tools.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError(
            "ChatMetaso cannot bind tools: Metaso's chat endpoint does not call tools. "
            "Give MetasoSearchTool or MetasoAnswerTool to an agent whose model does."
        )

    def with_structured_output(
        self, schema: dict[str, Any] | type, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Not offered: Metaso's chat endpoint has no tool calling, JSON mode or schema.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError(
            "ChatMetaso has no structured output: Metaso's chat endpoint offers no tool "
            "calling, JSON mode or response schema. Pass its answer to a model that does."
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, kwargs)
        answer = self.client.request(chat_call(request, self.chat_path))
        return _result(answer_message(answer, model=request.model, stops=self._stops(stop)))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, kwargs)
        answer = await self.client.arequest(chat_call(request, self.chat_path))
        return _result(answer_message(answer, model=request.model, stops=self._stops(stop)))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # LangChain reports each chunk to the callbacks itself (``on_llm_new_token``).
        request = self._request(messages, kwargs)
        reader = StreamReader(model=request.model, stops=self._stops(stop))
        for delta in self.client.stream(chat_stream_call(request, self.chat_path)):
            chunk = reader.read(delta)
            if chunk is not None:
                yield ChatGenerationChunk(message=chunk)
        yield ChatGenerationChunk(message=reader.finish())

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._request(messages, kwargs)
        reader = StreamReader(model=request.model, stops=self._stops(stop))
        async for delta in self.client.astream(chat_stream_call(request, self.chat_path)):
            chunk = reader.read(delta)
            if chunk is not None:
                yield ChatGenerationChunk(message=chunk)
        yield ChatGenerationChunk(message=reader.finish())

    def _request(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AnswerRequest:
        """The API request for ``messages``, with the call's overrides; checked before I/O.

        Raises:
            ValueError: a message the API cannot take, an argument it does not know, or
                an invalid value.
        """
        options = {name: value for name, value in kwargs.items() if name != "stream"}
        unknown = sorted(set(options) - set(_PER_CALL))
        if unknown:
            raise ValueError(
                f"ChatMetaso does not take {', '.join(map(repr, unknown))}: a call may set "
                f"{', '.join(_PER_CALL)} (and stop)."
            )
        settings = {name: options.get(name, getattr(self, name)) for name in _PER_CALL}
        return AnswerRequest(
            messages=to_api_messages(messages), format="chat_completions", **settings
        )

    def _stops(self, stop: list[str] | None) -> list[str]:
        return list(self.stop or ()) if stop is None else stop


def _result(message: AIMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=message)])
