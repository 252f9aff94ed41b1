"""The scope table: one list, read by requests, schemas and the emulator alike."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Make
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_metaso import SCOPES, MetasoAnswerTool, MetasoRetriever, MetasoSearchTool
from langchain_metaso.scopes import describe_scopes, normalize_scope, result_key
from langchain_metaso.search import SearchRequest
from langchain_metaso.testing import MetasoEmulator


def test_the_six_scopes_of_the_api_list_their_results_under_their_plurals() -> None:
    assert [(scope, result_key(scope)) for scope in SCOPES] == [
        ("webpage", "webpages"),
        ("document", "documents"),
        ("scholar", "scholars"),
        ("podcast", "podcasts"),
        ("video", "videos"),
        ("image", "images"),
    ]


def test_the_description_names_every_scope_once() -> None:
    text = describe_scopes()
    assert all(text.count(f"'{scope}'") == 1 for scope in SCOPES)
    assert "'webpage' (the web, default)" in text


@pytest.mark.parametrize("tool", [MetasoSearchTool, MetasoAnswerTool])
def test_the_models_schema_lists_the_scopes_from_the_table(tool: type[Any]) -> None:
    schema = convert_to_openai_tool(tool(metaso_api_key="k"))
    scope = schema["function"]["parameters"]["properties"]["scope"]
    assert describe_scopes() in scope["description"]


@pytest.mark.parametrize("spelling", ["paper", "Paper", " PAPER "])
def test_paper_is_scholar(spelling: str) -> None:
    assert normalize_scope(spelling) == "scholar"
    assert SearchRequest(query="q", scope=spelling).to_body()["scope"] == "scholar"


def test_paper_reaches_the_api_as_scholar(make: Make, emulator: MetasoEmulator) -> None:
    docs = make(MetasoRetriever, k=1).invoke("事件相机", scope="paper")
    assert emulator.requests[-1].json()["scope"] == "scholar"
    assert docs[0].metadata["scope"] == "scholar"
    make(MetasoSearchTool, size=1).invoke({"query": "事件相机", "scope": "paper"})
    assert emulator.requests[-1].json()["scope"] == "scholar"


def test_an_unknown_scope_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'webpage'.*'image'"):
        SearchRequest(query="q", scope="news")
