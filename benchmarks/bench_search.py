"""Benchmark of issue 5: langchain-metaso against raw httpx, the thinnest LangChain tool
and langchain-tavily, all in one run against the same loopback server.

    python benchmarks/bench_search.py            # full run, a few minutes on 2 cores
    python benchmarks/bench_search.py --quick    # smaller counts, well under a minute
    python benchmarks/bench_search.py --json results.json
    python benchmarks/bench_search.py --profile  # also: where a tool call's time goes

What each row measures, and why the baselines are fair, is in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

# Tracing would add network calls to every measured call.
for _variable in ("LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING", "LANGSMITH_TRACING"):
    os.environ.pop(_variable, None)

import httpx  # noqa: E402
from _servers import FakeServer  # noqa: E402
from langchain_core.callbacks import (  # noqa: E402
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document  # noqa: E402
from langchain_core.messages import ToolMessage  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.tools import BaseTool, tool  # noqa: E402
from langchain_tavily import TavilySearch  # noqa: E402

from langchain_metaso import MetasoRetriever, MetasoSearchTool  # noqa: E402
from langchain_metaso.testing import SEED_QUERY, load_seed_response  # noqa: E402
from langchain_metaso.tools import MetasoSearchInput  # noqa: E402

KEY = "test-key"
QUERY = SEED_QUERY
RESULTS = 10  # the seed response holds ten results; every contender must get all ten
# The simulation of HTTPS to a distant host: 30 ms TLS handshake on a new connection,
# 20 ms of server time on every answer.
NO_HANDSHAKE = {"connection_delay": 0.0, "latency": 0.0, "max_in_flight": None}
HANDSHAKE = {"connection_delay": 0.030, "latency": 0.020, "max_in_flight": None}
# Row 3: answers after 50 ms, 429 + Retry-After beyond 16 requests in flight.
BATCH_SIZE = 200
BATCH_LIMIT = 16
BATCH_LATENCY = 0.050
# Row 5: a 100-result answer with raw content of about 5 KB a result.
MEMORY_RESULTS = 100
CONTENT_BYTES = 5000

TOOL_LIMIT = 1.15  # per call, within 1.15x of the thinnest LangChain tool
PEER_LIMIT = 0.5  # with the handshake simulated, at most 0.5x the peer
BATCH_WALL_LIMIT = 1.5  # within 1.5x the ideal wall time
IMPORT_LIMIT = 1.1
MEMORY_LIMIT = 4.0
CACHE_LIMIT = 0.05


@dataclass(frozen=True)
class Counts:
    warmup: int  # calls per contender before measuring, excluded
    fast: int  # measured calls per contender, no simulated delays
    slow: int  # measured calls per contender, handshake simulated (>= 20 ms each)
    batch_runs: int
    import_runs: int
    memory_runs: int


FULL = Counts(warmup=20, fast=400, slow=100, batch_runs=3, import_runs=10, memory_runs=5)
QUICK = Counts(warmup=5, fast=60, slow=15, batch_runs=1, import_runs=5, memory_runs=2)


# --- results and the table ---------------------------------------------------------------


@dataclass
class Measure:
    """Samples of one contender; times in seconds, memory in bytes."""

    name: str
    samples: list[float]
    unit: str = "time"  # "time" or "bytes"
    failures: int = 0  # calls whose answer was not the expected ten results

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


@dataclass
class Line:
    row: str
    name: str
    median: str = ""
    p90: str = ""
    baseline: str = ""
    baseline_median: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # the same, as data, for --json
    notes: list[str] = field(default_factory=list)  # printed under the table
    current: str = ""  # the section being filled

    def measure(
        self,
        row: str,
        measure: Measure,
        against: Iterable[tuple[Measure, float | None, str]] = (),
        role: str = "package",
    ) -> None:
        """One contender, then one line per baseline: ratio and, when given, a ``<=`` target."""
        name = measure.name + (f"  [{measure.failures} FAILED calls]" if measure.failures else "")
        self.lines.append(
            Line(row, name, fmt(measure.median, measure.unit), fmt(measure.p90, measure.unit))
        )
        comparisons = []
        for baseline, limit, label in against:
            ratio = measure.median / baseline.median
            verdict = "" if limit is None else ("PASS" if ratio <= limit else "MISS")
            if limit is not None and (measure.failures or baseline.failures):
                verdict = "MISS"  # a fast error is not a fast answer
            self.lines.append(
                Line(
                    "",
                    "",
                    baseline=baseline.name,
                    baseline_median=fmt(baseline.median, baseline.unit),
                    ratio=f"{ratio:.2f}x",
                    target="" if limit is None else f"<= {limit:g}x {label}".rstrip(),
                    verdict=verdict,
                )
            )
            comparisons.append(
                {
                    "baseline": baseline.name,
                    "baseline_median": baseline.median,
                    "ratio": ratio,
                    "limit": limit,
                    "verdict": verdict,
                }
            )
        self.rows.append(
            {
                "section": self.current,
                "row": row,
                "name": measure.name,
                "role": role,
                "unit": "s" if measure.unit == "time" else "bytes",
                "median": measure.median,
                "p90": measure.p90,
                "n": len(measure.samples),
                "failures": measure.failures,
                "comparisons": comparisons,
            }
        )

    def fact(self, row: str, name: str, value: str, target: str = "", verdict: str = "") -> None:
        """A counted outcome (successes, 429s...) rather than a timing."""
        self.lines.append(Line(row, name, value, target=target, verdict=verdict))
        self.rows.append(
            {
                "section": self.current,
                "row": row,
                "name": name,
                "value": value,
                "target": target,
                "verdict": verdict,
            }
        )

    def section(self, title: str) -> None:
        self.current = title
        self.lines.append(Line("--", title))

    def render(self) -> str:
        header = Line(
            "#",
            "measurement",
            "median",
            "p90",
            "against",
            "its median",
            "ratio",
            "target",
            "verdict",
        )
        table = [header, *self.lines]
        columns = list(asdict(header))
        widths = {
            column: max(len(getattr(line, column)) for line in table if line.row != "--")
            for column in columns
        }
        out = [line_text(header, columns, widths)]
        rule = "  ".join("-" * widths[column] for column in columns)
        for line in self.lines:
            if line.row == "--":
                out.append(f"{rule}\n{line.name}")
                continue
            out.append(line_text(line, columns, widths))
        return "\n".join(text.rstrip() for text in out)


def line_text(line: Line, columns: list[str], widths: dict[str, int]) -> str:
    return "  ".join(getattr(line, column).ljust(widths[column]) for column in columns)


def fmt(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 1e6:.2f} MB"
    milliseconds = value * 1000
    return f"{milliseconds:.3f} ms" if milliseconds < 10 else f"{milliseconds:.1f} ms"


# --- the contenders ----------------------------------------------------------------------

HEADERS = {"Authorization": f"Bearer {KEY}", "Accept": "application/json"}
BODY = {"q": QUERY, "scope": "webpage", "includeSummary": True, "size": RESULTS}


def tool_call(name: str) -> dict[str, Any]:
    return {"name": name, "args": {"query": QUERY}, "id": "call-1", "type": "tool_call"}


def thin_document(item: Mapping[str, Any], query: str) -> Document:
    """The package's Document for one result, built by hand: the same text and metadata."""
    text, used = "(untitled result)", ""
    for key in ("summary", "snippet", "title", "link"):
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            text, used = value, key
            break
    metadata = {key: value for key, value in item.items() if key != used and value is not None}
    metadata.update(source=item.get("link") or "", scope="webpage", query=query)
    return Document(page_content=text, metadata=metadata)


