"""The CPU of one call, counted in instructions: the package's tool and retriever beside
bench_search.py's thin baselines, against an in-process transport (no server, no network),
each call run under valgrind, which counts the same on a busy machine as on an idle one. The
loopback rows of bench_search.py move by 10 % with the machine's load; these do not. The tool
also runs with LangChain's schema walk cached, to show what that walk costs every call.

Needs valgrind (apt-get install valgrind); about 2 minutes (--quick: fewer calls).
"""

from __future__ import annotations

import functools
import gc
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from _harness import Measure, Report, parser, run
from bench_search import (
    CALL,
    KEY,
    QUERY,
    RETRIEVER,
    RICH,
    SEED,
    THIN,
    THIN_RETRIEVER,
    TOOL,
    Bare,
    ThinRetriever,
    thin_tool,
)
from langchain_core.tools import base as tool_base

from langchain_metaso import MetasoRetriever, MetasoSearchTool
from langchain_metaso.testing import EmulatorProcess

CACHED = "MetasoSearchTool, schema walk cached"
RICH_CACHED = "thin @tool, package's schema, walk cached"
WARMUP = 30


def contender(name: str) -> Callable[[], Any]:
    """One call of ``name``, against a transport that answers the seed at once."""
    body = json.dumps(SEED, ensure_ascii=False).encode()
    transport = httpx.MockTransport(lambda _: httpx.Response(200, content=body))
    if name in (CACHED, RICH_CACHED):  # as an upstream cache in langchain-core would
        walk = tool_base.get_all_basemodel_annotations
        tool_base.get_all_basemodel_annotations = functools.cache(walk)  # type: ignore[assignment]
    settings: dict[str, Any] = {"metaso_api_key": KEY, "base_url": "http://127.0.0.1:9"}
    bare = Bare("http://127.0.0.1:9/search", httpx.Client(transport=transport))
    runnable, given = {
        TOOL: (MetasoSearchTool, CALL),
        CACHED: (MetasoSearchTool, CALL),
        RETRIEVER: (MetasoRetriever, QUERY),
        THIN: (thin_tool(bare), CALL),
        RICH: (thin_tool(bare, rich=True), CALL),
        RICH_CACHED: (thin_tool(bare, rich=True), CALL),
        THIN_RETRIEVER: (ThinRetriever(bare=bare), QUERY),
        "bare httpx": (bare, QUERY),
    }[name]
    if isinstance(runnable, type):
        runnable = runnable(**settings, transport=transport)
    return functools.partial(runnable.invoke, given)


def calls_in_child(name: str, calls: int) -> None:
    """The child's work: ``WARMUP`` unmeasured calls (imports, caches), then ``calls``."""
    call = contender(name)
    for _ in range(WARMUP):
        call()
    gc.collect()
    gc.disable()  # a collection would land in one run and not the other
    for _ in range(calls):
        call()


def instructions(name: str, calls: int) -> int:
    """Instructions valgrind counts in a child making ``calls`` calls of ``name``."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--child", name, str(calls)]
    # PYTHONMALLOC: valgrind follows the system allocator, not Python's own. A fixed hash
    # seed: a random one changes the work of every dict and set from one child to the next.
    settings = {"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"}
    child = subprocess.run(
        command, capture_output=True, text=True, check=True, env=os.environ | settings
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", child.stderr)
    assert found, child.stderr[-2000:]
    return int(found[1].replace(",", ""))


def per_call(name: str, calls: int) -> Measure:
    """Instructions a call: a child making ``calls`` calls, less one making none."""
    runs = [instructions(name, 0), instructions(name, calls)]
    return Measure(name, [(runs[1] - runs[0]) / calls], unit="instructions")


def cpu(report: Report, _: EmulatorProcess) -> None:
    calls = report.count(100, 30)
    names = [TOOL, CACHED, RETRIEVER, THIN, RICH, RICH_CACHED, THIN_RETRIEVER, "bare httpx"]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        m = dict(zip(names, pool.map(functools.partial(per_call, calls=calls), names), strict=True))
    report.section(f"Instructions a call, invoke, in-process transport; {calls} calls")
    report.measure(m[TOOL], (m[THIN], None), (m[RICH], None))
    report.measure(m[CACHED], (m[THIN], None), (m[RICH_CACHED], None))
    report.measure(m[RETRIEVER], (m[THIN_RETRIEVER], None))
    for name in names[3:]:
        report.measure(m[name])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        calls_in_child(sys.argv[2], int(sys.argv[3]))
    elif shutil.which("valgrind") is None:
        sys.exit("bench_cpu.py counts instructions with valgrind: apt-get install valgrind")
    else:
        sys.exit(run(parser(__doc__).parse_args(), [cpu]))
