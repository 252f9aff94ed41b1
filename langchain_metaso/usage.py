"""What calls cost: credits, requests and cache hits, counted where you ask, with budgets.

``with metaso_usage() as usage:`` counts every call made inside the block, like
LangChain's ``get_usage_metadata_callback``; ``metaso_usage(credit_budget=N)`` also
refuses, before sending, any call that would start once ``N`` credits are spent. A
``CreditBudget`` does the same for one instance and its copies (``credit_budget=``).

The tracker follows the context (``contextvars``): asyncio tasks started inside the block
count, and so do threads started with a copy of the context, as LangChain's ``batch``,
``asyncio.to_thread`` and ``contextvars.copy_context().run`` do. A plain
``threading.Thread`` or ``ThreadPoolExecutor.submit`` starts with an empty context: its
calls are not counted unless the function runs in ``contextvars.copy_context().run``.

The HTTP core calls ``check_budget`` before sending a request and ``record_usage`` once a
call is answered, from the server or from the cache.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from langchain_metaso.errors import MetasoBudgetExceededError

__all__ = [
    "CreditBudget",
    "MetasoUsage",
    "UsageCounts",
    "check_budget",
    "credits_from",
    "metaso_usage",
    "record_usage",
]


@dataclass
class UsageCounts:
    """Totals of some calls.

    Attributes:
        credits: Credits the server reported spending (cache hits cost none).
        requests: Calls answered by the server.
        cache_hits: Calls answered from the cache, without a request.
        unpriced_requests: Requests whose answer reported no credits (e.g. the reader's
            text format): ``credits`` leaves them out.
    """

    credits: float = 0.0
    requests: int = 0
    cache_hits: int = 0
    unpriced_requests: int = 0

    def _count(self, credits: float | None, cache_hit: bool) -> None:
        if cache_hit:
            self.cache_hits += 1
            return
        self.requests += 1
        if credits is None:
            self.unpriced_requests += 1
        else:
            self.credits += credits


class CreditBudget:
    """A budget of credits, shared by whoever holds it: an instance and its copies
    (``model_copy``, ``copy.deepcopy``, a toolkit's tools) hold the same one. Once ``limit``
    credits are spent, the calls it applies to are refused before they are sent.

    A pickled copy (e.g. sent to another process) starts from what was spent so far and
    counts on its own: processes share no memory.

    Args:
        limit: Credits that may be spent (``0`` refuses every call).
    """

    def __init__(self, limit: float) -> None:
        if not limit >= 0:  # NaN included
            raise ValueError(f"credit_budget must be a number of credits >= 0, got {limit}")
        self.limit = limit
        self.spent = 0.0
        self._lock = threading.Lock()

    def check(self, endpoint: str) -> None:
        """Raise ``MetasoBudgetExceededError`` if the budget is spent."""
        spent = self.spent
        if spent >= self.limit:
            raise MetasoBudgetExceededError(budget=self.limit, used=spent, endpoint=endpoint)

    def add(self, credits: float) -> None:
        """Count ``credits`` as spent."""
        with self._lock:
            self.spent += credits

    def __copy__(self) -> CreditBudget:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> CreditBudget:
        return self

    # A lock cannot be pickled: an unpickled copy gets its own.
    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CreditBudget(limit={self.limit:g}, spent={self.spent:g})"


class MetasoUsage(UsageCounts):
    """What the calls inside one ``metaso_usage()`` block cost; it keeps counting until
    the block ends, and keeps its totals after.

    Attributes:
        budget: The block's ``CreditBudget``, or ``None`` for no limit.
        by_endpoint: The same totals for each endpoint (``"search"``, ``"reader"``...).
    """

    def __init__(self, credit_budget: float | None = None) -> None:
        super().__init__()
        self.budget = None if credit_budget is None else CreditBudget(credit_budget)
        self.by_endpoint: dict[str, UsageCounts] = {}
        self._lock = threading.Lock()

    def _record(self, endpoint: str, credits: float | None, cache_hit: bool) -> None:
        with self._lock:
            self._count(credits, cache_hit)
            self.by_endpoint.setdefault(endpoint, UsageCounts())._count(credits, cache_hit)
        if self.budget is not None and credits is not None and not cache_hit:
            self.budget.add(credits)

    def __repr__(self) -> str:
        budget = "" if self.budget is None else f", credit_budget={self.budget.limit:g}"
        return (
            f"MetasoUsage(credits={self.credits:g}, requests={self.requests}, "
            f"cache_hits={self.cache_hits}{budget})"
        )


_active: ContextVar[tuple[MetasoUsage, ...]] = ContextVar("metaso_usage", default=())


@contextmanager
def metaso_usage(credit_budget: float | None = None) -> Iterator[MetasoUsage]:
    """Count the credits, requests and cache hits of every call made inside the block.

    Blocks nest: a call counts in every block it is inside.

    Args:
        credit_budget: Credits the block may spend. A call that would start once they are
            spent raises ``MetasoBudgetExceededError`` without being sent (an agent's tool
            gets an error message instead); calls already under way finish and count.

    Example:
        .. code-block:: python

            from langchain_metaso import MetasoSearchTool, metaso_usage

            with metaso_usage(credit_budget=100) as usage:
                agent.invoke({"messages": [("user", "...")]})
            print(usage.credits, usage.requests, usage.cache_hits)
    """
    usage = MetasoUsage(credit_budget)
    token = _active.set((*_active.get(), usage))
    try:
        yield usage
    finally:
        _active.reset(token)


def check_budget(endpoint: str, budget: CreditBudget | None = None) -> None:
    """Raise ``MetasoBudgetExceededError`` if a budget that applies to a call is spent:
    the instance's ``budget`` or that of any ``metaso_usage`` block it is made in.

    The HTTP core calls it before sending a call (not before a cache hit, which is free).
    """
    if budget is not None:
        budget.check(endpoint)
    for usage in _active.get():
        if usage.budget is not None:
            usage.budget.check(endpoint)


def record_usage(
    endpoint: str,
    credits: float | None,
    *,
    cache_hit: bool = False,
    budget: CreditBudget | None = None,
) -> None:
    """Count one answered call in every ``metaso_usage`` block it was made in, and its
    credits against the instance's ``budget``.

    Args:
        endpoint: The endpoint called, e.g. ``"search"``.
        credits: What the answer says it cost (``credits_from``), ``None`` if it does not say.
        cache_hit: Whether the cache answered (then nothing was spent).
        budget: The instance's budget, if it has one.
    """
    if budget is not None and credits is not None and not cache_hit:
        budget.add(credits)
    for usage in _active.get():
        usage._record(endpoint, credits, cache_hit)


def credits_from(answer: Any) -> float | None:
    """The ``credits`` a decoded answer reports, or ``None`` if it reports none usable."""
    credits = answer.get("credits") if isinstance(answer, dict) else None
    if isinstance(credits, str):
        try:
            credits = float(credits)
        except ValueError:
            return None
    if isinstance(credits, bool) or not isinstance(credits, int | float):
        return None
    if not (math.isfinite(credits) and credits >= 0):
        return None
    return float(credits)
