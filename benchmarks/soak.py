"""Soak run of issue 6: many mixed calls against the emulator with random faults.

    python benchmarks/soak.py                 # 10,000 calls (a few minutes on 2 cores)
    python benchmarks/soak.py --quick         # 1,000 calls, well under a minute
    python benchmarks/soak.py --calls 50000 --json soak.json

Calls mix the search tool and the retriever, sync (on worker threads) and async (tasks
on one long-lived event loop), over every scope, all through two shared instances. The
emulator runs in a child process over a real socket (so every socket in this process is
a client socket, and the server's threads do not compete for this process's GIL), and
answers ``--fault-rate`` of requests with a random fault: 5xx, 429, a dropped
connection, a body cut short, an answer slower than the client's timeout, a business
error, or a body that is not JSON.

Reported: calls, successes, typed errors by type, unhandled exceptions (must be 0),
answers that were not their own query's (must be 0), memory traced by ``tracemalloc``
after the warm-up at the start and at the end, and sockets: this process's open file
descriptors before the clients exist and after they close (no growth), its sockets
before closing (at most the pools' size), and the server's open connections at the end
(0). The exit status is 1 when any of these checks fails.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

# Tracing would send every call to LangSmith.
for _variable in ("LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING", "LANGSMITH_TRACING"):
    os.environ.pop(_variable, None)

from langchain_core.messages import ToolMessage  # noqa: E402

from langchain_metaso import (  # noqa: E402
    SCOPES,
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoError,
    MetasoInsufficientCreditsError,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoServerError,
)
from langchain_metaso.testing import Fault, MetasoEmulator  # noqa: E402

KEY = "soak-test-key"
TIMEOUT = 0.5
MAX_CONCURRENCY = 8
SYNC_WORKERS = 4
ASYNC_PER_BATCH = 8
BATCH = 40
# A slow answer outlasts the client's timeout (a read timeout); the server then lets
# the connection go, so the count of open connections settles soon after the run.
SLOW = 2 * TIMEOUT
FAULTS: dict[str, Callable[[], Fault]] = {
    "503": lambda: Fault.status(503),
    "502": lambda: Fault.status(502),
    "429 Retry-After 0": lambda: Fault.status(429, retry_after=0),
    "429": lambda: Fault.status(429),
    "drop": Fault.drop,
    "truncated": Fault.truncated,
    "slow": lambda: Fault.delay(SLOW),
    "business error": lambda: Fault.business_error(1000, "参数错误"),
    "garbage": Fault.garbage,
}
# After these, the connection is gone and the client must open another.
BREAKING = {"drop", "truncated", "slow"}
KINDS = ("tool/sync", "tool/async", "retriever/sync", "retriever/async")
# Bounded wait for the server's connections to close after the clients did.
SETTLE_POLLS, SETTLE_POLL = 200, 0.05


def fault_script(seed: int, length: int, rate: float) -> list[str]:
    """Fault names ("" for a normal answer) for ``length`` requests, reproducibly."""
    rng = random.Random(seed)
    names = sorted(FAULTS)
    return [rng.choice(names) if rng.random() < rate else "" for _ in range(length)]


# --- the server process -----------------------------------------------------------------


def serve(seed: int, length: int, rate: float) -> None:
    """The child: an emulator over a socket, driven by one JSON command a line on stdin."""
    emulator = MetasoEmulator(api_key=KEY)
    emulator.script(
        *(FAULTS[name]() if name else Fault.delay(0) for name in fault_script(seed, length, rate))
    )
    with emulator.serve() as url:
        print(json.dumps({"url": url}), flush=True)
        for _ in sys.stdin:  # any line asks for the statistics; EOF ends the child
            # Recorded requests are not needed here and would grow without bound.
            emulator.requests.clear()
            print(json.dumps(asdict(emulator.stats)), flush=True)


class Server:
    def __init__(self, seed: int, length: int, rate: float) -> None:
        command = [sys.executable, __file__, "--serve", str(seed), str(length), str(rate)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.url: str = self._read()["url"]

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process ended")
        value: dict[str, Any] = json.loads(line)
        return value

    def stats(self) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write("stats\n")
        self._process.stdin.flush()
        return self._read()

    def settle(self) -> dict[str, Any]:
        """The server's statistics once its connections are closed (bounded wait)."""
        for _ in range(SETTLE_POLLS):
            stats = self.stats()
            if stats["connections_open"] == 0:
                break
            time.sleep(SETTLE_POLL)
        return stats

    def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(10)


