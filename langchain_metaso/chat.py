"""The chat endpoint, ``POST {base_url}/chat/completions``: a search-grounded answer, whole
in either of the API's shapes whatever was asked for (``Answer.from_payload``), or streamed
as OpenAI-style chunks (``AnswerDelta``), sources first, until ``data: [DONE]``.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Literal, get_args

from langchain_core.documents import Document
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from langchain_metaso._http import Call
from langchain_metaso._parsing import Int, Query, ScopeName, Text, lenient, stable_id

__all__ = [
    "CHAT_MODELS",
    "CHAT_PATH",
    "Answer",
    "AnswerDelta",
    "AnswerFormat",
    "AnswerRequest",
    "ChatModel",
    "ChatPath",
    "ModelName",
    "TokenUsage",
    "chat_call",
    "chat_stream_call",
    "source_url",
]

logger = logging.getLogger("langchain_metaso")

ChatModel = Literal["fast", "fast_thinking", "ds-r1"]
"""``fast`` (default), ``fast_thinking`` (reasons a little first), ``ds-r1`` (DeepSeek-R1)."""
CHAT_MODELS: tuple[str, ...] = get_args(ChatModel)

AnswerFormat = Literal["simple", "chat_completions"]

CHAT_PATH = "chat/completions"
"""Certain for metaso.cn; 302.AI documents a chat endpoint without its path."""


def _relative_path(value: str) -> str:
    path = value.strip().strip("/")
    if not path or "://" in path:
        raise ValueError(f"chat_path must be a path under base_url, got {value!r}")
    return path


ChatPath = Annotated[str, AfterValidator(_relative_path)]
"""The chat endpoint under ``base_url`` (see ``CHAT_PATH``)."""


def _model_name(value: str) -> str:
    name = value.strip()
    if not name:
        raise ValueError(f"model must name a chat model, such as {', '.join(CHAT_MODELS)}")
    return name


ModelName = Annotated[str, AfterValidator(_model_name)]
"""Any model name: those of ``CHAT_MODELS`` and any newer one, passed through as given."""

_MARK = re.compile(r"\[\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]\]")
# Where a source's URL and its best text may be, in order of preference.
_TEXT_FIELDS = ("snippet", "summary", "content", "title", "link", "url")
# The keys a source list may come under, in a message, a delta or the whole answer.
_SOURCE_KEYS = ("sources", "citations")


class AnswerRequest(BaseModel):
    """One call to ``POST {base_url}/chat/completions``, validated before any I/O: exactly
    one of ``query`` and ``messages`` (OpenAI-style)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: Query | None = Field(default=None, serialization_alias="q")
    messages: list[dict[str, Any]] | None = None
    model: ModelName = "fast"
    scope: ScopeName = "webpage"
    format: AnswerFormat = "simple"
    concise_snippet: bool | None = Field(default=None, serialization_alias="conciseSnippet")
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_question(self) -> AnswerRequest:
        if (self.query is None) == (self.messages is None):
            raise ValueError("give exactly one of query and messages")
        if self.messages is not None and not self.messages:
            raise ValueError("messages must not be empty")
        return self

    def to_body(self) -> dict[str, Any]:
        """The JSON body in the API's names; optional fields only when set."""
        return self.model_dump(by_alias=True, exclude_none=True)


class TokenUsage(BaseModel):
    """Token counts, as the OpenAI-shaped answers report them (any may be missing)."""

    prompt_tokens: Int = None
    completion_tokens: Int = None
    total_tokens: Int = None
    reasoning_tokens: Int = None  # from completion_tokens_details


class AnswerDelta(BaseModel):
    """What one chunk of a streamed answer adds: text, reasoning, sources, or the end.

    ``sources`` is ``None`` when the chunk carries none (``[]`` when it carries an empty
    list); ``finish_reason``, ``usage`` and ``credits`` come on the last chunk.
    """

    text: str = ""
    reasoning: str = ""
    """The thinking of ``fast_thinking`` and ``ds-r1`` (``reasoning_content``)."""
    sources: list[dict[str, Any]] | None = None
    """Each source as the API gave it (fields vary); a bare URL becomes ``{"link": url}``."""
    highlights: list[Any] | None = None
    finish_reason: Text = None
    usage: TokenUsage | None = None
    credits: Int = None
    model: Text = None
    id: Text = None

    @classmethod
    def from_event(cls, payload: Any) -> AnswerDelta:
        """Read one event's data: ``choices[0].delta`` and the chunk's own fields.

        Raises:
            ValueError: the data is not a chunk of an answer.
        """
        if not isinstance(payload, dict):
            raise ValueError(f"a stream chunk is {type(payload).__name__}, not a JSON object")
        if not isinstance(payload.get("choices"), list) and not any(
            key in payload for key in (*_SOURCE_KEYS, "usage", "credits")
        ):
            raise ValueError("expected 'choices' in a stream chunk")
        choice = _first_choice(payload)
        delta = choice.get("delta")
        return cls(**_delta_fields(payload, choice, delta if isinstance(delta, dict) else payload))


