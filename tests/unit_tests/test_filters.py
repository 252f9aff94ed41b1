"""Issue 15: site and date filters, applied by the client to the results the API returns."""

from __future__ import annotations

import json
from datetime import date, datetime
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from langchain_metaso import SearchResponse, SearchResult
from langchain_metaso.filters import (
    EXCLUDED,
    OUTSIDE,
    UNDATED,
    Filtered,
    SearchFilters,
    domain_matches,
    host_of,
    normalize_domain,
)

TODAY = date(2025, 3, 31)


# --- domains ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("example.com", "example.com"),
        ("  Example.COM  ", "example.com"),
        ("example.com.", "example.com"),
        ("*.example.com", "example.com"),
        (".example.com", "example.com"),
        ("https://www.a.com/x", "www.a.com"),
        ("HTTP://News.A.com:8080/path?q=1#top", "news.a.com"),
        ("//a.com/x", "a.com"),
        ("a.com/x", "a.com"),
        ("a.com:443", "a.com"),
        ("a.com?x=1", "a.com"),
        ("gov.cn", "gov.cn"),
        ("my_site.example.com", "my_site.example.com"),
        ("xn--fsqu00a.xn--fiqs8s", "xn--fsqu00a.xn--fiqs8s"),
        # Internationalised names become punycode (IDNA 2003, the standard library's).
        ("例子.中国", "xn--fsqu00a.xn--fiqs8s"),
        ("https://例子.中国/路径", "xn--fsqu00a.xn--fiqs8s"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("ＥＸＡＭＰＬＥ.com", "example.com"),
        ("example。com", "example.com"),  # the ideographic full stop separates labels too
    ],
)
def test_normalize_domain(value: str, expected: str) -> None:
    assert normalize_domain(value) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("localhost", "it has no dot"),
        ("com", "it has no dot"),
        ("exa mple.com", "it holds a space"),
        ("exa\tmple.com", "it holds a space"),
        ("a..com", "empty part"),
        ("-a.com", "'-a'"),
        ("a-.com", "'a-'"),
        ("a!.com", "'a!'"),
        ("x" * 64 + ".com", "'" + "x" * 64 + "'"),
        ("a." * 127 + "com", "longer than 253"),
        ("1.2.3.4", "is a number"),
        ("http://10.0.0.1/x", "is a number"),
        ("a.123", "is a number"),
        ("http://[::1]/", "it has no dot"),
        ("http://[bad", "IPv6"),
        ("https://", "no host"),
        ("me@a.com", "'@'"),
        ("https://user@a.com/", "'@'"),
        ("a.com, b.com", "it holds a space"),
        ("a.com,b.com", "'com,b'"),
        ("\udcff.com", "internationalised"),
    ],
)
def test_normalize_domain_rejects_what_is_not_a_domain(value: str, why: str) -> None:
    with pytest.raises(ValueError) as error:
        normalize_domain(value)
    message = str(error.value)
    assert repr(value) in message  # names the value
    assert why in message
    assert "example.com" in message  # and says what is expected


@pytest.mark.parametrize(
    ("host", "domain", "expected"),
    [
        ("example.com", "example.com", True),
        ("www.example.com", "example.com", True),
        ("news.example.com", "example.com", True),
        ("a.b.example.com", "example.com", True),
        ("badexample.com", "example.com", False),
        ("example.com.evil.org", "example.com", False),
        ("example.co", "example.com", False),
        ("example.com", "www.example.com", False),
        ("wwwexample.com", "example.com", False),
        ("xample.com", "example.com", False),
    ],
)
def test_domain_matches(host: str, domain: str, expected: bool) -> None:
    assert domain_matches(host, domain) is expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.a.com/x", "www.a.com"),
        ("HTTP://A.COM:80/", "a.com"),
        ("https://a.com./x", "a.com"),
        ("https://user:pw@a.com/", "a.com"),
        ("www.a.com/x", "www.a.com"),
        ("https://例子.中国/x", "xn--fsqu00a.xn--fiqs8s"),
        ("http://[::1]:80/", "::1"),
        ("http://[bad", None),
        ("https://", None),
        ("", None),
        (None, None),
    ],
)
def test_host_of(url: str | None, expected: str | None) -> None:
    assert host_of(url) == expected


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
DOMAIN = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(LABEL, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)


@given(domain=DOMAIN, prefix=st.text(min_size=1).filter(lambda p: not p.endswith(".")))
def test_domain_matches_no_look_alike(domain: str, prefix: str) -> None:
    assert not domain_matches(prefix + domain, domain)


