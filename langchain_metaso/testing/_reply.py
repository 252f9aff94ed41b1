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
    # The body is cut in the middle and the connection closed.
    truncated: bool = False

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
        """The parts that reach the client: all of them, or about half when truncated."""
        if not self.truncated:
            return self.chunks
        if self.streamed:
            return self.chunks[: len(self.chunks) // 2]
        body = self.body
        return (body[: len(body) // 2],)


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
    """An HTTP error in 302.AI's shape ``{"error": {"err_code", "message", "type"}}``."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    error = {"err_code": status, "message": message or _default_message(status), "type": kind}
    return json_reply({"error": error}, status, (*headers, *retry_after_header(retry_after)))
