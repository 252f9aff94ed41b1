"""``Call``: one API call, as the endpoint modules describe it to the HTTP core."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

__all__ = ["ACCEPT", "Call", "Expect"]

T = TypeVar("T")

Expect = Literal["json", "text", "events"]
"""What the answer is: a JSON object, plain text, or a server-sent event stream."""

ACCEPT: dict[str, str] = {
    "json": "application/json",
    "text": "text/plain",
    "events": "text/event-stream",
}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: where it goes, what it sends, how its answer is read.

    ``parse`` gets the decoded answer (a JSON object when ``expect`` is ``"json"``,
    the text when ``"text"``) and raises ``ValueError`` if its shape is unusable. An
    ``"events"`` call is a server-sent event stream, sent with ``MetasoClient.stream``
    or ``astream``: ``parse`` then gets each event's JSON data in turn.
    """

    endpoint: str
    body: Mapping[str, Any]
    parse: Callable[[Any], T]
    expect: Expect = "json"

    def content(self) -> bytes:
        """The body as sent: JSON in UTF-8."""
        try:
            # Unescaped Chinese is a third of the bytes of its \\uXXXX form.
            return json.dumps(self.body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: only its escaped form is valid UTF-8
            return json.dumps(self.body).encode("ascii")
