"""What tests of the emulator, and tests comparing with its answers, share: a query, the
live fixtures, and small helpers that talk to it with plain httpx."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from langchain_metaso.testing import MetasoEmulator

QUERY = "LangChain 是什么"
# A fixed day, so dates in answers are the same whenever the tests run.
TODAY = date(2025, 6, 15)
FIXTURES = Path(__file__).parent / "fixtures"
# The stream of the API reference, reconstructed: sources, reasoning, text, then the end.
CHAT_STREAM = FIXTURES / "chat_stream.reconstructed.txt"


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


def business_error(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """The business error the emulator answers at HTTP 200 for ``body``, with its message."""
    response = client.post(path, json=body)
    assert response.status_code == 200
    error: dict[str, Any] = response.json()
    assert error["errMsg"]
    return error


def sse_data(text: str) -> list[str]:
    """The ``data:`` payloads of an event stream, in order."""
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def answer_of(emulator: MetasoEmulator, endpoint: str, **body: Any) -> dict[str, Any]:
    """What ``emulator`` answers at ``endpoint`` for ``body``, read with plain httpx (not
    with the code under test), in JSON."""
    headers = {"Authorization": f"Bearer {emulator.api_key}", "Accept": "application/json"}
    with httpx.Client(transport=emulator.transport()) as client:
        response = client.post(f"http://metaso.test/{endpoint}", json=body, headers=headers)
    value: dict[str, Any] = response.json()
    return value


def chat_stream_events() -> list[dict[str, Any]]:
    """The data of each event of ``CHAT_STREAM``, up to ``[DONE]``."""
    data = sse_data(CHAT_STREAM.read_text(encoding="utf-8"))
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]
