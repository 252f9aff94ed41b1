"""Build a searchable corpus on a Ray cluster: search, read the top pages, index them.

    python examples/ingest_ray.py --offline                       # emulator + a local redis-server
    python examples/ingest_ray.py --redis-url redis://host:6379/0 --queries-file queries.txt
    python examples/ingest_ray.py --ray-address auto --redis-url ...   # an existing cluster

With ``ray.data``, workers search each query (``MetasoRetriever``), the pages found are
de-duplicated by their stable ``Document.id``, workers read them (``MetasoLoader``), and the
driver indexes them into a vector store through LangChain's indexing API, whose record
manager skips what an earlier run indexed: run it twice and the second run adds nothing.

One Redis serves every worker: the answer cache (``MetasoStoreCache``), the request rate
(``RedisRateLimiter``) and the credit budget (``RedisCreditBudget``). Each worker needs only
the Redis URL (in the pieces Ray ships to it) and ``METASO_API_KEY`` (and ``METASO_BASE_URL``
for a metaso.cn key), which this script hands to the workers in Ray's runtime environment.

``--offline`` starts the bundled emulator in its own process (every worker reaches it over
HTTP) and a ``redis-server`` on a free port, and embeds with a fake embedding: no key, no
network, no credits. Needs ``pip install "langchain-metaso[ray]"``. The vector store and the
record manager are kept as files in ``--state`` (a real deployment would use a database).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from _common import OFFLINE_NOTICE, ExampleParser, run
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.indexing import InMemoryRecordManager, index
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_metaso import (
    MetasoLoader,
    MetasoRetriever,
    MetasoStoreCache,
    RedisCreditBudget,
    RedisRateLimiter,
    metaso_usage,
)

QUERIES = ["秘塔 AI 搜索", "检索增强生成", "大语言模型 幻觉", "向量数据库", "检索增强生成"]
STATS = "ingest/stats"  # a Redis hash: every worker adds its requests, cache hits, credits


def shared_pieces(redis_url: str, credits: float, rate: float) -> dict[str, Any]:
    """The settings every worker's instances share, all in one Redis. They pickle as
    their URL and settings: Ray ships them to the workers, which connect again."""
    return {
        "cache": MetasoStoreCache.from_redis_url(redis_url, ttl=7 * 24 * 3600),
        "rate_limiter": RedisRateLimiter(redis_url, requests_per_second=rate),
        "credit_budget": RedisCreditBudget(redis_url, credits=credits),
    }


@contextmanager
def counted(shared: dict[str, Any]) -> Iterator[None]:
    """Add what the calls inside cost to the Redis totals of the run."""
    with metaso_usage() as usage:
        yield
    client = shared["cache"].store.connection.client
    client.hincrby(STATS, "requests", usage.requests)
    client.hincrby(STATS, "cache_hits", usage.cache_hits)


class Search:
    """A ``ray.data`` step: one query in, its top results out (one row each)."""

    def __init__(self, shared: dict[str, Any], k: int) -> None:
        self.shared, self.k = shared, k

    def __call__(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        with counted(self.shared):
            docs = MetasoRetriever(k=self.k, include_summary=False, **self.shared).invoke(
                row["query"]
            )
        return [
            {"id": doc.id, "url": doc.metadata["source"], "query": row["query"]} for doc in docs
        ]


class Read:
    """A ``ray.data`` step: a batch of pages in, read as Markdown, under their ids."""

    def __init__(self, shared: dict[str, Any]) -> None:
        self.shared = shared

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        loader = MetasoLoader(urls=list(batch["url"]), **self.shared)
        with counted(self.shared):
            docs = loader.load()  # a page that fails is skipped (loader.failures)
        failed = {url for url, _ in loader.failures}
        read = [row for row, url in enumerate(loader.urls or ()) if url not in failed]
        return {
            "id": [batch["id"][row] for row in read],
            "query": [batch["query"][row] for row in read],
            "url": [doc.metadata["source"] for doc in docs],
            "title": [doc.metadata.get("title") or "" for doc in docs],
            "text": [doc.page_content for doc in docs],
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def local_redis() -> Iterator[str]:
    """A ``redis-server`` on a free port of 127.0.0.1, saving nothing, until the block ends."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit(
            "--offline needs redis-server: apt-get install redis-server (or brew install redis)"
        )
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(3000):  # it starts in milliseconds; a busy machine may take seconds
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        yield url
    finally:
        process.terminate()
        process.wait()


def read_queries(args: Any) -> list[str]:
    if args.queries_file:
        lines = Path(args.queries_file).read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip()]
    return args.query or QUERIES


