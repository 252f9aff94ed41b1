"""A real Redis server for the tests, and work run in other processes against it.

``redis_server_binary`` finds ``redis-server``: when it is missing the Redis tests skip
with how to install it, except under ``CI=true``, where they fail. ``RedisServer`` runs
one on a free loopback port, with nothing saved to disk.

``run_elsewhere`` runs one of this module's ``WORK`` functions in a new Python process
(``python redis_support.py NAME ARGS``) and returns what it printed as JSON;
``start_elsewhere`` starts several at once. Processes that must overlap meet at a
barrier in Redis before they work.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL_HINT = "redis-server not installed: apt-get install redis-server (or see README)"
TEST_KEY = "test-key"


def redis_server_binary() -> str:
    """The path of ``redis-server``; skip the test without it (fail under ``CI=true``)."""
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{INSTALL_HINT}; CI must run the Redis tests", pytrace=False)
        pytest.skip(INSTALL_HINT)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def redis_server(binary: str) -> Iterator[str]:
    """Run ``redis-server`` on a free port of 127.0.0.1 until the block ends; its URL."""
    import redis

    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 30
        while True:  # until it answers: it starts in milliseconds, on a busy machine longer
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.communicate(timeout=5)[0].decode(errors="replace")
                    raise RuntimeError(f"redis-server did not start:\n{output}") from None
                time.sleep(0.01)
        client.close()
        yield url
    finally:
        stop(process)


# --- work done in another process -----------------------------------------------------


def meet(redis_url: str, barrier: str | None, parties: int) -> None:
    """Wait until ``parties`` processes have reached the ``barrier`` (a Redis counter)."""
    if barrier is None:
        return
    import redis

    client = redis.Redis.from_url(redis_url)
    client.incr(barrier)
    deadline = time.monotonic() + 300  # a hang guard: processes start slowly under load
    while int(client.get(barrier) or 0) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {client.get(barrier)!r} of {parties} processes came")
        time.sleep(0.005)
    client.close()


def search_with_cache(
    base_url: str, redis_url: str, query: str, use_async: bool = False
) -> dict[str, Any]:
    """One search through a tool whose cache is on Redis: its text and its results' URLs."""
    from langchain_core.messages import ToolMessage

    from langchain_metaso import MetasoSearchTool, MetasoStoreCache

    tool = MetasoSearchTool(
        metaso_api_key=TEST_KEY,
        base_url=base_url,
        size=3,
        cache=MetasoStoreCache.from_redis_url(redis_url, ttl=600),
    )
    call = {"name": tool.name, "args": {"query": query}, "id": "1", "type": "tool_call"}
    message = asyncio.run(tool.ainvoke(call)) if use_async else tool.invoke(call)
    assert isinstance(message, ToolMessage)
    return {
        "content": message.content,
        "urls": [doc.metadata["source"] for doc in message.artifact],
    }


def take_tokens(
    redis_url: str, limiter: dict[str, Any], tries: int, barrier: str | None = None
) -> int:
    """Try ``tries`` times to take a token without waiting; how many were granted."""
    from langchain_metaso import RedisRateLimiter

    rate_limiter = RedisRateLimiter(redis_url, **limiter)
    meet(redis_url, barrier, 2)
    return sum(rate_limiter.acquire(blocking=False) for _ in range(tries))


def search_rate_limited(
    base_url: str,
    redis_url: str,
    limiter: dict[str, Any],
    queries: list[str],
    barrier: str | None = None,
) -> int:
    """Search each query through a tool whose rate limiter is on Redis; results found."""
    from langchain_metaso import MetasoRetriever, RedisRateLimiter

    retriever = MetasoRetriever(
        metaso_api_key=TEST_KEY,
        base_url=base_url,
        k=1,
        rate_limiter=RedisRateLimiter(redis_url, **limiter),
    )
    meet(redis_url, barrier, 2)
    return sum(len(docs) for docs in retriever.batch(queries))


def search_on_budget(
    base_url: str, redis_url: str, credits: float, calls: int, barrier: str, parties: int
) -> dict[str, int]:
    """``calls`` searches of 3 results against a ``RedisCreditBudget`` of ``credits``
    shared with ``parties`` processes: how many were sent, and refused before sending."""
    from langchain_metaso import MetasoBudgetExceededError, MetasoRetriever, RedisCreditBudget

    retriever = MetasoRetriever(
        metaso_api_key=TEST_KEY,
        base_url=base_url,
        k=3,
        credit_budget=RedisCreditBudget(redis_url, credits=credits),
    )
    meet(redis_url, barrier, parties)
    counts = {"sent": 0, "refused": 0}
    for number in range(calls):
        try:
            retriever.invoke(f"问题 {number}")
            counts["sent"] += 1
        except MetasoBudgetExceededError:
            counts["refused"] += 1
    return counts


WORK: dict[str, Callable[..., Any]] = {
    work.__name__: work
    for work in (search_with_cache, take_tokens, search_rate_limited, search_on_budget)
}


def start_elsewhere(work: Callable[..., Any], **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``work(**kwargs)`` in a new Python process; ``finish`` gets its result."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "PYTHONIOENCODING": "utf-8"}
    return subprocess.Popen(
        [sys.executable, __file__, work.__name__, json.dumps(kwargs)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


def finish(process: subprocess.Popen[str]) -> Any:
    """What a process from ``start_elsewhere`` returned; its error if it failed."""
    out, err = process.communicate(timeout=90)
    assert process.returncode == 0, err
    return json.loads(out)


def run_elsewhere(work: Callable[..., Any], **kwargs: Any) -> Any:
    """``work(**kwargs)``, run in a new Python process."""
    return finish(start_elsewhere(work, **kwargs))


if __name__ == "__main__":
    name, arguments = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(WORK[name](**arguments), ensure_ascii=False))


def stop(process: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Terminate a server the tests started, kill it if it will not go, and reap it."""
    process.terminate()
    try:
        process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