# --- this process's resources -----------------------------------------------------------


def open_fds() -> tuple[int, int]:
    """(open file descriptors, of which sockets), from /proc/self/fd."""
    fds = sockets = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the descriptor listdir itself used, now closed
            continue
        fds += 1
        sockets += target.startswith("socket:")
    return fds, sockets


# --- the calls --------------------------------------------------------------------------


@dataclass
class Tally:
    successes: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    unhandled: list[str] = field(default_factory=list)
    mismatched: int = 0

    @property
    def calls(self) -> int:
        return self.successes + sum(self.errors.values()) + len(self.unhandled)


# A tool hands back its error's text only; the hint each error ends with names its type.
_HINTS = (
    (MetasoAuthenticationError.hint, "MetasoAuthenticationError"),
    (MetasoInsufficientCreditsError.hint, "MetasoInsufficientCreditsError"),
    ("Rate limited", "MetasoRateLimitError"),
    (MetasoServerError.hint, "MetasoServerError"),
    (MetasoAPIError.hint, "MetasoAPIError"),
    ("returned an unusable answer", "MetasoResponseError"),
    ("Timeout", "MetasoTimeoutError"),
    ("could not reach", "MetasoConnectionError"),
)


def tool_error_type(text: str) -> str | None:
    return next((name for hint, name in _HINTS if hint in text), None)


def titled(query: str, documents: list[Any]) -> bool:
    # An image result has only a title, so its document's text is that title.
    return bool(documents) and all(
        query in doc.metadata.get("title", doc.page_content) for doc in documents
    )


@dataclass(frozen=True)
class Call:
    kind: str
    scope: str
    query: str


