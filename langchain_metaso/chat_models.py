"""``ChatMetaso``: Metaso's search-grounded answers as a LangChain chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.caches import BaseCache
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.messages import content as types
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.block_translators import register_translator
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, ValidationError, field_validator

from langchain_metaso._http import MetasoClient
from langchain_metaso._parsing import is_text
from langchain_metaso.chat import (
    CHAT_PATH,
    Answer,
    AnswerDelta,
    AnswerRequest,
    ChatPath,
    ModelName,
    TokenUsage,
    chat_call,
    chat_stream_call,
    source_url,
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
        See ``MetasoConfig``: the package, ``METASO_API_KEY`` and every connection setting.

    Key init args — completion params:
        model: str
            ``fast`` (default), ``fast_thinking``, ``ds-r1`` or any newer name, sent as given.
        scope: str
            Where the sources come from: ``webpage`` (default), ``scholar``, ... (``Scope``).
        concise_snippet: bool | None
            Ask for shorter source snippets.
        stop: list[str] | None
            Stop sequences: the API takes none, so the text is cut here, streamed or not.
        temperature: float | None, max_tokens: int | None
            Sent under these OpenAI names only when set (Metaso does not document them).
        streaming: bool
            Let ``invoke`` stream underneath (callbacks then see each token).

    Key init args — client params:
        chat_path: str
            The chat endpoint under ``base_url`` (default ``chat/completions``).
        timeout, total_timeout: float
            120 s and 300 s, longer than elsewhere: a thinking model may take minutes.
        cache, rate_limiter:
            LangChain's own, as for any chat model (streams are not cached).

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
            message.additional_kwargs.get("reasoning_content")  # fast_thinking's, ds-r1's

    Stream:
        .. code-block:: python

            for chunk in chat.stream("秘塔 AI 搜索是哪家公司做的?"):
                print(chunk.text, end="", flush=True)
            # sources on the first chunk; finish_reason, usage_metadata on the last (credits
            # only if the stream reports them: today's streams do not)
    """

    # The class docstring says what each field is.
    model: ModelName = "fast"
    scope: Scope = "webpage"
    concise_snippet: bool | None = None
    stop: list[str] | None = None
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    streaming: bool = False
    chat_path: ChatPath = CHAT_PATH  # configurable: 302.AI documents it without its path
    timeout: float = Field(default=120.0, gt=0)
    total_timeout: float | None = Field(default=300.0, gt=0)
    cache: BaseCache | bool | None = Field(default=None, exclude=True)  # type: ignore[assignment]

    @field_validator("cache", mode="before")
    @classmethod
    def _chat_cache(cls, value: Any) -> Any:
        # ``cache`` caches whole answers on every class; a chat model's are LangChain's, so
        # the package's own caches (of API calls) would fail with a bare isinstance error.
        if value is None or isinstance(value, bool | BaseCache):
            return value
        raise ValueError(
            "ChatMetaso's cache is LangChain's chat-model cache: a "
            "langchain_core.caches.BaseCache (e.g. langchain_core.caches.InMemoryCache()) "
            f"or True for the global one, not a {type(value).__name__}. The package's "
            "InMemoryCache and MetasoStoreCache cache API calls: pass them as cache= to "
            "MetasoAnswerTool, MetasoSearchTool, MetasoRetriever or MetasoToolkit."
        )

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"metaso_api_key": "METASO_API_KEY"}

    @property
    def _llm_type(self) -> str:
        return "metaso-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        # Also LangChain's cache key: a different API or endpoint answers differently.
        return {name: getattr(self, name) for name in (*_PER_CALL, "base_url", "chat_path")}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=self._stops(stop), **kwargs)
        params["ls_provider"] = PROVIDER
        return params

    @property
    def client(self) -> MetasoClient:
        """The HTTP core, without the cache and the rate limiter: LangChain applies its
        own once a call (``BaseChatModel``), and must not be doubled."""
        return self._client(cache=None, rate_limiter=None)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Not offered (raises ``NotImplementedError``): the API does not call tools."""
        raise NotImplementedError(
            "ChatMetaso cannot bind tools: Metaso's chat endpoint does not call tools. "
            "Give MetasoSearchTool or MetasoAnswerTool to an agent whose model does."
        )

    def with_structured_output(
        self, schema: dict[str, Any] | type, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Not offered (raises ``NotImplementedError``): the API has no JSON mode or schema."""
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
        request, stream = self._prepare(messages, stop, kwargs)
        answer = self.client.request(chat_call(request, self.chat_path))
        return _convert_answer_to_result(answer, stream)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request, stream = self._prepare(messages, stop, kwargs)
        answer = await self.client.arequest(chat_call(request, self.chat_path))
        return _convert_answer_to_result(answer, stream)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # LangChain reports each chunk to the callbacks itself (``on_llm_new_token``).
        request, stream = self._prepare(messages, stop, kwargs)
        for delta in self.client.stream(chat_stream_call(request, self.chat_path)):
            if (chunk := _convert_delta_to_chunk(delta, stream)) is not None:
                yield ChatGenerationChunk(message=chunk)
        yield ChatGenerationChunk(message=_last_chunk(stream))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request, stream = self._prepare(messages, stop, kwargs)
        async for delta in self.client.astream(chat_stream_call(request, self.chat_path)):
            if (chunk := _convert_delta_to_chunk(delta, stream)) is not None:
                yield ChatGenerationChunk(message=chunk)
        yield ChatGenerationChunk(message=_last_chunk(stream))

    def _prepare(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[AnswerRequest, _Stream]:
        """The API request for ``messages`` with the call's overrides, and the answer's
        ``_Stream`` (stop sequences, the model asked); a ``ValueError`` before any I/O for
        a message, argument or value the API cannot take."""
        unknown = sorted(set(kwargs) - {*_PER_CALL, "stream"})
        if unknown:
            raise ValueError(
                f"ChatMetaso does not take {', '.join(map(repr, unknown))}: a call may set "
                f"{', '.join(_PER_CALL)} (and stop)."
            )
        settings = {name: kwargs.get(name, getattr(self, name)) for name in _PER_CALL}
        sent = [_convert_message_to_dict(message) for message in messages]
        if not any(message["role"] == "user" for message in sent):
            raise ValueError("ChatMetaso needs a question: the messages hold no human message.")
        try:
            request = AnswerRequest(messages=sent, format="chat_completions", **settings)
        except ValidationError as exc:
            # In the caller's names (``invoke(q, scope=...)``), not the request model's.
            problems = "; ".join(
                f"{'.'.join(map(str, error['loc']))}={error['input']!r}: {error['msg']}"
                for error in exc.errors()
            )
            raise ValueError(f"ChatMetaso got an invalid value: {problems}") from None
        return request, _Stream(StopCut(self._stops(stop)), model=request.model)

    def _stops(self, stop: list[str] | None) -> list[str]:
        return list(self.stop or ()) if stop is None else stop


# --- converters between LangChain messages and the chat endpoint's -------------------------

PROVIDER = "metaso"
"""``response_metadata["model_provider"]``: what selects ``_content_blocks`` below."""

_ROLES: dict[type[BaseMessage], str] = {
    SystemMessage: "system",
    HumanMessage: "user",
    AIMessage: "assistant",
}


def _convert_message_to_dict(message: BaseMessage) -> dict[str, Any]:
    """``message`` as one of the API's ``messages``: ``{"role", "content"}`` (and ``name``);
    a ``ValueError`` saying which and why if the chat endpoint cannot take it."""
    role = next((role for cls, role in _ROLES.items() if isinstance(message, cls)), None)
    if role is None and isinstance(message, ChatMessage) and message.role in _ROLES.values():
        role = message.role
    if role is None:
        raise _cannot_send(f"a {type(message).__name__} (role {message.type!r})")
    if isinstance(message, AIMessage) and message.tool_calls:
        raise _cannot_send("an AI message with tool calls")
    for block in message.content if isinstance(message.content, list) else ():
        kind = block.get("type") if isinstance(block, dict) else "text"
        # Reasoning is the model's own: it is not sent back, and is no reason to refuse.
        if kind not in ("text", "reasoning", "thinking"):
            raise _cannot_send(f"a {kind!r} content block (in a {message.type} message)")
    text = message.text
    # An earlier answer may be empty (cut at a stop sequence); a question may not.
    if role != "assistant" and not text.strip():
        raise ValueError(f"ChatMetaso cannot send an empty or blank {message.type} message.")
    if not is_text(text) or not is_text(message.name or ""):
        raise ValueError(
            f"ChatMetaso cannot send a {message.type} message holding a character that is "
            "not valid text (a lone surrogate): remove it or decode the text properly."
        )
    sent: dict[str, Any] = {"role": role, "content": text}
    if message.name:
        sent["name"] = message.name
    return sent


def _cannot_send(what: str) -> ValueError:
    return ValueError(
        f"ChatMetaso cannot send {what}: Metaso's chat endpoint takes system, human and AI "
        "messages of text only, with no tool calls, tool results, images or files. "
        "Remove it from the conversation (for tools, give an agent MetasoSearchTool or "
        "MetasoAnswerTool instead)."
    )


class StopCut:
    """Cuts text at the first stop sequence, fed whole or in pieces.

    A stop sequence may straddle pieces, so text that could begin one is held back until
    the next piece says whether it does. Fed in pieces, the text kept is exactly what
    the whole text cut at its first stop sequence would be.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [stop for stop in stops if stop]
        self._longest = max((len(stop) for stop in self._stops), default=0)
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The text that is now certain to come before any stop sequence."""
        if not self._stops:  # the usual case, once a chunk
            return text
        if self.stopped:
            return ""
        return self._split(self._held + text, final=False)

    def finish(self) -> str:
        """The text held back, now that no more will come."""
        return "" if self.stopped else self._split(self._held, final=True)

    def _split(self, text: str, *, final: bool) -> str:
        cut = min((at for stop in self._stops if (at := text.find(stop)) >= 0), default=None)
        keep = len(text) if final else self._held_from(text)
        if cut is not None and cut <= keep:
            self.stopped, self._held = True, ""
            return text[:cut]
        self._held = text[keep:]
        return text[:keep]

    def _held_from(self, text: str) -> int:
        """Where the earliest tail of ``text`` that begins a stop sequence starts (or its
        end: nothing to hold back)."""
        for start in range(max(0, len(text) - self._longest + 1), len(text)):
            tail = text[start:]
            if any(len(stop) > len(tail) and stop.startswith(tail) for stop in self._stops):
                return start
        return len(text)


@dataclass
class _Stream:
    """A streamed answer so far: its stop cut, and what its last chunk says once about
    the whole answer (chunks' metadata add up: text or numbers said twice would be
    joined or summed)."""

    cut: StopCut
    model: str
    id: str | None = None
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    credits: int | None = None
    sources_seen: bool = False


def _convert_delta_to_chunk(delta: AnswerDelta, stream: _Stream) -> AIMessageChunk | None:
    """The chunk of ``delta`` (its text, reasoning and sources), or ``None`` if it brings
    nothing to show; what describes the whole answer is kept in ``stream``."""
    stream.model = delta.model or stream.model
    stream.id = stream.id or delta.id
    stream.finish_reason = delta.finish_reason or stream.finish_reason
    stream.usage = delta.usage or stream.usage
    stream.credits = stream.credits if delta.credits is None else delta.credits
    stream.sources_seen = stream.sources_seen or delta.sources is not None
    # What the model thinks after the answer was cut is of no use either.
    reasoning = "" if stream.cut.stopped else delta.reasoning
    text = stream.cut.feed(delta.text)
    if not (text or reasoning or delta.sources is not None or delta.highlights is not None):
        return None
    # Every chunk carries the provider, so each one's content_blocks shows what it brought.
    return AIMessageChunk(
        content=text,
        additional_kwargs={"reasoning_content": reasoning} if reasoning else {},
        response_metadata=_metadata(citations=delta.sources, highlights=delta.highlights),
        id=stream.id,
    )


def _last_chunk(stream: _Stream) -> AIMessageChunk:
    """The last chunk: held-back text and what describes the whole answer."""
    return AIMessageChunk(
        content=stream.cut.finish(),
        response_metadata=_metadata(
            # So that an answer without sources says so, as the whole message does.
            citations=None if stream.sources_seen else [],
            model_name=stream.model,
            finish_reason=stream.finish_reason,
            credits=stream.credits,
        ),
        usage_metadata=_usage_metadata(stream.usage),
        id=stream.id,
        chunk_position="last",
    )


def _convert_answer_to_result(answer: Answer, stream: _Stream) -> ChatResult:
    """A whole answer added up as LangChain adds up a stream: its one delta's chunk, then
    the last chunk, so that ``invoke`` and ``stream`` agree."""
    chunks = [_convert_delta_to_chunk(answer, stream), _last_chunk(stream)]
    return generate_from_stream(ChatGenerationChunk(message=c) for c in chunks if c is not None)


def _metadata(**fields: Any) -> dict[str, Any]:
    """``response_metadata``: the provider, and those of ``fields`` that have a value."""
    return {"model_provider": PROVIDER, **{k: v for k, v in fields.items() if v is not None}}


def _usage_metadata(usage: TokenUsage | None) -> UsageMetadata | None:
    """LangChain's token counts from the API's ``usage``, when it reported any."""
    if usage is None or (usage.prompt_tokens is None and usage.completion_tokens is None):
        return None
    input_tokens = usage.prompt_tokens or 0
    output_tokens = usage.completion_tokens or 0
    total = usage.total_tokens
    counts = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens if total is None else total,
    }
    metadata = cast("UsageMetadata", counts)  # cast(): see below
    if usage.reasoning_tokens is not None:
        metadata["output_token_details"] = {"reasoning": usage.reasoning_tokens}
    return metadata