@given(domain=DOMAIN, label=LABEL)
def test_domain_matches_itself_and_its_subdomains(domain: str, label: str) -> None:
    assert domain_matches(domain, domain)
    assert domain_matches(f"{label}.{domain}", domain)
    assert not domain_matches(domain, f"{label}.{domain}")


@given(domain=DOMAIN)
def test_normalize_domain_is_stable_and_reads_urls(domain: str) -> None:
    assert normalize_domain(domain) == domain
    assert normalize_domain(f"https://{domain.upper()}:8443/a?b#c") == domain
    assert host_of(f"https://{domain}/page") == domain


@given(value=st.text())
def test_normalize_domain_raises_nothing_but_value_error(value: str) -> None:
    try:
        domain = normalize_domain(value)
    except ValueError:
        return
    assert normalize_domain(domain) == domain


@given(url=st.text())
def test_host_of_never_raises(url: str) -> None:
    host = host_of(url)
    assert host is None or isinstance(host, str)


# --- SearchFilters: validation -------------------------------------------------------------


def test_no_filter_is_inactive() -> None:
    assert not SearchFilters().active
    assert not SearchFilters(keep_undated=False).active  # nothing to be undated for
    assert not SearchFilters(include_domains=[], exclude_domains=[]).active


@pytest.mark.parametrize(
    "settings",
    [
        {"include_domains": ["a.com"]},
        {"exclude_domains": ["a.com"]},
        {"recency_days": 7},
        {"published_after": date(2025, 1, 1)},
    ],
)
def test_any_filter_is_active(settings: dict[str, Any]) -> None:
    assert SearchFilters(**settings).active


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [
        (["https://www.a.com/x", "B.com"], ("www.a.com", "b.com")),
        (("a.com", "a.com", "A.COM."), ("a.com",)),
        ("a.com", ("a.com",)),
        ("a.com, b.com", ("a.com", "b.com")),
        ("a.com，b.com、c.com; d.com", ("a.com", "b.com", "c.com", "d.com")),
        ([], None),
        ("", None),
        (None, None),
    ],
)
def test_domains_are_normalised(given_value: Any, expected: tuple[str, ...] | None) -> None:
    assert SearchFilters(include_domains=given_value).include_domains == expected
    assert SearchFilters(exclude_domains=given_value).exclude_domains == expected


@pytest.mark.parametrize("field", ["include_domains", "exclude_domains"])
def test_a_bad_domain_is_rejected_by_name(field: str) -> None:
    with pytest.raises(ValidationError) as error:
        SearchFilters(**{field: ["a.com", "not a domain"]})
    assert field in str(error.value)
    assert "'not a domain' is not a domain" in str(error.value)


@pytest.mark.parametrize("days", [0, -3])
def test_recency_days_below_one_is_rejected(days: int) -> None:
    with pytest.raises(ValidationError, match=f"recency_days must be at least 1, got {days}"):
        SearchFilters(recency_days=days)


def test_recency_days_is_not_a_bool() -> None:
    with pytest.raises(ValidationError, match="a number of days, not True"):
        SearchFilters(recency_days=True)


def test_recency_days_from_text() -> None:
    assert SearchFilters(recency_days="7").recency_days == 7  # as a model may send it


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2025, 3, 1), date(2025, 3, 1)),
        ("2025-03-01", date(2025, 3, 1)),
        (datetime(2025, 3, 1, 15, 30), date(2025, 3, 1)),
    ],
)
def test_published_after(value: Any, expected: date) -> None:
    assert SearchFilters(published_after=value).published_after == expected


def test_published_after_rejects_what_is_no_date() -> None:
    with pytest.raises(ValidationError, match="published_after"):
        SearchFilters(published_after="last week")


def test_an_included_site_that_is_excluded_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"'news\.a\.com', which exclude_domains excludes"):
        SearchFilters(include_domains=["news.a.com"], exclude_domains=["a.com"])
    # The other way round is a real request: a site but one of its parts.
    filters = SearchFilters(include_domains=["a.com"], exclude_domains=["news.a.com"])
    assert drop_reason(filters, "https://www.a.com/", None) is None
    assert drop_reason(filters, "https://news.a.com/", None) == EXCLUDED


def test_filters_are_frozen_and_strict() -> None:
    filters = SearchFilters(recency_days=7)
    with pytest.raises(ValidationError):
        filters.recency_days = 1  # type: ignore[misc]
    with pytest.raises(ValidationError, match="recency"):
        SearchFilters(recency=7)  # type: ignore[call-arg]
    assert hash(filters) == hash(SearchFilters(recency_days=7))


