"""Requests and answers of the search API, without any I/O."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from langchain_metaso import SCOPES, SearchRequest, SearchResponse, SearchResult
from langchain_metaso.scopes import result_key
from langchain_metaso.testing import SEED_QUERY, load_seed_response

# --- SearchRequest -------------------------------------------------------------------------


def test_request_body_sends_only_what_was_set() -> None:
    body = SearchRequest(query="秘塔").to_body()
    assert body == {"q": "秘塔", "scope": "webpage", "includeSummary": True, "size": 10}


def test_request_body_maps_every_optional_field_to_its_api_name() -> None:
    request = SearchRequest(
        query="q",
        scope="scholar",
        size=3,
        include_summary=False,
        include_raw_content=True,
        concise_snippet=False,
    )
    assert request.to_body() == {
        "q": "q",
        "scope": "scholar",
        "includeSummary": False,
        "size": 3,
        "includeRawContent": True,
        "conciseSnippet": False,
    }


def test_a_page_is_asked_for_without_a_size() -> None:
    # The API takes one or the other; both together were answered with errCode 1000.
    body = SearchRequest(query="q", size=3, page=2).to_body()
    assert body["page"] == 2
    assert "size" not in body


def test_request_query_is_stripped() -> None:
    assert SearchRequest(query="  大语言模型 \n").to_body()["q"] == "大语言模型"


@pytest.mark.parametrize("query", ["", "   ", "\n\t "])
def test_request_rejects_empty_query(query: str) -> None:
    with pytest.raises(ValueError, match="query must not be empty"):
        SearchRequest(query=query)


def test_request_rejects_unknown_scope_listing_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="scope") as info:
        SearchRequest(query="q", scope="news")  # type: ignore[arg-type]
    for scope in SCOPES:
        assert scope in str(info.value)


@pytest.mark.parametrize("size", [0, -1, 101])
def test_request_rejects_size_out_of_range(size: int) -> None:
    with pytest.raises(ValidationError, match="size"):
        SearchRequest(query="q", size=size)


@pytest.mark.parametrize("size", [1, 100])
def test_request_accepts_size_bounds(size: int) -> None:
    assert SearchRequest(query="q", size=size).to_body()["size"] == size


@pytest.mark.parametrize("page", [0, -3])
def test_request_rejects_page_below_one(page: int) -> None:
    with pytest.raises(ValidationError, match="page"):
        SearchRequest(query="q", page=page)


def test_request_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="top_k"):
        SearchRequest(query="q", top_k=3)  # type: ignore[call-arg]


# --- SearchResponse: every scope ------------------------------------------------------------

SCOPE_ITEMS: dict[str, dict[str, Any]] = {
    "webpage": {"title": "网页", "link": "https://a.example/1", "snippet": "s", "score": "high"},
    "document": {"title": "文库", "link": "https://d.example/1", "authors": ["张伟", "李娜"]},
    "scholar": {"title": "论文", "link": "https://s.example/1", "authors": ["Emily Chen"]},
    "podcast": {"title": "播客", "link": "https://p.example/1", "duration": "12:03"},
    "video": {"title": "视频", "link": "https://v.example/1", "duration": "1:02:03"},
    "image": {
        "title": "图片",
        "link": "https://i.example/1",
        "imageUrl": "https://img.example/1.jpg",
        "imageWidth": 640,
        "imageHeight": 480,
    },
}


@pytest.mark.parametrize("scope", SCOPES)
def test_response_reads_the_scopes_own_list(scope: str) -> None:
    item = {**SCOPE_ITEMS[scope], "position": 1, "date": "2025年03月17日"}
    payload = {
        "credits": 3,
        "total": 7,
        "searchParameters": {"q": "q", "scope": scope},
        result_key(scope): [item],
    }
    response = SearchResponse.from_payload(payload, scope=scope)
    assert response.scope == scope
    assert (response.total, response.credits) == (7, 3)
    assert response.search_parameters == {"q": "q", "scope": scope}
    [result] = response.results
    assert result.model_dump(by_alias=True, exclude_none=True) == item


@pytest.mark.parametrize("scope", SCOPES)
def test_response_ignores_other_scopes_lists(scope: str) -> None:
    others = {result_key(other): [{"title": "other"}] for other in SCOPES if other != scope}
    payload = {**others, result_key(scope): [{"title": "mine"}]}
    response = SearchResponse.from_payload(payload, scope=scope)
    assert [r.title for r in response.results] == ["mine"]


def test_response_per_scope_fields_are_typed() -> None:
    image = SearchResult.model_validate(SCOPE_ITEMS["image"])
    assert (image.image_url, image.image_width, image.image_height) == (
        "https://img.example/1.jpg",
        640,
        480,
    )
    assert SearchResult.model_validate(SCOPE_ITEMS["scholar"]).authors == ["Emily Chen"]
    assert SearchResult.model_validate(SCOPE_ITEMS["video"]).duration == "1:02:03"


@pytest.mark.parametrize("scope", SCOPES)
def test_response_without_its_list_is_an_error(scope: str) -> None:
    wrong = "webpages" if scope != "webpage" else "documents"
    with pytest.raises(ValueError, match=result_key(scope)):
        SearchResponse.from_payload({wrong: [], "total": 5}, scope=scope)


def test_response_with_no_hit_and_no_list_is_no_results() -> None:
    response = SearchResponse.from_payload({"total": 0, "credits": 1}, scope="video")
    assert response.results == []
    assert response.total == 0


@pytest.mark.parametrize("value", [None, {"a": 1}, "webpages", 3])
def test_response_whose_list_is_not_a_list_is_an_error(value: object) -> None:
    with pytest.raises(ValueError, match="webpages"):
        SearchResponse.from_payload({"webpages": value}, scope="webpage")


def test_response_empty_list_is_no_results_not_an_error() -> None:
    response = SearchResponse.from_payload({"webpages": [], "total": 0}, scope="webpage")
    assert response.results == []
    assert response.total == 0


def test_response_keeps_unknown_fields() -> None:
    payload = {
        "webpages": [{"title": "t", "favicon": "https://f.example/x.ico", "rank": {"a": 1}}],
        "requestId": "abc",
    }
    response = SearchResponse.from_payload(payload, scope="webpage")
    assert response.model_extra == {"requestId": "abc"}
    assert response.results[0].model_extra == {
        "favicon": "https://f.example/x.ico",
        "rank": {"a": 1},
    }


def test_response_skips_entries_that_are_not_objects() -> None:
    payload = {"webpages": [{"title": "ok"}, "junk", None, 3, ["x"]]}
    response = SearchResponse.from_payload(payload, scope="webpage")
    assert [r.title for r in response.results] == ["ok"]


def test_result_tolerates_null_and_wrong_types() -> None:
    result = SearchResult.model_validate(
        {
            "title": None,
            "link": ["not", "a", "url"],
            "score": 0.9,
            "snippet": {"text": "x"},
            "summary": True,
            "position": "3",
            "authors": "张伟",
            "date": None,
            "duration": [],
            "imageWidth": "wide",
            "imageHeight": True,
        }
    )
    assert result.title is None
    assert result.link is None
    assert result.score == "0.9"  # a number where text is documented reads as text
    assert result.snippet is None
    assert result.summary is None  # a bool is not text
    assert result.position == 3  # digits in a string read as the number
    assert result.authors == ["张伟"]
    assert result.date is None
    assert result.duration is None
    assert result.image_width is None
    assert result.image_height is None


def test_result_authors_keeps_only_strings() -> None:
    assert SearchResult.model_validate({"authors": ["a", 1, None, "b"]}).authors == ["a", "b"]


def test_response_tolerates_wrong_typed_top_level_fields() -> None:
    payload = {"webpages": [], "total": "many", "credits": None, "searchParameters": "x"}
    response = SearchResponse.from_payload(payload, scope="webpage")
    assert (response.total, response.credits, response.search_parameters) == (None, None, None)


# --- the seed response, verbatim -------------------------------------------------------------


def seed_documents() -> tuple[list[dict[str, Any]], list[Any]]:
    payload = load_seed_response()
    request = SearchRequest(query=SEED_QUERY)
    documents = SearchResponse.from_payload(payload, scope="webpage").to_documents(request)
    return payload["webpages"], documents


def test_seed_response_parses_whole() -> None:
    payload = load_seed_response()
    response = SearchResponse.from_payload(payload, scope="webpage")
    assert len(response.results) == 10
    assert (response.total, response.credits) == (86, 10)
    assert response.search_parameters == payload["searchParameters"]
    assert [r.position for r in response.results] == list(range(1, 11))
    for item, result in zip(payload["webpages"], response.results, strict=True):
        assert result.model_dump(by_alias=True, exclude_none=True) == item


def test_seed_mixes_summary_and_snippet_items() -> None:
    items, _ = seed_documents()
    assert any("summary" in item and "snippet" not in item for item in items)
    assert any("snippet" in item and "summary" not in item for item in items)


def test_seed_documents_read_summary_else_snippet() -> None:
    items, documents = seed_documents()
    assert len(documents) == len(items) == 10
    for item, document in zip(items, documents, strict=True):
        used = "summary" if "summary" in item else "snippet"
        assert document.page_content == item[used]


def test_seed_documents_keep_every_other_field_in_metadata() -> None:
    items, documents = seed_documents()
    for item, document in zip(items, documents, strict=True):
        used = "summary" if "summary" in item else "snippet"
        expected = {k: v for k, v in item.items() if k != used}
        # Not what the call cost: metaso_usage() sums that, once a call.
        expected.update(source=item["link"], scope="webpage", query=SEED_QUERY)
        # The seed's dates are whole days (2010年01月01日), read as ISO.
        expected["published"] = item["date"].replace("年", "-").replace("月", "-").rstrip("日")
        assert document.metadata == expected


def test_seed_first_document_in_detail() -> None:
    _, documents = seed_documents()
    first = documents[0]
    assert first.page_content.startswith("这篇文章是关于世界上最美丽的女人的排名")
    assert first.metadata["title"] == "谁是世界上最美丽的女人"
    assert first.metadata["source"] == "https://go.huanqiu.com/picture/2010-11/1285130.html"
    assert first.metadata["authors"] == ["环球网旅游 编译:薛守霞"]
    assert first.metadata["date"] == "2010年01月01日"
    assert first.metadata["score"] == "high"
    assert first.metadata["position"] == 1


# --- page_content order ----------------------------------------------------------------------

FULL = {
    "title": "T",
    "link": "https://x.example/",
    "snippet": "SNIPPET",
    "summary": "SUMMARY",
    "content": "CONTENT",
}


@pytest.mark.parametrize(
    ("fields", "prefer_content", "expected"),
    [
        (FULL, True, "CONTENT"),
        (FULL, False, "SUMMARY"),
        ({**FULL, "content": None}, True, "SUMMARY"),
        ({**FULL, "content": "  "}, True, "SUMMARY"),
        ({**FULL, "content": None, "summary": ""}, True, "SNIPPET"),
        ({"title": "T", "link": "https://x.example/", "snippet": "SNIPPET"}, False, "SNIPPET"),
        ({"title": "T", "link": "https://x.example/", "summary": "\n"}, False, "T"),
        ({"title": "T", "link": "https://x.example/"}, True, "T"),
        ({"link": "https://x.example/"}, False, "https://x.example/"),
    ],
)
def test_page_content_order(fields: dict[str, Any], prefer_content: bool, expected: str) -> None:
    document = SearchResult.model_validate(fields).to_document(
        scope="webpage", query="q", prefer_content=prefer_content
    )
    assert document.page_content == expected


def test_page_content_is_never_empty() -> None:
    for fields in ({}, {"title": "", "snippet": " ", "summary": None}, {"score": "high"}):
        document = SearchResult.model_validate(fields).to_document(scope="image", query="q")
        assert document.page_content.strip()
        assert document.metadata["source"] == ""
        assert document.metadata["scope"] == "image"


def test_raw_content_document_keeps_summary_and_snippet_in_metadata() -> None:
    document = SearchResult.model_validate(FULL).to_document(
        scope="webpage", query="q", prefer_content=True
    )
    assert document.page_content == "CONTENT"
    assert "content" not in document.metadata
    assert document.metadata["summary"] == "SUMMARY"
    assert document.metadata["snippet"] == "SNIPPET"


def test_documents_use_raw_content_only_when_the_request_asked() -> None:
    payload = {"webpages": [FULL]}
    response = SearchResponse.from_payload(payload, scope="webpage")
    asked = response.to_documents(SearchRequest(query="q", include_raw_content=True))
    not_asked = response.to_documents(SearchRequest(query="q"))
    assert asked[0].page_content == "CONTENT"
    assert not_asked[0].page_content == "SUMMARY"
    assert not_asked[0].metadata["content"] == "CONTENT"


def test_documents_are_cut_to_the_requested_size() -> None:
    payload = {"webpages": [{"title": str(i)} for i in range(5)]}
    response = SearchResponse.from_payload(payload, scope="webpage")
    documents = response.to_documents(SearchRequest(query="q", size=2))
    assert [d.page_content for d in documents] == ["0", "1"]


def test_image_document_metadata_uses_api_names() -> None:
    document = SearchResult.model_validate(SCOPE_ITEMS["image"]).to_document(
        scope="image", query="猫"
    )
    assert document.page_content == "图片"
    assert document.metadata["imageUrl"] == "https://img.example/1.jpg"
    assert document.metadata["imageWidth"] == 640
    assert document.metadata["query"] == "猫"


# --- what every scope's documents carry (issues 10.9, 11.2, 11.3) -----------------------------


@pytest.mark.parametrize("scope", SCOPES)
def test_every_scopes_documents_keep_the_title_in_the_metadata(scope: str) -> None:
    for fields in ({"title": "标题", "link": "https://a.cn/1"}, {"title": "标题", "summary": "s"}):
        document = SearchResult.model_validate(fields).to_document(scope=scope, query="q")
        assert document.metadata["title"] == "标题"


def test_an_image_without_a_link_takes_its_source_from_the_image_url() -> None:
    image = {
        "title": "断桥残雪",
        "score": "high",
        "position": 1,
        "imageUrl": "https://img.example.cn/a.jpg",
        "imageWidth": 1024,
        "imageHeight": 683,
    }
    result = SearchResult.model_validate(image)
    assert result.url == "https://img.example.cn/a.jpg"
    document = result.to_document(scope="image", query="西湖")
    assert document.page_content == "断桥残雪"
    assert document.metadata == {
        **image,
        "source": "https://img.example.cn/a.jpg",
        "scope": "image",
        "query": "西湖",
    }


def test_a_video_keeps_its_cover_and_its_duration_as_written() -> None:
    video = {"title": "v", "link": "https://v.cn/1", "duration": "617", "coverImage": "https://c/1"}
    result = SearchResult.model_validate(video)
    assert (result.cover_image, result.duration) == ("https://c/1", "617")
    metadata = result.to_document(scope="video", query="q").metadata
    assert (metadata["coverImage"], metadata["duration"]) == ("https://c/1", "617")


@pytest.mark.parametrize(
    ("written", "published"),
    [
        ("2025年05月16日", "2025-05-16"),
        ("2023-06-01", "2023-06-01"),
        ("3天前", "2025-03-28"),
        ("2025年03月", None),  # not a whole day: no guess
        ("", None),
    ],
)
def test_a_readable_date_is_published_in_iso(written: str, published: str | None) -> None:
    result = SearchResult.model_validate({"title": "t", "date": written})
    metadata = result.to_document(scope="webpage", query="q", today=date(2025, 3, 31)).metadata
    assert metadata.get("published") == published
    assert metadata["date"] == written  # the original stays


def test_documents_read_relative_dates_on_one_day() -> None:
    payload = {"webpages": [{"title": "t", "date": "昨天"}]}
    response = SearchResponse.from_payload(payload, scope="webpage")
    [document] = response.to_documents(SearchRequest(query="q"), today=date(2025, 1, 1))
    assert document.metadata["published"] == "2024-12-31"


def test_document_ids_are_stable_and_tell_results_apart() -> None:
    def document(scope: str = "webpage", query: str = "q", **fields: Any) -> Any:
        return SearchResult.model_validate(fields).to_document(scope=scope, query=query)

    first = document(title="a", link="https://a.cn/1", snippet="s")
    # The same result on another call, for another query, with another snippet.
    assert document(title="A", link="https://a.cn/1", query="other").id == first.id
    assert first.id == str(uuid.uuid5(uuid.NAMESPACE_URL, "https://a.cn/1"))
    assert document(title="a", link="https://a.cn/2", snippet="s").id != first.id
    image = document("image", title="同名", imageUrl="https://img.cn/1.jpg")
    assert document("image", title="同名", imageUrl="https://img.cn/1.jpg").id == image.id
    assert document("image", title="同名", imageUrl="https://img.cn/2.jpg").id != image.id
    # Without any URL, the title and text tell results apart.
    assert document(title="x", snippet="1").id != document(title="x", snippet="2").id
    assert document(title="x", snippet="1").id == document(title="x", snippet="1").id


def document_id(result: SearchResult) -> str | None:
    return result.to_document(scope="webpage", query="q").id


@pytest.mark.parametrize(
    "url",
    ["https://a.cn/1", "https://例子.中国/路径?q=秘塔", "http://x/" + "z" * 500, "x"],
)
def test_document_id_is_the_uuid5_of_the_url(url: str) -> None:
    expected = uuid.uuid5(uuid.NAMESPACE_URL, url)
    assert document_id(SearchResult(link=url)) == str(expected)
    assert expected.version == 5


def test_a_lone_surrogate_still_gets_a_stable_id() -> None:
    # JSON can carry one; uuid.uuid5 would fail to encode it.
    first = document_id(SearchResult(link="https://a.cn/\ud800"))
    assert uuid.UUID(first).version == 5
    assert document_id(SearchResult(link="https://a.cn/\ud800")) == first
    assert document_id(SearchResult(link="https://a.cn/\ud801")) != first
