"""The API's behaviour: one function from an HTTP request to a :class:`Reply`.

Checks run in this order: authorization (401), path (404), method (405), JSON body (400),
then the endpoint's parameters (HTTP 200 business errors, as the real service does).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ._content import SCOPES, ChatAnswer, chat_answer, reader_page, search_result, search_total
from ._reply import (
    EVENT_STREAM_TYPE,
    JSON_TYPE,
    TEXT_TYPE,
    Reply,
    business_error,
    dump_json,
    http_error,
    json_reply,
)
from ._seed import SEED_QUERY, seed_response_bytes

_ENDPOINTS = ("chat/completions", "search", "reader")
_CHAT_CREDITS = {"fast": 3, "fast_thinking": 5, "ds-r1": 10}
_CHAT_FORMATS = ("simple", "chat_completions")
# A fixed creation time keeps chat answers byte-identical across runs.
_CREATED = 1742169600
_STREAM_PIECE = 8

PARAMETER_ERROR = 1000
QUERY_REQUIRED = 1001
BAD_SCOPE = 1002


class _ParameterError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def answer(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    api_key: str | None,
    pages: Mapping[str, str],
    reject_page_with_size: bool,
) -> Reply:
    """Answer one request; ``headers`` has lower-cased names."""
    if not _authorized(headers.get("authorization", ""), api_key):
        return http_error(401, "Missing or invalid API key: send 'Authorization: Bearer <key>'")
    endpoint = _route(path)
    if endpoint is None:
        return http_error(404, f"No endpoint at {path}")
    if method != "POST":
        return http_error(
            405, f"{method} is not allowed on {endpoint}; use POST", headers=(("Allow", "POST"),)
        )
    try:
        params = json.loads(body)
    except ValueError:
        return http_error(400, "The request body is not valid JSON")
    if not isinstance(params, dict):
        return http_error(400, "The request body must be a JSON object")
    try:
        if endpoint == "search":
            return _search(params, reject_page_with_size=reject_page_with_size)
        if endpoint == "reader":
            return _reader(params, headers.get("accept", ""), pages)
        return _chat(params)
    except _ParameterError as error:
        return business_error(error.code, error.message)


def _authorized(header: str, api_key: str | None) -> bool:
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    return api_key is None or hmac.compare_digest(token.encode(), api_key.encode())


def _route(path: str) -> str | None:
    # Any prefix is accepted, so base URLs like ".../metaso" or ".../api/v1" all work.
    normalized = "/" + path.strip("/")
    return next((name for name in _ENDPOINTS if normalized.endswith("/" + name)), None)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _ParameterError(QUERY_REQUIRED, f"{name} is required")
    return value


def _scope(value: object) -> str:
    if value is None:
        raise _ParameterError(BAD_SCOPE, "scope is required")
    if not isinstance(value, str) or value not in SCOPES:
        raise _ParameterError(
            BAD_SCOPE, f"unknown scope {value!r}; expected one of {', '.join(SCOPES)}"
        )
    return value


def _flag(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _ParameterError(PARAMETER_ERROR, f"{name} must be a boolean")
    return value


def _integer(params: Mapping[str, Any], name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    # Some clients send numbers as strings, which the real service accepts; bools are not numbers.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _ParameterError(PARAMETER_ERROR, f"{name} must be an integer")


def _search(params: Mapping[str, Any], *, reject_page_with_size: bool) -> Reply:
    q = _text(params.get("q"), "q")
    scope = _scope(params.get("scope"))
    # Reported of the real service: "size or page, choose one of the two", enforced this way.
    if reject_page_with_size and params.get("page") is not None and params.get("size") is not None:
        raise _ParameterError(PARAMETER_ERROR, "size and page cannot be used together")
    summary = _flag(params, "includeSummary")
    raw_content = _flag(params, "includeRawContent")
    concise = _flag(params, "conciseSnippet")
    size = min(100, max(1, _integer(params, "size", 10)))
    page = _integer(params, "page", 1)
    if page < 1:
        raise _ParameterError(PARAMETER_ERROR, "page must be at least 1")
    if q.strip() == SEED_QUERY and scope == "webpage" and size == 10 and page == 1:
        return Reply(200, (("Content-Type", JSON_TYPE),), (seed_response_bytes(),))
    total = search_total(q, scope)
    first = (page - 1) * size + 1
    results = [
        search_result(q, scope, position, summary=summary, raw_content=raw_content, concise=concise)
        for position in range(first, min(first + size, total + 1))
    ]
    parameters: dict[str, Any] = {
        "q": q,
        "scope": scope,
        "size": size,
        "includeSummary": summary,
        "format": "chat_completions",
    }
    if "page" in params:
        parameters["page"] = page
    return json_reply(
        {
            "credits": size * (2 if raw_content else 1),
            "searchParameters": parameters,
            SCOPES[scope]: results,
            "total": total,
        }
    )


def _reader(params: Mapping[str, Any], accept: str, pages: Mapping[str, str]) -> Reply:
    url = params.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if url is None or parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _ParameterError(PARAMETER_ERROR, "url must be an http(s) URL")
    page = reader_page(url)
    markdown = pages.get(url, page.markdown)
    if "text/plain" in accept and "application/json" not in accept:
        return Reply(200, (("Content-Type", TEXT_TYPE),), (markdown.encode("utf-8"),))
    heading = next(
        (line[2:].strip() for line in markdown.splitlines() if line.startswith("# ")), ""
    )
    return json_reply(
        {
            "title": heading or url,
            "url": url,
            "author": page.author,
            "date": page.date,
            "markdown": markdown,
            "credits": 1,
        }
    )


def _question(params: Mapping[str, Any]) -> str:
    if "q" in params or "messages" not in params:
        return _text(params.get("q"), "q")
    messages = params["messages"]
    users = (
        [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        if isinstance(messages, list)
        else []
    )
    content = users[-1].get("content") if users else None
    if isinstance(content, list):
        # OpenAI-style content parts: keep the text ones.
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return _text(content, "a user message")


def _chat(params: Mapping[str, Any]) -> Reply:
    q = _question(params)
    model = params.get("model", "fast")
    if model not in _CHAT_CREDITS:
        raise _ParameterError(
            PARAMETER_ERROR, f"unknown model {model!r}; expected one of {', '.join(_CHAT_CREDITS)}"
        )
    scope = _scope(params.get("scope", "webpage"))
    answer_format = params.get("format", "simple")
    if answer_format not in _CHAT_FORMATS:
        raise _ParameterError(
            PARAMETER_ERROR,
            f"unknown format {answer_format!r}; expected one of {', '.join(_CHAT_FORMATS)}",
        )
    stream = _flag(params, "stream")
    reply = chat_answer(q, scope, model, concise=_flag(params, "conciseSnippet"))
    credits = _CHAT_CREDITS[model]
    if stream:
        return _event_stream(reply, model, credits)
    if answer_format == "simple":
        return json_reply({"answer": reply.text, "sources": reply.sources, "credits": credits})
    return json_reply(
        {
            "id": reply.id,
            "object": "chat.completion",
            "created": _CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": "stop",
                }
            ],
            "citations": reply.sources,
            "credits": credits,
        }
    )


def _event_stream(reply: ChatAnswer, model: str, credits: int) -> Reply:
    """OpenAI-style chunks whatever the format: citations first, credits last, then ``[DONE]``."""

    def chunk(
        delta: dict[str, str], finish_reason: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {
            "id": reply.id,
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": model,
            "choices": [choice],
            **extra,
        }

    text = reply.text
    events = [
        chunk({"role": "assistant", "content": ""}, citations=reply.sources),
        *(
            chunk({"content": text[i : i + _STREAM_PIECE]})
            for i in range(0, len(text), _STREAM_PIECE)
        ),
        chunk({}, "stop", credits=credits),
    ]
    parts = tuple(b"data: " + dump_json(event) + b"\n\n" for event in events)
    return Reply(
        200,
        (("Content-Type", EVENT_STREAM_TYPE), ("Cache-Control", "no-cache")),
        (*parts, b"data: [DONE]\n\n"),
        streamed=True,
    )
