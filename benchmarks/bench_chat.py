"""Benchmark of issue 13: ``ChatMetaso.stream`` against reading the same emulator stream
with bare ``httpx``: time to the first token of the answer, and to the end of the stream.

    python benchmarks/bench_chat.py                 # 200 rounds a condition
    python benchmarks/bench_chat.py --rounds 50     # quicker

The emulator runs in a child process (so its threads do not compete with the measured
client for the GIL) and streams the chat answer of one question: the sources first, then
the text in pieces of 8 characters (25 for this question), then ``[DONE]``. Three contenders:
bare httpx (the target's baseline), the thinnest LangChain chat model doing that same
read (a ``BaseChatModel`` whose ``_stream`` yields each piece: the floor of any chat model,
for information), and ``ChatMetaso.stream``. Two conditions:
loopback as it is (the strict test of the client's overhead), and with 20 ms before the
first byte, as a distant server would take. In each round both contenders read the stream
once, in alternating order, on kept-alive connections, after a warm-up; every stream is
checked to give the whole answer. Target: ``ChatMetaso.stream`` within 1.2x of bare httpx,
for the median of both figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from langchain_metaso import ChatMetaso

KEY = "bench-key"
QUESTION = "秘塔 AI 搜索是哪家公司做的?"
TARGET = 1.2
WARMUP = 20
# The child serves until its stdin closes (the benchmark ended, however it ended).
SERVER = """
import sys
from langchain_metaso.testing import MetasoEmulator

emulator = MetasoEmulator(api_key=sys.argv[1], latency=float(sys.argv[2]))
with emulator.serve() as base_url:
    print(base_url, flush=True)
    sys.stdin.read()
"""

# One read of the stream: (seconds to the first text, seconds to the end, the text).
Reading = tuple[float, float, str]
BARE, THIN, PACKAGE = "bare httpx", "thin BaseChatModel", "ChatMetaso.stream"


@contextmanager
def emulator(latency: float) -> Iterator[str]:
    """The base URL of an emulator served by a child process."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER, KEY, str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


def bare_events(client: httpx.Client, base_url: str) -> Iterator[str]:
    """The answer's text pieces, read with one kept-alive client and nothing else."""
    body = {
        "messages": [{"role": "user", "content": QUESTION}],
        "model": "fast",
        "scope": "webpage",
        "format": "chat_completions",
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"}
    url = f"{base_url}/chat/completions"
    with client.stream("POST", url, json=body, headers=headers) as response:
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                break
            piece = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if piece:
                yield piece


def timed(pieces: Callable[[], Iterator[str]]) -> Callable[[], Reading]:
    def read() -> Reading:
        start = time.perf_counter()
        first = None
        parts = []
        for piece in pieces():
            first = first or time.perf_counter()
            parts.append(piece)
        end = time.perf_counter()
        return (first or end) - start, end - start, "".join(parts)

    return read


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
        for piece in bare_events(self.client, self.base_url):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


def readers(base_url: str) -> dict[str, Callable[[], Reading]]:
    bare, thin = httpx.Client(timeout=30), httpx.Client(timeout=30)
    thin_chat = ThinChat(base_url=base_url, client=thin)
    chat = ChatMetaso(api_key=KEY, base_url=base_url)
    return {
        BARE: timed(lambda: bare_events(bare, base_url)),
        THIN: timed(lambda: (chunk.text for chunk in thin_chat.stream(QUESTION))),
        PACKAGE: timed(lambda: (chunk.text for chunk in chat.stream(QUESTION) if chunk.text)),
    }


def run(latency: float, rounds: int) -> dict[str, list[Reading]]:
    with emulator(latency) as base_url:
        contenders = readers(base_url)
        expected = ChatMetaso(api_key=KEY, base_url=base_url).invoke(QUESTION).text
        for read in contenders.values():
            for _ in range(WARMUP):
                read()
        readings: dict[str, list[Reading]] = {name: [] for name in contenders}
        names = list(contenders)
        for number in range(rounds):
            turn = number % len(names)  # the order rotates, so no one is always first
            for name in names[turn:] + names[:turn]:
                reading = contenders[name]()
                if reading[2] != expected:
                    raise SystemExit(f"{name} read a different answer: {reading[2][:80]!r}")
                readings[name].append(reading)
        return readings


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def report(condition: str, readings: dict[str, list[Reading]]) -> list[bool]:
    print(f"\n{condition}")
    print(f"  {'contender':<22}{'first token, ms':>24}{'whole stream, ms':>24}")
    print(f"  {'':<22}{'median':>12}{'p90':>12}{'median':>12}{'p90':>12}")
    medians = {}
    for name, values in readings.items():
        first = [1000 * value[0] for value in values]
        total = [1000 * value[1] for value in values]
        medians[name] = statistics.median(first), statistics.median(total)
        print(
            f"  {name:<22}{medians[name][0]:>12.2f}{p90(first):>12.2f}"
            f"{medians[name][1]:>12.2f}{p90(total):>12.2f}"
        )
    results = []
    for index, figure in enumerate(("first token", "whole stream")):
        ratio = medians[PACKAGE][index] / medians[BARE][index]
        floor = medians[PACKAGE][index] / medians[THIN][index]
        verdict = "PASS" if ratio <= TARGET else "MISS"
        print(f"  {figure}: {ratio:.2f}x {BARE} (target {TARGET}x): {verdict}; {floor:.2f}x {THIN}")
        results.append(ratio <= TARGET)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="rounds a condition (200)")
    args = parser.parse_args()
    if not 5 <= args.rounds <= 2000:
        parser.error("keep the run bounded: 5-2000 rounds")
    print(f"load average: {os.getloadavg()[0]:.2f}; {args.rounds} rounds, warm-up {WARMUP}")
    verdicts = [
        *report("loopback", run(0.0, args.rounds)),
        *report("20 ms before the first byte", run(0.02, args.rounds)),
    ]
    print(f"\nload average: {os.getloadavg()[0]:.2f}; {sum(verdicts)}/{len(verdicts)} PASS")


if __name__ == "__main__":
    main()
