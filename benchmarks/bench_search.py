"""The search benchmark: the package against a bare httpx call, the thinnest LangChain tool
and retriever doing the same work, and langchain-tavily (--quick: a shorter run). What
each row measures, and why the baselines are fair: benchmarks/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import re
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
from _harness import Measure, Report, ainterleave, interleave, parser, run, run_async
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, StructuredTool
from langchain_tavily import TavilySearch

from langchain_metaso import InMemoryCache, MetasoRetriever, MetasoSearchInput, MetasoSearchTool
from langchain_metaso.testing import EmulatorProcess, MetasoEmulator, load_seed_response

KEY = "test-key"
SEED = load_seed_response()
QUERY = SEED["searchParameters"]["q"]
RESULTS = 10  # the seed answer's: every contender must get all ten
TEXTS = [item.get("summary") or item["snippet"] for item in SEED["webpages"]]
CALL = {"name": "search", "args": {"query": QUERY}, "id": "call-1", "type": "tool_call"}
HEADERS = {"Authorization": f"Bearer {KEY}"}
CHINESE_DATE = re.compile(r"(\d{4})年(\d{2})月(\d{2})日")
BODY = {"q": QUERY, "scope": "webpage", "includeSummary": True, "size": RESULTS}
# HTTPS to a distant host, simulated: 30 ms to open a connection, 20 ms an answer.
LOOPBACK = {"latency": 0.0, "connection_delay": 0.0, "max_in_flight": None}
HTTPS = {"latency": 0.020, "connection_delay": 0.030, "max_in_flight": None}
CONDITIONS = {"loopback": LOOPBACK, "simulated HTTPS": HTTPS}
BATCH, IN_FLIGHT, BATCH_LATENCY = 200, 16, 0.050
# The targets: a ratio at most this.
TOOL_LIMIT, PEER_LIMIT, BATCH_LIMIT = 1.15, 0.5, 1.5
IMPORT_LIMIT, MEMORY_LIMIT, CACHE_LIMIT = 1.1, 4, 0.05
TOOL, RETRIEVER, BARE, PEER = "MetasoSearchTool", "MetasoRetriever", "bare httpx", "TavilySearch"
THIN, RICH, THIN_RETRIEVER = "thin @tool", "thin @tool, package's schema", "thin BaseRetriever"


def tavily_answer() -> str:
    """The seed's results in the shape of Tavily's ``/search`` answer."""
    results = [
        {"url": item["link"], "title": item["title"], "content": text, "score": 0.9}
        for item, text in zip(SEED["webpages"], TEXTS, strict=True)
    ]
    return json.dumps({"query": QUERY, "answer": None, "images": [], "results": results})


def answered(result: Any) -> bool:
    """Whether a call got the ten results: as Documents, a ToolMessage's, or JSON."""
    if isinstance(result, ToolMessage):
        # TavilySearch answers JSON text, its failures too ({"error": ...}): read the text.
        with contextlib.suppress(ValueError):
            result = json.loads(str(result.content)) if result.artifact is None else result.artifact
    if isinstance(result, dict):
        result = result.get("webpages") or result.get("results") or ()
    return isinstance(result, list) and len(result) == RESULTS


# --- the baselines: the package's work, as thin as LangChain allows -------------------------


def thin_id(url: str) -> str:
    """The package's id: ``uuid5(NAMESPACE_URL, url)``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, url))


def thin_answer(payload: Mapping[str, Any], query: str) -> tuple[str, list[Document]]:
    """The package's text and Documents, built by hand."""
    documents = []
    for item in payload["webpages"]:
        used = next(key for key in ("summary", "snippet", "title", "link") if item.get(key))
        metadata = {key: value for key, value in item.items() if key != used and value is not None}
        metadata |= {"source": item["link"], "scope": "webpage", "query": query}
        if day := CHINESE_DATE.fullmatch(item.get("date", "")):  # 2025年03月17日
            metadata["published"] = "-".join(day.groups())
        document = Document(id=thin_id(item["link"]), page_content=item[used], metadata=metadata)
        documents.append(document)
    content = "\n\n".join(
        f"[{n}] {doc.metadata['title']}\n{doc.metadata['source']}\n{doc.page_content}"
        for n, doc in enumerate(documents, start=1)
    )
    return content, documents


