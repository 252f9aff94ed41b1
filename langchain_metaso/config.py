"""``MetasoConfig``: the settings every public class shares, defined once."""

from __future__ import annotations

import difflib
import functools
import inspect
import threading
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, TypeVar

import httpx
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from typing_extensions import Self

from langchain_metaso._http import ConnectionPool, MetasoClient
from langchain_metaso._http.body import DEFAULT_MAX_RESPONSE_BYTES
from langchain_metaso.cache import MetasoCache
from langchain_metaso.providers import DEFAULT_BASE_URL, METASO_CN_BASE_URL
from langchain_metaso.usage import Budget, CreditBudget

__all__ = [
    "DEFAULT_BASE_URL",
    "METASO_CN_BASE_URL",
    "MetasoConfig",
    "check_arguments",
    "names_of",
]

C = TypeVar("C", bound="MetasoConfig")
_BUDGET_LOCK = threading.Lock()


def check_arguments(owner: str, given: Iterable[str], accepted: Mapping[str, list[str]]) -> None:
    """Raise ``ValueError`` for an argument ``owner`` does not take, naming it and the
    valid ones, or for two names of one setting given together.

    ``accepted`` maps each setting to its names, the first its own and the others
    aliases (``{"k": ["k", "size"]}``), in the order the message lists them.
    """
    setting_of = {name: setting for setting, names in accepted.items() for name in names}
    given = list(given)
    unknown = [name for name in given if name not in setting_of]
    if unknown:
        guesses = {name: difflib.get_close_matches(name, setting_of, n=1) for name in unknown}
        named = ", ".join(
            f"{name!r} (did you mean {guess[0]!r}?)" if guess else repr(name)
            for name, guess in guesses.items()
        )
        valid = ", ".join(
            names[0] + (f" (or {', '.join(names[1:])})" if names[1:] else "")
            for names in accepted.values()
        )
        valid = valid or "none"
        plural = "s" if len(unknown) > 1 else ""
        raise ValueError(f"{owner} got unknown argument{plural} {named}. Valid arguments: {valid}")
    seen: dict[str, str] = {}
    for name in given:
        other = seen.setdefault(setting_of[name], name)
        if other != name:
            raise ValueError(
                f"{owner} got {other!r} and {name!r}, two names of one setting: pass one"
            )


def names_of(name: str, field: FieldInfo) -> list[str]:
    """The names a field is given by: its own, then its aliases (``AliasChoices``)."""
    alias = field.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [name]
    return [choice for choice in choices if isinstance(choice, str)]


