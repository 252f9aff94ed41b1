"""What the emulator answers, described independently of how it is delivered.

The in-process transport and the socket server both turn a :class:`Plan` into bytes
(or into an exception), so every behaviour is decided once, here and in ``_api``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
EVENT_STREAM_TYPE = "text/event-stream; charset=utf-8"


class Interruption(enum.Enum):
    """Ways an exchange ends without a response."""

    DROP = "drop"
    TIMEOUT = "timeout"
    RESET = "reset"


@dataclass(frozen=True)
class Reply:
    """An HTTP response: status, headers and body parts."""

    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: tuple[bytes, ...]
    # Streamed replies go out part by part (chunked encoding) instead of with a Content-Length.
    streamed: bool = False
    # The body is cut and the connection closed: after ``keep`` parts of a streamed reply
    # (its events) or ``keep`` bytes of another, or about halfway when ``keep`` is None.
    truncated: bool = False
    keep: int | None = None

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def framing(self) -> tuple[str, str]:
        """The header that tells the client where the body ends."""
        if self.streamed:
            return ("Transfer-Encoding", "chunked")
        return ("Content-Length", str(len(self.body)))

    def delivered(self) -> tuple[bytes, ...]:
        """The parts that reach the client: all of them, or those before the cut."""
        if not self.truncated:
            return self.chunks
        if self.streamed:
            return self.chunks[: self._cut(len(self.chunks))]
        body = self.body
        return (body[: self._cut(len(body))],)

    def _cut(self, length: int) -> int:
        return length // 2 if self.keep is None else self.keep


@dataclass(frozen=True)
class Plan:
    """How one exchange goes: wait ``delay`` seconds, then send the reply or fail."""

    delay: float
    outcome: Reply | Interruption


def dump_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def json_reply(value: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, (("Content-Type", JSON_TYPE), *headers), (dump_json(value),))


def business_error(code: int, message: str) -> Reply:
    """Metaso reports bad parameters with HTTP 200 and a non-zero ``errCode``."""
    return json_reply({"errCode": code, "errMsg": message})


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
}


# 302.AI's error codes (from its own open-source apps) with its messages, and an HTTP status
# for each. The real statuses are not known (302.AI may well send 200): these are guesses
# that fit each code's meaning, and clients must map by code whatever the status.
PROVIDER_ERRORS: dict[int, tuple[int, str]] = {
    -10001: (401, "Missing 302 Apikey"),
    -10002: (403, "This tool has been disabled/deleted"),
    -10003: (503, "Network error, please try again later"),
    -10004: (402, "Insufficient account balance"),
    -10005: (401, "Account credential expired, please log in again"),
    -10006: (402, "Total Quota reached maximum limit"),
    -10007: (402, "Daily Quota reached maximum limit"),
    -10008: (503, "No available channels currently"),
    -10009: (400, "Current API function not supported"),
    -10010: (404, "Resource not found"),
    -10011: (400, "Invalid request"),
    -10012: (402, "This free tool's hour quota reached maximum limit"),
    -1024: (504, "AI interface connection timeout"),
}
# For a code outside the table.
_UNKNOWN_PROVIDER_ERROR = (500, "Unknown error")


def provider_error(err_code: int, status: int | None = None, message: str | None = None) -> Reply:
    """302.AI's error envelope ``{"error": {"err_code", "message"}}``; status and message
    default to the code's entry in :data:`PROVIDER_ERRORS`."""
    default_status, default_message = PROVIDER_ERRORS.get(err_code, _UNKNOWN_PROVIDER_ERROR)
    error = {"err_code": err_code, "message": default_message if message is None else message}
    return json_reply({"error": error}, default_status if status is None else status)


def _default_message(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def retry_after_header(seconds: float | None) -> tuple[tuple[str, str], ...]:
    # Emitted as given, so a test can hand a client a fractional value such as 0.05.
    return () if seconds is None else (("Retry-After", str(seconds)),)


def http_error(
    status: int,
    message: str | None = None,
    *,
    retry_after: float | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Reply:
    """The emulator's own HTTP errors, ``{"error": {"err_code", "message", "type"}}``: 302.AI's
    envelope with the HTTP status as ``err_code`` and an OpenAI-style ``type``."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    error = {"err_code": status, "message": message or _default_message(status), "type": kind}
    return json_reply({"error": error}, status, (*headers, *retry_after_header(retry_after)))
