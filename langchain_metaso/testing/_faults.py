"""Scripted failures: each :class:`Fault` replaces the normal handling of one request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._reply import (
    TEXT_TYPE,
    Interruption,
    Reply,
    business_error,
    http_error,
    json_reply,
    provider_error,
    retry_after_header,
)


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the server, consumed by one request.

    Build faults with the classmethods; ``MetasoEmulator.script`` queues them.
    """

    kind: str
    # Extra wait before the outcome, on top of the emulator's latency.
    seconds: float = 0.0
    # A fixed answer replacing the normal one; None keeps the normal answer.
    reply: Reply | None = field(default=None, repr=False)
    interruption: Interruption | None = None
    truncate: bool = False
    # With ``truncate``: how much gets through (events of a stream, bytes of a body).
    keep: int | None = None

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | None = None,
        body: bytes | str | dict[str, Any] | None = None,
    ) -> Fault:
        """Answer HTTP ``code``; the body defaults to a 302.AI-shaped JSON error."""
        retry = retry_after_header(retry_after)
        if body is None:
            reply = http_error(code, retry_after=retry_after)
        elif isinstance(body, dict):
            reply = json_reply(body, code, retry)
        else:
            raw = body.encode("utf-8") if isinstance(body, str) else body
            reply = Reply(code, (("Content-Type", TEXT_TYPE), *retry), (raw,))
        return cls(f"status {code}", reply=reply)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait ``seconds``, then answer normally; a client whose read timeout is shorter
        times out, in process as over a socket."""
        return cls("delay", seconds=seconds)

    @classmethod
    def timeout(cls) -> Fault:
        """Never answer: in process raise ``httpx.ReadTimeout``; over a socket stay silent.

        The socket stays silent until the client hangs up or the server stops (at most 30 s).
        """
        return cls("timeout", interruption=Interruption.TIMEOUT)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without answering."""
        return cls("drop", interruption=Interruption.DROP)

    @classmethod
    def reset(cls) -> Fault:
        """Reset the connection (TCP RST): the client sees ECONNRESET, an ``httpx.ReadError``."""
        return cls("reset", interruption=Interruption.RESET)

    @classmethod
    def truncated(cls, after: int | None = None) -> Fault:
        """Send the normal answer's headers, part of its body, then close the connection.

        Args:
            after: How much of the body gets through: for a streamed answer that many
                events (each ``data:`` line with its blank line), for another that many
                bytes. By default about half.
        """
        if after is not None and after < 0:
            raise ValueError(f"after must be at least 0, not {after}")
        return cls("truncated", truncate=True, keep=after)

    @classmethod
    def garbage(
        cls,
        body: bytes = b"<html>502 Bad Gateway</html>",
        status: int = 200,
        content_type: str = "text/html",
    ) -> Fault:
        """Answer a body that is not the API's JSON, as a misbehaving proxy would."""
        return cls("garbage", reply=Reply(status, (("Content-Type", content_type),), (body,)))

    @classmethod
    def provider_error(
        cls, err_code: int, status: int | None = None, message: str | None = None
    ) -> Fault:
        """Answer 302.AI's error envelope ``{"error": {"err_code": err_code, "message": ...}}``.

        The message defaults to 302.AI's own for the code (e.g. -10004, "Insufficient account
        balance"). The HTTP status each code comes with is not known: the default is a guess
        that fits the code (401 for -10001 and -10005, 402 for the balance and quota codes,
        503 for -10003 and -10008, 504 for -1024, 400 for -10009 and -10011, 403 for -10002,
        404 for -10010, 500 for unknown codes); pass ``status`` to test any other.
        """
        return cls(f"provider error {err_code}", reply=provider_error(err_code, status, message))

    @classmethod
    def business_error(cls, code: int = 1000, message: str = "参数错误") -> Fault:
        """Answer HTTP 200 with ``{"errCode": code, "errMsg": message}``."""
        return cls(f"business error {code}", reply=business_error(code, message))