class MetasoConfig(BaseModel):
    """Connection settings and the pooled HTTP client behind them.

    A mixin of every public class, so they are configured the same way and
    raise the same errors.

    Setup (every class of the package points here):
        Install ``langchain-metaso`` (the README's Install section says how) and set
        ``METASO_API_KEY``: a 302.AI ``sk-`` key (the default base URL), or a metaso.cn
        ``mk-`` key together with ``METASO_BASE_URL=https://metaso.cn/api/v1``. The
        fields below are the connection settings every class takes.

        .. code-block:: bash

            export METASO_API_KEY="sk-..."
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        # Validation errors quote their input: a rejected key must not appear in them.
        hide_input_in_errors=True,
        # A setting changed after creation is checked then, not sent to fail at the API.
        validate_assignment=True,
    )

    metaso_api_key: SecretStr = Field(
        default_factory=secret_from_env("METASO_API_KEY", default=""),
        validate_default=True,
        validation_alias=AliasChoices("metaso_api_key", "api_key"),
    )
    """API key (also accepted as ``api_key``); read from the ``METASO_API_KEY``
    environment variable if not given."""
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
    """Requests in flight at once from this instance and its copies; more wait (within
    ``total_timeout``)."""
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, ge=1024)
    """The largest answer read, counted after decompression (a stream's events too);
    past it the call fails with ``MetasoResponseError``. The default, 32 MiB, is far above
    any real answer."""
    transport: Any = Field(default=None, exclude=True, repr=False)
    """An ``httpx`` transport to send through instead of the network (e.g.
    ``MetasoEmulator().transport()`` for offline tests)."""
    cache: MetasoCache | None = Field(default=None, exclude=True)
    """Opt-in cache of answers (e.g. ``InMemoryCache()``): an identical call is answered
    from it without a request, and without spending credits."""
    rate_limiter: BaseRateLimiter | None = Field(default=None, exclude=True)
    """A LangChain rate limiter (e.g. ``InMemoryRateLimiter``) consulted before every
    request, retries included."""

    credit_budget: (
        Annotated[float, Field(ge=0)]
        # In JSON, a budget object is its repr (which hides a Redis password).
        | Annotated[Budget, PlainSerializer(repr, return_type=str, when_used="json")]
        | None
    ) = None
    """Credits this instance and its copies (``model_copy``, a toolkit's tools) may spend
    together; a call that would start after that is refused with
    ``MetasoBudgetExceededError`` before it is sent. A number set later is the new limit of
    that budget, copies included (their field keeps the old number), spent credits counted;
    a copy given one counts on its own. Or a budget to spend from, e.g. a
    ``RedisCreditBudget`` shared by every process. ``None``: no budget."""

    _pool: ConnectionPool = PrivateAttr(default_factory=ConnectionPool)
    _budget: CreditBudget | None = PrivateAttr(default=None)

    @classmethod
    @functools.cache  # a class's fields do not change; every construction reads them
    def argument_names(cls) -> dict[str, list[str]]:
        """Each setting the constructor takes and its names (its own, then its aliases),
        a class's own settings first and those of the LangChain base class last."""
        mro = cls.__mro__
        # The class furthest down the MRO that declares a field owns it: `name` is
        # BaseTool's, though every tool gives it a default.
        declared_by = {
            name: index
            for index, klass in enumerate(mro)
            for name in inspect.get_annotations(klass)
        }
        names = {name: names_of(name, field) for name, field in cls.model_fields.items()}
        return dict(sorted(names.items(), key=lambda item: declared_by.get(item[0], len(mro))))

    @classmethod
    @functools.cache
    def _setting_of_alias(cls) -> dict[str, str]:
        """Each other name of a setting (``size`` of ``k``), and the setting it names."""
        return {
            alias: setting for setting, names in cls.argument_names().items() for alias in names[1:]
        }

    @model_validator(mode="before")
    @classmethod
    def _known_arguments(cls, data: Any) -> Any:
        # Pydantic would drop an unknown argument (``MetasoRetriever(size=3)`` searched
        # for 10), or reject it without saying which ones are valid.
        # Also run on assignment, with the instance's __dict__, where LangChain caches
        # private values (``_injected_args_keys``): underscored names are never arguments.
        if isinstance(data, dict):
            given = (name for name in data if not name.startswith("_"))
            check_arguments(cls.__name__, given, cls.argument_names())
        return data

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

    def __getattr__(self, name: str) -> Any:
        # Another name of a setting reads it, as it sets it (``retriever.size``).
        setting = type(self)._setting_of_alias().get(name)
        if setting is None:
            return super().__getattr__(name)  # type: ignore[misc]  # pydantic's, for private attributes
        return getattr(self, setting)

    def __setattr__(self, name: str, value: Any) -> None:
        name = type(self)._setting_of_alias().get(name, name)
        if name not in type(self).model_fields:
            super().__setattr__(name, value)
            return
        # Pydantic has stored the value by the time a check of the whole instance fails:
        # put the instance back as it was, so a rejected change changes nothing.
        before, fields_set = self.__dict__.copy(), set(self.__pydantic_fields_set__)
        try:
            super().__setattr__(name, value)
        except ValidationError:
            object.__setattr__(self, "__dict__", before)
            object.__setattr__(self, "__pydantic_fields_set__", fields_set)
            raise
        if name == "credit_budget" and self._budget and isinstance(self.credit_budget, float):
            # Raised or lowered for every copy sharing the budget, keeping what was spent.
            self._budget.limit = self.credit_budget

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied, validated as the constructor validates (pydantic's
        own copy is not); it shares this instance's connections (unless ``deep``) and credit
        budget (unless ``update`` gives one)."""
        self._credit_budget()  # made now if not yet, so that the copy spends from it too
        copied = super().model_copy(deep=deep)
        if not update:
            return copied
        names = self.argument_names()
        replaced = {setting for setting, aliases in names.items() if set(aliases) & set(update)}
        # The arguments this instance was made with (and the settings read from the
        # environment then), updated: what is derived from them is derived again.
        given = (copied.model_fields_set | set(MetasoConfig.model_fields)) - replaced
        values = {name: getattr(copied, name) for name in given}
        made = type(self).model_validate({**values, **update})
        return copied._share_with(made, budget="credit_budget" not in replaced)

    @property
    def client(self) -> MetasoClient:
        """The HTTP core, with this instance's current settings and connection pool."""
        return self._client(cache=self.cache, rate_limiter=self.rate_limiter)

    def _client(self, **layers: Any) -> MetasoClient:
        # ``layers``: the cache and rate limiter, which ChatMetaso leaves to LangChain.
        return MetasoClient(
            api_key=self.metaso_api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            retry_backoff=self.retry_backoff,
            max_concurrency=self.max_concurrency,
            transport=self.transport,
            pool=self._pool,
            total_timeout=self.total_timeout,
            budget=self._credit_budget(),
            max_response_bytes=self.max_response_bytes,
            **layers,
        )

    def _credit_budget(self) -> Budget | None:
        # A number: the limit of one CreditBudget, made on first use, that copies share.
        if self.credit_budget is None or isinstance(self.credit_budget, Budget):
            return self.credit_budget
        with _BUDGET_LOCK:  # two first calls at once must not count on two budgets
            if self._budget is None:
                self._budget = CreditBudget(self.credit_budget)
            return self._budget

    def connection_settings(self) -> dict[str, Any]:
        """The settings every class shares (key, base URL, limits...), by name."""
        return {name: getattr(self, name) for name in MetasoConfig.model_fields}

    def share_connections(self, cls: type[C], **kwargs: Any) -> C:
        """A ``cls`` instance with these settings (``kwargs`` added or overriding) that
        shares this instance's connection pool, so its ``max_concurrency`` bound, and credit
        budget (unless ``kwargs`` give one), as a toolkit's tools do."""
        other = cls(**{**self.connection_settings(), **kwargs})
        return self._share_with(other, budget="credit_budget" not in kwargs)

    def _share_with(self, other: C, *, budget: bool) -> C:
        other._pool = self._pool
        if budget and isinstance(self._credit_budget(), CreditBudget):
            other._budget = self._budget
        return other

    def close(self) -> None:
        """Close pooled sync connections now, rather than when garbage collected."""
        self._pool.close()

    async def aclose(self) -> None:
        """Close pooled connections, async ones of the running loop included."""
        await self._pool.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