def thin_answer(payload: Mapping[str, Any], query: str) -> tuple[str, list[Document]]:
    documents = [thin_document(item, query) for item in payload["webpages"]]
    content = "\n\n".join(
        f"[{index}] {doc.metadata.get('title', '')}\n{doc.metadata['source']}\n{doc.page_content}"
        for index, doc in enumerate(documents, start=1)
    )
    return content, documents


def thin_tool(search_url: str, client: httpx.Client, *, rich: bool = False) -> BaseTool:
    """The thinnest LangChain tool doing the bare call and building the same Documents.

    ``rich``: the same function behind the package's own argument schema (query, scope,
    size, page), to tell LangChain's cost of a richer schema from the package's own code.
    """

    def search(query: str, **_: Any) -> tuple[str, list[Document]]:
        """Search the web."""
        payload = client.post(search_url, json={**BODY, "q": query}, headers=HEADERS).json()
        return thin_answer(payload, query)

    if rich:
        return tool("thin_search", args_schema=MetasoSearchInput, **THIN)(search)
    return tool("thin_search", **THIN)(lambda query: search(query))


def athin_tool(
    search_url: str,
    aclient: httpx.AsyncClient,
    *,
    rich: bool = False,
    limit: asyncio.Semaphore | None = None,
) -> BaseTool:
    """``thin_tool`` for ``ainvoke``; ``limit`` bounds its requests in flight."""

    async def search(query: str, **_: Any) -> tuple[str, list[Document]]:
        """Search the web."""
        async with limit or contextlib.nullcontext():
            response = await aclient.post(search_url, json={**BODY, "q": query}, headers=HEADERS)
        return thin_answer(response.json(), query)

    async def one_argument(query: str) -> tuple[str, list[Document]]:
        """Search the web."""
        return await search(query)

    if rich:
        return tool("thin_search", args_schema=MetasoSearchInput, **THIN)(search)
    return tool("thin_search", **THIN)(one_argument)


