"""The chat endpoint, ``POST {base_url}/chat/completions``: a search-grounded answer.

The API answers in two shapes, both understood whatever was asked for: ``simple``
(``{"answer", "sources" | "citations", "credits"}``) and ``chat_completions`` (the
OpenAI shape, ``choices[0].message.content`` plus ``citations`` or ``sources``).
The answer cites its sources with marks like ``[[1]]``: the n-th source, 1-based.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal, get_args

from langchain_core.documents import Document
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from langchain_metaso._http import Call
from langchain_metaso._parsing import Int, ScopeName, check_query

__all__ = [
    "CHAT_MODELS",
    "Answer",
    "AnswerFormat",
    "AnswerRequest",
    "ChatModel",
    "chat_call",
]

logger = logging.getLogger("langchain_metaso")

ChatModel = Literal["fast", "fast_thinking", "ds-r1"]
"""``fast`` (default), ``fast_thinking`` (reasons a little first), ``ds-r1`` (DeepSeek-R1)."""
CHAT_MODELS: tuple[str, ...] = get_args(ChatModel)

AnswerFormat = Literal["simple", "chat_completions"]

_MARK = re.compile(r"\[\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]\]")
# Where a source's URL and its best text may be, in order of preference.
_URL_FIELDS = ("link", "url")
_TEXT_FIELDS = ("snippet", "summary", "content", "title", "link", "url")


class AnswerRequest(BaseModel):
    """One call to ``POST {base_url}/chat/completions``, validated before any I/O.

    Exactly one of ``query`` (sent as ``q``) and ``messages`` (OpenAI-style) is given.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str | None = None
    messages: list[dict[str, Any]] | None = None
    model: ChatModel = "fast"
    scope: ScopeName = "webpage"
    format: AnswerFormat = "simple"
    concise_snippet: bool | None = None

    @field_validator("query")
    @classmethod
    def _check_query(cls, value: str | None) -> str | None:
        return None if value is None else check_query(value)

    @model_validator(mode="after")
    def _one_question(self) -> AnswerRequest:
        if (self.query is None) == (self.messages is None):
            raise ValueError("give exactly one of query and messages")
        if self.messages is not None and not self.messages:
            raise ValueError("messages must not be empty")
        return self

    def to_body(self) -> dict[str, Any]:
        """The JSON body in the API's names; ``conciseSnippet`` only when set."""
        question: dict[str, Any] = (
            {"q": self.query} if self.messages is None else {"messages": self.messages}
        )
        body = {**question, "model": self.model, "scope": self.scope, "format": self.format}
        if self.concise_snippet is not None:
            body["conciseSnippet"] = self.concise_snippet
        return body


class Answer(BaseModel):
    """An answer and the sources its ``[[n]]`` marks refer to (``sources[n - 1]``)."""

    text: str
    sources: list[dict[str, Any]]
    """Each source as the API gave it (fields vary); a bare URL becomes ``{"link": url}``."""
    credits: Int = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Answer:
        """Read either answer shape.

        Raises:
            ValueError: the payload is neither shape, or its answer is not text.
        """
        containers: list[dict[str, Any]] = [payload]
        if "answer" in payload:
            text = payload["answer"]
        else:
            message = _first_message(payload)
            if message is None:
                raise ValueError(
                    "expected 'answer' (format 'simple') or 'choices[0].message' "
                    "(format 'chat_completions')"
                )
            text = message.get("content")
            containers.append(message)
        if not isinstance(text, str):
            raise ValueError(f"the answer text is {type(text).__name__}, not a string")
        sources = next(
            (
                found
                for container in containers
                for key in ("sources", "citations")
                if isinstance(found := container.get(key), list)
            ),
            [],
        )
        return cls(text=text, sources=_normalize(sources), credits=payload.get("credits"))

    def content(self) -> str:
        """Text for a model: marks ``[[n]]`` shown as ``[n]``, then a numbered source list."""
        text = _MARK.sub(_show_mark, self.text)
        text = text.strip() or "(Metaso returned an empty answer.)"
        if not self.sources:
            return text
        lines = [text, "", "Sources:"]
        for number, source in enumerate(self.sources, start=1):
            url = _url(source)
            title = _string(source.get("title")) or url or "(untitled)"
            lines.append(
                f"[{number}] {title} — {url}" if url and url != title else f"[{number}] {title}"
            )
        return "\n".join(lines)

    def to_documents(self, *, query: str) -> list[Document]:
        """One ``Document`` a source, in citation order.

        ``page_content`` is the source's snippet (else summary, content, title, URL);
        metadata holds its other fields under their API names, plus ``source`` (the
        URL), ``citation`` (the n of ``[[n]]``) and ``query``.
        """
        documents = []
        for number, source in enumerate(self.sources, start=1):
            used = next((key for key in _TEXT_FIELDS if _string(source.get(key))), None)
            metadata = {k: v for k, v in source.items() if k != used and v is not None}
            metadata.update(source=_url(source) or "", citation=number, query=query)
            page_content = _string(source.get(used)) if used else ""
            documents.append(Document(page_content=page_content or "", metadata=metadata))
        return documents


def _show_mark(mark: re.Match[str]) -> str:
    numbers = (number.strip() for number in mark[1].split(","))
    return f"[{', '.join(numbers)}]"


def _first_message(payload: dict[str, Any]) -> dict[str, Any] | None:
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    return message if isinstance(message, dict) else None


def _normalize(items: list[Any]) -> list[dict[str, Any]]:
    sources = [{"link": item} if isinstance(item, str) else item for item in items]
    kept = [source for source in sources if isinstance(source, dict)]
    if len(kept) < len(items):
        logger.warning(
            "Metaso chat/completions: ignored %d sources that were neither objects nor URLs",
            len(items) - len(kept),
        )
    return kept


def _string(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _url(source: dict[str, Any]) -> str | None:
    return next((url for key in _URL_FIELDS if (url := _string(source.get(key)))), None)


CHAT_PATH = "chat/completions"
"""Certain for metaso.cn; 302.AI documents a chat endpoint without its path."""


def chat_call(request: AnswerRequest, path: str = CHAT_PATH) -> Call[Answer]:
    """The ``Call`` that asks ``request``'s question at ``{base_url}/{path}``."""
    return Call(endpoint=path, body=request.to_body(), parse=Answer.from_payload)