# --- SearchFilters: judging ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, None),
        ({"recency_days": 7}, date(2025, 3, 24)),
        ({"published_after": date(2025, 1, 1)}, date(2025, 1, 1)),
        # Both set: a result must pass both, so the later cutoff applies.
        ({"recency_days": 7, "published_after": date(2025, 1, 1)}, date(2025, 3, 24)),
        ({"recency_days": 7, "published_after": date(2025, 3, 30)}, date(2025, 3, 30)),
        ({"recency_days": 10**9}, date.min),
    ],
)
def test_cutoff(settings: dict[str, Any], expected: date | None) -> None:
    assert SearchFilters(**settings).cutoff(TODAY) == expected


SITES = SearchFilters(
    include_domains=["example.com", "gov.cn"], exclude_domains=["ads.example.com"]
)
RECENT = SearchFilters(recency_days=7)


def drop_reason(filters: SearchFilters, url: str | None, date_text: str | None) -> str | None:
    """Why ``apply`` drops a result with this URL and date, or ``None`` if it keeps it."""
    judged = filters.apply([SearchResult(link=url, date=date_text)], today=TODAY)
    return next(iter(judged.dropped), None)


@pytest.mark.parametrize(
    ("filters", "url", "date_text", "expected"),
    [
        (SITES, "https://www.example.com/a", None, None),
        (SITES, "https://example.com/a", None, None),
        (SITES, "http://www.beijing.gov.cn/x", None, None),
        (SITES, "https://badexample.com/a", None, OUTSIDE),
        (SITES, "https://example.com.evil.org/a", None, OUTSIDE),
        (SITES, "https://ads.example.com/a", None, EXCLUDED),
        (SITES, "https://x.ads.example.com/a", None, EXCLUDED),
        (SITES, None, None, OUTSIDE),  # no URL: cannot be shown to come from the sites
        (SITES, "not a url", None, OUTSIDE),
        (SearchFilters(exclude_domains=["a.com"]), None, None, None),
        (RECENT, None, "2025年03月24日", None),  # the cutoff day itself is kept
        (RECENT, None, "2025年03月23日", "older than 2025-03-24"),
        (RECENT, None, "2025-03-31", None),
        (RECENT, None, "2026-01-01", None),  # a future date is not older
        (RECENT, None, "3天前", None),
        (RECENT, None, "2周前", "older than 2025-03-24"),
        (RECENT, None, "2025年03月", None),  # undated, kept by default
        (RECENT, None, None, None),
        (SearchFilters(recency_days=7, keep_undated=False), None, "2025年03月", UNDATED),
        (SearchFilters(recency_days=7, keep_undated=False), None, None, UNDATED),
        (SearchFilters(keep_undated=False), None, None, None),  # no date filter
        # Sites are judged before dates: a result is dropped for one reason.
        (
            SearchFilters(exclude_domains=["a.com"], recency_days=1),
            "https://a.com/x",
            "2001-01-01",
            EXCLUDED,
        ),
    ],
)
def test_drop_reason(
    filters: SearchFilters, url: str | None, date_text: str | None, expected: str | None
) -> None:
    assert drop_reason(filters, url, date_text) == expected


# --- apply, on the package's own results -----------------------------------------------


def seed_results() -> list[SearchResult]:
    """The ten results of the one complete real answer (the seed), bundled with the emulator."""
    text = resources.files("langchain_metaso.testing").joinpath("seed_search_response.json")
    payload = json.loads(text.read_text(encoding="utf-8"))
    return SearchResponse.from_payload(payload, scope="webpage").results


def test_apply_on_the_real_answer_by_date() -> None:
    results = seed_results()
    # Its dates: 2010, 2005, 2020-12-02, 2025-03-17, 2021, 2022, 2025-01-01, 2021, 2023,
    # 2025-02-17.
    outcome = SearchFilters(published_after=date(2025, 1, 1)).apply(results, today=TODAY)
    assert [r.date for r in outcome.kept] == ["2025年03月17日", "2025年01月01日", "2025年02月17日"]
    assert outcome.dropped == {"older than 2025-01-01": 7}
    assert outcome.seen == 10
    assert outcome.describe() == "3 of 10 kept: 7 older than 2025-01-01"