@dataclass
class Bare:
    """The floor of HTTP: one shared client (an ``httpx.Client`` for ``invoke``, an
    ``AsyncClient`` for ``ainvoke``), the same request, ``.json()``; ``limit`` bounds the
    requests in flight."""

    url: str
    client: Any
    limit: asyncio.Semaphore | None = None

    def invoke(self, query: str) -> Any:
        return self.client.post(self.url, json=BODY | {"q": query}, headers=HEADERS).json()

    async def ainvoke(self, query: str) -> Any:
        async with self.limit or contextlib.nullcontext():
            response = await self.client.post(self.url, json=BODY | {"q": query}, headers=HEADERS)
        return response.json()

    async def abatch(self, queries: list[str]) -> list[Any]:
        return await asyncio.gather(*map(self.ainvoke, queries))


def thin_tool(bare: Bare, *, rich: bool = False) -> BaseTool:
    """The thinnest tool doing the bare call; ``rich``: behind the package's own argument
    schema, which tells LangChain's cost of a richer schema from the package's own."""

    def search(query: str, **_: Any) -> tuple[str, list[Document]]:
        return thin_answer(bare.invoke(query), query)

    async def asearch(query: str, **_: Any) -> tuple[str, list[Document]]:
        return thin_answer(await bare.ainvoke(query), query)

    schema = MetasoSearchInput if rich else None
    return StructuredTool.from_function(
        search,
        asearch,
        "thin_search",
        "Search.",
        args_schema=schema,
        response_format="content_and_artifact",
    )


class ThinRetriever(BaseRetriever):
    bare: Any

    def _get_relevant_documents(self, query: str, **_: Any) -> list[Document]:
        return thin_answer(self.bare.invoke(query), query)[1]

    async def _aget_relevant_documents(self, query: str, **_: Any) -> list[Document]:
        return thin_answer(await self.bare.ainvoke(query), query)[1]


def contenders(server: EmulatorProcess, bare: Bare) -> dict[str, tuple[Any, Any]]:
    """name: (runnable, its input)."""
    return {
        TOOL: (MetasoSearchTool(metaso_api_key=KEY, base_url=server.url), CALL),
        RETRIEVER: (MetasoRetriever(metaso_api_key=KEY, base_url=server.url), QUERY),
        BARE: (bare, QUERY),
        THIN: (thin_tool(bare), CALL),
        RICH: (thin_tool(bare, rich=True), CALL),
        THIN_RETRIEVER: (ThinRetriever(bare=bare), QUERY),
        PEER: (TavilySearch(tavily_api_key=KEY, api_base_url=f"{server.url}/tavily"), CALL),
    }


def counts(report: Report, settings: Mapping[str, Any]) -> tuple[int, int]:
    """(warm-up calls, measured calls) per contender: fewer when each takes 20 ms."""
    calls = report.count(100, 15) if settings["latency"] else report.count(400, 60)
    return report.count(20, 5), calls


# --- rows 1 and 2: one call -----------------------------------------------------------------


def latency_rows(report: Report, m: dict[str, Measure], settings: Mapping[str, Any]) -> None:
    peer = PEER_LIMIT if settings is HTTPS else None
    report.measure(
        m[TOOL], (m[THIN], TOOL_LIMIT), (m[RICH], None), (m[BARE], None), (m[PEER], peer)
    )
    report.measure(m[RETRIEVER], (m[THIN_RETRIEVER], TOOL_LIMIT), (m[THIN], None), (m[PEER], peer))
    for name in (BARE, THIN, RICH, THIN_RETRIEVER):
        report.measure(m[name])
    report.measure(m[PEER], (m[BARE], None))


def sync_latency(report: Report, server: EmulatorProcess) -> None:
    with httpx.Client() as client:
        entrants = contenders(server, Bare(f"{server.url}/search", client))
        # The thin baselines must do the package's work: the same Documents, exactly.
        package = entrants[TOOL][0].invoke(CALL).artifact
        for name in (THIN, RICH, THIN_RETRIEVER):
            runnable, given = entrants[name]
            result = runnable.invoke(given)
            assert getattr(result, "artifact", result) == package, f"{name} differs"
        for label, settings in CONDITIONS.items():
            server.set(**settings)
            report.section(f"1. One call, invoke, {label}")
            timed = {name: partial(r.invoke, given) for name, (r, given) in entrants.items()}
            latency_rows(report, interleave(timed, answered, *counts(report, settings)), settings)


