"""ChatMetaso's stream benchmark: ChatMetaso.stream against reading the same emulator stream with
bare httpx (the target's baseline) and with the thinnest LangChain chat model doing that bare
read (the floor of any chat model): time to the first token of the answer and to the end of
the stream, on loopback and with 20 ms before the first byte (--quick: fewer rounds).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
from _harness import Measure, Report, parser, run, schedule
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from langchain_metaso import ChatMetaso
from langchain_metaso.testing import EmulatorProcess

KEY = "bench-key"
QUESTION = "秘塔 AI 搜索是哪家公司做的?"
BODY = {"model": "fast", "scope": "webpage", "format": "chat_completions", "stream": True}
TARGET = 1.2  # ChatMetaso.stream within 1.2x bare httpx, for both figures
BARE, THIN, PACKAGE = "bare httpx", "thin BaseChatModel", "ChatMetaso.stream"


def bare_pieces(client: httpx.Client, base_url: str) -> Iterator[str]:
    """The answer's text pieces, read with one kept-alive client and nothing else."""
    body = BODY | {"messages": [{"role": "user", "content": QUESTION}]}
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"}
    url = f"{base_url}/chat/completions"
    with client.stream("POST", url, json=body, headers=headers) as response:
        for line in response.iter_lines():
            if line == "data: [DONE]":
                break
            if line.startswith("data: "):
                piece = json.loads(line[6:])["choices"][0]["delta"].get("content")
                if piece:
                    yield piece


class ThinChat(BaseChatModel):
    """The floor of a LangChain chat model: ``_stream`` is the bare read, each piece one
    ``AIMessageChunk``; no sources, no reasoning, no retries, no stop sequences."""

    base_url: str
    client: httpx.Client

    @property
    def _llm_type(self) -> str:
        return "thin"

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        raise NotImplementedError

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for piece in bare_pieces(self.client, self.base_url):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


def read(pieces: Iterable[str]) -> tuple[float, str]:
    """(the clock at the first piece, the whole text)."""
    first, parts = None, []
    for piece in pieces:
        first = first or time.perf_counter()
        parts.append(piece)
    return first or time.perf_counter(), "".join(parts)


def streams(report: Report, server: EmulatorProcess) -> None:
    chat = ChatMetaso(api_key=KEY, base_url=server.url)
    expected = chat.invoke(QUESTION).text
    with httpx.Client(timeout=30) as bare, httpx.Client(timeout=30) as thin:
        thin_chat = ThinChat(base_url=server.url, client=thin)
        readers: dict[str, Callable[[], tuple[float, str]]] = {
            BARE: lambda: read(bare_pieces(bare, server.url)),
            THIN: lambda: read(chunk.text for chunk in thin_chat.stream(QUESTION)),
            PACKAGE: lambda: read(chunk.text for chunk in chat.stream(QUESTION) if chunk.text),
        }
        for label, latency in (("loopback", 0.0), ("20 ms before the first byte", 0.02)):
            server.set(latency=latency)
            first = {name: Measure(name) for name in readers}
            whole = {name: Measure(name) for name in readers}
            for name, reader in schedule(readers, 20, report.count(200, 30)):
                start = time.perf_counter()
                first_at, text = reader()
                end = time.perf_counter()
                for measures, seconds in ((first, first_at - start), (whole, end - start)):
                    if name:  # not a warm-up call
                        measures[name].samples.append(seconds)
                        measures[name].failures += text != expected
            for figure, measures in (("first token", first), ("whole stream", whole)):
                report.section(f"{figure}, {label}")
                report.measure(measures[PACKAGE], (measures[BARE], TARGET), (measures[THIN], None))
                report.measure(measures[THIN], (measures[BARE], None))
                report.measure(measures[BARE])


if __name__ == "__main__":
    sys.exit(run(parser(__doc__).parse_args(), [streams], api_key=KEY))