THIN: dict[str, Any] = {"response_format": "content_and_artifact", "description": "Search."}


class ThinRetriever(BaseRetriever):
    """The thinnest retriever doing the bare call and building the same Documents."""

    search_url: str
    client: httpx.Client | None = None
    aclient: httpx.AsyncClient | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        assert self.client is not None
        payload = self.client.post(self.search_url, json=BODY, headers=HEADERS).json()
        return thin_answer(payload, query)[1]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        assert self.aclient is not None
        response = await self.aclient.post(self.search_url, json=BODY, headers=HEADERS)
        return thin_answer(response.json(), query)[1]


def ok_message(message: Any) -> bool:
    """A ToolMessage carrying the ten results (content and artifact)."""
    return (
        isinstance(message, ToolMessage)
        and message.status == "success"
        and isinstance(message.artifact, list)
        and len(message.artifact) == RESULTS
    )


def ok_tavily(message: Any) -> bool:
    # TavilySearch turns any failure into a *successful* message {"error": ...}: read the content.
    if not isinstance(message, ToolMessage) or message.status != "success":
        return False
    try:
        return len(json.loads(str(message.content))["results"]) == RESULTS
    except (ValueError, KeyError, TypeError):
        return False


def ok_documents(documents: Any) -> bool:
    return isinstance(documents, list) and len(documents) == RESULTS


def ok_payload(payload: Any) -> bool:
    return isinstance(payload, dict) and len(payload.get("webpages", ())) == RESULTS


Check = Callable[[Any], bool]


def time_sync(
    contenders: Mapping[str, tuple[Callable[[], Any], Check]], warmup: int, calls: int
) -> dict[str, Measure]:
    """Interleaved rounds (one call of each contender per round, rotating the order), so
    drift and other load on the machine spread over every contender alike."""
    for function, _ in contenders.values():
        for _ in range(warmup):
            function()
    measures = {name: Measure(name, []) for name in contenders}
    order = list(contenders.items())
    gc.collect()
    for round_ in range(calls):
        shift = round_ % len(order)
        for name, (function, check) in order[shift:] + order[:shift]:
            start = time.perf_counter()
            result = function()
            measures[name].samples.append(time.perf_counter() - start)
            measures[name].failures += not check(result)
    return measures


async def time_async(
    contenders: Mapping[str, tuple[Callable[[], Awaitable[Any]], Check]], warmup: int, calls: int
) -> dict[str, Measure]:
    """``time_sync`` for coroutines: one call at a time, on the running loop."""
    for function, _ in contenders.values():
        for _ in range(warmup):
            await function()
    measures = {name: Measure(name, []) for name in contenders}
    order = list(contenders.items())
    gc.collect()
    for round_ in range(calls):
        shift = round_ % len(order)
        for name, (function, check) in order[shift:] + order[:shift]:
            start = time.perf_counter()
            result = await function()
            measures[name].samples.append(time.perf_counter() - start)
            measures[name].failures += not check(result)
    return measures


# Contender names, shared by the sync and async rows.
TOOL = "MetasoSearchTool"
RETRIEVER = "MetasoRetriever"
BARE = "bare httpx POST + .json()"
THIN_TOOL = "thin @tool"
THIN_RICH = "thin @tool, package's 4-arg schema"
THIN_RETRIEVER = "thin BaseRetriever"
PEER = "TavilySearch"
CONDITIONS = (
    (False, NO_HANDSHAKE, "no simulated delay"),
    (True, HANDSHAKE, "handshake simulated: 30 ms a new connection, 20 ms an answer"),
)