class Soak:
    def __init__(self, base_url: str) -> None:
        settings: dict[str, Any] = {
            "metaso_api_key": KEY,
            "base_url": base_url,
            "timeout": TIMEOUT,
            "retry_backoff": 0.01,
            "max_concurrency": MAX_CONCURRENCY,
        }
        self.tool = MetasoSearchTool(size=3, **settings)
        self.retriever = MetasoRetriever(k=3, **settings)
        self.tally = Tally()
        self.loop = asyncio.new_event_loop()
        self.threads = ThreadPoolExecutor(SYNC_WORKERS)

    # Each call ends in one of: an answer (its own query's, or a mismatch), a typed
    # error, or an unhandled exception. Tallies are only touched on the main thread.

    def _settle_tool(self, call: Call, message: Any) -> None:
        if not isinstance(message, ToolMessage):
            self.tally.unhandled.append(f"{call.kind}: not a ToolMessage: {message!r:.200}")
        elif message.status == "success":
            self._answer(titled(call.query, message.artifact))
        elif kind := tool_error_type(str(message.content)):
            self.tally.errors[f"{kind} (tool)"] += 1
        else:
            self.tally.unhandled.append(f"{call.kind}: untyped error: {message.content:.200}")

    def _answer(self, answered: bool) -> None:
        if answered:
            self.tally.successes += 1
        else:
            self.tally.mismatched += 1
            self.tally.unhandled.append("an answer to another query")

    def _settle(self, call: Call, outcome: Any, error: BaseException | None) -> None:
        if isinstance(error, MetasoError) and call.kind.startswith("retriever"):
            self.tally.errors[type(error).__name__] += 1
        elif error is not None:
            self.tally.unhandled.append(f"{call.kind}: {type(error).__name__}: {error}"[:300])
        elif call.kind.startswith("tool"):
            self._settle_tool(call, outcome)
        else:
            self._answer(titled(call.query, outcome))

    def _sync(self, call: Call) -> Any:
        if call.kind == "tool/sync":
            return self.tool.invoke(tool_call(call))
        return self.retriever.invoke(call.query, scope=call.scope)

    async def _async(self, call: Call) -> Any:
        if call.kind == "tool/async":
            return await self.tool.ainvoke(tool_call(call))
        return await self.retriever.ainvoke(call.query, scope=call.scope)

    async def _gather(self, calls: list[Call]) -> list[Any]:
        return await asyncio.gather(*(self._async(call) for call in calls), return_exceptions=True)

    def run(self, calls: list[Call]) -> None:
        """The calls in batches: sync ones on the threads while async ones run here."""
        for start in range(0, len(calls), BATCH):
            batch = calls[start : start + BATCH]
            pending: list[tuple[Call, Future[Any]]] = [
                (call, self.threads.submit(self._sync, call))
                for call in batch
                if call.kind.endswith("/sync")
            ]
            asynchronous = [call for call in batch if call.kind.endswith("/async")]
            for group in range(0, len(asynchronous), ASYNC_PER_BATCH):
                chunk = asynchronous[group : group + ASYNC_PER_BATCH]
                results = self.loop.run_until_complete(self._gather(chunk))
                for call, result in zip(chunk, results, strict=True):
                    error = result if isinstance(result, BaseException) else None
                    self._settle(call, None if error else result, error)
            for call, future in pending:
                error = future.exception()
                self._settle(call, None if error else future.result(), error)

    def close(self) -> None:
        self.threads.shutdown()
        self.loop.run_until_complete(self.tool.aclose())
        self.loop.run_until_complete(self.retriever.aclose())
        self.loop.close()


def tool_call(call: Call) -> dict[str, Any]:
    args = {"query": call.query, "scope": call.scope}
    return {"name": "metaso_search", "args": args, "id": call.query, "type": "tool_call"}


def plan(count: int, seed: int) -> list[Call]:
    rng = random.Random(seed)
    calls = []
    for number in range(count):
        scope = rng.choice(SCOPES)
        # Bracketed, so no query is part of another ("[7]" is not in "[70]").
        calls.append(Call(rng.choice(KINDS), scope, f"[soak {number}] 秘塔 {scope}"))
    return calls


# --- the run ----------------------------------------------------------------------------


def traced() -> tuple[int, int]:
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    return current, peak