def test_apply_on_the_real_answer_by_site() -> None:
    results = seed_results()
    filters = SearchFilters(include_domains=["huanqiu.com", "ce.cn", "360doc.cn", "mundo.com"])
    outcome = filters.apply(results, today=TODAY)
    assert [host_of(r.link) for r in outcome.kept] == [
        "go.huanqiu.com",
        "www.ce.cn",
        "www.360doc.cn",
        "en.mundo.com",
    ]
    assert outcome.describe() == "4 of 10 kept: 6 outside the requested sites"
    # The kept items are the very objects given, in their order.
    assert outcome.kept[0] is results[0]


def test_apply_stops_at_the_limit_and_counts_only_what_it_judged() -> None:
    results = seed_results()
    outcome = SearchFilters(exclude_domains=["huanqiu.com"]).apply(results, today=TODAY, limit=2)
    assert [r.position for r in outcome.kept] == [2, 3]
    assert outcome.dropped == {EXCLUDED: 1}
    assert outcome.seen == 3
    assert SearchFilters().apply(results, today=TODAY, limit=0).seen == 0


def test_image_results_are_judged_by_where_the_image_lives() -> None:
    image = SearchResult.model_validate(
        {"title": "断桥残雪", "imageUrl": "https://img.example.cn/a.jpg", "position": 1}
    )
    assert image.url == "https://img.example.cn/a.jpg"
    excluded = SearchFilters(exclude_domains=["example.cn"]).apply([image], today=TODAY)
    assert excluded.dropped == {EXCLUDED: 1}
    # A site filter keeps an image only if the file itself lives on the site.
    assert SearchFilters(include_domains=["img.example.cn"]).apply([image], today=TODAY).kept
    assert not SearchFilters(include_domains=["zhihu.com"]).apply([image], today=TODAY).kept


def test_the_link_wins_over_the_image_url() -> None:
    video = SearchResult.model_validate(
        {"link": "https://v.a.com/1", "imageUrl": "https://cdn.b.com/1.jpg"}
    )
    assert video.url == "https://v.a.com/1"


def test_results_tolerate_missing_and_odd_fields() -> None:
    # A result without a URL has no site: never from an included site.
    assert not SearchFilters(include_domains=["a.com"]).apply([SearchResult()], today=TODAY).kept
    assert SearchResult.model_validate({"link": "  "}).url is None
    results = [
        SearchResult.model_validate({"link": "https://a.com/1", "date": "2025-03-30"}),
        SearchResult.model_validate({"link": "https://b.com/1", "date": "2025-03-30"}),
    ]
    outcome = SearchFilters(include_domains=["a.com"], recency_days=7).apply(results, today=TODAY)
    assert outcome.kept == [results[0]]


@given(
    links=st.lists(
        st.tuples(
            st.sampled_from(["https://a.com/", "https://x.b.com/", "https://c.com/", None]),
            st.sampled_from(["2025-03-30", "2024-01-01", "3天前", "", None]),
        ),
        max_size=20,
    ),
    limit=st.none() | st.integers(min_value=0, max_value=20),
    keep_undated=st.booleans(),
)
def test_apply_accounts_for_every_item_it_judges(
    links: list[tuple[str | None, str | None]], limit: int | None, keep_undated: bool
) -> None:
    items = [SearchResult(link=link, date=day) for link, day in links]
    filters = SearchFilters(
        include_domains=["a.com", "b.com"], recency_days=7, keep_undated=keep_undated
    )
    outcome = filters.apply(items, today=TODAY, limit=limit)
    # Every item is judged, unless the limit was reached first.
    assert outcome.seen == len(items) or len(outcome.kept) == limit
    assert limit is None or len(outcome.kept) <= limit
    assert all(drop_reason(filters, r.link, r.date) is None for r in outcome.kept)
    judged = items[: outcome.seen]
    expected = [r for r in judged if drop_reason(filters, r.link, r.date) is None]
    assert outcome.kept == expected


# --- outcomes and the model's sentence ---------------------------------------------------


def test_outcomes_of_pages_add_up() -> None:
    first = Filtered(["a"], {OUTSIDE: 2})
    second = Filtered(["b", "c"], {OUTSIDE: 1, EXCLUDED: 4})
    total = first + second
    assert total.kept == ["a", "b", "c"]
    assert total.dropped == {OUTSIDE: 3, EXCLUDED: 4}
    assert total.seen == 10
    assert first.dropped == {OUTSIDE: 2}  # the parts are unchanged