def latency_rows(
    report: Report, row: str, how: str, measures: dict[str, Measure], handshake: bool
) -> None:
    for name, measure in measures.items():
        if name in (TOOL, PEER):
            measure.name = f"{name}.{how}(ToolCall)"
        elif name == RETRIEVER:
            measure.name = f"{name}.{how}"
    peer_limit = PEER_LIMIT if handshake else None
    peer_label = "peer" if handshake else ""
    report.measure(
        row,
        measures[TOOL],
        [
            (measures[THIN_TOOL], TOOL_LIMIT, "thin tool"),
            (measures[THIN_RICH], None, ""),
            (measures[BARE], None, ""),
            (measures[PEER], peer_limit, peer_label),
        ],
    )
    report.measure(
        row,
        measures[RETRIEVER],
        [
            (measures[THIN_RETRIEVER], TOOL_LIMIT, "thin retriever"),
            (measures[THIN_TOOL], None, ""),
            (measures[BARE], None, ""),
            (measures[PEER], peer_limit, peer_label),
        ],
    )
    for name in (BARE, THIN_TOOL, THIN_RICH, THIN_RETRIEVER):
        report.measure(row, measures[name], role="baseline")
    report.measure(row, measures[PEER], [(measures[BARE], None, "")], role="peer")


def row_sync_latency(report: Report, server: FakeServer, counts: Counts) -> None:
    search_url = f"{server.metaso_url}/search"
    metaso = MetasoSearchTool(metaso_api_key=KEY, base_url=server.metaso_url)
    retriever = MetasoRetriever(metaso_api_key=KEY, base_url=server.metaso_url)
    peer = TavilySearch(tavily_api_key=KEY, api_base_url=server.tavily_url)
    with httpx.Client() as client:
        thin = thin_tool(search_url, client)
        thin_rich = thin_tool(search_url, client, rich=True)
        thin_retriever = ThinRetriever(search_url=search_url, client=client)
        # The thin baselines must do the package's work: the same Documents, exactly.
        server.configure(**NO_HANDSHAKE)
        documents = metaso.invoke(tool_call(metaso.name)).artifact
        assert documents == thin.invoke(tool_call(thin.name)).artifact, "thin tool differs"
        assert documents == thin_rich.invoke(tool_call(thin.name)).artifact, "thin tool differs"
        assert retriever.invoke(QUERY) == thin_retriever.invoke(QUERY), "thin retriever differs"
        contenders: dict[str, tuple[Callable[[], Any], Check]] = {
            TOOL: (lambda: metaso.invoke(tool_call(metaso.name)), ok_message),
            RETRIEVER: (lambda: retriever.invoke(QUERY), ok_documents),
            BARE: (
                lambda: client.post(search_url, json=BODY, headers=HEADERS).json(),
                ok_payload,
            ),
            THIN_TOOL: (lambda: thin.invoke(tool_call(thin.name)), ok_message),
            THIN_RICH: (lambda: thin_rich.invoke(tool_call(thin.name)), ok_message),
            THIN_RETRIEVER: (lambda: thin_retriever.invoke(QUERY), ok_documents),
            PEER: (lambda: peer.invoke(tool_call(peer.name)), ok_tavily),
        }
        for handshake, settings, label in CONDITIONS:
            server.configure(**settings)
            report.section(f"1. Per-call latency, sync ({label})")
            calls = counts.slow if handshake else counts.fast
            measures = time_sync(contenders, counts.warmup, calls)
            latency_rows(report, "1", "invoke", measures, handshake)
    metaso.close()
    retriever.close()


async def row_async_latency(report: Report, server: FakeServer, counts: Counts) -> None:
    search_url = f"{server.metaso_url}/search"
    metaso = MetasoSearchTool(metaso_api_key=KEY, base_url=server.metaso_url)
    retriever = MetasoRetriever(metaso_api_key=KEY, base_url=server.metaso_url)
    peer = TavilySearch(tavily_api_key=KEY, api_base_url=server.tavily_url)
    async with httpx.AsyncClient() as aclient:
        thin = athin_tool(search_url, aclient)
        thin_rich = athin_tool(search_url, aclient, rich=True)
        thin_retriever = ThinRetriever(search_url=search_url, aclient=aclient)

        async def bare() -> Any:
            return (await aclient.post(search_url, json=BODY, headers=HEADERS)).json()

        contenders: dict[str, tuple[Callable[[], Awaitable[Any]], Check]] = {
            TOOL: (lambda: metaso.ainvoke(tool_call(metaso.name)), ok_message),
            RETRIEVER: (lambda: retriever.ainvoke(QUERY), ok_documents),
            BARE: (bare, ok_payload),
            THIN_TOOL: (lambda: thin.ainvoke(tool_call(thin.name)), ok_message),
            THIN_RICH: (lambda: thin_rich.ainvoke(tool_call(thin.name)), ok_message),
            THIN_RETRIEVER: (lambda: thin_retriever.ainvoke(QUERY), ok_documents),
            PEER: (lambda: peer.ainvoke(tool_call(peer.name)), ok_tavily),
        }
        for handshake, settings, label in CONDITIONS:
            server.configure(**settings)
            report.section(f"2. Per-call latency, async ({label})")
            calls = counts.slow if handshake else counts.fast
            measures = await time_async(contenders, counts.warmup, calls)
            latency_rows(report, "2", "ainvoke", measures, handshake)
    await metaso.aclose()
    await retriever.aclose()


