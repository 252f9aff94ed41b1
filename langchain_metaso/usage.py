"""What calls cost: credits, requests and cache hits, counted where you ask, and credit
budgets (README "What a run cost")."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from langchain_metaso._redis import RedisConnection, masked_url
from langchain_metaso.errors import MetasoBudgetExceededError, MetasoConnectionError

__all__ = [
    "EXPECTED_CREDITS",
    "Budget",
    "CreditBudget",
    "MetasoUsage",
    "RedisCreditBudget",
    "Reservation",
    "UsageCounts",
    "credits_from",
    "metaso_usage",
    "record_usage",
]

logger = logging.getLogger("langchain_metaso")
T = TypeVar("T")

EXPECTED_CREDITS: dict[str, float] = {"search": 10.0, "reader": 1.0, "chat/completions": 3.0}
"""What a budget holds for a call before it has seen a price for the endpoint (10 for
another): a search of the default 10 results, a page, an answer of the ``fast`` model."""


def _expected(endpoint: str) -> float:
    return EXPECTED_CREDITS.get(endpoint, 10.0)


@dataclass
class UsageCounts:
    """Totals of some calls.

    Attributes:
        credits: Credits the server reported spending (cache hits cost none).
        requests: Calls answered by the server.
        cache_hits: Calls answered from the cache, without a request.
        unpriced_requests: Requests whose answer reported no credits (e.g. the reader's
            text format, a chat stream): ``credits`` leaves them out.
    """

    credits: float = 0.0
    requests: int = 0
    cache_hits: int = 0
    unpriced_requests: int = 0


@runtime_checkable
class Budget(Protocol):
    """A credit budget, as the HTTP core uses it (``CreditBudget``, ``RedisCreditBudget``)."""

    limit: float

    def reserve(self, endpoint: str) -> Any:
        """Hold a call's expected cost and return the hold, or raise
        ``MetasoBudgetExceededError`` if spent and held credits reach ``limit``."""

    def settle(self, hold: Any, credits: float | None) -> None:
        """Charge the answered call its ``credits``, or what was held (``None``)."""

    def release(self, hold: Any) -> None:
        """Drop ``hold``: the call failed before an answer and is not charged."""


class CreditBudget:
    """A budget of credits, shared by whoever holds it: an instance and its copies
    (``model_copy``, ``copy.deepcopy``, a toolkit's tools) hold the same one. A call may
    start only while the credits spent and those held by calls in flight are below
    ``limit``; the others are refused before they are sent.

    A pickled copy (e.g. sent to another process) starts from what was spent so far and
    counts on its own: processes share no memory (``RedisCreditBudget`` is shared).

    Args:
        limit: Credits that may be spent (``0`` refuses every call).

    Attributes:
        spent: Credits charged so far.
        held: Credits held by calls in flight.
    """

    def __init__(self, limit: float) -> None:
        if not limit >= 0:  # NaN included
            raise ValueError(f"credit_budget must be a number of credits >= 0, got {limit}")
        self.limit = limit
        self.spent = 0.0
        self.held = 0.0
        self._prices: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, endpoint: str) -> tuple[str, float]:
        with self._lock:
            used = self.spent + self.held
            if used >= self.limit:
                raise MetasoBudgetExceededError(
                    budget=self.limit, used=used, spent=self.spent, endpoint=endpoint
                )
            amount = self._prices.get(endpoint, _expected(endpoint))
            self.held += amount
        return endpoint, amount

    def settle(self, hold: tuple[str, float], credits: float | None) -> None:
        endpoint, amount = hold
        with self._lock:
            self.held -= amount
            if credits is None:
                credits = amount
            else:
                self._prices[endpoint] = credits
            self.spent += credits

    def release(self, hold: tuple[str, float]) -> None:
        with self._lock:
            self.held -= hold[1]

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> CreditBudget:
        return self

    __copy__ = __deepcopy__

    # A lock cannot be pickled: an unpickled copy gets its own, and none of the holds of
    # the calls in flight here.
    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {**self.__dict__, "held": 0.0, "_prices": dict(self._prices), "_lock": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def __repr__(self) -> str:
        return f"CreditBudget(limit={self.limit:g}, spent={self.spent:g})"


# KEYS[1]: the budget, a hash: 'spent', and 'price:<endpoint>' (what one last cost).
# KEYS[2]: the holds of calls in flight, a sorted set of '<id> <credits>' by lapse time.
# ARGV: limit, endpoint, the expected price if none was seen, hold id, lease seconds.
# Returns {1, price held} or {0, credits spent, credits held}, as strings (Lua's are floats).
_RESERVE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local spent = redis.call('HGET', KEYS[1], 'spent') or '0'
local held = 0
for _, hold in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  held = held + tonumber(string.match(hold, ' (.+)$'))
end
if tonumber(spent) + held >= tonumber(ARGV[1]) then
  return {0, spent, tostring(held)}
end
local price = redis.call('HGET', KEYS[1], 'price:' .. ARGV[2]) or ARGV[3]
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[4] .. ' ' .. price)
return {1, price}
"""
HOLD_LEASE = 600.0  # seconds: the hold of a worker that died mid-call lapses after this


class RedisCreditBudget:
    """A credit budget kept in Redis: every process and machine using the same
    ``redis_url`` and ``key`` spends from it, by the rule of ``CreditBudget`` (README "Many
    machines"). It pickles as its URL and settings; a copy in a worker reconnects. When
    Redis cannot be reached, a call is refused before it is sent (``MetasoConnectionError``).

    Args:
        redis_url: The Redis server, e.g. ``redis://localhost:6379/0``.
        credits: Credits all users of ``key`` may spend together.
        key: The Redis key of the budget (``{key}/held`` holds the calls in flight). Delete
            it to start afresh.
        **redis_options: Passed to ``redis.Redis.from_url``.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        credits: float,
        key: str = "metaso/credit_budget",
        **redis_options: Any,
    ) -> None:
        if not credits >= 0:  # NaN included
            raise ValueError(f"credits must be a number of credits >= 0, got {credits}")
        self.limit = credits
        self.key = key
        self.connection = RedisConnection(redis_url, **redis_options)

    @property
    def spent(self) -> float:
        """Credits spent so far by every user of the budget, read from Redis."""
        spent = self._redis("credit budget", self.connection.client.hget, self.key, "spent")
        return float(spent or 0)

    @property
    def remaining(self) -> float:
        """Credits left to spend (never below 0), read from Redis."""
        return max(0.0, self.limit - self.spent)

    def reserve(self, endpoint: str) -> tuple[str, str, float]:
        hold_id = uuid.uuid4().hex
        keys = [self.key, f"{self.key}/held"]
        args = [self.limit, endpoint, _expected(endpoint), hold_id, HOLD_LEASE]
        # A Script made each call (source and hash): the budget pickles as its settings.
        script = self.connection.client.register_script(_RESERVE_SCRIPT)
        allowed, *amounts = self._redis(endpoint, script, keys=keys, args=args)
        if not int(allowed):
            spent, held = map(float, amounts)
            raise MetasoBudgetExceededError(
                budget=self.limit, used=spent + held, spent=spent, endpoint=endpoint
            )
        return endpoint, f"{hold_id} {amounts[0].decode()}", float(amounts[0])

    def settle(self, hold: tuple[str, str, float], credits: float | None) -> None:
        endpoint, member, amount = hold
        pipe = self.connection.client.pipeline(transaction=True)
        pipe.zrem(f"{self.key}/held", member)
        pipe.hincrbyfloat(self.key, "spent", amount if credits is None else credits)
        if credits is not None:
            pipe.hset(self.key, f"price:{endpoint}", repr(credits))
        self._after_answer(pipe.execute)

    def release(self, hold: tuple[str, str, float]) -> None:
        self._after_answer(self.connection.client.zrem, f"{self.key}/held", hold[1])

    def _redis(self, endpoint: str, command: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as exc:  # redis-py's errors: the server is down, slow or refusing
            raise MetasoConnectionError(
                f"{type(exc).__name__}: {exc}",
                endpoint=endpoint,
                url=masked_url(self.connection.url),
                advice=(
                    "The credit budget is kept in this Redis, and a call it cannot check "
                    "is not sent: start Redis or correct redis_url, then retry."
                ),
            ) from exc

    def _after_answer(self, command: Any, *args: Any) -> None:
        # The call is over: its answer is not thrown away because Redis failed now.
        try:
            command(*args)
        except Exception as exc:
            logger.warning("Metaso credit budget: Redis failed (%s); a call went uncounted", exc)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> RedisCreditBudget:
        return self

    __copy__ = __deepcopy__

    def __repr__(self) -> str:
        return f"RedisCreditBudget({self.connection!r}, credits={self.limit:g}, key={self.key!r})"


class MetasoUsage(UsageCounts):
    """What the calls inside one ``metaso_usage()`` block cost; it keeps counting until
    the block ends, and keeps its totals after.

    Attributes:
        budget: The block's budget, or ``None`` for no limit.
        by_endpoint: The same totals for each endpoint (``"search"``, ``"reader"``...).
    """

    def __init__(self, credit_budget: float | Budget | None = None) -> None:
        super().__init__()
        self.budget = (
            CreditBudget(credit_budget) if isinstance(credit_budget, int | float) else credit_budget
        )
        self.by_endpoint: dict[str, UsageCounts] = {}
        self._lock = threading.Lock()

    def _record(self, endpoint: str, credits: float | None, cache_hit: bool) -> None:
        with self._lock:
            for counts in (self, self.by_endpoint.setdefault(endpoint, UsageCounts())):
                if cache_hit:
                    counts.cache_hits += 1
                    continue
                counts.requests += 1
                if credits is None:
                    counts.unpriced_requests += 1
                else:
                    counts.credits += credits

    def __repr__(self) -> str:
        budget = "" if self.budget is None else f", credit_budget={self.budget.limit:g}"
        return (
            f"MetasoUsage(credits={self.credits:g}, requests={self.requests}, "
            f"cache_hits={self.cache_hits}{budget})"
        )


_active: ContextVar[tuple[MetasoUsage, ...]] = ContextVar("metaso_usage", default=())


@contextmanager
def metaso_usage(credit_budget: float | Budget | None = None) -> Iterator[MetasoUsage]:
    """Count the credits, requests and cache hits of every call made inside the block.
    Blocks nest: a call counts in every block it is inside.

    Args:
        credit_budget: Credits the block may spend, by the rule of ``CreditBudget``, or a
            budget to spend from (e.g. a ``RedisCreditBudget`` shared by every worker).
    """
    usage = MetasoUsage(credit_budget)
    token = _active.set((*_active.get(), usage))
    try:
        yield usage
    finally:
        _active.reset(token)


class Reservation:
    """One call's holds on every budget that applies to it (the instance's ``budget``,
    each ``metaso_usage`` block's), around each call the HTTP core sends
    (``MetasoClient._send``, ``stream``, ``astream``).

    Entering raises ``MetasoBudgetExceededError`` (holding nothing) if a budget refuses;
    leaving without ``settle`` releases the holds. ``async with`` and ``asettle`` ask a
    budget kept on a server from a worker thread, never blocking the event loop.
    """

    def __init__(self, endpoint: str, budget: Budget | None = None) -> None:
        self.endpoint = endpoint
        self._usages = _active.get()  # the blocks the call started in, wherever it ends
        found = [budget, *(usage.budget for usage in self._usages)]
        self._budgets = list({id(each): each for each in found if each is not None}.values())
        self._remote = not all(isinstance(each, CreditBudget) for each in self._budgets)
        self._holds: list[tuple[Budget, Any]] | None = None

    def __enter__(self) -> Reservation:
        self._holds = []
        try:
            for budget in self._budgets:
                self._holds.append((budget, budget.reserve(self.endpoint)))
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    async def __aenter__(self) -> Reservation:
        return await self._off_loop(self.__enter__)

    async def __aexit__(self, *exc_info: object) -> None:
        await self._off_loop(self.release)

    def settle(self, credits: float | None) -> None:
        """The call was answered, and charged ``credits`` (``None``: the answer did not
        say; each budget charges what it held). Counted in every ``metaso_usage`` block."""
        holds, self._holds = self._holds, None
        if holds is None:
            return
        for budget, hold in holds:
            budget.settle(hold, credits)
        for usage in self._usages:
            usage._record(self.endpoint, credits, cache_hit=False)

    async def asettle(self, credits: float | None) -> None:
        await self._off_loop(self.settle, credits)

    def release(self) -> None:
        """Nothing was charged: drop the holds, count nothing."""
        holds, self._holds = self._holds, None
        for budget, hold in holds or ():
            budget.release(hold)

    async def _off_loop(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(function, *args) if self._remote else function(*args)


def record_usage(endpoint: str, credits: float | None, *, cache_hit: bool = False) -> None:
    """Count one call in every ``metaso_usage`` block it was made in, without a budget:
    the HTTP core counts cache hits (free) with it; ``Reservation.settle`` counts requests."""
    for usage in _active.get():
        usage._record(endpoint, credits, cache_hit)


def credits_from(answer: Any) -> float | None:
    """The ``credits`` a decoded answer reports, or ``None`` if it reports none usable."""
    credits = answer.get("credits") if isinstance(answer, dict) else None
    if isinstance(credits, bool) or not isinstance(credits, str | int | float):
        return None
    try:
        value = float(credits)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None
