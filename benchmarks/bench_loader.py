"""Benchmark of issue 4: MetasoLoader reading pages one after another (``lazy_load``)
against concurrently (``aload``), over a real socket to the emulator with a fixed delay.

    python benchmarks/bench_loader.py                   # 20 URLs, 0.1 s a page, 3 rounds
    python benchmarks/bench_loader.py --urls 40 --latency 0.05 --concurrency 8

Each round reads the same URLs both ways with fresh loaders (so fresh connection pools)
and checks that both return the same documents in the same order; the figures are the
medians over the rounds. The emulator serves on 127.0.0.1 in this process, which is fine at
these delays (tenths of a second, against a few milliseconds of client work a page).
Bounded: about (urls x latency) x (1 + 1/concurrency) x rounds, under 10 s by default.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from langchain_metaso.document_loaders import MetasoLoader
from langchain_metaso.testing import MetasoEmulator

KEY = "test-key"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=20, help="pages to read (default 20)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds a page (0.1)")
    parser.add_argument("--concurrency", type=int, default=16, help="max_concurrency (16)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, median kept (3)")
    args = parser.parse_args()
    if not (1 <= args.urls <= 500 and 0 <= args.latency <= 2 and 1 <= args.rounds <= 10):
        parser.error("keep the run bounded: 1-500 urls, latency 0-2 s, 1-10 rounds")

    urls = [f"https://site{n}.example.com/article/{n}" for n in range(args.urls)]
    emulator = MetasoEmulator(api_key=KEY, latency=args.latency)
    sequential: list[float] = []
    concurrent: list[float] = []
    peaks: list[int] = []
    with emulator.serve() as base_url:

        def loader() -> MetasoLoader:
            return MetasoLoader(
                urls=urls, metaso_api_key=KEY, base_url=base_url, max_concurrency=args.concurrency
            )

        for _ in range(args.rounds):
            one_by_one = loader()
            start = time.perf_counter()
            expected = one_by_one.load()
            sequential.append(time.perf_counter() - start)
            one_by_one.close()

            emulator.reset()
            at_once = loader()

            async def read_all(at_once: MetasoLoader = at_once) -> list[object]:
                try:
                    return list(await at_once.aload())
                finally:
                    await at_once.aclose()

            start = time.perf_counter()
            got = asyncio.run(read_all())
            concurrent.append(time.perf_counter() - start)
            peaks.append(emulator.stats.peak_in_flight)

            if got != expected or len(got) != args.urls or at_once.failures:
                raise SystemExit("the two ways of reading did not return the same pages")

    seq, conc = statistics.median(sequential), statistics.median(concurrent)
    print(
        f"MetasoLoader, {args.urls} URLs, {args.latency:g} s a page, "
        f"max_concurrency={args.concurrency}, median of {args.rounds} rounds, socket emulator"
    )
    print(f"  sequential  lazy_load(): {seq:7.3f} s  ({seq / args.urls * 1000:6.1f} ms a page)")
    print(f"  concurrent  aload():     {conc:7.3f} s  (peak in flight {max(peaks)})")
    print(f"  speed-up: {seq / conc:.1f}x")


if __name__ == "__main__":
    main()
