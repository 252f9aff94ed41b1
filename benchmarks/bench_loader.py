"""MetasoLoader's benchmark: reading pages one after another (lazy_load) against
concurrently (aload), from the emulator with a fixed delay a page.

    python benchmarks/bench_loader.py                  # 20 URLs, 0.1 s a page, 3 rounds
    python benchmarks/bench_loader.py --urls 40 --latency 0.05 --concurrency 8
"""

from __future__ import annotations

import asyncio
import sys
import time

from _harness import Measure, Report, parser, run
from langchain_core.documents import Document

from langchain_metaso import MetasoLoader
from langchain_metaso.testing import EmulatorProcess

KEY = "test-key"


async def read(loader: MetasoLoader) -> list[Document]:
    try:
        return await loader.aload()
    finally:
        await loader.aclose()


def loader(report: Report, server: EmulatorProcess) -> None:
    args = report.args
    rounds = report.count(args.rounds, 1)
    urls = [f"https://site{n}.example.com/article/{n}" for n in range(args.urls)]
    settings = {"urls": urls, "metaso_api_key": KEY, "base_url": server.url}
    server.set(latency=args.latency)
    report.section(
        f"MetasoLoader, {args.urls} URLs, {args.latency:g} s a page, "
        f"max_concurrency={args.concurrency}, median of {rounds}"
    )
    sequential, concurrent = Measure("lazy_load(), one page after another"), Measure("aload()")
    peak, same = 0, True
    for _ in range(rounds):
        one_by_one = MetasoLoader(**settings)
        start = time.perf_counter()
        expected = one_by_one.load()
        sequential.samples.append(time.perf_counter() - start)
        one_by_one.close()
        server.reset()
        at_once = MetasoLoader(max_concurrency=args.concurrency, **settings)
        start = time.perf_counter()
        got = asyncio.run(read(at_once))
        concurrent.samples.append(time.perf_counter() - start)
        peak = max(peak, server.stats.peak_in_flight)
        same &= got == expected and len(got) == args.urls and not at_once.failures
    report.measure(concurrent, (sequential, None))
    report.measure(sequential)
    report.fact("both read every page, the same Documents in order", same, "True", same)
    bound = args.concurrency
    report.fact("aload(): peak requests in flight", peak, f"<= {bound}", peak <= bound)


if __name__ == "__main__":
    options = parser(__doc__)
    options.add_argument("--urls", type=int, default=20, help="pages to read (20)")
    options.add_argument("--latency", type=float, default=0.1, help="seconds a page (0.1)")
    options.add_argument("--concurrency", type=int, default=16, help="max_concurrency (16)")
    options.add_argument("--rounds", type=int, default=3, help="rounds, median kept (3)")
    parsed = options.parse_args()
    if not (1 <= parsed.urls <= 500 and 0 <= parsed.latency <= 2 and 1 <= parsed.rounds <= 10):
        options.error("keep the run bounded: 1-500 urls, latency 0-2 s, 1-10 rounds")
    sys.exit(run(parsed, [loader], api_key=KEY))