def limits(connections: int) -> httpx.Limits:
    return httpx.Limits(max_connections=connections, max_keepalive_connections=connections)


async def timed(work: Awaitable[list[Any]]) -> tuple[float, list[Any]]:
    start = time.perf_counter()
    answers = await work
    return time.perf_counter() - start, answers


def row_rate_limit(report: Report, server: FakeServer, counts: Counts) -> None:
    ideal = math.ceil(BATCH_SIZE / BATCH_LIMIT) * BATCH_LATENCY
    report.section(
        f"3. Throughput under a rate limit: {BATCH_SIZE} queries at once, server answers after "
        f"{BATCH_LATENCY * 1000:.0f} ms, 429 + Retry-After: 1 beyond {BATCH_LIMIT} in flight; "
        f"{counts.batch_runs} run(s) each, wall time of the batch"
    )
    ideal_measure = Measure(f"ideal: ceil({BATCH_SIZE}/{BATCH_LIMIT}) x 50 ms", [ideal])
    search_url = f"{server.metaso_url}/search"
    calls = [tool_call("any") for _ in range(BATCH_SIZE)]

    async def package() -> tuple[float, list[Any]]:
        batch_tool = MetasoSearchTool(metaso_api_key=KEY, base_url=server.metaso_url)
        try:
            return await timed(batch_tool.abatch(calls))
        finally:
            await batch_tool.aclose()

    async def peer() -> tuple[float, list[Any]]:
        batch_tool = TavilySearch(tavily_api_key=KEY, api_base_url=server.tavily_url)
        return await timed(batch_tool.abatch(calls))

    async def thin_abatch() -> tuple[float, list[Any]]:
        async with httpx.AsyncClient(limits=limits(BATCH_LIMIT)) as aclient:
            thin = athin_tool(search_url, aclient, limit=asyncio.Semaphore(BATCH_LIMIT))
            return await timed(thin.abatch(calls))

    async def bare(semaphore: bool) -> tuple[float, list[Any]]:
        limit = asyncio.Semaphore(BATCH_LIMIT) if semaphore else contextlib.nullcontext()

        async def one(aclient: httpx.AsyncClient) -> Any:
            async with limit:
                return (await aclient.post(search_url, json=BODY, headers=HEADERS)).json()

        async with httpx.AsyncClient(limits=limits(BATCH_LIMIT)) as aclient:
            return await timed(asyncio.gather(*(one(aclient) for _ in range(BATCH_SIZE))))

    contenders: list[tuple[str, Callable[[], Awaitable[tuple[float, list[Any]]]], Check, str]] = [
        (f"{TOOL}.abatch, default settings", package, ok_message, "package"),
        (f"{PEER}.abatch, default settings", peer, ok_tavily, "peer"),
        ("thin @tool.abatch, Semaphore(16)", thin_abatch, ok_message, "baseline"),
        ("bare httpx gather, pool of 16 queues", lambda: bare(False), ok_payload, "baseline"),
        ("bare httpx gather, Semaphore(16)", lambda: bare(True), ok_payload, "baseline"),
    ]
    results: dict[str, tuple[Measure, int, str]] = {}
    for name, run, check, _ in contenders:
        walls, successes, per_run = [], [], []
        for _ in range(counts.batch_runs):
            server.configure(
                latency=BATCH_LATENCY,
                connection_delay=0.0,
                max_in_flight=BATCH_LIMIT,
                retry_after=1,
                reset=True,
            )
            wall, answers = asyncio.run(run())
            stats = server.stats()
            walls.append(wall)
            successes.append(sum(check(answer) for answer in answers))
            per_run.append(
                (sum(stats["rejected_429"].values()), stats["requests"], stats["peak_in_flight"])
            )
        worst = " / ".join(str(max(counted[i] for counted in per_run)) for i in range(3))
        results[name] = Measure(f"{name}: wall", walls), min(successes), worst
    thin_floor = results[contenders[2][0]][0]
    for name, _, _, role in contenders:
        measure, succeeded, counted = results[name]
        is_package = role == "package"
        against = [(ideal_measure, BATCH_WALL_LIMIT if is_package else None, "ideal")]
        if is_package:
            against.append((thin_floor, None, ""))
        report.measure("3", measure, against, role=role)
        report.fact(
            "3",
            f"{name}: succeeded (worst run)",
            f"{succeeded}/{BATCH_SIZE}",
            target=f"{BATCH_SIZE}/{BATCH_SIZE}" if is_package else "",
            verdict=("PASS" if succeeded == BATCH_SIZE else "MISS") if is_package else "",
        )
        report.fact("3", f"{name}: 429s / requests / peak in flight (max of runs)", counted)


