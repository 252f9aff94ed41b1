"""Redis, for ``MetasoStoreCache.from_redis_url``, ``RedisRateLimiter`` and
``RedisCreditBudget``: the connection they hold, and a ``ByteStore`` whose keys Redis expires.

redis-py is an optional dependency (``pip install "langchain-metaso[redis]"``), imported
when one of these is built, so a missing install fails at once, not at the first call.
Async code runs the sync client off the event loop: redis-py's asyncio clients belong to
the loop that opened their connections and fail in the next one (each ``asyncio.run``),
where one thread-safe pool serves every loop, and each call is one short command.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from langchain_core.stores import BaseStore

if TYPE_CHECKING:
    import redis

__all__ = ["RedisByteStore", "RedisConnection", "masked_url"]

# A cache or limiter waiting forever on an unreachable Redis would hang every search.
_DEFAULT_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def masked_url(url: str) -> str:
    """``url`` with its password hidden, wherever redis-py reads one: the user info
    (``redis://user:pw@host``) and the query (``redis://host/0?password=pw``)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL redis-py would take either: show nothing of it
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    pairs = [pair.partition("=") for pair in parts.query.split("&")] if parts.query else []
    query = "&".join(
        f"{name}=***" if unquote_plus(name) == "password" else "".join((name, eq, value))
        for name, eq, value in pairs
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


class RedisConnection:
    """A redis-py client for ``url``, made at once, with short socket timeouts by default.

    Pickled as its URL and options, so a copy sent to a worker process reaches the same
    server. Its repr hides the password.

    Args:
        url: e.g. ``redis://localhost:6379/0`` or ``rediss://:password@host:6380/0``.
        **options: Passed to ``redis.Redis.from_url`` (e.g. ``socket_timeout=5``).
    """

    def __init__(self, url: str, **options: Any) -> None:
        try:
            import redis
        except ImportError as exc:
            raise ImportError(
                'Redis support needs redis-py: pip install "langchain-metaso[redis]"'
            ) from exc
        self.url = url
        # Bytes in, bytes out: the cache's entries are UTF-8 that Redis must not decode.
        self.options = {**_DEFAULT_OPTIONS, **options, "decode_responses": False}
        self.client: redis.Redis = redis.Redis.from_url(url, **self.options)

    def __reduce__(self) -> Any:
        return functools.partial(RedisConnection, **self.options), (self.url,)

    def __repr__(self) -> str:
        return f"RedisConnection({masked_url(self.url)!r})"


class RedisByteStore(BaseStore[str, bytes]):
    """A LangChain ``ByteStore`` on Redis; with ``ttl``, Redis drops each key that long
    after it was set (``SET key value PX ms``). Its async methods are LangChain's defaults:
    the sync methods, off the event loop."""

    def __init__(self, connection: RedisConnection, *, ttl: float | None = None) -> None:
        self.connection = connection
        self.ttl = ttl
        self._ttl_ms = None if ttl is None else max(1, math.ceil(ttl * 1000))

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        return cast("list[bytes | None]", self.connection.client.mget(keys))

    def mset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        pipe = self.connection.client.pipeline(transaction=False)
        for key, value in key_value_pairs:
            pipe.set(key, value, px=self._ttl_ms)
        pipe.execute()

    def mdelete(self, keys: Sequence[str]) -> None:
        if keys:
            self.connection.client.delete(*keys)

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        pattern = _GLOB_SPECIAL.sub(r"\\\1", prefix or "") + "*"
        for key in self.connection.client.scan_iter(match=pattern):
            yield key.decode()

    def __repr__(self) -> str:
        return f"RedisByteStore({self.connection!r}, ttl={self.ttl})"
