"""The lenient field types every answer is read with, and the checks every request makes
(``_parsing.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from langchain_metaso._parsing import (
    Int,
    JsonObject,
    Query,
    ScopeName,
    Text,
    TextList,
    check_query,
    is_text,
    lenient,
)


class Item(BaseModel):
    """An answer's item, typed as the endpoint modules type theirs."""

    model_config = ConfigDict(extra="allow")

    title: Text = None
    count: Int = None
    authors: TextList = None
    extra: JsonObject = None


@pytest.mark.parametrize(
    ("given", "read"),
    [
        ({"title": "秘塔", "count": 3}, {"title": "秘塔", "count": 3}),
        ({"title": 2025, "count": "42"}, {"title": "2025", "count": 42}),  # numbers as text
        ({"title": 1.5}, {"title": "1.5"}),
        ({"title": None, "count": None}, {"title": None, "count": None}),
        ({"title": ["a"], "count": "many"}, {"title": None, "count": None}),
        ({"title": True, "count": True}, {"title": None, "count": None}),  # no bools
        ({"count": 2.5}, {"count": None}),
        ({"count": "²"}, {"count": None}),  # a digit int() refuses
    ],
)
def test_text_and_numbers_read_what_they_can_and_none_otherwise(
    given: dict[str, Any], read: dict[str, Any]
) -> None:
    item = Item.model_validate(given)
    assert {name: getattr(item, name) for name in read} == read


@pytest.mark.parametrize(
    ("given", "read"),
    [
        (["张伟", 3, None, "李娜"], ["张伟", "李娜"]),
        ("张伟", ["张伟"]),
        ({"name": "张伟"}, None),
        (7, None),
    ],
)
def test_a_text_list_keeps_only_text(given: Any, read: list[str] | None) -> None:
    assert Item.model_validate({"authors": given}).authors == read


def test_a_json_object_is_a_dict_or_nothing_and_unknown_fields_are_kept() -> None:
    item = Item.model_validate({"extra": {"a": 1}, "lang": "zh"})
    assert item.extra == {"a": 1}
    assert item.model_extra == {"lang": "zh"}
    assert Item.model_validate({"extra": [1, 2]}).extra is None


def test_lenient_drops_only_keys_that_are_not_valid_text() -> None:
    item = lenient(Item, {"title": "秘塔", "bad \ud800 key": 1, "lang": "zh"})
    assert item.title == "秘塔"
    assert item.model_extra == {"lang": "zh"}


def test_is_text_tells_lone_surrogates_apart() -> None:
    assert is_text("秘塔 AI")
    assert not is_text("broken \ud800")


def test_check_query_strips_and_refuses_what_cannot_be_sent() -> None:
    assert check_query("  秘塔\n") == "秘塔"
    with pytest.raises(ValueError, match="must not be empty"):
        check_query(" \t\n")
    with pytest.raises(ValueError, match="lone surrogate"):
        check_query("秘塔 \ud800")


class Asked(BaseModel):
    """A request's fields, checked as the endpoint modules check theirs."""

    query: Query
    scope: ScopeName = "webpage"


def test_a_query_and_a_scope_are_checked_where_they_are_typed() -> None:
    asked = Asked(query=" 秘塔 ", scope="Paper")
    assert (asked.query, asked.scope) == ("秘塔", "scholar")
    with pytest.raises(ValidationError, match="query"):
        Asked(query="   ")
    with pytest.raises(ValidationError, match="scope"):
        Asked(query="q", scope="news")