# The block types are built with cast(): langchain-core declares their optional keys with
# typing.NotRequired, which type checkers targeting Python 3.10 do not see.


def _content_blocks(message: AIMessage) -> list[types.ContentBlock]:
    """The standard blocks of a message or chunk of ours (the README's "Ask the web");
    ``NotImplementedError`` for content that is not text: LangChain then reads it its way."""
    if not isinstance(message.content, str):
        raise NotImplementedError("only text content comes from the Metaso chat endpoint")
    blocks: list[types.ContentBlock] = []
    reasoning = message.additional_kwargs.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        blocks.append(cast("types.ContentBlock", {"type": "reasoning", "reasoning": reasoning}))
    sources = message.response_metadata.get("citations") or ()
    annotations: list[types.Annotation] = [_citation(s) for s in sources if isinstance(s, dict)]
    if message.content or annotations:
        text = cast("types.TextContentBlock", {"type": "text", "text": message.content})
        if annotations:
            text["annotations"] = annotations
        blocks.append(text)
    if isinstance(message, AIMessageChunk):
        # A fixed index a kind: summed chunks merge into one block of each kind.
        for block in blocks:
            block["index"] = 0 if block["type"] == "reasoning" else 1
    return blocks


def _citation(source: dict[str, Any]) -> types.Citation:
    citation = cast("types.Citation", {"type": "citation"})
    url = source_url(source)
    if url:
        citation["url"] = url
    title = source.get("title")
    if isinstance(title, str) and title:
        citation["title"] = title
    extras = {k: v for k, v in source.items() if k not in ("title", "link", "url")}
    if extras:
        citation["extras"] = extras
    return citation


# LangChain reads our messages' content_blocks through this, by their model_provider.
register_translator(PROVIDER, _content_blocks, _content_blocks)
