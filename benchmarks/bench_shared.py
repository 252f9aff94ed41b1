"""The shared-cache benchmark: what a shared cache saves a team. Identical calls in flight at
once, a Redis cache hit against a fresh call, and two processes sharing one Redis cache.

    python benchmarks/bench_shared.py            # needs redis-server for rows 2 and 3
    python benchmarks/bench_shared.py --quick

The Redis rows start their own redis-server on a free 127.0.0.1 port (stopped after);
without it they are skipped and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

from _harness import Report, interleave, parser, run, run_async

from langchain_metaso import InMemoryCache, MetasoRetriever, MetasoStoreCache
from langchain_metaso.testing import EmulatorProcess

KEY = "test-key"
LATENCY = 0.05  # each answer waits, as a distant server's would


async def identical_calls(report: Report, server: EmulatorProcess) -> None:
    calls = 100
    server.set(latency=LATENCY)
    report.section(f"{calls} identical ainvoke at once; the server answers after {LATENCY:g} s")
    for cache in (None, InMemoryCache()):
        retriever = MetasoRetriever(metaso_api_key=KEY, base_url=server.url, k=5, cache=cache)
        server.reset()
        start = time.perf_counter()
        answers = await asyncio.gather(*(retriever.ainvoke("秘塔") for _ in range(calls)))
        took = time.perf_counter() - start
        sent = server.stats.requests
        same = all(docs == answers[0] for docs in answers)
        name = "with a cache" if cache else "without a cache"
        if cache:
            report.fact(f"{name}: requests sent", sent, "1", sent == 1)
        else:
            report.fact(f"{name}: requests sent", sent, f"{calls}", sent == calls)
        report.fact(f"{name}: wall time", f"{took * 1000:.0f} ms")
        report.fact(f"{name}: every call got the same documents", same, "True", same)
        await retriever.aclose()
    server.set(latency=0)


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A ``redis-server`` of this run on a free loopback port, or None if none is installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    process = subprocess.Popen([*command, "no"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def redis_rows(report: Report, server: EmulatorProcess) -> None:
    with redis_server() as url:
        if url is None:
            report.section("Redis cache: skipped, redis-server is not installed")
            report.notes.append("rows 2-3 need redis-server: apt-get install redis-server")
            return
        redis_hit(report, server, url)
        two_processes(report, server, url)


def redis_hit(report: Report, server: EmulatorProcess, url: str) -> None:
    report.section("A Redis cache hit against a fresh call, loopback, invoke")
    settings = {"metaso_api_key": KEY, "base_url": server.url, "k": 10}
    cached = MetasoRetriever(cache=MetasoStoreCache.from_redis_url(url, ttl=600), **settings)
    fresh = MetasoRetriever(**settings)
    hit, miss = "MetasoStoreCache (Redis) hit", "no cache: a request"
    measures = interleave(
        {hit: lambda: cached.invoke("秘塔"), miss: lambda: fresh.invoke("秘塔")},
        lambda docs: len(docs) == 10,
        warmup=5,
        calls=report.count(300, 60),
    )
    report.measure(measures[hit], (measures[miss], 0.5))


# Run in each of two processes: the same searches, one Redis cache; prints requests sent.
WORKER = """
import sys
from langchain_metaso import MetasoRetriever, MetasoStoreCache
base_url, redis_url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
cache = MetasoStoreCache.from_redis_url(redis_url, ttl=600, namespace="bench-two")
retriever = MetasoRetriever(metaso_api_key="test-key", base_url=base_url, k=3, cache=cache)
for number in range(count):
    retriever.invoke(f"问题 {number}")
"""


def two_processes(report: Report, server: EmulatorProcess, url: str) -> None:
    searches = report.count(200, 40)
    report.section(f"Two processes, one Redis cache: the same {searches} searches, one after")
    sent = []
    for _ in ("first", "second"):
        before = server.stats.requests
        command = [sys.executable, "-c", WORKER, server.url, url, str(searches)]
        subprocess.run(command, check=True, timeout=300)
        sent.append(server.stats.requests - before)
    hits = searches - sent[1]
    report.fact("first process: requests sent", sent[0], f"{searches}", sent[0] == searches)
    report.fact("second process: requests sent", sent[1], "0", sent[1] == 0)
    report.fact("second process: hit ratio", f"{hits / searches:.0%}", "100%", hits == searches)


if __name__ == "__main__":
    parsed = parser(__doc__).parse_args()
    sys.exit(run(parsed, [run_async(identical_calls), redis_rows], api_key=KEY))