class Corpus:
    """The vector store and its record manager, kept as files in ``state`` between runs."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.embedding = DeterministicFakeEmbedding(size=64)  # a real one in production
        self.records = InMemoryRecordManager(namespace="metaso/corpus")
        self.store = InMemoryVectorStore(self.embedding)
        if (state / "records.json").exists():
            self.records.records = json.loads((state / "records.json").read_text())
            self.store = InMemoryVectorStore.load(str(state / "store.json"), self.embedding)

    def add(self, docs: list[Document]) -> Any:
        result = index(docs, self.records, self.store, cleanup=None, key_encoder="sha256")
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "records.json").write_text(json.dumps(self.records.records))
        self.store.dump(str(self.state / "store.json"))
        return result


def main() -> None:
    parser = ExampleParser(description=__doc__.splitlines()[0])
    parser.add_argument("query", nargs="*", help="queries (default: a few sample ones)")
    parser.add_argument("--queries-file", help="a file of queries, one a line")
    parser.add_argument("--k", type=int, default=3, help="pages to read per query (default 3)")
    parser.add_argument("--offline", action="store_true", help="emulator and local redis-server")
    parser.add_argument("--redis-url", help="the Redis every worker shares (not with --offline)")
    parser.add_argument("--credits", type=float, default=200, help="credit budget of the run")
    parser.add_argument("--rate", type=float, help="requests a second, all workers together")
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--ray-address", help="an existing Ray cluster (default: a local one)")
    parser.add_argument("--state", default=".ingest_ray", help="where the index is kept")
    args = parser.parse_args()
    if args.offline == bool(args.redis_url):
        parser.error("give --offline, or --redis-url for the real API")
    if not args.offline and not os.environ.get("METASO_API_KEY", "").strip():
        sys.exit("METASO_API_KEY is not set (or run with --offline)")
    import ray

    queries = read_queries(args)
    with ExitStack() as stack:
        redis_url = args.redis_url
        if args.offline:
            from langchain_metaso.testing import EmulatorProcess

            print(OFFLINE_NOTICE, flush=True)
            emulator = stack.enter_context(EmulatorProcess(api_key="offline-example-key"))
            redis_url = stack.enter_context(local_redis())
            # Workers of a local cluster start with this environment: the key and the URL.
            os.environ.update(METASO_API_KEY="offline-example-key", METASO_BASE_URL=emulator.url)
        rate = args.rate or (100.0 if args.offline else 5.0)
        shared = shared_pieces(redis_url, args.credits, rate)
        shared["cache"].store.connection.client.delete(STATS)  # this run's totals only
        # What a worker needs besides the pieces it is shipped: the key (and the base URL).
        env = {name: os.environ.get(name) for name in ("METASO_API_KEY", "METASO_BASE_URL")}
        where = {"address": args.ray_address} if args.ray_address else {"num_cpus": args.workers}
        ray.init(
            **where,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {k: v for k, v in env.items() if v}},
        )
        stack.callback(ray.shutdown)

        cpus = int(ray.cluster_resources().get("CPU", 0))
        print(f"Searching {len(queries)} queries on {cpus} CPUs of Ray...", flush=True)
        found = (
            ray.data.from_items([{"query": query} for query in queries])
            .flat_map(Search(shared, args.k))
            .take_all()
        )
        unique: dict[str, dict[str, Any]] = {}
        # Sorted first, so that a page found by several queries is kept under the same one
        # on every run (ray.data does not keep the order): the same Document each time.
        for row in sorted(found, key=lambda row: (row["id"], row["query"])):
            unique.setdefault(row["id"], row)
        duplicates = len(found) - len(unique)
        print(f"Found {len(found)} pages, {len(unique)} distinct; reading them...", flush=True)
        pages = (
            ray.data.from_items(list(unique.values()))
            .map_batches(Read(shared), batch_size=4)
            .take_all()
        )
        docs = [
            Document(
                id=page["id"],
                page_content=page["text"],
                metadata={"source": page["url"], "title": page["title"], "query": page["query"]},
            )
            for page in sorted(pages, key=lambda page: page["id"])
        ]
        print(f"Read {len(docs)} pages; indexing them...", flush=True)
        result = Corpus(Path(args.state)).add(docs)

        stats = {
            key.decode(): int(value)
            for key, value in shared["cache"].store.connection.client.hgetall(STATS).items()
        }
        print("\nSummary")
        print(f"  queries:            {len(queries)}")
        print(f"  requests:           {stats.get('requests', 0)}")
        print(f"  cache hits:         {stats.get('cache_hits', 0)}")
        print(f"  credits spent:      {shared['credit_budget'].spent:g}")
        print(f"  documents indexed:  {result['num_added']}")
        print(f"  already indexed:    {result['num_skipped']}")
        print(f"  duplicates skipped: {duplicates}")


if __name__ == "__main__":
    run(main)
