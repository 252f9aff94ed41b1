"""Ray workers under one request rate shared in Redis. Throughput of
1, 2 and 4 workers against the emulator answering in 50 ms, beside min(R, the workers' own
pace): it grows with workers up to the limit R, and never passes it.

    python benchmarks/bench_ray.py                # needs ray and redis-server
    python benchmarks/bench_ray.py --quick --rate 40

Each worker is a Ray task searching one query after another for the same stretch of wall
time, through a RedisRateLimiter they all share. A worker's own pace is measured first,
one worker with no limit. Each row's throughput is the calls answered in the stretch over
its length; "busiest second" is the most calls answered in any one-second window.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from _harness import Report, parser, run
from bench_shared import redis_server

from langchain_metaso import MetasoRetriever, RedisRateLimiter
from langchain_metaso.testing import EmulatorProcess

KEY = "test-key"
LATENCY = 0.05  # each answer waits, as a distant server's would
TOLERANCE = 0.15  # throughput within 15 % of min(R, the workers' own pace)
BURST = 2  # tokens the bucket holds: a worker starved of CPU for a moment loses none


def search_for(base_url: str, limiter: Any, start: float, seconds: float) -> list[float]:
    """Runs in a Ray worker: searches from ``start`` for ``seconds`` of wall time; the
    wall-clock time each answer came back."""
    retriever = MetasoRetriever(metaso_api_key=KEY, base_url=base_url, k=3, rate_limiter=limiter)
    retriever.invoke("warm-up")  # connections open before the stretch
    time.sleep(max(0.0, start - time.time()))
    answered, number = [], 0
    while time.time() < start + seconds:
        retriever.invoke(f"问题 {number} {time.time()}")  # never a cache hit
        answered.append(time.time())
        number += 1
    return [moment for moment in answered if moment <= start + seconds]


def stretch(
    ray: Any, server: EmulatorProcess, limiter: Any, workers: int, seconds: float
) -> list[float]:
    """``workers`` Ray workers searching for ``seconds``: their answers' times, merged."""
    task = ray.remote(search_for).options(num_cpus=1)
    start = time.time() + 3.0  # time for every worker to start and warm up
    done = ray.get([task.remote(server.url, limiter, start, seconds) for _ in range(workers)])
    return sorted(moment for answered in done for moment in answered)


def busiest_second(moments: list[float]) -> int:
    first, most = 0, 0
    for last, moment in enumerate(moments):
        while moments[first] <= moment - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def ray_rows(report: Report, server: EmulatorProcess) -> None:
    try:
        import ray
    except ImportError:
        report.section("Ray workers: skipped, Ray is not installed")
        report.notes.append('needs Ray: pip install "langchain-metaso[ray]"')
        return
    with redis_server() as url:
        if url is None:
            report.section("Ray workers: skipped, redis-server is not installed")
            report.notes.append("needs redis-server: apt-get install redis-server")
            return
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
        try:
            measure(report, server, ray, url)
        finally:
            ray.shutdown()


def measure(report: Report, server: EmulatorProcess, ray: Any, url: str) -> None:
    rate, seconds = report.args.rate, report.count(8, 3)
    server.set(latency=LATENCY)
    alone = stretch(ray, server, None, 1, seconds)
    pace = len(alone) / seconds
    report.section(f"One worker's own pace, no limit; the server answers after {LATENCY:g} s")
    report.fact("calls a second", f"{pace:.1f}")
    report.section(
        f"Ray workers sharing RedisRateLimiter({rate:g} requests a second), {seconds} s each"
    )
    for workers in (1, 2, 4):
        limiter = RedisRateLimiter(
            url,
            requests_per_second=rate,
            max_bucket_size=BURST,
            check_every_n_seconds=0.005,
            key=f"bench/{workers}",
        )
        server.reset()
        moments = stretch(ray, server, limiter, workers, seconds)
        throughput = len(moments) / seconds
        expected = min(rate, workers * pace)
        within = abs(throughput / expected - 1) <= TOLERANCE
        name = f"{workers} worker{'s' if workers > 1 else ''}"
        report.fact(
            f"{name}: calls a second",
            f"{throughput:.1f}",
            f"min(R, {workers} x pace) = {expected:.1f} +-{TOLERANCE:.0%}",
            within,
        )
        busiest = busiest_second(moments)
        report.fact(f"{name}: busiest second", busiest, f"<= R + {BURST}", busiest <= rate + BURST)
        rejected = server.stats.rejected_429
        report.fact(f"{name}: HTTP 429 answers", rejected, "0", rejected == 0)
    server.set(latency=0)


if __name__ == "__main__":
    options = parser(__doc__)
    options.add_argument("--rate", type=float, default=40.0, help="R: requests a second")
    parsed = options.parse_args()
    # 429 beyond 4 in flight: what a server with a concurrency limit would answer.
    sys.exit(run(parsed, [ray_rows], api_key=KEY, max_in_flight=4))