@run_async
async def async_latency(report: Report, server: EmulatorProcess) -> None:
    async with httpx.AsyncClient() as aclient:
        entrants = contenders(server, Bare(f"{server.url}/search", aclient))
        for label, settings in CONDITIONS.items():
            server.set(**settings)
            report.section(f"2. One call, ainvoke, {label}")
            timed = {name: partial(r.ainvoke, given) for name, (r, given) in entrants.items()}
            measures = await ainterleave(timed, answered, *counts(report, settings))
            latency_rows(report, measures, settings)


# --- row 3: a batch under a rate limit ------------------------------------------------------


async def batch(server: EmulatorProcess, name: str) -> tuple[float, list[Any]]:
    """(seconds, answers) of one contender's batch."""
    pool = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    async with httpx.AsyncClient(limits=pool) as aclient:
        bare = Bare(f"{server.url}/search", aclient, asyncio.Semaphore(IN_FLIGHT))
        entrants = contenders(server, bare)
        runnable, given = entrants[name]
        start = time.perf_counter()
        answers = await runnable.abatch([given] * BATCH)
        seconds = time.perf_counter() - start
        await entrants[TOOL][0].aclose()
        return seconds, answers


def rate_limit(report: Report, server: EmulatorProcess) -> None:
    runs = report.count(3, 1)
    report.section(
        f"3. {BATCH} calls at once (abatch); the server answers after 50 ms, 429 + "
        f"Retry-After: 1 beyond {IN_FLIGHT} in flight; wall time, median of {runs}"
    )
    ideal = Measure(f"ideal: ceil({BATCH}/{IN_FLIGHT}) x 50 ms")
    ideal.samples.append(math.ceil(BATCH / IN_FLIGHT) * BATCH_LATENCY)
    names = {TOOL: TOOL, PEER: PEER, THIN: f"{THIN}, Semaphore(16)", BARE: f"{BARE}, Semaphore(16)"}
    walls, outcomes = {}, {}
    for name, label in names.items():
        walls[name], answers, at_server = Measure(label), [], []
        for _ in range(runs):
            server.set(latency=BATCH_LATENCY, connection_delay=0.0, max_in_flight=IN_FLIGHT)
            server.reset()
            seconds, results = asyncio.run(batch(server, name))
            walls[name].samples.append(seconds)
            answers.append(sum(map(answered, results)))
            stats = server.stats
            at_server.append((stats.rejected_429, stats.requests, stats.peak_in_flight))
        outcomes[name] = min(answers), [max(column) for column in zip(*at_server, strict=True)]
    for name, (got, counted) in outcomes.items():
        mine = name == TOOL
        floors = [(walls[THIN], None), (walls[BARE], None)] if mine else []
        report.measure(walls[name], (ideal, BATCH_LIMIT if mine else None), *floors)
        target, ok = (f"{BATCH}/{BATCH}", got == BATCH) if mine else ("", None)
        report.fact("  answered (worst run)", f"{got}/{BATCH}", target, ok)
        report.fact("  429s / requests / peak in flight", " / ".join(map(str, counted)))


# --- row 4: import time ----------------------------------------------------------------------

DEPS = (
    "from langchain_core.tools import BaseTool; "
    "from langchain_core.retrievers import BaseRetriever; import httpx"
)
PACKAGE = "from langchain_metaso import MetasoSearchTool, MetasoRetriever"


