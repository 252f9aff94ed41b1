"""A server-sent events (``text/event-stream``) parser, fed one line at a time, with no I/O
(the sync and async streams share it through ``body.EventReader``). It follows the
WHATWG rules (``field: value`` lines, ``:`` comments, a blank line ends an event,
multi-line ``data`` joined by ``\\n``) and the OpenAI convention the Metaso chat stream uses:
each event's data is JSON, and ``data: [DONE]`` ends the stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_metaso.errors import MetasoResponseError

__all__ = ["SSEDecoder", "ServerSentEvent"]

DONE = "[DONE]"


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event's JSON data (the stream names no event types nor ids)."""

    data: Any


class SSEDecoder:
    """Turns lines of an event stream into :class:`ServerSentEvent`s; ``endpoint`` is
    named in errors, ``excerpt`` shortens and redacts an event's data shown in one."""

    def __init__(self, endpoint: str, *, excerpt: Callable[[str], str] = str) -> None:
        self.endpoint = endpoint
        self.done = False
        self._excerpt = excerpt
        self._data: list[str] = []
        self._first = True

    def feed(self, line: str) -> ServerSentEvent | None:
        """Read one line (its line ending optional); return the event it completes, if any.

        Raises:
            MetasoResponseError: the completed event's data is not JSON.
        """
        if self.done:
            return None
        line = line.rstrip("\r\n")
        if self._first:
            self._first = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith(":"):  # a comment, e.g. a keep-alive ping
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            if value.strip() == DONE and not self._data:
                # Ends at once: a server may keep the connection open after it.
                self.done = True
                return None
            self._data.append(value)
        # "event", "id", "retry" and unknown fields only matter to a reconnecting browser.
        return None

    def finish(self) -> None:
        """Mark the end of input.

        Raises:
            MetasoResponseError: the stream ended before ``data: [DONE]`` (e.g. cut
                short by a proxy), so what came may be only part of the answer.
        """
        self.feed("")
        if not self.done:
            raise MetasoResponseError(
                f"the event stream ended before 'data: {DONE}', so it may be incomplete",
                endpoint=self.endpoint,
            )

    def _dispatch(self) -> ServerSentEvent | None:
        data = "\n".join(self._data)
        self._data = []
        if not data:
            return None
        if data.strip() == DONE:
            self.done = True
            return None
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise MetasoResponseError(
                "an event's data is not JSON",
                endpoint=self.endpoint,
                body_excerpt=self._excerpt(data),
            ) from exc
        return ServerSentEvent(payload)
