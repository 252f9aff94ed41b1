"""The retry policy, in one place: may a failed attempt be retried, and after how long.

Transient failures are retried: the errors whose class says so (``TRANSIENT``; the
provider codes that ``failures`` maps to those classes too)."""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass

import httpx

from langchain_metaso.errors import (
    MetasoConnectionError,
    MetasoError,
    MetasoRateLimitError,
    MetasoServerError,
)

__all__ = ["MAX_BACKOFF", "MAX_RETRY_AFTER", "RetryPolicy", "parse_retry_after"]

MAX_BACKOFF = 20.0
# A Retry-After longer than this is not waited out inside one call: the error goes
# back to the caller (an agent can decide to do something else meanwhile).
MAX_RETRY_AFTER = 60.0
TRANSIENT: tuple[type[MetasoError], ...] = (
    MetasoConnectionError,
    MetasoRateLimitError,
    MetasoServerError,
)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """The retry settings of one call (the config's fields of the same names), and what
    follows from them; ``MetasoClient`` is one."""

    max_retries: int
    retry_backoff: float
    timeout: float
    total_timeout: float | None = None

    def deadline(self, start: float) -> float | None:
        """When a call started at ``start`` (``time.monotonic()``) must be over."""
        return None if self.total_timeout is None else start + self.total_timeout

    def attempt_timeout(self, deadline: float | None, delay: float = 0.0) -> float:
        """The timeout of each step of an attempt starting in ``delay`` seconds: no step
        may wait past the deadline."""
        if deadline is None:
            return self.timeout
        return max(0.001, min(self.timeout, deadline - time.monotonic() - delay))

    def retry_delay(self, error: MetasoError, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error`` on 0-based ``attempt``, or
        ``None`` if it must not be retried (not transient, retries used up, or the server
        asked for a pause longer than a call should stall an agent)."""
        if attempt >= self.max_retries or not isinstance(error, TRANSIENT):
            return None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(retry_after) if retry_after <= MAX_RETRY_AFTER else None
        ceiling = min(MAX_BACKOFF, self.retry_backoff * 2**attempt)
        # Equal jitter: at least half the ceiling, so retries spread without collapsing to 0.
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 (not crypto)

    def fits(self, delay: float, deadline: float | None) -> bool:
        """Whether an attempt after ``delay`` seconds still has time before ``deadline``:
        one that would start with less than a tenth of ``timeout`` left is not started."""
        if deadline is None:
            return True
        return time.monotonic() + delay + min(self.timeout / 10, 1.0) < deadline


def parse_retry_after(response: httpx.Response) -> float | None:
    """The response's ``Retry-After`` in seconds (a number or an HTTP date), if any; a
    value that is no finite number (``inf``, ``1e400``, ``nan``) is taken for none."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
