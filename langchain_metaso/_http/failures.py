"""How a failed answer becomes a typed error, in one module: transport errors, HTTP
statuses, 302.AI's and Metaso's error payloads, web pages, bad JSON, redirects, answers
too large or too slow. Each message is written here once.

The provider's own code wins over the HTTP status: 302.AI answers failures with
``{"error": {"err_code": <negative>, "message": ...}}`` and the status of each code is
not known. The tables decide the class; the class, whether it is retried (``retry``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from langchain_metaso._http.call import Call
from langchain_metaso._http.retry import parse_retry_after
from langchain_metaso._parsing import as_int
from langchain_metaso.errors import (
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoConnectionError,
    MetasoError,
    MetasoInsufficientCreditsError,
    MetasoRateLimitError,
    MetasoResponseError,
    MetasoServerError,
    MetasoTimeoutError,
)
from langchain_metaso.providers import DEFAULT_BASE_URL, METASO_CN_BASE_URL

__all__ = ["WRONG_URL", "WRONG_URL_HINT", "CallErrors", "ErrorKind", "Reply", "error_kind"]

EXCERPT_CHARS = 300
# A page is never pasted into a message: it only says where we landed.
WEB_PAGE = "an HTML page, not an answer of the Metaso API"

WRONG_URL_HINT = (
    "This URL does not look like the Metaso API: check the base URL (base_url= or "
    f"METASO_BASE_URL), e.g. {DEFAULT_BASE_URL} for 302.AI or {METASO_CN_BASE_URL} for metaso.cn."
)

READER_HINT = "The reader could not read that page (gone, blocked or not text): try another URL."


@dataclass(frozen=True)
class ErrorKind:
    """The error class an answer stands for, advice that beats the class's own, and
    whether it says something no request can get past (``None``: the class says)."""

    error: type[MetasoAPIError]
    hint: str | None = None
    fails_every_request: bool | None = None


# Nothing of the API answers there: a typo in base_url, not a passing failure.
WRONG_URL = ErrorKind(MetasoAPIError, WRONG_URL_HINT, fails_every_request=True)


Auth, Credits, Server = MetasoAuthenticationError, MetasoInsufficientCreditsError, MetasoServerError

# 302.AI's codes by what they mean, each with the advice its error gives.
_CODES: tuple[tuple[type[MetasoAPIError], dict[int, str]], ...] = (
    # The key.
    (Auth, {
        -10001: "302.AI got no API key: set METASO_API_KEY or pass metaso_api_key=.",
        -10005: "The 302.AI credential expired: log in to 302.AI and create a new key.",
    }),
    # Credits and quotas: never "check your key".
    (Credits, {
        -10004: "The 302.AI balance is too low: top it up, then retry.",
        -10006: "The key's total quota is used up: raise it in the 302.AI dashboard.",
        -10007: "The key's daily quota is used up: retry tomorrow or raise it.",
        -10012: "The hourly quota is used up: retry in an hour or raise it.",
    }),
    # Transient, on the provider's side: retried.
    (Server, {
        -10003: "302.AI had a network error: retry in a moment.",
        -10008: "302.AI has no channel available right now: retry in a moment.",
        -1024: "The upstream service timed out: retry in a moment.",
    }),
    # The request itself: retrying would not help.
    (MetasoAPIError, {
        -10011: "302.AI found the request invalid: check the parameters.",
        -10009: "302.AI does not support this function on this endpoint.",
        -10002: "The tool is disabled or deleted on 302.AI: enable it there.",
    }),
)  # fmt: skip

PROVIDER_CODES: dict[int, ErrorKind] = {
    code: ErrorKind(kind, hint) for kind, hints in _CODES for code, hint in hints.items()
}
# Not found: like a wrong base_url, no request can succeed until it changes.
PROVIDER_CODES[-10010] = ErrorKind(
    MetasoAPIError, f"302.AI found no such resource. {WRONG_URL_HINT}", fails_every_request=True
)
for _code in (-10009, -10002):  # the function or tool, off on 302.AI: every request fails
    PROVIDER_CODES[_code] = replace(PROVIDER_CODES[_code], fails_every_request=True)

STATUSES: dict[int, ErrorKind] = {
    401: ErrorKind(Auth),
    403: ErrorKind(Auth),
    402: ErrorKind(Credits),
    429: ErrorKind(MetasoRateLimitError),
    404: WRONG_URL,
    405: WRONG_URL,
    501: WRONG_URL,
}

# A message saying the balance or quota is short, whatever the status.
_CREDITS_WORDS = re.compile(
    r"balance|insufficient|out of credits|quota|余额|积分不足|额度不足", re.IGNORECASE
)


def error_kind(status: int, code: Any, message: str, *, html: bool = False) -> ErrorKind:
    """What an error answer means: by the provider's code, then the status, then its words.

    ``html``: the body was a web page. Below 500 (and 501) that is not the API at all;
    a 5xx page is taken for a proxy's error page in front of the right server.
    """
    number = as_int(code)
    by_code = None if number is None else PROVIDER_CODES.get(number)
    if by_code is not None:
        return by_code
    if html and (status < 500 or status == 501):
        return WRONG_URL
    by_status = STATUSES.get(status)
    if by_status is not None:
        return by_status
    if _CREDITS_WORDS.search(message):
        return ErrorKind(Credits)
    if status >= 500:
        return ErrorKind(Server)
    return ErrorKind(MetasoAPIError)


@dataclass
class Reply:
    """What one attempt came back with: the response (if a status line came), its body
    (``None`` for an event stream still unread), and the transport's error, if any (after
    the status line when ``response`` is set too)."""

    response: httpx.Response | None = None
    body: bytes | None = None
    error: httpx.RequestError | None = None

    def opened(self, call: Call[Any]) -> bool:
        """Whether this is the event stream ``call`` asked for, its body still to be read
        (it then keeps its concurrency slot until it is closed)."""
        response = self.response
        return (
            call.expect == "events"
            and self.error is None
            and response is not None
            and response.status_code < 300
            and response.headers.get("content-type", "").lower().startswith("text/event-stream")
        )

    @property
    def cut_off(self) -> bool:
        """Whether a success's status line came, and then the body broke off: the server
        may already have charged for it, so it is not sent again."""
        response = self.response
        return self.error is not None and response is not None and response.status_code < 300


@dataclass(frozen=True)
class CallErrors:
    """The typed errors of one call's failed answers: each names the endpoint and the URL,
    and none carries the API key (``secret``), whatever the server echoed."""

    endpoint: str
    url: str
    secret: str
    timeout: float
    total_timeout: float | None
    max_response_bytes: int

    def answered(self, reply: Reply) -> tuple[httpx.Response, bytes]:
        """The response and its body, if it is a success; else the error it stands for."""
        response = reply.response
        if reply.error is not None:
            status = None if response is None else response.status_code
            raise self.connection(reply.error, status=status) from reply.error
        assert response is not None  # a reply has a response or an error
        body = reply.body or b""
        if response.status_code >= 300:
            raise self.http_error(response, body)
        return response, body

    def connection(self, exc: httpx.RequestError, *, status: int | None = None) -> MetasoError:
        """A transport error; ``status`` when it came after the status line (then it is not
        retried: the server may already have charged for the answer it was sending)."""
        problem = self.redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if not isinstance(exc, httpx.TransportError):  # e.g. a body that fails to decompress
            return MetasoResponseError(problem, endpoint=self.endpoint, url=self.url)
        timed_out = isinstance(exc, httpx.TimeoutException)
        advice = None
        if status is not None and status < 300:
            advice = (
                f"The answer was cut off after HTTP {status}: it is not sent again, as the "
                "server may already have charged for it; retry if that is acceptable."
            )
        elif timed_out:
            limits = f"timeout={self.timeout:g} s for each step of an attempt"
            if self.total_timeout is not None:
                limits += f", total_timeout={self.total_timeout:g} s for the whole call"
            advice = (
                f"No answer in time ({limits}). Check the network and the base URL, "
                "then retry, or raise these limits for a slow service."
            )
        error = MetasoTimeoutError if timed_out else MetasoConnectionError
        return error(
            problem,
            endpoint=self.endpoint,
            url=self.url,
            advice=advice,
            answered=status is not None,
        )

    def out_of_time(self, last: MetasoConnectionError | None = None) -> MetasoTimeoutError:
        """A call out of ``total_timeout``: waiting for a free slot, or with no time left to
        retry after ``last``, a failure to reach the server (its cause only: its advice
        would be a second one)."""
        limit = f"total_timeout={self.total_timeout:g} s"
        if last is None:
            problem = f"{limit} passed waiting for a free max_concurrency slot"
        else:
            problem = f"{type(last).__name__}, and no time left for another attempt within {limit}"
        return MetasoTimeoutError(
            problem,
            endpoint=self.endpoint,
            url=self.url,
            advice="Raise total_timeout (None for no bound) or retry later.",
        )

    def cooling_down(self, left: float) -> MetasoRateLimitError:
        return MetasoRateLimitError(
            "not sent: an earlier request was answered HTTP 429 and the wait it asked "
            "for is not over",
            status_code=429,
            endpoint=self.endpoint,
            url=self.url,
            retry_after=round(left, 1),
        )

    def too_large(self) -> MetasoResponseError:
        return self.unusable(
            f"the answer is larger than max_response_bytes={self.max_response_bytes} "
            "(counted decompressed); raise max_response_bytes if such answers are expected"
        )

    def unusable(
        self, problem: str, shown: str = "", *, fails_every_request: bool = False
    ) -> MetasoResponseError:
        """An answer this call cannot use; ``shown``: the start of what came."""
        return MetasoResponseError(
            self.redact(problem),
            endpoint=self.endpoint,
            body_excerpt=shown,
            url=self.url,
            fails_every_request=fails_every_request,
        )

    def not_event_stream(self, response: httpx.Response, body: bytes) -> MetasoError:
        """A success that is no event stream: Metaso reports bad parameters as HTTP 200
        JSON, even to a stream request."""
        self.json_payload(response, body)
        content_type = response.headers.get("content-type", "no content type")
        problem = f"expected a server-sent event stream (text/event-stream), got {content_type}"
        return self.unusable(problem, self.excerpt(body))

    def web_page(self) -> MetasoResponseError:
        """A web page where an answer was expected: ``base_url`` is not the API."""
        return self.unusable(WEB_PAGE, fails_every_request=True)

    def json_payload(self, response: httpx.Response, body: bytes) -> dict[str, Any]:
        """The JSON object of a success, or the error it is (bad JSON, a web page, not an
        object, an error payload answered with HTTP 200)."""
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
            if is_html(response, body):
                raise self.web_page() from exc
            content_type = response.headers.get("content-type", "no content type")
            raise self.unusable(
                f"the body is not JSON ({content_type})", self.excerpt(body)
            ) from exc
        if not isinstance(payload, dict):
            problem = f"expected a JSON object, got {type(payload).__name__}"
            raise self.unusable(problem, self.excerpt(body))
        if is_error(payload):
            raise self.api_error(response.status_code, payload)
        return payload

    def http_error(self, response: httpx.Response, body: bytes) -> MetasoError:
        """The error an HTTP status of 300 or more stands for."""
        if response.is_redirect:
            location = response.headers.get("location", "elsewhere")
            # Only a target that looks like this endpoint is worth pointing base_url at; a
            # login or landing page is not the API.
            like_api = urlsplit(location).path.rstrip("/").endswith("/" + self.endpoint)
            return MetasoAPIError(
                self.redact(f"redirected to {location}"),
                status_code=response.status_code,
                endpoint=self.endpoint,
                url=self.url,
                hint=(
                    "Set base_url (or METASO_BASE_URL) to the address it redirects to."
                    if like_api
                    else WRONG_URL_HINT
                ),
                fails_every_request=True,
            )
        html = is_html(response, body)
        try:
            payload = None if html else json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            payload = {"message": ("" if html else self.excerpt(body)) or response.reason_phrase}
        retry_after = parse_retry_after(response)
        return self.api_error(response.status_code, payload, retry_after=retry_after, html=html)

    def api_error(
        self,
        status: int,
        payload: dict[str, Any],
        *,
        retry_after: float | None = None,
        html: bool = False,
    ) -> MetasoAPIError:
        """The error a provider's error payload (or an HTTP status) stands for."""
        error = payload.get("error")
        source = error if isinstance(error, dict) else payload
        message = next(
            (
                str(source[key])
                for key in ("errMsg", "message", "msg", "detail", "error")
                if isinstance(source.get(key), str | int) and str(source[key])
            ),
            "",
        )
        if html:
            message = f"{WEB_PAGE} ({message or 'no text'})"
        code = next(
            (
                source[key]
                for key in ("errCode", "err_code", "code")
                if isinstance(source.get(key), str | int)
            ),
            None,
        )
        if isinstance(code, str):  # a provider may echo the key in its code too
            code = self.redact(code)
        # Cut short: a provider may echo the whole request (a 10,000-character query).
        message = self.shorten(message)
        kind = error_kind(status, code, message, html=html)
        hint = kind.hint
        if hint is None and kind.error is MetasoAPIError and self.endpoint == "reader":
            hint = READER_HINT  # the reader's own refusal: the page, not the parameters
        return kind.error(
            message,
            status_code=status,
            endpoint=self.endpoint,
            url=self.url,
            code=code,
            retry_after=retry_after,
            hint=hint,
            fails_every_request=kind.fails_every_request,
        )

    def excerpt(self, body: bytes) -> str:
        return self.shorten(body[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace"))

    def shorten(self, text: str) -> str:
        text = self.redact(text)
        return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"

    def redact(self, text: str) -> str:
        return text.replace(self.secret, "***") if self.secret else text


def is_error(payload: dict[str, Any]) -> bool:
    """Whether a JSON answer is an error: Metaso's business errors (``errCode``) and
    302.AI's envelope come with HTTP 200 too."""
    code = payload.get("errCode", payload.get("err_code"))
    return code not in (None, 0, "0") or isinstance(payload.get("error"), dict)


def is_html(response: httpx.Response, body: bytes) -> bool:
    """Whether the body is a web page (a typo in base_url, a proxy's error page)."""
    content_type = response.headers.get("content-type", "").lower()
    start = body[:64].lstrip().lower()
    return "html" in content_type or start.startswith((b"<!doctype html", b"<html"))
