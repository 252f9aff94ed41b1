"""The soak run: many mixed calls against the emulator, with random faults.

    python benchmarks/soak.py                 # 10,000 calls, a few minutes on 2 cores
    python benchmarks/soak.py --quick         # 1,000 calls, as the test suite runs it
    python benchmarks/soak.py --calls 50000 --fault-rate 0.1 --json soak.json

The search tool and the retriever, sync (on worker threads) and async (on one event loop),
over every scope, through two shared instances; the emulator answers --fault-rate of the
requests with a random fault (5xx, 429, a dropped connection, a body cut short, an answer
slower than the client's timeout, a business error, a body that is not JSON). Checked: every
call accounted for, no unhandled exception, every answer its own query's, no file descriptor
growth, sockets within the pools, no connection left open at the server.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import sys
import time
import tracemalloc
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _harness import Report, parser, run
from langchain_core.messages import ToolMessage

from langchain_metaso import (
    SCOPES,
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoError,
    MetasoInsufficientCreditsError,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoServerError,
)
from langchain_metaso.testing import EmulatorProcess

KEY = "soak-test-key"
TIMEOUT, MAX_CONCURRENCY, SYNC_WORKERS, BATCH = 0.5, 8, 4, 40
# Each a Fault constructor and its arguments; "slow" outlasts the client's timeout.
FAULTS: dict[str, dict[str, Any]] = {
    "503": {"fault": "status", "code": 503},
    "502": {"fault": "status", "code": 502},
    "429 Retry-After 0": {"fault": "status", "code": 429, "retry_after": 0},
    "429": {"fault": "status", "code": 429},
    "drop": {"fault": "drop"},
    "truncated": {"fault": "truncated"},
    "slow": {"fault": "delay", "seconds": 2 * TIMEOUT},
    "business error": {"fault": "business_error", "code": 1000, "message": "参数错误"},
    "garbage": {"fault": "garbage"},
}
NO_FAULT = {"fault": "delay", "seconds": 0}
BREAKING = {"drop", "truncated", "slow"}  # the connection is gone after these
# A tool hands back its error's text only; the hint each error ends with names its type.
HINTS = {
    MetasoAuthenticationError.hint: "MetasoAuthenticationError",
    MetasoInsufficientCreditsError.hint: "MetasoInsufficientCreditsError",
    "Rate limited": "MetasoRateLimitError",
    MetasoServerError.hint: "MetasoServerError",
    MetasoAPIError.hint: "MetasoAPIError",
    "returned an unusable answer": "MetasoResponseError",
    "Timeout": "MetasoTimeoutError",
    "could not reach": "MetasoConnectionError",
    "did not get the whole answer": "MetasoConnectionError",
}


def open_fds() -> tuple[int, int]:
    """(open file descriptors, of which sockets), from /proc/self/fd."""
    targets = []
    for name in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{name}"))
        except OSError:  # the descriptor listdir itself used, closed since
            continue
    return len(targets), sum(target.startswith("socket:") for target in targets)


class Soak:
    """Two shared instances, and the calls' outcomes."""

    def __init__(self, base_url: str) -> None:
        settings: dict[str, Any] = {"metaso_api_key": KEY, "base_url": base_url}
        settings |= {"timeout": TIMEOUT, "retry_backoff": 0.01, "max_concurrency": MAX_CONCURRENCY}
        self.tool = MetasoSearchTool(size=3, **settings)
        self.retriever = MetasoRetriever(k=3, **settings)
        self.outcomes: Counter[str] = Counter()  # "success", an error type, "unhandled"...
        self.unhandled: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(ThreadPoolExecutor(SYNC_WORKERS))

    async def call(self, kind: str, scope: str, query: str, is_async: bool) -> Any:
        runnable, given, options = self.retriever, query, {"scope": scope}
        if kind == "tool":
            arguments = {"query": query, "scope": scope}
            given = {"name": "metaso_search", "args": arguments, "id": query, "type": "tool_call"}
            runnable, options = self.tool, {}
        if is_async:
            return await runnable.ainvoke(given, **options)
        return await asyncio.to_thread(runnable.invoke, given, **options)  # a worker thread

    async def batch(self, calls: list[tuple[str, str, str, bool]]) -> None:
        outcomes = await asyncio.gather(
            *(self.call(*call) for call in calls), return_exceptions=True
        )
        for (kind, _, query, _), outcome in zip(calls, outcomes, strict=True):
            self.settle(kind, query, outcome)

    def settle(self, kind: str, query: str, outcome: Any) -> None:
        """Tally one call: its own query's answer, a typed error, or else unhandled."""
        if isinstance(outcome, MetasoError) and kind == "retriever":
            self.outcomes[type(outcome).__name__] += 1
            return
        if isinstance(outcome, ToolMessage) and outcome.status == "error":
            text = str(outcome.content)
            kind_ = next((name for hint, name in HINTS.items() if hint in text), None)
            self.outcomes[f"{kind_} (tool)" if kind_ else "unhandled"] += 1
            if not kind_:
                self.unhandled.append(f"untyped tool error: {text:.200}")
            return
        documents = outcome.artifact if isinstance(outcome, ToolMessage) else outcome
        if isinstance(documents, list) and documents:
            # An image result has only a title, so its document's text is that title.
            mine = all(query in doc.metadata.get("title", doc.page_content) for doc in documents)
            self.outcomes["success" if mine else "another query's answer"] += 1
            return
        self.outcomes["unhandled"] += 1
        self.unhandled.append(f"{kind}: {outcome!r:.200}")

    def run(self, calls: list[tuple[str, str, str, bool]]) -> None:
        for start in range(0, len(calls), BATCH):
            self.loop.run_until_complete(self.batch(calls[start : start + BATCH]))

    def close(self) -> None:
        self.loop.run_until_complete(self.tool.aclose())
        self.loop.run_until_complete(self.retriever.aclose())
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()


