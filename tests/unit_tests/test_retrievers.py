"""MetasoRetriever (``retrievers.py``): what it sends, k and scope, the documents it builds,
and its filters per call."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Invoke, Make
from emulator_support import answer_of
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda
from pydantic import ValidationError

from langchain_metaso import (
    SCOPES,
    MetasoRetriever,
    SearchRequest,
    SearchResponse,
)
from langchain_metaso.testing import SEED_QUERY, Fault, MetasoEmulator, load_seed_response

# --- what is sent, and what is refused before it -----------------------------------------------


def test_body_has_only_the_fields_that_were_set(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    invoke(make(MetasoRetriever), "  秘塔  ")
    assert emulator.requests[0].json() == {
        "q": "秘塔",
        "scope": "webpage",
        "includeSummary": True,
        "size": 10,
    }


def test_body_maps_every_setting(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    target = make(
        MetasoRetriever,
        k=4,
        scope="scholar",
        include_summary=False,
        include_raw_content=True,
        concise_snippet=True,
    )
    invoke(target, "transformer")
    assert emulator.requests[0].json() == {
        "q": "transformer",
        "scope": "scholar",
        "includeSummary": False,
        "size": 4,
        "includeRawContent": True,
        "conciseSnippet": True,
    }


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_fails_before_any_request(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, query: str
) -> None:
    with pytest.raises(ValueError, match="query must not be empty"):
        invoke(make(MetasoRetriever), query)
    assert emulator.requests == []


def test_unknown_per_call_scope_fails_before_any_request(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    with pytest.raises(ValueError, match="scope") as info:
        invoke(make(MetasoRetriever), "q", scope="news")
    assert all(scope in str(info.value) for scope in SCOPES)
    assert emulator.requests == []


# --- k ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 10, 25])
def test_k_in_the_constructor(make: Make, emulator: MetasoEmulator, invoke: Invoke, k: int) -> None:
    documents = invoke(make(MetasoRetriever, k=k), "检索增强生成")
    assert len(documents) == k
    assert all(isinstance(d, Document) for d in documents)
    assert emulator.requests[0].json()["size"] == k


@pytest.mark.parametrize("k", [1, 3, 7])
def test_k_as_an_invoke_keyword(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, k: int
) -> None:
    retriever = make(MetasoRetriever, k=5)
    assert len(invoke(retriever, "q", k=k)) == k
    assert emulator.requests[0].json()["size"] == k
    assert retriever.k == 5
    assert len(invoke(retriever, "q")) == 5


def test_default_k() -> None:
    assert MetasoRetriever(metaso_api_key="test-key").k == 10


@pytest.mark.parametrize("k", [0, -1, 101])
def test_k_out_of_range_at_construction(k: int) -> None:
    with pytest.raises(ValidationError, match="k"):
        MetasoRetriever(metaso_api_key="test-key", k=k)


def test_size_is_another_name_of_k(emulator: MetasoEmulator, emulator_url: str) -> None:
    retriever = MetasoRetriever(api_key="test-key", base_url=emulator_url, size=3)
    assert retriever.k == 3
    assert len(retriever.invoke("q")) == 3
    assert len(retriever.invoke("q", size=2)) == 2
    assert [request.json()["size"] for request in emulator.requests] == [3, 2]
    with pytest.raises(ValidationError, match="'k' and 'size', two names of one setting"):
        MetasoRetriever(api_key="test-key", k=3, size=3)


VALID_PER_CALL = (
    "Valid arguments: k (or size, max_results), page, scope, include_summary, "
    "include_raw_content, concise_snippet, include_domains, exclude_domains, recency_days, "
    "published_after, published_before, keep_undated"
)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"sise": 3}, ["got unknown argument 'sise' (did you mean 'size'?)", VALID_PER_CALL]),
        ({"timeout": 5}, ["got unknown argument 'timeout'", VALID_PER_CALL]),
        ({"k": 2, "size": 2}, ["got 'k' and 'size', two names of one setting"]),
    ],
)
def test_unknown_per_call_arguments_are_rejected(
    make: Make,
    emulator: MetasoEmulator,
    invoke: Invoke,
    overrides: dict[str, Any],
    words: list[str],
) -> None:
    with pytest.raises(ValidationError) as info:
        invoke(make(MetasoRetriever), "q", **overrides)
    assert "\n  MetasoRetriever.invoke got " in str(info.value)
    for word in words:
        assert word in str(info.value)
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("name", "value"),
    [("k", 0), ("k", 101), ("k", -1), ("size", 101), ("page", 0), ("scope", "x")],
)
def test_per_call_errors_name_the_argument_as_passed(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, name: str, value: Any
) -> None:
    with pytest.raises(ValidationError) as info:
        invoke(make(MetasoRetriever), "q", **{name: value})
    [error] = info.value.errors()
    assert error["loc"] == (name,)
    assert "SearchRequest" not in str(info.value)
    assert emulator.requests == []


def test_page_at_instantiation_and_per_call(
    emulator: MetasoEmulator, emulator_url: str, invoke: Invoke
) -> None:
    paged = MetasoRetriever(api_key="test-key", base_url=emulator_url, k=3, page=2)
    assert [d.metadata["position"] for d in invoke(paged, "q")] == [11, 12, 13]
    assert [d.metadata["position"] for d in invoke(paged, "q", page=3)] == [21, 22, 23]
    assert [d.metadata["position"] for d in invoke(paged, "q", page=None)] == [11, 12, 13]
    first = MetasoRetriever(api_key="test-key", base_url=emulator_url, k=2)
    assert [d.metadata["position"] for d in invoke(first, "q", page=2)] == [11, 12]
    bodies = [request.json() for request in emulator.requests]
    assert [(body.get("page"), body.get("size")) for body in bodies] == [
        (2, None),
        (3, None),
        (2, None),  # None keeps the setting
        (2, None),
    ]


def test_more_results_than_asked_are_cut(make: Make, emulator: MetasoEmulator) -> None:
    items = [{"title": f"t{i}", "link": f"https://x/{i}"} for i in range(6)]
    emulator.script(Fault.status(200, body={"webpages": items}))
    documents = make(MetasoRetriever, k=2).invoke("q")
    assert [d.page_content for d in documents] == ["t0", "t1"]


# --- scope -----------------------------------------------------------------------------------


def test_unknown_scope_at_construction_lists_the_scopes() -> None:
    with pytest.raises(ValidationError, match="scope") as info:
        MetasoRetriever(metaso_api_key="test-key", scope="news")
    assert all(scope in str(info.value) for scope in SCOPES)


@pytest.mark.parametrize("scope", SCOPES)
def test_scope_in_the_constructor(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, scope: str
) -> None:
    documents = invoke(make(MetasoRetriever, scope=scope, k=3), "人工智能")
    assert emulator.requests[0].json()["scope"] == scope
    assert len(documents) == 3
    assert all(d.metadata["scope"] == scope for d in documents)
    assert [d.metadata["position"] for d in documents] == [1, 2, 3]
    assert all(d.metadata["source"].startswith(("http://", "https://")) for d in documents)


@pytest.mark.parametrize("scope", SCOPES)
def test_scope_as_an_invoke_keyword(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, scope: str
) -> None:
    retriever = make(MetasoRetriever, k=2)
    documents = invoke(retriever, "人工智能", scope=scope)
    assert emulator.requests[0].json()["scope"] == scope
    assert {d.metadata["scope"] for d in documents} == {scope}
    assert retriever.scope == "webpage"


@pytest.mark.parametrize(
    ("scope", "fields"),
    [
        ("document", {"authors"}),
        ("scholar", {"authors"}),
        ("podcast", {"duration"}),
        ("video", {"duration"}),
        ("image", {"imageUrl", "imageWidth", "imageHeight"}),
    ],
)
def test_per_scope_fields_reach_the_metadata(
    make: Make, invoke: Invoke, scope: str, fields: set[str]
) -> None:
    for document in invoke(make(MetasoRetriever, scope=scope, k=4), "猫"):
        assert fields <= set(document.metadata)


# --- documents -------------------------------------------------------------------------------


def test_documents_are_the_seed_response(make: Make, invoke: Invoke) -> None:
    documents = invoke(make(MetasoRetriever), SEED_QUERY)
    request = SearchRequest(query=SEED_QUERY)
    expected = SearchResponse.from_payload(load_seed_response(), scope="webpage").to_documents(
        request
    )
    assert documents == expected
    assert documents[0].metadata["query"] == SEED_QUERY


def test_page_content_summary_else_snippet(make: Make, invoke: Invoke) -> None:
    # The emulator gives positions 1, 4... only a summary, 2, 5... only a snippet, 3, 6... both.
    documents = invoke(make(MetasoRetriever, k=6), "向量数据库")
    for position, document in enumerate(documents, start=1):
        assert document.page_content.strip()
        metadata = document.metadata
        assert metadata["position"] == position
        assert "summary" not in metadata  # the summary, when there is one, is the content
        if position % 3 == 2:
            assert "snippet" not in metadata  # used as the content
        if position % 3 == 0:
            assert metadata["snippet"] != document.page_content


def test_without_summaries_the_snippet_is_the_content(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    documents = invoke(make(MetasoRetriever, k=3, include_summary=False), "量子计算")
    assert emulator.requests[0].json()["includeSummary"] is False
    assert all("snippet" not in d.metadata and "summary" not in d.metadata for d in documents)
    assert all("量子计算" in d.page_content for d in documents)


def test_raw_content_becomes_the_page_content(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    documents = invoke(make(MetasoRetriever, k=3, include_raw_content=True), "知识图谱")
    assert emulator.requests[0].json()["includeRawContent"] is True
    for document in documents:
        assert document.page_content.startswith(document.metadata["title"])
        assert "content" not in document.metadata
        assert len(document.page_content) > len(document.metadata.get("snippet", ""))


def test_title_when_nothing_else(make: Make, emulator: MetasoEmulator) -> None:
    items = [{"title": "只有标题", "link": "https://x/1", "summary": None, "snippet": ""}]
    emulator.script(Fault.status(200, body={"webpages": items}))
    [document] = make(MetasoRetriever).invoke("q")
    assert document.page_content == "只有标题"
    assert document.metadata["source"] == "https://x/1"
    # The title stays in the metadata, as in every document (issue 10.9).
    assert document.metadata["title"] == "只有标题"


def test_no_results_is_an_empty_list(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    emulator.script(Fault.status(200, body={"webpages": [], "total": 0}))
    assert invoke(make(MetasoRetriever), "q") == []


def test_batch_keeps_the_order(make: Make) -> None:
    queries = [f"问题{i}" for i in range(5)]
    results = make(MetasoRetriever, k=1).batch(queries)
    assert [docs[0].metadata["query"] for docs in results] == queries


def test_in_a_chain(make: Make, invoke: Invoke) -> None:
    chain = make(MetasoRetriever, k=2) | RunnableLambda(
        lambda docs: "\n".join(d.metadata["source"] for d in docs)
    )
    sources = invoke(chain, "q").splitlines()
    assert sources == [item["link"] for item in emulator_results("q", k=2)]


def emulator_results(query: str, *, k: int) -> list[dict[str, Any]]:
    """The first ``k`` web pages an emulator answers for ``query``."""
    answer = answer_of(MetasoEmulator(), "search", q=query, scope="webpage", size=k)
    results: list[dict[str, Any]] = answer["webpages"]
    return results


# --- filters per call (issue 15) -------------------------------------------------------------


def test_filters_per_call_override_the_instances(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    retriever = make(MetasoRetriever, k=3, include_domains=["huanqiu.com"])
    only_ce = invoke(retriever, SEED_QUERY, include_domains=["ce.cn"])
    assert [d.metadata["source"] for d in only_ce] == [load_seed_response()["webpages"][1]["link"]]
    # An empty list lifts the instance's filter for this call; the instance keeps it.
    everything = invoke(retriever, SEED_QUERY, include_domains=[])
    assert len(everything) == 3
    assert retriever.include_domains == ("huanqiu.com",)
    [own] = invoke(retriever, SEED_QUERY)
    assert "huanqiu.com" in own.metadata["source"]


def test_date_filters_per_call(make: Make, invoke: Invoke) -> None:
    documents = invoke(make(MetasoRetriever, k=2), SEED_QUERY, published_after="2025-01-01")
    assert [d.metadata["published"][:4] for d in documents] == ["2025", "2025"]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"recency_days": 0}, ["recency_days", "at least 1"]),
        ({"include_domains": ["not a domain"]}, ["is not a domain"]),
        ({"include_domain": ["a.com"]}, ["'include_domain' (did you mean 'include_domains'?)"]),
    ],
)
def test_bad_filters_per_call_fail_before_any_request(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, kwargs: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(ValidationError) as caught:
        invoke(make(MetasoRetriever), "q", **kwargs)
    for word in words:
        assert word in str(caught.value)
    assert emulator.requests == []


# --- the names users bring ---------------------------------------------------------------------


def test_an_alias_reads_and_sets_its_setting(make: Make) -> None:
    retriever = make(MetasoRetriever, k=3)
    retriever.size = 7
    assert (retriever.k, retriever.size, retriever.max_results) == (7, 7, 7)
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        retriever.size = 0
    assert retriever.k == 7  # a rejected change changes nothing
    with pytest.raises(AttributeError, match="'sise'"):
        retriever.sise  # noqa: B018


def test_max_results_is_another_name_of_k(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    retriever = make(MetasoRetriever, max_results=2)
    assert retriever.k == 2
    assert len(invoke(retriever, "q")) == 2
    assert len(invoke(retriever, "q", max_results=4)) == 4
    assert [request.json()["size"] for request in emulator.requests] == [2, 4]


@pytest.mark.parametrize("query", ["", "  ", "a\ud800b"])
def test_a_bad_query_is_named_as_the_callers_argument(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, query: str
) -> None:
    with pytest.raises(ValidationError) as info:
        invoke(make(MetasoRetriever), query)
    [error] = info.value.errors()
    assert error["loc"] == ("query",)
    assert str(info.value).startswith("1 validation error for MetasoRetriever.invoke\nquery\n")
    assert "Request" not in str(info.value)
    assert emulator.requests == []
