"""``MetasoConfig``: the settings every public class shares, defined once."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, TypeVar

import httpx
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.utils import from_env, secret_from_env
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator
from typing_extensions import Self

from langchain_metaso._http import ConnectionPool, MetasoClient
from langchain_metaso.cache import MetasoCache
from langchain_metaso.providers import DEFAULT_BASE_URL, METASO_CN_BASE_URL
from langchain_metaso.usage import CreditBudget

__all__ = ["DEFAULT_BASE_URL", "METASO_CN_BASE_URL", "MetasoConfig"]

C = TypeVar("C", bound="MetasoConfig")
_BUDGET_LOCK = threading.Lock()


class MetasoConfig(BaseModel):
    """Connection settings and the pooled HTTP client behind them.

    A mixin of every public class, so they are configured the same way and
    raise the same errors.

    Setup:
        Install ``langchain-metaso`` and set ``METASO_API_KEY``: a 302.AI ``sk-`` key
        (the default base URL), or a metaso.cn ``mk-`` key together with
        ``METASO_BASE_URL=https://metaso.cn/api/v1``.

        .. code-block:: bash

            pip install -U langchain-metaso
            export METASO_API_KEY="sk-..."
    """

    # Validation errors quote their input: a rejected key must not appear in them.
    model_config = ConfigDict(arbitrary_types_allowed=True, hide_input_in_errors=True)

    metaso_api_key: SecretStr = Field(
        default_factory=secret_from_env("METASO_API_KEY", default=""), validate_default=True
    )
    """API key; read from the ``METASO_API_KEY`` environment variable if not given."""
    base_url: str = Field(
        default_factory=from_env("METASO_BASE_URL", default=DEFAULT_BASE_URL), validate_default=True
    )
    """API root, e.g. ``https://api.302.ai/metaso`` or ``https://metaso.cn/api/v1``;
    read from ``METASO_BASE_URL`` if not given."""
    timeout: float = Field(default=30.0, gt=0)
    """Seconds each step of an attempt may take (connect, send, each read)."""
    total_timeout: float | None = Field(default=60.0, gt=0)
    """Seconds a whole call may take, retries and waits included; ``None`` for no bound.
    A retry that could not finish in what is left is not started."""
    max_retries: int = Field(default=2, ge=0, le=10)
    """Retries after a transient failure (connection error, timeout, 429, 5xx)."""
    retry_backoff: float = Field(default=0.5, ge=0)
    """First backoff in seconds; it doubles each retry (with jitter), unless the
    server's ``Retry-After`` says otherwise."""
    max_concurrency: int = Field(default=16, ge=1, le=1000)
    """Requests in flight at once from this instance and its copies; more wait."""
    transport: Any = Field(default=None, exclude=True, repr=False)
    """An ``httpx`` transport to send through instead of the network (e.g.
    ``MetasoEmulator().transport()`` for offline tests)."""
    cache: MetasoCache | None = Field(default=None, exclude=True)
    """Opt-in cache of answers (e.g. ``InMemoryCache()``): an identical call is answered
    from it without a request, and without spending credits."""
    rate_limiter: BaseRateLimiter | None = Field(default=None, exclude=True)
    """A LangChain rate limiter (e.g. ``InMemoryRateLimiter``) consulted before every
    request, retries included."""

    credit_budget: float | None = Field(default=None, ge=0)
    """Credits this instance and its copies (``model_copy``, a toolkit's tools) may spend
    together; a call that would start after that is refused with
    ``MetasoBudgetExceededError`` before it is sent. ``None``: no budget."""

    _pool: ConnectionPool = PrivateAttr(default_factory=ConnectionPool)
    _budget: CreditBudget | None = PrivateAttr(default=None)

    @field_validator("metaso_api_key")
    @classmethod
    def _require_key(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value().strip()  # a pasted key often ends with a newline
        if not key:
            raise ValueError(
                "No Metaso API key: set the METASO_API_KEY environment variable or pass "
                "metaso_api_key=... (get a key at https://302.ai or https://metaso.cn)"
            )
        # Checked here, because a key that cannot go into an HTTP header would fail
        # later with an error message that quotes the header, key included.
        if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
            raise ValueError(
                "The Metaso API key (METASO_API_KEY or metaso_api_key=) holds spaces, "
                "control or non-ASCII characters; copy it again from the provider"
            )
        return SecretStr(key) if key != value.get_secret_value() else value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        try:
            parts = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"base_url {value!r} is not a valid URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.host:
            raise ValueError(
                f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r} or "
                f"{METASO_CN_BASE_URL!r}, got {value!r}"
            )
        return value

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        # A transport, a cache and a rate limiter hold sockets, locks or shared state:
        # they are resources, like the connection pool, so deep copies share them.
        memo = {} if memo is None else memo
        for shared in (self.transport, self.cache, self.rate_limiter):
            if shared is not None:
                memo.setdefault(id(shared), shared)
        return super().__deepcopy__(memo)

    @property
    def client(self) -> MetasoClient:
        """The HTTP core, with this instance's current settings and connection pool."""
        return MetasoClient(
            api_key=self.metaso_api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            retry_backoff=self.retry_backoff,
            max_concurrency=self.max_concurrency,
            transport=self.transport,
            pool=self._pool,
            cache=self.cache,
            rate_limiter=self.rate_limiter,
            total_timeout=self.total_timeout,
            budget=self._credit_budget(),
        )

    def _credit_budget(self) -> CreditBudget | None:
        # Copies share the budget object; one given another limit counts afresh.
        if self.credit_budget is None:
            return None
        with _BUDGET_LOCK:  # two first calls at once must not count on two budgets
            budget = self._budget
            if budget is None or budget.limit != self.credit_budget:
                budget = self._budget = CreditBudget(self.credit_budget)
            return budget

    def connection_settings(self) -> dict[str, Any]:
        """The settings every class shares (key, base URL, limits...), by name."""
        return {name: getattr(self, name) for name in MetasoConfig.model_fields}

    def share_connections(self, cls: type[C], **kwargs: Any) -> C:
        """A ``cls`` instance with these settings (``kwargs`` added or overriding) that
        shares this instance's connection pool, and so its ``max_concurrency`` bound.

        This is how a toolkit's tools share one pool::

            search = MetasoSearchTool()
            reader = search.share_connections(MetasoReaderTool, max_chars=4000)
        """
        sibling = cls(**{**self.connection_settings(), **kwargs})
        sibling._pool = self._pool
        sibling._budget = self._credit_budget()
        return sibling

    def close(self) -> None:
        """Close pooled sync connections now, rather than when garbage collected."""
        self._pool.close()

    async def aclose(self) -> None:
        """Close pooled connections, async ones of the running loop included."""
        await self._pool.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
