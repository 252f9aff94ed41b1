"""What the emulator's own tests share: a query, the live fixtures, and small helpers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx

QUERY = "LangChain 是什么"
# A fixed day, so dates in answers are the same whenever the tests run.
TODAY = date(2025, 6, 15)
FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    """A file of ``fixtures/``: parsed when JSON, else its text."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return json.loads(text) if name.endswith(".json") else text


def search(client: httpx.Client, **params: Any) -> dict[str, Any]:
    """A successful search's answer; the scope defaults to ``webpage``."""
    response = client.post("/search", json={"scope": "webpage", **params})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert "errCode" not in body, body
    return body


def sse_data(text: str) -> list[str]:
    """The ``data:`` payloads of an event stream, in order."""
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]
