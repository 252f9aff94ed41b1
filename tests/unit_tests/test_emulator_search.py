"""The emulator's search endpoint: the live answers' shapes, the seed, paging, dates and links."""

from __future__ import annotations

import re
from datetime import date, timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from emulator_support import QUERY, TODAY, business_error, fixture, search

from langchain_metaso.scopes import SCOPES, result_key
from langchain_metaso.testing import SEED_QUERY, MetasoEmulator, load_seed_response

LIVE_SAMPLES = {
    "webpage": "search_webpage.structure.json",
    "document": "search_document.shape.json",
    "scholar": "search_scholar.real.json",
    "podcast": "search_podcast.shape.json",
    "video": "search_video.shape.json",
    "image": "search_image.shape.json",
}
CHINESE_DATE = re.compile(r"^(\d{4})年(\d{2})月(\d{2})日$")
RELATIVE_DATE = re.compile(r"^(昨天|[2-6]天前)$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def day_of(text: str) -> date | None:
    """The day an absolute result date names (either format); None for a relative one."""
    if match := CHINESE_DATE.match(text):
        return date(*map(int, match.groups()))
    return date.fromisoformat(text) if ISO_DATE.match(text) else None


# --- the live answers' shapes -----------------------------------------------------------------


@pytest.mark.parametrize("scope", SCOPES)
def test_the_echo_and_top_level_are_the_live_answers(api: httpx.Client, scope: str) -> None:
    sample = fixture(LIVE_SAMPLES[scope])
    echoed = sample["searchParameters"]
    # Sent as the live scholar call was: size as a string, searchFile and format not at all.
    sent = {key: echoed[key] for key in ("q", "scope", "includeSummary", "conciseSnippet")}
    body = search(api, **sent, size=str(echoed["size"]))
    assert list(body) == list(sample)
    assert list(body["searchParameters"].items()) == list(echoed.items())
    assert all(isinstance(body[key], int) for key in ("credits", "total"))
    assert len(body[result_key(scope)]) == echoed["size"]


@pytest.mark.parametrize("scope", SCOPES)
def test_results_have_the_live_keys_order_and_types(api: httpx.Client, scope: str) -> None:
    sample = fixture(LIVE_SAMPLES[scope])
    live = sample[result_key(scope)][0]
    order = list(live)
    flags = {key: sample["searchParameters"][key] for key in ("includeSummary", "conciseSnippet")}
    results = search(api, q=QUERY, scope=scope, size=30, **flags)[result_key(scope)]
    for item in results:
        assert list(item) == [key for key in order if key in item], item
        for key, value in item.items():
            expected = str if key == "date" else type(live[key])
            assert isinstance(value, expected), (key, value)
        assert all(isinstance(author, str) for author in item.get("authors", []))
        assert item["score"] in ("high", "medium", "low")
    # Every live key shows up somewhere: the optional ones are not simply never sent.
    assert set().union(*results) == set(order)
    assert [item["position"] for item in results] == list(range(1, 31))


def test_document_results_carry_no_date_as_the_live_ones(api: httpx.Client) -> None:
    assert "date" not in fixture(LIVE_SAMPLES["document"])["documents"][0]
    for q in ("一", "二", "三"):
        documents = search(api, q=q, scope="document", size=50)["documents"]
        assert documents
        assert all("date" not in item for item in documents)


def test_images_have_no_link(api: httpx.Client) -> None:
    for image in search(api, q=QUERY, scope="image", size=20)["images"]:
        assert "link" not in image
        assert urlsplit(image["imageUrl"]).scheme == "https"
        assert image["imageWidth"] > 0
        assert image["imageHeight"] > 0


@pytest.mark.parametrize("scope", ["podcast", "video"])
def test_durations_are_seconds_as_strings(api: httpx.Client, scope: str) -> None:
    for item in search(api, q=QUERY, scope=scope, size=20)[result_key(scope)]:
        assert item["duration"].isdigit()
        assert 60 <= int(item["duration"]) <= 2 * 3600
        assert ("coverImage" in item) == (scope == "video")


def test_date_formats_follow_the_scope(api: httpx.Client) -> None:
    webpages = search(api, q=QUERY, size=100)["webpages"]
    assert all(
        CHINESE_DATE.match(item["date"]) or RELATIVE_DATE.match(item["date"])
        for item in webpages
        if "date" in item
    )
    for scope in ("document", "scholar", "podcast", "video"):
        for item in search(api, q=QUERY, scope=scope, size=50)[result_key(scope)]:
            assert "date" not in item or ISO_DATE.match(item["date"]), item


# --- dates and links for filters to bite on ------------------------------------------------


def test_dates_count_back_years_from_today_some_relative_some_missing(
    api: httpx.Client, emulator: MetasoEmulator
) -> None:
    emulator.today = TODAY
    results = [
        item
        for q in ("一", "二", "三")
        for item in search(api, q=q, size=100)["webpages"]
        + search(api, q=q, scope="scholar", size=100)["scholars"]
    ]
    dates = [item.get("date") for item in results]
    days = [day for text in dates if text and (day := day_of(text))]
    assert all(TODAY - timedelta(days=6 * 366) <= day <= TODAY for day in days)
    assert max(days) - min(days) > timedelta(days=3 * 365)
    # Recent pages are common: a recency filter keeps some and drops many.
    assert 0 < sum(day >= TODAY - timedelta(days=30) for day in days) < len(days) / 2
    assert "昨天" in dates
    assert any(text and re.fullmatch("[2-6]天前", text) for text in dates)
    assert 0 < dates.count(None) < len(dates) / 5


def test_moving_today_moves_the_dates_only(api: httpx.Client, emulator: MetasoEmulator) -> None:
    emulator.today = TODAY
    before = search(api, q=QUERY, size=50, includeSummary=True)["webpages"]
    emulator.today = TODAY + timedelta(days=200)
    after = search(api, q=QUERY, size=50, includeSummary=True)["webpages"]
    for old, new in zip(before, after, strict=True):
        assert {**old, "date": None} == {**new, "date": None}
        old_day, new_day = day_of(old.get("date", "")), day_of(new.get("date", ""))
        if old_day is None:
            assert old.get("date") == new.get("date")  # relative or missing: as it was
        else:
            assert new_day == old_day + timedelta(days=200)


def test_links_spread_over_hosts_subdomains_and_look_alikes(api: httpx.Client) -> None:
    for q in (QUERY, "another question"):
        links = [item["link"] for item in search(api, q=q, size=10)["webpages"]]
        hosts = {urlsplit(link).hostname for link in links}
        # Any page of ten: a domain, its subdomains, a look-alike and unrelated domains.
        assert {"example.com", "www.example.com", "news.example.com", "badexample.com"} <= hosts
        assert len(hosts) == 10
        assert all(urlsplit(link).scheme in ("http", "https") for link in links)
    links = [item["link"] for item in search(api, q=QUERY, size=50)["webpages"]]
    assert {urlsplit(link).scheme for link in links} == {"http", "https"}


def test_the_same_request_on_the_same_day_gives_the_same_answer() -> None:
    answers = []
    for _ in range(2):
        emulator = MetasoEmulator(today=TODAY)
        with httpx.Client(
            transport=emulator.transport(),
            base_url="http://m",
            headers={"Authorization": "Bearer k"},
        ) as client:
            answers.append(client.post("/search", json={"q": QUERY, "scope": "video"}).content)
    assert answers[0] == answers[1]


def test_the_emulator_dates_from_the_real_today_by_default() -> None:
    assert MetasoEmulator().today == date.today()


# --- the seed --------------------------------------------------------------------------------


def test_seed_query_returns_seed_verbatim(api: httpx.Client) -> None:
    response = api.post(
        "/search", json={"q": SEED_QUERY, "scope": "webpage", "includeSummary": True, "size": 10}
    )
    assert response.status_code == 200
    stored = resources.files("langchain_metaso.testing") / "seed_search_response.json"
    assert response.content == stored.read_bytes()
    assert response.json() == load_seed_response()


def test_seed_response_is_the_documented_sample() -> None:
    seed = load_seed_response()
    assert seed["searchParameters"]["q"] == SEED_QUERY
    assert (len(seed["webpages"]), seed["total"]) == (10, 86)
    seed["webpages"].clear()
    assert len(load_seed_response()["webpages"]) == 10  # each call is a fresh copy


def test_seed_query_on_another_page_is_generated(api: httpx.Client) -> None:
    body = search(api, q=SEED_QUERY, page=2)
    assert [r["position"] for r in body["webpages"]] == list(range(11, 21))


# --- paging and parameters -------------------------------------------------------------------


def test_search_is_deterministic_and_pages_continue(api: httpx.Client) -> None:
    first = search(api, q=QUERY, size=10)
    assert first == search(api, q=QUERY, size=10)
    # With page and no size, pages hold the default 10 results.
    assert search(api, q=QUERY, page=1)["webpages"] == first["webpages"]
    second = search(api, q=QUERY, page=2)
    assert [r["position"] for r in first["webpages"]] == list(range(1, 11))
    assert [r["position"] for r in second["webpages"]] == list(range(11, 21))
    links = [r["link"] for r in first["webpages"] + second["webpages"]]
    assert len(set(links)) == 20
    # A result depends on its position, not on the page size that reached it.
    assert search(api, q=QUERY, size=20)["webpages"][10:] == second["webpages"]
    assert all(QUERY in r["title"] for r in first["webpages"])
    assert search(api, q="another question")["webpages"][0] != first["webpages"][0]


def test_results_stop_at_total(api: httpx.Client) -> None:
    total = search(api, q=QUERY, size=100)["total"]
    assert 40 <= total <= 200
    last_page = -(-total // 10)
    tail = search(api, q=QUERY, page=last_page)
    assert [r["position"] for r in tail["webpages"]] == list(
        range((last_page - 1) * 10 + 1, total + 1)
    )
    beyond = search(api, q=QUERY, page=last_page + 1)
    assert (beyond["webpages"], beyond["total"]) == ([], total)


@pytest.mark.parametrize("size", [10, "5"])
def test_page_with_size_is_a_business_error(api: httpx.Client, size: int | str) -> None:
    response = api.post("/search", json={"q": QUERY, "scope": "webpage", "page": 2, "size": size})
    assert response.status_code == 200
    assert response.json() == {"errCode": 1000, "errMsg": "size and page cannot be used together"}


def test_page_with_size_is_accepted_when_the_quirk_is_off(
    api: httpx.Client, emulator: MetasoEmulator
) -> None:
    emulator.reject_page_with_size = False
    body = search(api, q=QUERY, size=15, page=2)
    assert [r["position"] for r in body["webpages"]] == list(range(16, 31))
    assert (body["searchParameters"]["size"], body["searchParameters"]["page"]) == (15, 2)
    assert search(api, q=QUERY, size=10, page=3) == search(api, q=QUERY, page=3)


def test_size_accepts_strings_and_is_clamped(api: httpx.Client) -> None:
    assert len(search(api, q=QUERY, size="5")["webpages"]) == 5
    assert search(api, q=QUERY, size=1000)["searchParameters"]["size"] == 100
    assert len(search(api, q=QUERY, size=0)["webpages"]) == 1


def test_search_parameters_echo_the_request(api: httpx.Client) -> None:
    body = search(api, q=QUERY, size="3", includeSummary=True)
    assert list(body["searchParameters"].items()) == [
        ("q", QUERY),
        ("scope", "webpage"),
        ("size", 3),
        ("searchFile", False),
        ("includeSummary", True),
        ("conciseSnippet", False),
        ("format", "chat_completions"),
    ]
    echoed = search(api, q=QUERY, page=2, includeRawContent=False)["searchParameters"]
    assert (echoed["page"], echoed["includeRawContent"]) == (2, False)


def test_credits_as_live_answers_cost(api: httpx.Client) -> None:
    assert [search(api, q=QUERY, size=size)["credits"] for size in (1, 3, 10, 20)] == [3, 3, 10, 20]


def test_summary_only_when_asked_and_sometimes_instead_of_snippet(api: httpx.Client) -> None:
    plain = search(api, q=QUERY, size=9)["webpages"]
    assert all("snippet" in r and "summary" not in r for r in plain)
    with_summary = search(api, q=QUERY, size=9, includeSummary=True)["webpages"]
    assert all("snippet" in r or "summary" in r for r in with_summary)
    assert any("snippet" not in r for r in with_summary)
    assert any("summary" not in r for r in with_summary)
    assert any("summary" in r and "snippet" in r for r in with_summary)


def test_raw_content_only_when_asked(api: httpx.Client) -> None:
    plain = search(api, q=QUERY, size=5)
    assert all("content" not in r for r in plain["webpages"])
    raw = search(api, q=QUERY, size=5, includeRawContent=True)
    assert all(QUERY in r["content"] and len(r["content"]) > 200 for r in raw["webpages"])
    assert [list(r)[-1] for r in raw["webpages"]] == ["content"] * 5
    assert raw["credits"] > plain["credits"]


def test_concise_snippets_are_shorter(api: httpx.Client) -> None:
    full = search(api, q=QUERY, size=5)["webpages"]
    concise = search(api, q=QUERY, size=5, conciseSnippet=True)["webpages"]
    assert all(len(c["snippet"]) < len(f["snippet"]) for c, f in zip(concise, full, strict=True))


def test_snippets_mix_chinese_and_english(api: httpx.Client) -> None:
    results = search(api, q=QUERY, size=12)["webpages"]
    assert any(re.search("[\u4e00-\u9fff]", r["snippet"]) for r in results)
    assert any(re.search("[A-Za-z]{4}", r["snippet"].replace(QUERY, "")) for r in results)


def test_every_scope_of_the_package_table_is_served(api: httpx.Client) -> None:
    for scope in SCOPES:
        assert result_key(scope) in search(api, q=QUERY, scope=scope, size=1)
    # The REST API answers only "scholar"; "paper" is the MCP server's name for it.
    assert api.post("/search", json={"q": QUERY, "scope": "paper"}).json()["errCode"] == 1002


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"q": QUERY, "scope": "planet"}, 1002),
        ({"q": QUERY}, 1002),
        ({"q": "   ", "scope": "webpage"}, 1001),
        ({"scope": "webpage"}, 1001),
        ({"q": QUERY, "scope": "webpage", "size": "many"}, 1000),
        ({"q": QUERY, "scope": "webpage", "page": 0}, 1000),
        ({"q": QUERY, "scope": "webpage", "includeSummary": "yes"}, 1000),
    ],
)
def test_bad_parameters_are_business_errors(
    api: httpx.Client, params: dict[str, Any], code: int
) -> None:
    assert business_error(api, "/search", params)["errCode"] == code
