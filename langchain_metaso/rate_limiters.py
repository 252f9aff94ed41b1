"""A rate limiter shared by every process and machine that uses one Redis server."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from langchain_core.rate_limiters import BaseRateLimiter

from langchain_metaso._redis import RedisConnection

__all__ = ["RedisRateLimiter"]

logger = logging.getLogger("langchain_metaso")

# A token bucket, taken from atomically, on Redis's clock so that every client agrees.
# KEYS[1]: the bucket; ARGV: tokens a second, capacity. Returns 1 if a token was taken.
_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'at', string.format('%.6f', now))
-- Idle for this long, the bucket is full again: Redis may as well forget it.
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return taken
"""


class RedisRateLimiter(BaseRateLimiter):
    """LangChain's ``InMemoryRateLimiter``, with its token bucket in Redis: every process
    and machine using the same ``redis_url`` and ``key`` shares one request rate (README
    "Many machines"; ``pip install "langchain-metaso[redis]"``).

    If Redis cannot be reached, the request goes ahead and a warning is logged: the limit
    is a courtesy to the provider, whose 429s are still retried, not a reason to fail.

    Args:
        redis_url: The Redis server, e.g. ``redis://localhost:6379/0``.
        requests_per_second: Tokens added each second, shared by all users of ``key``.
        max_bucket_size: Most tokens held at once (at least 1).
        check_every_n_seconds: How often a blocked ``acquire`` tries again.
        key: The Redis key of the bucket: one per limit.
        **redis_options: Passed to ``redis.Redis.from_url``.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        requests_per_second: float,
        max_bucket_size: float = 1.0,
        check_every_n_seconds: float = 0.1,
        key: str = "metaso/rate_limit",
        **redis_options: Any,
    ) -> None:
        if not requests_per_second > 0:
            raise ValueError(f"requests_per_second must be positive, got {requests_per_second}")
        if not max_bucket_size >= 1:
            raise ValueError(f"max_bucket_size must be at least 1, got {max_bucket_size}")
        if not check_every_n_seconds > 0:
            raise ValueError(f"check_every_n_seconds must be positive, got {check_every_n_seconds}")
        self.requests_per_second = requests_per_second
        self.max_bucket_size = max_bucket_size
        self.check_every_n_seconds = check_every_n_seconds
        self.key = key
        self.connection = RedisConnection(redis_url, **redis_options)

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take a token; if none is left, wait for one (``blocking``) or return False."""
        while not self._take():
            if not blocking:
                return False
            time.sleep(self.check_every_n_seconds)
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        """``acquire`` without blocking the event loop: each try runs in a worker thread."""
        while not await asyncio.to_thread(self._take):
            if not blocking:
                return False
            await asyncio.sleep(self.check_every_n_seconds)
        return True

    def _take(self) -> bool:
        try:
            # A Script made each call (source and hash): the limiter pickles as its settings.
            script = self.connection.client.register_script(_BUCKET_SCRIPT)
            taken = script(keys=[self.key], args=[self.requests_per_second, self.max_bucket_size])
            return bool(taken)
        except Exception as exc:  # an unreachable limiter must not fail the search
            logger.warning("Metaso rate limiter: Redis failed (%s); not limiting", exc)
            return True

    def __repr__(self) -> str:
        return (
            f"RedisRateLimiter({self.connection!r}, requests_per_second="
            f"{self.requests_per_second:g}, max_bucket_size={self.max_bucket_size:g}, "
            f"key={self.key!r})"
        )