class Answer(AnswerDelta):
    """A whole answer and the sources its ``[[n]]`` marks refer to (``sources[n - 1]``):
    the fields of a stream's chunks, said once."""

    text: str
    sources: list[dict[str, Any]]

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Answer:
        """Read either answer shape.

        Raises:
            ValueError: the payload is neither shape, or its answer is not text.
        """
        simple = "answer" in payload
        choice = {} if simple else _first_choice(payload)
        message = payload if simple else choice.get("message")
        if not isinstance(message, dict):
            raise ValueError(
                "expected 'answer' (format 'simple') or 'choices[0].message' "
                "(format 'chat_completions')"
            )
        text = message.get("answer" if simple else "content")
        if not isinstance(text, str):
            raise ValueError(f"the answer text is {type(text).__name__}, not a string")
        fields = _delta_fields(payload, choice, message)
        return cls(**{**fields, "text": text, "sources": fields["sources"] or []})

    def content(self) -> str:
        """Text for a model: marks ``[[n]]`` shown as ``[n]``, then a numbered source list."""
        text = _MARK.sub(_show_mark, self.text)
        text = text.strip() or "(Metaso returned an empty answer.)"
        if not self.sources:
            return text
        lines = [text, "", "Sources:"]
        for number, source in enumerate(self.sources, start=1):
            url = source_url(source)
            title = _string(source.get("title")) or url or "(untitled)"
            lines.append(
                f"[{number}] {title} — {url}" if url and url != title else f"[{number}] {title}"
            )
        return "\n".join(lines)

    def to_documents(self, *, query: str) -> list[Document]:
        """One ``Document`` a source, in citation order: its best text (``_TEXT_FIELDS``) as
        ``page_content``, its other fields, ``source`` (the URL), ``citation`` (the n of
        ``[[n]]``) and ``query`` as metadata."""
        documents = []
        for number, source in enumerate(self.sources, start=1):
            used = next((key for key in _TEXT_FIELDS if _string(source.get(key))), None)
            metadata = {k: v for k, v in source.items() if k != used and v is not None}
            metadata.update(source=source_url(source) or "", citation=number, query=query)
            page_content = _string(source.get(used)) if used else ""
            # The id of the same URL as a search result's: one page, one id.
            identity = metadata["source"] or f"{source.get('title')}\n{page_content}"
            documents.append(
                Document(id=stable_id(identity), page_content=page_content or "", metadata=metadata)
            )
        return documents


def _delta_fields(
    payload: dict[str, Any], choice: dict[str, Any], inner: dict[str, Any]
) -> dict[str, Any]:
    """The ``AnswerDelta`` fields of an answer or a chunk: the text and reasoning from
    ``inner`` (its message or delta, or ``payload`` itself, the simple shape), the sources
    and highlights from ``payload``'s top level, else from ``inner``."""
    # Plain loops: this runs for every chunk of a stream.
    sources: list[Any] | None = None
    highlights: list[Any] | None = None
    for container in (payload, inner):
        for key in _SOURCE_KEYS:
            if sources is None and isinstance(container.get(key), list):
                sources = container[key]
        if highlights is None and isinstance(container.get("highlights"), list):
            highlights = container["highlights"]
    if sources is not None:
        given = len(sources)
        sources = [{"link": item} if isinstance(item, str) else item for item in sources]
        sources = [source for source in sources if isinstance(source, dict)]
        if len(sources) < given:
            logger.warning(
                "Metaso chat/completions: ignored %d sources that were neither objects nor URLs",
                given - len(sources),
            )
    usage = payload.get("usage")
    if isinstance(usage, dict):
        details = usage.get("completion_tokens_details")
        reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
        usage = lenient(TokenUsage, {**usage, "reasoning_tokens": reasoning})
    return {
        "text": _text_of(inner.get("content")),
        "reasoning": _text_of(inner.get("reasoning_content")),
        "sources": sources,
        "highlights": highlights,
        "finish_reason": choice.get("finish_reason"),
        "usage": usage if isinstance(usage, TokenUsage) else None,
        "credits": payload.get("credits"),
        "model": payload.get("model"),
        "id": payload.get("id"),
    }


def _show_mark(mark: re.Match[str]) -> str:
    numbers = (number.strip() for number in mark[1].split(","))
    return f"[{', '.join(numbers)}]"


def _first_choice(payload: dict[str, Any]) -> dict[str, Any]:
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return {}
    return choices[0]


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _string(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def source_url(source: dict[str, Any]) -> str | None:
    """A source's URL (``link``, else ``url``), if it has one."""
    return next((url for key in ("link", "url") if (url := _string(source.get(key)))), None)


def chat_call(request: AnswerRequest, path: str = CHAT_PATH) -> Call[Answer]:
    """The ``Call`` that asks ``request``'s question at ``{base_url}/{path}``."""
    return Call(endpoint=path, body=request.to_body(), parse=Answer.from_payload)


def chat_stream_call(request: AnswerRequest, path: str = CHAT_PATH) -> Call[AnswerDelta]:
    """The ``Call`` that asks ``request``'s question and streams the answer's chunks."""
    return Call(
        endpoint=path,
        body={**request.to_body(), "stream": True},
        parse=AnswerDelta.from_event,
        expect="events",
    )