def traced_kib() -> str:
    if not tracemalloc.is_tracing():
        return "not traced (--quick)"
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    return f"{current // 1024:,} / {peak // 1024:,}"


def soak(report: Report, server: EmulatorProcess) -> None:
    args = report.args
    count = 1_000 if args.quick else args.calls
    rng = random.Random(args.seed)
    # Enough for every call retried to the limit (3 requests); a normal answer where no fault.
    script = [
        rng.choice(sorted(FAULTS)) if rng.random() < args.fault_rate else ""
        for _ in range(4 * count)
    ]
    server.script(*(FAULTS[name] if name else NO_FAULT for name in script))
    # Bracketed, so no query is part of another ("[7]" is not in "[70]").
    calls = [
        (rng.choice(("tool", "retriever")), scope, f"[soak {n}] 秘塔 {scope}", rng.random() < 0.5)
        for n, scope in enumerate(rng.choice(SCOPES) for _ in range(count))
    ]
    started = time.perf_counter()
    fds_start, sockets_start = open_fds()
    soak = Soak(server.url)
    warm_up, first = count // 10, count // 5
    soak.run(calls[:warm_up])
    # Tracing memory triples a run's time: the quick run (the test suite's) goes without.
    if not args.quick:
        tracemalloc.start()
    soak.run(calls[warm_up : warm_up + first])
    memory_start = traced_kib()
    soak.run(calls[warm_up + first :])
    memory_end = traced_kib()
    tracemalloc.stop()
    _, sockets_in_use = open_fds()
    soak.close()
    gc.collect()
    fds_end, sockets_end = open_fds()
    for _ in range(200):  # the server notices closed connections within a few polls
        stats = server.stats
        if stats.connections_open == 0:
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    served = Counter(name for name in script[: stats.requests] if name)
    pools = 2 * 2 * MAX_CONCURRENCY  # two instances, each a sync and an async pool

    outcomes, fact = soak.outcomes, report.fact
    report.section(f"Soak: {count:,} calls, fault rate {args.fault_rate:g}, seed {args.seed}")
    fact("calls", count)
    fact("accounted for", sum(outcomes.values()), str(count), sum(outcomes.values()) == count)
    fact("successes", outcomes["success"])
    typed = {name: n for name, n in outcomes.most_common() if name.startswith("Metaso")}
    fact("typed errors", sum(typed.values()))
    for name, n in typed.items():
        fact(f"  {name}", n)
    fact("unhandled exceptions", outcomes["unhandled"], "0", outcomes["unhandled"] == 0)
    mismatched = outcomes["another query's answer"]
    fact("answers to another query", mismatched, "0", mismatched == 0)
    fact("requests at the server", stats.requests)
    fact("faults injected", sum(served.values()))
    for name, n in served.most_common():
        fact(f"  {name}", n)
    fact("seconds", round(seconds, 1))
    fact("calls per second", round(count / seconds, 1))
    fact("traced memory at the start, current / peak (KiB)", memory_start)
    fact("traced memory at the end, current / peak (KiB)", memory_end)
    fact("open fds before the clients", fds_start)
    fact("open fds after they closed", fds_end, f"<= {fds_start}", fds_end <= fds_start)
    fact("sockets before the clients", sockets_start)
    fact("pools' size (connections)", pools)
    in_use = sockets_in_use - sockets_start
    fact("sockets in use before closing", in_use, f"<= {pools} (the pools)", in_use <= pools)
    fact("sockets after closing", sockets_end, f"<= {sockets_start}", sockets_end <= sockets_start)
    fact("server: connections opened", stats.connections_opened)
    fact("server: connections broken by faults", sum(served[name] for name in BREAKING))
    fact(
        "server: connections open at the end",
        stats.connections_open,
        "0",
        stats.connections_open == 0,
    )
    report.notes.extend(f"unhandled: {text}" for text in soak.unhandled[:5])


if __name__ == "__main__":
    options = parser(__doc__)
    options.add_argument("--calls", type=int, default=10_000, help="calls to make (10,000)")
    options.add_argument("--fault-rate", type=float, default=0.05, help="share of faulty answers")
    options.add_argument("--seed", type=int, default=6, help="seed of the calls and the faults")
    parsed = options.parse_args()
    if not (1 <= parsed.calls <= 100_000 and 0 <= parsed.fault_rate <= 1):
        options.error("keep the run bounded: 1-100,000 calls, a fault rate of 0-1")
    # The server stops by itself, after a time no run of that size should need.
    sys.exit(run(parsed, [soak], api_key=KEY, max_seconds=60 + 0.05 * parsed.calls))