@pytest.mark.parametrize(
    ("kept", "seen", "dropped", "expected"),
    [
        (4, 10, {OUTSIDE: 6}, "4 of 10 kept: 6 outside the requested sites"),
        (
            3,
            10,
            {EXCLUDED: 2, "older than 2025-11-24": 5},
            "3 of 10 kept: 5 older than 2025-11-24, 2 from an excluded site",
        ),
        # Ties: site reasons first, in the order they are judged.
        (
            2,
            10,
            {UNDATED: 2, "older than 2025-11-24": 2, OUTSIDE: 2, EXCLUDED: 2},
            "2 of 10 kept: 2 from an excluded site, 2 outside the requested sites, "
            "2 older than 2025-11-24, 2 undated",
        ),
        (0, 3, {EXCLUDED: 3}, "0 of 3 kept: 3 from an excluded site"),
        (10, 10, {}, ""),
        (10, 10, {OUTSIDE: 0}, ""),
        (0, 0, {}, ""),
        (1, 2, {"some other reason": 1}, "1 of 2 kept: 1 some other reason"),
    ],
)
def test_describe(kept: int, seen: int, dropped: dict[str, int], expected: str) -> None:
    filtered = Filtered(["a result"] * kept, dropped)
    assert filtered.seen == seen
    assert filtered.describe() == expected


# --- narrowing an instance's filters with a call's ---------------------------------------


def test_narrowed_keeps_what_both_keep() -> None:
    own = SearchFilters(
        include_domains=["a.com", "b.com"], exclude_domains=["x.a.com"], recency_days=30
    )
    call = SearchFilters(
        include_domains=["news.a.com", "c.com"],
        exclude_domains=["y.b.com"],
        recency_days=90,
        published_after=date(2025, 3, 20),
        keep_undated=False,
    )
    both = own.narrowed(call)
    assert both.include_domains == ("news.a.com",)
    assert both.exclude_domains == ("x.a.com", "y.b.com")
    assert both.recency_days == 30
    assert both.published_after == date(2025, 3, 20)
    assert both.cutoff(TODAY) == date(2025, 3, 20)
    assert both.keep_undated is False
    assert call.narrowed(own).include_domains == ("news.a.com",)


def test_narrowed_with_no_filter_changes_nothing() -> None:
    own = SearchFilters(include_domains=["a.com"], recency_days=7)
    assert own.narrowed(SearchFilters()) == own
    assert SearchFilters().narrowed(own) == own


def test_narrowed_rejects_sites_in_no_common() -> None:
    with pytest.raises(ValueError, match=r"\['a.com'\] and \['b.com'\] have no site in common"):
        SearchFilters(include_domains=["a.com"]).narrowed(SearchFilters(include_domains=["b.com"]))
    with pytest.raises(ValueError, match="exclude_domains excludes"):
        SearchFilters(exclude_domains=["a.com"]).narrowed(SearchFilters(include_domains=["a.com"]))


# --- settings carried by the searching classes -------------------------------------------------


def test_search_filters_are_the_settings() -> None:
    own = SearchFilters(include_domains=["a.com"], recency_days=7, keep_undated=False)
    assert own.search_filters() == own
    assert SearchFilters(include_domains=[]).search_filters().include_domains is None


def test_search_filters_reject_what_is_no_filter() -> None:
    with pytest.raises(ValidationError, match="size"):
        SearchFilters(size=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="at least 1"):
        SearchFilters(recency_days=0)


# --- published_before --------------------------------------------------------------------------


def test_published_before_keeps_results_up_to_that_day() -> None:
    filters = SearchFilters(published_before="2025-03-01")
    assert filters.active
    assert drop_reason(filters, None, "2025-03-01") is None
    assert drop_reason(filters, None, "2025-03-02") == "newer than 2025-03-01"
    assert drop_reason(filters, None, None) is None  # undated, kept by default
    window = SearchFilters(published_after="2025-01-01", published_before="2025-03-01")
    assert drop_reason(window, None, "2024-12-31") == "older than 2025-01-01"
    assert drop_reason(window, None, "2025-02-01") is None
    assert (
        Filtered(["a result"], {"newer than 2025-03-01": 2}).describe()
        == "1 of 3 kept: 2 newer than 2025-03-01"
    )


def test_published_before_and_after_must_leave_a_window() -> None:
    with pytest.raises(
        ValidationError, match=r"published_before .* is earlier than published_after"
    ):
        SearchFilters(published_after="2025-03-02", published_before="2025-03-01")


def test_narrowed_keeps_the_earlier_published_before() -> None:
    own = SearchFilters(published_before="2025-03-01")
    assert own.narrowed(SearchFilters(published_before="2025-02-01")).published_before == date(
        2025, 2, 1
    )
    assert own.narrowed(SearchFilters()).published_before == date(2025, 3, 1)