IMPORTS = {
    "package": "import langchain_metaso",
    # The package's names load on first use: this is what a user's import really costs.
    "package classes": "from langchain_metaso import MetasoSearchTool, MetasoRetriever",
    "deps": "import langchain_core.tools, langchain_core.retrievers, httpx",
    # langchain_core.tools loads BaseTool lazily: this is what subclassing it costs.
    "deps+classes": "from langchain_core.tools import BaseTool; "
    "from langchain_core.retrievers import BaseRetriever; import httpx",
    "python": "pass",
}


def run_import(statement: str) -> tuple[float, float]:
    """(seconds inside the process for the import alone, wall seconds of the whole process)."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return float(done.stdout), time.perf_counter() - start


def run_split_import() -> tuple[float, float]:
    """(seconds for deps+classes, seconds for the package classes on top), one process."""
    code = (
        "import time; t0 = time.perf_counter(); "
        f"{IMPORTS['deps+classes']}; t1 = time.perf_counter(); "
        f"{IMPORTS['package classes']}; t2 = time.perf_counter(); "
        "print(t1 - t0, t2 - t1)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    deps, package = (float(part) for part in done.stdout.split())
    return deps, package


def row_import(report: Report, counts: Counts) -> None:
    report.section(
        f"4. Import time, fresh processes, median of {counts.import_runs} (interleaved, "
        "after one unmeasured run of each)"
    )
    for statement in IMPORTS.values():
        run_import(statement)  # warms the OS file cache and writes .pyc files
    inner = {key: Measure(f"{key}: in process", []) for key in IMPORTS}
    wall = {key: Measure(f"{key}: whole process", []) for key in IMPORTS}
    # Both halves timed in the same process: the noise between processes (often
    # +-10 % on a shared machine) cancels out of their ratio.
    together = Measure("deps+classes, then the package classes, in one process", [])
    alone = Measure("deps+classes, in that same process", [])
    keys = [*IMPORTS, "split"]
    for round_ in range(counts.import_runs):
        shift = round_ % len(keys)
        for key in keys[shift:] + keys[:shift]:
            if key == "split":
                deps, package = run_split_import()
                alone.samples.append(deps)
                together.samples.append(deps + package)
                continue
            seconds, process = run_import(IMPORTS[key])
            inner[key].samples.append(seconds)
            wall[key].samples.append(process)
    report.measure("4", together, [(alone, IMPORT_LIMIT, "deps+classes")])
    report.measure(
        "4",
        inner["package classes"],
        [(inner["deps+classes"], None, ""), (inner["deps"], None, "")],
    )
    report.measure(
        "4",
        wall["package classes"],
        [(wall["deps+classes"], None, ""), (wall["deps"], None, "")],
    )
    report.measure("4", inner["package"], [(inner["deps"], IMPORT_LIMIT, "deps")])
    for key in ("deps", "deps+classes"):
        report.measure("4", inner[key], role="baseline")
        report.measure("4", wall[key], role="baseline")
    report.measure("4", wall["python"], role="baseline")
    for key in ("package", "package classes", "deps", "deps+classes"):
        report.notes.append(f"row 4, {key}: {IMPORTS[key]}")
    extra = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, json; {IMPORTS['deps']}; before = set(sys.modules); "
            f"{IMPORTS['package classes']}; "
            "print(json.dumps(sorted(set(sys.modules) - before)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    modules = [m for m in json.loads(extra.stdout) if not m.startswith("langchain_metaso")]
    report.fact("4", "modules the package imports beyond deps (see notes)", str(len(modules)))
    report.notes.append(f"row 4, imported beyond deps: {', '.join(modules) or 'nothing'}")


def memory_payload() -> bytes:
    """A 100-result answer with raw page text of about 5 KB a result (mostly Chinese)."""
    seed = load_seed_response()
    base = seed["webpages"]
    filler = "".join(
        item.get("summary") or item.get("snippet") or item.get("title") or "" for item in base
    )
    results = []
    for index in range(MEMORY_RESULTS):
        item = dict(base[index % len(base)])
        item["link"] = f"{item['link']}?n={index}"
        item["position"] = index + 1
        text = f"第{index}页。" + filler
        while len(text.encode("utf-8")) < CONTENT_BYTES:
            text += filler
        item["content"] = text.encode("utf-8")[:CONTENT_BYTES].decode("utf-8", "ignore")
        results.append(item)
    payload = {**seed, "webpages": results, "total": MEMORY_RESULTS}
    payload["searchParameters"] = {**seed["searchParameters"], "size": MEMORY_RESULTS}
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def peak_memory(function: Callable[[], Any], runs: int) -> tuple[Measure, Measure]:
    """Peak and retained traced bytes of ``function`` (its result kept alive), per run."""
    function()  # first-call caches (schemas, imports) are not per-call cost
    peaks, kept = [], []
    for _ in range(runs):
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        result = function()
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del result
        peaks.append(peak - base)
        kept.append(current - base)
    return Measure("peak", peaks, "bytes"), Measure("retained", kept, "bytes")


def row_memory(report: Report, counts: Counts) -> None:
    body = memory_payload()
    report.section(
        f"5. Memory (tracemalloc): {MEMORY_RESULTS} results with ~{CONTENT_BYTES // 1000} KB raw "
        f"content each, {len(body) / 1e6:.2f} MB of JSON, through the client with an "
        "in-process transport"
    )
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, content=body, headers={"content-type": "application/json"}
        )
    )
    settings: dict[str, Any] = {
        "metaso_api_key": KEY,
        "base_url": "http://metaso.bench",
        "transport": transport,
        "include_raw_content": True,
    }
    retriever = MetasoRetriever(k=MEMORY_RESULTS, **settings)
    metaso = MetasoSearchTool(size=MEMORY_RESULTS, **settings)
    json_size = Measure("JSON size", [float(len(body))], "bytes")

    def thin_documents() -> list[Document]:
        payload = json.loads(body)
        return [thin_document(item, QUERY) for item in payload["webpages"]]

    assert len(retriever.invoke(QUERY)) == MEMORY_RESULTS
    contenders: list[tuple[str, Callable[[], Any], float | None, str]] = [
        (f"{RETRIEVER}.invoke k=100", lambda: retriever.invoke(QUERY), MEMORY_LIMIT, "package"),
        (
            f"{TOOL}.invoke(ToolCall) size=100 (content + artifact)",
            lambda: metaso.invoke(tool_call(metaso.name)),
            None,
            "package",
        ),
        ("json.loads alone", lambda: json.loads(body), None, "baseline"),
        ("json.loads + thin Documents", thin_documents, None, "baseline"),
    ]
    for name, function, limit, role in contenders:
        peak, kept = peak_memory(function, counts.memory_runs)
        peak.name, kept.name = f"{name}: peak", f"{name}: retained (result alive)"
        report.measure("5", peak, [(json_size, limit, "JSON")], role=role)
        report.measure("5", kept, [(json_size, None, "")], role=role)
    retriever.close()
    metaso.close()


def row_cache(report: Report, server: FakeServer, counts: Counts) -> None:
    report.section("6. Cached against uncached repeated query (MetasoSearchTool.invoke)")
    try:
        from langchain_metaso.cache import InMemoryCache
    except ImportError as exc:
        report.fact(
            "6", f"SKIPPED: langchain_metaso.cache is not there yet ({exc})", "", "", "SKIP"
        )
        return
    if "cache" not in MetasoSearchTool.model_fields:
        # BaseTool ignores unknown keyword arguments, so only the field list tells.
        report.fact("6", "SKIPPED: MetasoSearchTool has no `cache` field yet", "", "", "SKIP")
        return
    uncached = MetasoSearchTool(metaso_api_key=KEY, base_url=server.metaso_url)
    cached = MetasoSearchTool(metaso_api_key=KEY, base_url=server.metaso_url, cache=InMemoryCache())
    # The simulated condition first: the cached tool's one miss (its first call) falls there.
    expected = 1
    for handshake, settings, _ in reversed(CONDITIONS):
        server.configure(reset=True, **settings)
        calls = counts.slow if handshake else counts.fast
        measures = time_sync(
            {
                "hit": (lambda: cached.invoke(tool_call(cached.name)), ok_message),
                "miss": (lambda: uncached.invoke(tool_call(uncached.name)), ok_message),
            },
            counts.warmup,
            calls,
        )
        hit, miss = measures["hit"], measures["miss"]
        short = "handshake simulated" if handshake else "no simulated delay"
        hit.name = f"{TOOL}.invoke, cache hit ({short})"
        miss.name = f"{TOOL}.invoke, no cache ({short})"
        limit = CACHE_LIMIT if handshake else None
        report.measure("6", hit, [(miss, limit, "uncached" if handshake else "")])
        report.measure("6", miss, role="baseline")
        # The server sees every uncached call; whatever else it saw came from the cached tool.
        sent = server.stats()["requests"] - (counts.warmup + calls)
        report.fact(
            "6",
            f"requests sent by the cached tool in {counts.warmup + calls} calls ({short})",
            str(sent),
            target=str(expected),
            verdict="PASS" if sent == expected else "MISS",
        )
        expected = 0
    uncached.close()
    cached.close()


def profile_tool(server: FakeServer, calls: int) -> str:
    """Where a MetasoSearchTool.invoke spends its time, against the undelayed server."""
    server.configure(**NO_HANDSHAKE)
    metaso = MetasoSearchTool(metaso_api_key=KEY, base_url=server.metaso_url)
    for _ in range(20):
        metaso.invoke(tool_call(metaso.name))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        metaso.invoke(tool_call(metaso.name))
    profiler.disable()
    metaso.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(20)
    return out.getvalue()


def environment(mode: str, counts: Counts) -> dict[str, Any]:
    versions = {}
    for package in ("langchain-metaso", "langchain-core", "httpx", "langchain-tavily", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "mode": mode,
        "counts": asdict(counts),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        # Other work on the machine shows here: the rows are only as quiet as the machine.
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "versions": versions,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller counts (< 60 s)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile of MetasoSearchTool.invoke"
    )
    args = parser.parse_args()
    counts = QUICK if args.quick else FULL
    env = environment("quick" if args.quick else "full", counts)
    print(
        f"langchain-metaso benchmark ({env['mode']}): Python {env['python']}, "
        f"{env['cpus']} CPUs (load average {env['load_average'][0]}), "
        + ", ".join(f"{name} {version}" for name, version in env["versions"].items()),
        flush=True,
    )
    started = time.perf_counter()
    report = Report()
    with FakeServer() as server:
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("sync latency", lambda: row_sync_latency(report, server, counts)),
            ("async latency", lambda: asyncio.run(row_async_latency(report, server, counts))),
            ("rate limit", lambda: row_rate_limit(report, server, counts)),
            ("import time", lambda: row_import(report, counts)),
            ("memory", lambda: row_memory(report, counts)),
            ("cache", lambda: row_cache(report, server, counts)),
        ]
        for label, step in steps:
            step_start = time.perf_counter()
            step()
            print(f"  {label}: {time.perf_counter() - step_start:.1f} s", file=sys.stderr)
        profile = profile_tool(server, counts.fast) if args.profile else ""
    elapsed = time.perf_counter() - started
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}\n")
    print(report.render(), flush=True)
    verdicts = [row for row in report.rows if row.get("verdict")] + [
        comparison
        for row in report.rows
        for comparison in row.get("comparisons", ())
        if comparison["verdict"]
    ]
    missed = sum(item["verdict"] == "MISS" for item in verdicts)
    passed = sum(item["verdict"] == "PASS" for item in verdicts)
    for note in report.notes:
        print(note)
    print(f"\ntargets: {passed} PASS, {missed} MISS; benchmark took {elapsed:.1f} s")
    if profile:
        print("\nProfile of MetasoSearchTool.invoke (no simulated delay):\n" + profile)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(
                {
                    "environment": env,
                    "load_average_after": [round(load, 2) for load in os.getloadavg()],
                    "elapsed_s": elapsed,
                    "rows": report.rows,
                    "notes": report.notes,
                },
                out,
                ensure_ascii=False,
                indent=2,
            )


if __name__ == "__main__":
    main()