def soak(calls: int, seed: int, rate: float) -> dict[str, Any]:
    requests_bound = calls * 4  # every call retried to the limit would be 3 requests
    server = Server(seed, requests_bound, rate)
    started = time.perf_counter()
    try:
        fds_start, sockets_start = open_fds()
        run = Soak(server.url)
        planned = plan(calls, seed)
        warm_up, first = calls // 10, calls // 5
        run.run(planned[:warm_up])
        tracemalloc.start()
        run.run(planned[warm_up : warm_up + first])
        memory_start = traced()
        run.run(planned[warm_up + first :])
        memory_end = traced()
        tracemalloc.stop()
        _, sockets_in_use = open_fds()
        run.close()
        gc.collect()
        fds_end, sockets_end = open_fds()
        stats = server.settle()
    finally:
        server.stop()
    elapsed = time.perf_counter() - started
    script = fault_script(seed, requests_bound, rate)[: stats["requests"]]
    # Two instances, each with a sync and an async pool of MAX_CONCURRENCY connections.
    pools = 2 * 2 * MAX_CONCURRENCY
    tally = run.tally
    figures: dict[str, Any] = {
        "calls": calls,
        "accounted": tally.calls,
        "successes": tally.successes,
        "typed_errors": sum(tally.errors.values()),
        "typed_errors_by_type": dict(tally.errors.most_common()),
        "unhandled": len(tally.unhandled),
        "unhandled_first": tally.unhandled[:5],
        "mismatched_answers": tally.mismatched,
        "requests_at_server": stats["requests"],
        "faults_injected": dict(Counter(name for name in script if name).most_common()),
        "fault_rate": rate,
        "seconds": round(elapsed, 1),
        "calls_per_second": round(calls / elapsed, 1),
        "traced_kib_start": {"current": memory_start[0] // 1024, "peak": memory_start[1] // 1024},
        "traced_kib_end": {"current": memory_end[0] // 1024, "peak": memory_end[1] // 1024},
        "fds_start": fds_start,
        "fds_end": fds_end,
        "sockets_start": sockets_start,
        "sockets_in_use_before_close": sockets_in_use,
        "sockets_end": sockets_end,
        "pool_bound": pools,
        "server_connections_opened": stats["connections_opened"],
        "server_connections_broken_by_faults": sum(name in BREAKING for name in script),
        "server_connections_open_at_end": stats["connections_open"],
        "server_peak_in_flight": stats["peak_in_flight"],
    }
    figures["checks"] = {
        "no unhandled exceptions": tally.unhandled == [],
        "every call accounted for": tally.calls == calls,
        "every answer its own query's": tally.mismatched == 0,
        "no file descriptor growth": fds_end <= fds_start and sockets_end <= sockets_start,
        "sockets in use within the pools": sockets_in_use - sockets_start <= pools,
        "server connections all closed": stats["connections_open"] == 0,
    }
    return figures


def report(figures: dict[str, Any]) -> str:
    rows = [
        ("calls", figures["calls"]),
        ("successes", figures["successes"]),
        ("typed errors", figures["typed_errors"]),
        *((f"  {name}", count) for name, count in figures["typed_errors_by_type"].items()),
        ("unhandled exceptions", figures["unhandled"]),
        ("answers to another query", figures["mismatched_answers"]),
        ("requests at the server", figures["requests_at_server"]),
        ("faults injected", sum(figures["faults_injected"].values())),
        *((f"  {name}", count) for name, count in figures["faults_injected"].items()),
        ("time (s)", figures["seconds"]),
        ("calls per second", figures["calls_per_second"]),
        ("traced memory at start, current/peak (KiB)", _pair(figures["traced_kib_start"])),
        ("traced memory at end, current/peak (KiB)", _pair(figures["traced_kib_end"])),
        (
            "open fds: before clients / after close",
            f"{figures['fds_start']} / {figures['fds_end']}",
        ),
        (
            "sockets: before / in use / after close",
            f"{figures['sockets_start']} / {figures['sockets_in_use_before_close']}"
            f" / {figures['sockets_end']}",
        ),
        ("pools' size (connections)", figures["pool_bound"]),
        ("server: connections opened", figures["server_connections_opened"]),
        ("server: connections broken by faults", figures["server_connections_broken_by_faults"]),
        ("server: connections open at the end", figures["server_connections_open_at_end"]),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [
        "",
        *(f"[{'ok' if ok else 'FAIL'}] {check}" for check, ok in figures["checks"].items()),
    ]
    lines += [f"unhandled: {text}" for text in figures["unhandled_first"]]
    return "\n".join(lines)


def _pair(value: dict[str, int]) -> str:
    return f"{value['current']:,} / {value['peak']:,}"


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000, help="calls to make (10,000)")
    parser.add_argument("--quick", action="store_true", help="1,000 calls, under a minute")
    parser.add_argument("--fault-rate", type=float, default=0.05, help="share of faulty answers")
    parser.add_argument("--seed", type=int, default=6, help="seed of the calls and the faults")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    options = parser.parse_args()
    calls = 1_000 if options.quick else options.calls
    figures = soak(calls, options.seed, options.fault_rate)
    print(report(figures))
    if options.json:
        with open(options.json, "w", encoding="utf-8") as file:
            json.dump(figures, file, ensure_ascii=False, indent=2)
    return 0 if all(figures["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