def python(code: str) -> str:
    command = [sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout


def imports(report: Report, server: EmulatorProcess) -> None:
    # Both halves in one process: between processes, medians move by 10 % on a shared
    # machine, more than the package's own share.
    runs = report.count(10, 5)
    report.section(f"4. Import, in one fresh process, median of {runs} after one unmeasured")
    code = (
        f"import time; t0 = time.perf_counter(); {DEPS}; t1 = time.perf_counter(); {PACKAGE}; "
        "print(t1 - t0, time.perf_counter() - t0)"
    )
    deps, both = Measure("LangChain's bases + httpx"), Measure("the same, then the package")
    for run_ in range(runs + 1):
        alone, together = map(float, python(code).split())
        if run_:  # the first one warms the OS file cache and writes .pyc files
            deps.samples.append(alone)
            both.samples.append(together)
    report.measure(both, (deps, IMPORT_LIMIT))
    new = python(
        f"import sys; {DEPS}; old = set(sys.modules); {PACKAGE}; print(*set(sys.modules) - old)"
    )
    modules = sorted(name for name in new.split() if not name.startswith("langchain_metaso"))
    report.fact("modules imported beyond the bases + httpx (below)", len(modules))
    report.notes.append(f"row 4, imported beyond the bases + httpx: {', '.join(modules)}")


# --- row 5: memory ---------------------------------------------------------------------------


def memory(report: Report, server: EmulatorProcess) -> None:
    # 100 results, each with about 5 KB of raw page text, mostly Chinese.
    items, filler = SEED["webpages"], "".join(TEXTS)
    results = [
        items[n % 10]
        | {"link": f"{items[n % 10]['link']}?n={n}", "position": n + 1}
        | {"content": (f"第{n}页。" + filler * 3).encode()[:5000].decode(errors="ignore")}
        for n in range(100)
    ]
    body = json.dumps(SEED | {"webpages": results, "total": 100}, ensure_ascii=False).encode()
    report.section(
        f"5. Memory (tracemalloc) of one call: 100 results with raw content, "
        f"{len(body) / 1e6:.2f} MB of JSON, from the emulator in process"
    )
    transport = MetasoEmulator(fixed_answers={"/search": body}).transport()
    settings: dict[str, Any] = {"metaso_api_key": KEY, "base_url": "http://metaso.bench"}
    settings |= {"transport": transport, "include_raw_content": True}
    retriever, tool = MetasoRetriever(k=100, **settings), MetasoSearchTool(size=100, **settings)
    json_size = Measure("JSON size", [len(body)], "B")
    for name, function, limit in (
        (f"{RETRIEVER}.invoke, k=100", lambda: retriever.invoke(QUERY), MEMORY_LIMIT),
        (f"{TOOL}.invoke, size=100", lambda: tool.invoke(CALL), None),
        ("json.loads alone", lambda: json.loads(body), None),
    ):
        function()  # first-call caches (schemas, imports) are not a call's cost
        peak, kept = Measure(f"{name}: peak", unit="B"), Measure(f"{name}: retained", unit="B")
        for _ in range(report.count(5, 2)):
            gc.collect()
            tracemalloc.start()
            result = function()  # alive until measured: its bytes are what a call retains
            current, highest = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            del result
            peak.samples.append(highest)
            kept.samples.append(current)
        report.measure(peak, (json_size, limit))
        report.measure(kept, (json_size, None))


# --- row 6: cache ----------------------------------------------------------------------------


def cache(report: Report, server: EmulatorProcess) -> None:
    report.section(f"6. A repeated {TOOL}.invoke, cached against uncached")
    uncached = MetasoSearchTool(metaso_api_key=KEY, base_url=server.url)
    cached = MetasoSearchTool(metaso_api_key=KEY, base_url=server.url, cache=InMemoryCache())
    expected = 1  # its first call, the one miss, falls in the first condition
    for label, settings in reversed(CONDITIONS.items()):
        server.set(**settings)
        server.reset()
        warmup, calls = counts(report, settings)
        contenders = {f"cache hit, {label}": cached, f"no cache, {label}": uncached}
        timed = {name: partial(tool.invoke, CALL) for name, tool in contenders.items()}
        hit, miss = interleave(timed, answered, warmup, calls).values()
        report.measure(hit, (miss, CACHE_LIMIT if settings is HTTPS else None))
        # The server counts every uncached call; the rest came from the cached tool.
        sent = server.stats.requests - (warmup + calls)
        report.fact(
            f"requests the cached tool sent in {warmup + calls} calls",
            sent,
            str(expected),
            sent == expected,
        )
        expected = 0


if __name__ == "__main__":
    steps = [sync_latency, async_latency, rate_limit, imports, memory, cache]
    tavily = {"/tavily/search": tavily_answer()}
    sys.exit(run(parser(__doc__).parse_args(), steps, api_key=KEY, fixed_answers=tavily))
