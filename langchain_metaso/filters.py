"""Site and date filters for search results, applied by this client to what the API
returns (it has none): see the README's "Filters: sites and dates".

Domains are compared as ASCII: an internationalised name (``例子.中国``) becomes its
punycode (``xn--fsqu00a.xn--fiqs8s``) by the standard library's IDNA 2003 codec, on both sides.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from typing_extensions import Self

from langchain_metaso.dates import parse_date
from langchain_metaso.search import SearchResult

__all__ = [
    "EXCLUDED",
    "OUTSIDE",
    "UNDATED",
    "FilterSettings",
    "Filtered",
    "SearchFilters",
    "domain_matches",
    "host_of",
    "normalize_domain",
]

# Why a result was dropped, as the model reads it.
OUTSIDE = "outside the requested sites"
EXCLUDED = "from an excluded site"
UNDATED = "undated"
_OLDER = "older than "
_NEWER = "newer than "

_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_LIST_SEPARATORS = re.compile(r"[\s,，、;；]+")


def normalize_domain(value: str) -> str:
    """``value`` as a lower-case ASCII domain: ``https://www.a.com:8080/x`` becomes
    ``www.a.com``; a leading ``*.`` or ``.`` and a trailing dot are dropped.

    Raises:
        ValueError: ``value`` is not a domain or a URL with one (no dot, a space, an empty
            or malformed label, an IP address...); the message names it.
    """
    text = value.strip()
    try:
        if not text:
            raise ValueError("it is empty")
        if "@" in text:
            raise ValueError("it holds '@'")
        if any(c.isspace() for c in text):  # urlsplit would silently drop tabs and newlines
            raise ValueError("it holds a space")
        host = _host(text)
        if host is None:
            raise ValueError("it holds no host")
        host = host.removeprefix("*.").removeprefix(".")
        if not host:
            raise ValueError("it is empty")
        if len(host) > 253:
            raise ValueError("it is longer than 253 characters")
        labels = host.split(".")
        if len(labels) < 2:
            raise ValueError("it has no dot")
        for label in labels:
            if not _LABEL.fullmatch(label):
                raise ValueError(
                    f"the part {label!r} is not 1 to 63 letters, digits and inner hyphens"
                    if label
                    else "it has an empty part between dots"
                )
        if labels[-1].isdigit():
            raise ValueError(
                f"its last part {labels[-1]!r} is a number (an IP address is no domain)"
            )
    except ValueError as error:
        raise ValueError(
            f"{value!r} is not a domain: {error}; give one like 'example.com' or a URL"
        ) from None
    return host


def host_of(url: str | None) -> str | None:
    """The host of ``url`` as ``normalize_domain`` writes domains, or ``None`` if it has
    none that can be read. Never raises."""
    if not url:
        return None
    try:
        return _host(url.strip())
    except ValueError:  # e.g. an unclosed IPv6 bracket: no site can be shown
        return None


def _host(text: str) -> str | None:
    """The lower-case ASCII host of a URL, or of ``host[:port][/path]``, without a trailing
    dot; ``None`` if there is none. ``ValueError`` if ``urlsplit`` or the IDNA codec refuse it.
    """
    host = urlsplit(text if "://" in text else "//" + text.lstrip("/")).hostname
    host = host.removesuffix(".") if host else None
    if host and not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("it is not a valid internationalised name") from None
    return host or None


def domain_matches(host: str, domain: str) -> bool:
    """Whether ``host`` is ``domain`` or one of its subdomains: ``example.com`` matches
    ``www.example.com``, not ``badexample.com``. Both as ``normalize_domain`` writes them."""
    return host == domain or host.endswith("." + domain)


def _domain_list(value: Any) -> Any:
    # One string (a model's "a.com, b.com") is a list: no domain holds a comma or a space.
    if isinstance(value, str):
        return [part for part in _LIST_SEPARATORS.split(value) if part]
    return value


def _normalize_domains(value: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if not value:
        return None  # an empty list filters nothing
    return tuple(dict.fromkeys(normalize_domain(item) for item in value))


Domains = Annotated[
    tuple[str, ...] | None, BeforeValidator(_domain_list), AfterValidator(_normalize_domains)
]


def _date_of(value: Any) -> Any:
    # pydantic rejects a datetime with a time of day where a date is expected.
    return value.date() if isinstance(value, datetime) else value


class FilterSettings(BaseModel):
    """The filter settings, validated: the fields of ``SearchFilters``, also carried by
    the classes that search (``MetasoSearchTool``, ``MetasoRetriever``, ``MetasoLoader``).

    A result must pass every filter that is set (``recency_days`` with ``published_after``:
    the later cutoff). Nothing is sent to the API: the classes judge what it returns, so a
    filtered search fetches further pages, at most 3 requests a call
    (``paged_search.MAX_REQUESTS``), and may return fewer results than asked for.
    """

    include_domains: Domains = Field(
        default=None,
        description=(
            "Only keep results from these sites (a domain also covers its subdomains), "
            "e.g. ['gov.cn', 'zhihu.com']."
        ),
    )
    exclude_domains: Domains = Field(
        default=None,
        description="Never keep results from these sites (and their subdomains).",
    )
    recency_days: int | None = Field(
        default=None,
        description=("Only keep results dated today or in the last this many days (at least 1)."),
    )
    published_after: Annotated[date | None, BeforeValidator(_date_of)] = Field(
        default=None,
        description="Only keep results dated on or after this day (YYYY-MM-DD).",
    )
    published_before: Annotated[date | None, BeforeValidator(_date_of)] = Field(
        default=None,
        description="Only keep results dated on or before this day (YYYY-MM-DD).",
    )
    keep_undated: bool = Field(
        default=True,
        description="With a date filter, whether to keep results whose date cannot be read.",
    )

    @field_validator("recency_days", mode="wrap")
    @classmethod
    def _whole_days(cls, value: Any, read: ValidatorFunctionWrapHandler) -> int | None:
        # pydantic reads True as 1; as a number of days it is a mistake.
        if isinstance(value, bool):
            raise ValueError(f"recency_days must be a number of days, not {value}")
        days: int | None = read(value)
        if days is not None and days < 1:
            raise ValueError(f"recency_days must be at least 1, got {days}")
        return days

    @model_validator(mode="after")
    def _some_result_can_pass(self) -> Self:
        if self.published_before and self.published_before < (self.published_after or date.min):
            raise ValueError(
                f"published_before ({self.published_before}) is earlier than published_after "
                f"({self.published_after}): no result could be kept"
            )
        for domain in self.include_domains or ():
            for excluded in self.exclude_domains or ():
                if domain_matches(domain, excluded):
                    raise ValueError(
                        f"include_domains has {domain!r}, which exclude_domains "
                        f"excludes ({excluded!r}): no result from it could be kept"
                    )
        return self

    def search_filters(self) -> SearchFilters:
        """These settings as ``SearchFilters``."""
        # Already validated as these settings: a hot path, once a call.
        settings = {name: getattr(self, name) for name in FilterSettings.model_fields}
        return SearchFilters.model_construct(**settings)


class SearchFilters(FilterSettings):
    """Which search results to keep: by site, by date, or both (see ``FilterSettings``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @property
    def active(self) -> bool:
        """Whether any result could be dropped (``keep_undated`` alone drops nothing)."""
        return bool(
            self.include_domains
            or self.exclude_domains
            or self.recency_days is not None
            or self.published_after is not None
            or self.published_before is not None
        )

    def cutoff(self, today: date) -> date | None:
        """The oldest date kept, or ``None`` without a date filter."""
        cutoffs = [self.published_after] if self.published_after else []
        if self.recency_days is not None:
            try:
                cutoffs.append(today - timedelta(days=self.recency_days))
            except OverflowError:  # more days than the calendar holds: every date passes
                cutoffs.append(date.min)
        return max(cutoffs, default=None)

    def _judge(
        self, url: str | None, date_text: str | None, today: date, cutoff: date | None
    ) -> str | None:
        if self.include_domains or self.exclude_domains:
            host = host_of(url)
            if host is not None and any(
                domain_matches(host, domain) for domain in self.exclude_domains or ()
            ):
                return EXCLUDED
            if self.include_domains and (
                host is None
                or not any(domain_matches(host, domain) for domain in self.include_domains)
            ):
                return OUTSIDE
        if cutoff is not None or self.published_before is not None:
            published = parse_date(date_text, today=today)
            if published is None:
                return None if self.keep_undated else UNDATED
            if cutoff is not None and published < cutoff:
                return f"{_OLDER}{cutoff.isoformat()}"
            if self.published_before is not None and published > self.published_before:
                return f"{_NEWER}{self.published_before.isoformat()}"
        return None

    def apply(
        self, results: Iterable[SearchResult], *, today: date, limit: int | None = None
    ) -> Filtered:
        """The results that pass, in their order, and how many were dropped for each reason;
        ``today`` is the day relative dates and ``recency_days`` count back from. With a
        ``limit``, it stops once that many pass: the results after are not judged (nor
        counted as seen), so that ``Filtered.describe`` adds up."""
        cutoff = self.cutoff(today)
        kept: list[SearchResult] = []
        dropped: Counter[str] = Counter()
        for result in results:
            if limit is not None and len(kept) >= limit:
                break
            reason = self._judge(result.url, result.date, today, cutoff)
            if reason is None:
                kept.append(result)
            else:
                dropped[reason] += 1
        return Filtered(kept, dict(dropped))

    def narrowed(self, other: SearchFilters) -> SearchFilters:
        """Filters that keep what both these and ``other`` keep (a tool's own with a
        call's): sites excluded by either stay excluded, the sites included are those both
        include, the later date cutoff applies.

        Raises:
            ValueError: both include sites and no site is in both, or a site one includes
                the other excludes.
        """
        first, second = self.include_domains, other.include_domains
        common = first or second
        if first and second:
            # Each domain of one that falls under a domain of the other.
            common = tuple(a for a in first if any(domain_matches(a, b) for b in second))
            common += tuple(b for b in second if any(domain_matches(b, a) for a in first))
            if not common:
                raise ValueError(
                    f"include_domains {list(first)} and {list(second)} have no site in common"
                )
        return SearchFilters(
            include_domains=common,
            exclude_domains=(self.exclude_domains or ()) + (other.exclude_domains or ()),
            recency_days=_pick_given(min, self.recency_days, other.recency_days),
            published_after=_pick_given(max, self.published_after, other.published_after),
            published_before=_pick_given(min, self.published_before, other.published_before),
            keep_undated=self.keep_undated and other.keep_undated,
        )


def _pick_given(pick: Callable[..., Any], *values: Any) -> Any:
    """``pick`` (``min`` or ``max``) of the values that are set; ``None`` if none is."""
    return pick((value for value in values if value is not None), default=None)


@dataclass(frozen=True)
class Filtered:
    """What ``SearchFilters.apply`` kept, and how many it dropped for each reason.
    Outcomes of successive pages add up with ``+``."""

    kept: list[SearchResult]
    dropped: Mapping[str, int] = field(default_factory=dict)

    @property
    def seen(self) -> int:
        """How many items were judged."""
        return len(self.kept) + sum(self.dropped.values())

    def __add__(self, other: Filtered) -> Filtered:
        dropped = Counter(self.dropped) + Counter(other.dropped)
        return Filtered([*self.kept, *other.kept], dict(dropped))

    def describe(self) -> str:
        """What the filters did, for a model: ``"4 of 10 kept: 6 outside the requested
        sites"``, the most frequent reason first (ties in the order they are judged);
        ``""`` when nothing was dropped."""
        reasons = sorted(
            ((reason, count) for reason, count in self.dropped.items() if count > 0),
            key=lambda pair: (-pair[1], _rank(pair[0])),
        )
        if not reasons:
            return ""
        counts = ", ".join(f"{count} {reason}" for reason, count in reasons)
        return f"{len(self.kept)} of {self.seen} kept: {counts}"


_REASON_ORDER = (EXCLUDED, OUTSIDE, _OLDER, _NEWER, UNDATED)


def _rank(reason: str) -> int:
    return next(
        (i for i, prefix in enumerate(_REASON_ORDER) if reason.startswith(prefix)),
        len(_REASON_ORDER),
    )
