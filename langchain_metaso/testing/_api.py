"""The API's behaviour: one function from an HTTP request to a :class:`Reply`.

Checks run in this order: authorization (401), path (404), method (405), JSON body (400),
then the endpoint's parameters (HTTP 200 business errors, as the real service does).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from langchain_metaso.scopes import SCOPES, result_key

from ._content import ChatAnswer, chat_answer, reader_page, search_result, search_total
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
# The models that think before answering, streamed as ``reasoning_content``.
_REASONING_MODELS = ("fast_thinking", "ds-r1")
_ROLES = ("system", "user", "assistant")
_CHAT_FORMATS = ("simple", "chat_completions")
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
    today: date,
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
            return _search(params, reject_page_with_size=reject_page_with_size, today=today)
        if endpoint == "reader":
            return _reader(params, headers.get("accept", ""), pages, today)
        return _chat(params, today)
    except _ParameterError as error:
        return business_error(error.code, error.message)


def _authorized(header: str, api_key: str | None) -> bool:
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    return api_key is None or hmac.compare_digest(token.encode(), api_key.encode())


# The roots the providers serve the API under (302.AI's, metaso.cn's) and the bare root;
# anything else is a wrong base URL and answers 404, as a real server would.
_ROOTS = ("", "/metaso", "/api/v1")


def _route(path: str) -> str | None:
    normalized = "/" + path.strip("/")
    return next(
        (name for name in _ENDPOINTS for root in _ROOTS if normalized == f"{root}/{name}"),
        None,
    )


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


def _search(params: Mapping[str, Any], *, reject_page_with_size: bool, today: date) -> Reply:
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
        search_result(
            q,
            scope,
            position,
            today=today,
            summary=summary,
            raw_content=raw_content,
            concise=concise,
        )
        for position in range(first, min(first + size, total + 1))
    ]
    # Live answers echo these, in this order, adding searchFile and format unasked. Whether
    # they echo page and includeRawContent is not known: here they do, when sent.
    parameters: dict[str, Any] = {"q": q, "scope": scope, "size": size}
    if "page" in params:
        parameters["page"] = page
    parameters.update(searchFile=False, includeSummary=summary, conciseSnippet=concise)
    if "includeRawContent" in params:
        parameters["includeRawContent"] = raw_content
    parameters["format"] = "chat_completions"
    return json_reply(
        {
            # Live answers cost 3 for 1 to 3 results and 10 for 10.
            "credits": max(3, size) * (2 if raw_content else 1),
            "searchParameters": parameters,
            result_key(scope): results,
            "total": total,
        }
    )


def _reader(params: Mapping[str, Any], accept: str, pages: Mapping[str, str], today: date) -> Reply:
    url = params.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if url is None or parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _ParameterError(PARAMETER_ERROR, "url must be an http(s) URL")
    page = reader_page(url, today)
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


def _message_text(message: object, index: int) -> tuple[str, str]:
    """One OpenAI-style message as (role, text); only text content is understood."""
    if not isinstance(message, dict) or message.get("role") not in _ROLES:
        role = message.get("role") if isinstance(message, dict) else message
        raise _ParameterError(
            PARAMETER_ERROR,
            f"messages[{index}]: unsupported role {role!r}; expected one of {', '.join(_ROLES)}",
        )
    content = message.get("content")
    if isinstance(content, list):
        # OpenAI-style content parts: text ones only.
        if not all(isinstance(part, dict) and part.get("type") == "text" for part in content):
            raise _ParameterError(
                PARAMETER_ERROR, f"messages[{index}]: only text content is supported"
            )
        content = "".join(str(part.get("text", "")) for part in content)
    if not isinstance(content, str):
        raise _ParameterError(PARAMETER_ERROR, f"messages[{index}]: content must be text")
    return message["role"], content


def _conversation(params: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """The question (``q``, else the last user message) and the messages before it."""
    if "q" in params or "messages" not in params:
        return _text(params.get("q"), "q"), []
    messages = params["messages"]
    if not isinstance(messages, list) or not messages:
        raise _ParameterError(QUERY_REQUIRED, "messages must be a non-empty list")
    turns = [_message_text(message, index) for index, message in enumerate(messages)]
    last_user = max((i for i, (role, _) in enumerate(turns) if role == "user"), default=None)
    if last_user is None:
        raise _ParameterError(QUERY_REQUIRED, "messages hold no user message")
    return _text(turns[last_user][1], "a user message"), turns[:last_user]


def _chat(params: Mapping[str, Any], today: date) -> Reply:
    q, history = _conversation(params)
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
    reply = chat_answer(
        q,
        history,
        scope,
        model,
        concise=_flag(params, "conciseSnippet"),
        today=today,
        reasoning=model in _REASONING_MODELS,
    )
    credits = _CHAT_CREDITS[model]
    if stream:
        return _event_stream(reply, model)
    if answer_format == "simple":
        return json_reply({"answer": reply.text, "citations": reply.citations, "credits": credits})
    message = {"role": "assistant", "content": reply.text}
    if reply.reasoning:
        # As OpenAI-compatible reasoning APIs do: the thinking beside the answer.
        message["reasoning_content"] = "".join(reply.reasoning)
    return json_reply(
        {
            "id": reply.id,
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "citations": reply.citations,
            "usage": reply.usage(),
            "credits": credits,
        }
    )


def _event_stream(reply: ChatAnswer, model: str) -> Reply:
    """OpenAI-style chunks whatever the format: the citations, the thinking (of reasoning
    models), the answer in pieces, then a last chunk with the usage, then ``[DONE]``."""

    def chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "id": reply.id,
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [{"index": 0, "delta": delta, **extra}],
        }

    text = reply.text
    events = [
        chunk({"citations": reply.citations}),
        *(chunk({"reasoning_content": step}) for step in reply.reasoning),
        *(
            chunk({"content": text[i : i + _STREAM_PIECE]})
            for i in range(0, len(text), _STREAM_PIECE)
        ),
        {**chunk({}, finish_reason="stop"), "usage": reply.usage()},
    ]
    parts = tuple(b"data: " + dump_json(event) + b"\n\n" for event in events)
    return Reply(
        200,
        (("Content-Type", EVENT_STREAM_TYPE), ("Cache-Control", "no-cache")),
        (*parts, b"data: [DONE]\n\n"),
        streamed=True,
    )
