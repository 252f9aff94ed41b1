"""LangChain messages to and from the chat endpoint, for ``ChatMetaso``.

- ``to_api_messages``: system, human and AI turns as the API takes them; anything it
  cannot take (tool turns, images, files) is rejected, never silently dropped;
- ``answer_message`` (a whole answer) and ``StreamReader`` (a streamed one) build the
  ``AIMessage`` and its chunks the same way, so a stream adds up to the message;
- ``StopCut``: stop sequences, applied here because the API takes none;
- ``content_blocks``: LangChain's standard blocks of our messages (registered as the
  ``metaso`` translator): reasoning, then the text with one ``citation`` a source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

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

from langchain_metaso.chat import Answer, AnswerDelta, TokenUsage, source_url

__all__ = [
    "PROVIDER",
    "StopCut",
    "StreamReader",
    "answer_message",
    "content_blocks",
    "to_api_messages",
]

PROVIDER = "metaso"
"""``response_metadata["model_provider"]``: what selects ``content_blocks`` below."""

_ROLES: dict[type[BaseMessage], str] = {
    SystemMessage: "system",
    HumanMessage: "user",
    AIMessage: "assistant",
}
_CHAT_ROLES = ("system", "user", "assistant")
# Content blocks with text in them; reasoning is the model's own and is not sent back.
_TEXT_BLOCKS = ("text",)
_UNSENT_BLOCKS = ("reasoning", "thinking")
# Where the reasoning and the text sit among a chunk's blocks, so that chunks merge into
# one block of each (by index) whatever order they arrive in.
_REASONING_INDEX, _TEXT_INDEX = 0, 1


def to_api_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """``messages`` as the API's ``messages``: ``{"role", "content"}`` (and ``name``).

    Raises:
        ValueError: a message the chat endpoint cannot take, saying which and why.
    """
    return [_api_message(message) for message in messages]


def _api_message(message: BaseMessage) -> dict[str, Any]:
    role = _role(message)
    if isinstance(message, AIMessage) and message.tool_calls:
        raise _cannot_send("an AI message with tool calls")
    for block in message.content if isinstance(message.content, list) else ():
        kind = block.get("type") if isinstance(block, dict) else "text"
        if kind not in (*_TEXT_BLOCKS, *_UNSENT_BLOCKS):
            raise _cannot_send(f"a {kind!r} content block (in a {message.type} message)")
    sent: dict[str, Any] = {"role": role, "content": message.text}
    if message.name:
        sent["name"] = message.name
    return sent


def _role(message: BaseMessage) -> str:
    role = next((role for cls, role in _ROLES.items() if isinstance(message, cls)), None)
    if role is None and isinstance(message, ChatMessage) and message.role in _CHAT_ROLES:
        role = message.role
    if role is None:
        raise _cannot_send(f"a {type(message).__name__} (role {message.type!r})")
    return role


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
        found = [at for stop in self._stops if (at := text.find(stop)) >= 0]
        cut = min(found, default=None)
        maybe = None if final else self._partial_start(text)
        if cut is not None and (maybe is None or cut <= maybe):
            self.stopped, self._held = True, ""
            return text[:cut]
        if maybe is None:
            self._held = ""
            return text
        self._held = text[maybe:]
        return text[:maybe]

    def _partial_start(self, text: str) -> int | None:
        """Where the earliest tail of ``text`` that begins a stop sequence starts."""
        for start in range(max(0, len(text) - self._longest + 1), len(text)):
            tail = text[start:]
            if any(len(stop) > len(tail) and stop.startswith(tail) for stop in self._stops):
                return start
        return None


def answer_message(answer: Answer, *, model: str, stops: Sequence[str]) -> AIMessage:
    """The ``AIMessage`` of a whole answer to a question asked of ``model``."""
    cut = StopCut(stops)
    text = cut.feed(answer.text) + cut.finish()
    return AIMessage(
        content=text,
        additional_kwargs=_reasoning(answer.reasoning),
        response_metadata=_metadata(
            citations=answer.sources,
            highlights=answer.highlights,
            model_name=answer.model or model,
            finish_reason=answer.finish_reason,
            credits=answer.credits,
        ),
        usage_metadata=usage_metadata(answer.usage),
        id=answer.id,
    )


class StreamReader:
    """Turns a streamed answer's deltas into ``AIMessageChunk``s, in order.

    Text, reasoning and sources go out on the chunk of the delta that brought them;
    what describes the whole answer (``finish_reason``, ``model_name``, ``credits``,
    ``usage_metadata``) on the last chunk, from ``finish``. Every chunk carries the
    provider, so each one's ``content_blocks`` shows what it brought.
    """

    def __init__(self, *, model: str, stops: Sequence[str]) -> None:
        self._cut = StopCut(stops)
        self._model = model
        self._id: str | None = None
        self._finish_reason: str | None = None
        self._usage: TokenUsage | None = None
        self._credits: int | None = None
        self._sources_seen = False

    def read(self, delta: AnswerDelta) -> AIMessageChunk | None:
        """The chunk of ``delta``, or ``None`` if it brings nothing to show."""
        self._model = delta.model or self._model
        self._id = self._id or delta.id
        self._finish_reason = delta.finish_reason or self._finish_reason
        self._usage = delta.usage or self._usage
        self._credits = self._credits if delta.credits is None else delta.credits
        text = self._cut.feed(delta.text)
        # What the model thinks after the answer was cut is of no use either.
        reasoning = "" if self._cut.stopped else delta.reasoning
        self._sources_seen = self._sources_seen or delta.sources is not None
        if not (text or reasoning or delta.sources is not None or delta.highlights is not None):
            return None
        return AIMessageChunk(
            content=text,
            additional_kwargs=_reasoning(reasoning),
            response_metadata=_metadata(citations=delta.sources, highlights=delta.highlights),
            id=self._id,
        )

    def finish(self) -> AIMessageChunk:
        """The last chunk: held-back text and what describes the whole answer."""
        # What describes the whole answer is said once: chunks' metadata add up, and text
        # or numbers said twice would be joined or summed.
        return AIMessageChunk(
            content=self._cut.finish(),
            response_metadata=_metadata(
                # So that an answer without sources says so, as the whole message does.
                citations=None if self._sources_seen else [],
                model_name=self._model,
                finish_reason=self._finish_reason,
                credits=self._credits,
            ),
            usage_metadata=usage_metadata(self._usage),
            id=self._id,
            chunk_position="last",
        )


def _reasoning(reasoning: str) -> dict[str, Any]:
    return {"reasoning_content": reasoning} if reasoning else {}


def _metadata(**fields: Any) -> dict[str, Any]:
    """``response_metadata``: the provider, and those of ``fields`` that have a value."""
    return {"model_provider": PROVIDER, **{k: v for k, v in fields.items() if v is not None}}


def usage_metadata(usage: TokenUsage | None) -> UsageMetadata | None:
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
    metadata = cast("UsageMetadata", counts)
    if usage.reasoning_tokens is not None:
        metadata["output_token_details"] = {"reasoning": usage.reasoning_tokens}
    return metadata


# The block types are built with cast(): langchain-core declares their optional keys with
# typing.NotRequired, which type checkers targeting Python 3.10 do not see.


def content_blocks(message: AIMessage) -> list[types.ContentBlock]:
    """The standard blocks of a message or chunk of ours: a ``reasoning`` block (from
    ``additional_kwargs["reasoning_content"]``), then a ``text`` block whose
    ``annotations`` are one ``citation`` a source, in the order the ``[[n]]`` marks
    count them.

    Chunks' blocks carry an ``index``, so that summed chunks (and LangChain's streaming
    of standard blocks) merge them into one block of each kind.

    Raises:
        NotImplementedError: content that is not text (not ours); LangChain then reads
            it its own way.
    """
    if not isinstance(message.content, str):
        raise NotImplementedError("only text content comes from the Metaso chat endpoint")
    chunk = isinstance(message, AIMessageChunk)
    blocks: list[types.ContentBlock] = []
    reasoning = message.additional_kwargs.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        thought = cast("types.ReasoningContentBlock", {"type": "reasoning", "reasoning": reasoning})
        if chunk:
            thought["index"] = _REASONING_INDEX
        blocks.append(thought)
    sources = message.response_metadata.get("citations")
    annotations = [_citation(source) for source in sources or () if isinstance(source, dict)]
    if message.content or annotations:
        text = cast("types.TextContentBlock", {"type": "text", "text": message.content})
        if annotations:
            text["annotations"] = list(annotations)
        if chunk:
            text["index"] = _TEXT_INDEX
        blocks.append(text)
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


register_translator(PROVIDER, content_blocks, content_blocks)
