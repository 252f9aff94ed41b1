"""MetasoSearchTool: what the model sees, the artifact, overrides, and errors as messages."""

from __future__ import annotations

import asyncio
import pickle
import warnings
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import SECRET, Invoke, Make, Served, tool_call, tool_message
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ValidationError

from langchain_metaso import SCOPES, MetasoRetriever, MetasoSearchInput, MetasoSearchTool
from langchain_metaso._http import MetasoClient
from langchain_metaso.dates import today_in_china
from langchain_metaso.testing import SEED_QUERY, Fault, MetasoEmulator, load_seed_response
from langchain_metaso.tools.base import DEFAULT_MAX_CHARS

# What the model may pass, in the order the schema shows it.
MODEL_ARGS = [
    "query",
    "scope",
    "size",
    "page",
    "include_domains",
    "exclude_domains",
    "recency_days",
]


# --- identity and schema ---------------------------------------------------------------------


def test_name_and_description(make: Make) -> None:
    tool = make(MetasoSearchTool)
    assert tool.name == "metaso_search"
    description = tool.description.lower()
    for word in ("chinese", "scholar", "document", "podcast", "video", "image"):
        assert word in description
    assert "fresh" in description or "current" in description


def test_schema_the_model_sees(make: Make) -> None:
    schema = make(MetasoSearchTool).tool_call_schema.model_json_schema()
    assert schema["required"] == ["query"]
    assert list(schema["properties"]) == MODEL_ARGS
    assert set(SCOPES) <= set(str(schema["properties"]["scope"]).split("'"))


# --- the developer's settings are the model's limits -----------------------------------------


def size_maximum(tool: MetasoSearchTool) -> int:
    """The bound on ``size`` in the schema the model is sent."""
    size = convert_to_openai_tool(tool)["function"]["parameters"]["properties"]["size"]
    assert size["type"] == "integer"
    assert f"At most {size['maximum']}." in size["description"]
    return int(size["maximum"])


@pytest.mark.parametrize(
    ("model_args", "shown"),
    [
        (None, MODEL_ARGS),
        (["size"], ["query", "size"]),
        (("page", "scope"), ["query", "scope", "page"]),
        ([], ["query"]),
    ],
)
def test_model_args_are_all_the_model_sees(
    make: Make, model_args: list[str] | None, shown: list[str]
) -> None:
    tool = make(MetasoSearchTool, model_args=model_args)
    assert list(tool.tool_call_schema.model_json_schema()["properties"]) == shown
    parameters = convert_to_openai_tool(tool)["function"]["parameters"]
    assert list(parameters["properties"]) == shown
    assert parameters["required"] == ["query"]
    # What the README warns of: under OpenAI's strict mode the model must set all it is shown.
    strict = convert_to_openai_tool(tool, strict=True)["function"]["parameters"]
    assert strict["required"] == shown


def test_arguments_outside_model_args_keep_the_instance_values(
    emulator: MetasoEmulator, emulator_url: str, invoke: Invoke
) -> None:
    tool = MetasoSearchTool(
        api_key="test-key", base_url=emulator_url, scope="scholar", size=3, model_args=["size"]
    )
    refused = tool_message(invoke, tool, query="q", scope="video", size=5)
    assert refused.status == "error"
    assert "scope: fixed by the developer of this tool, leave it out" in refused.content
    assert "Valid scopes" not in refused.content
    assert emulator.requests == []

    result = tool_message(invoke, tool, query="q", size=5)
    body = emulator.requests[0].json()
    assert (body["scope"], body["size"]) == ("scholar", 5)
    assert len(result.artifact) == 5


def test_unknown_model_args_name_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as info:
        MetasoSearchTool(api_key="test-key", model_args=["scope", "sise"])
    text = str(info.value)
    assert "'sise' (did you mean 'size'?)" in text
    assert "Valid arguments: scope, size, page" in text


@pytest.mark.parametrize(
    ("settings", "limit"),
    [
        ({}, 20),
        ({"size": 5}, 20),
        ({"size": 30}, 30),
        ({"size": 100}, 100),
        ({"size": 5, "max_size": 8}, 8),
        ({"max_size": 100}, 100),
    ],
)
def test_max_size_is_the_bound_the_schema_shows(
    make: Make, settings: dict[str, Any], limit: int
) -> None:
    tool = make(MetasoSearchTool, **settings)
    assert tool.size_limit == limit
    assert size_maximum(tool) == limit


def test_a_call_above_max_size_gets_max_size_and_the_text_says_so(
    emulator: MetasoEmulator, emulator_url: str, invoke: Invoke
) -> None:
    tool = MetasoSearchTool(api_key="test-key", base_url=emulator_url)
    result = tool_message(invoke, tool, query="秘塔", size=100)

    assert result.status == "success"
    assert emulator.requests[0].json()["size"] == 20
    assert len(result.artifact) == 20
    assert result.content.startswith("Metaso webpage search for '秘塔': 20 of ")
    assert result.content.endswith("(Asked for 100 results; this tool returns at most 20 a call.)")
    # Within the bound, nothing is added.
    within = tool_message(invoke, tool, query="秘塔", size=20)
    assert "Asked for" not in within.content


def test_settings_changed_later_reshape_the_schema(make: Make) -> None:
    tool = make(MetasoSearchTool)
    tool.model_args = ("scope",)
    assert list(tool.tool_call_schema.model_json_schema()["properties"]) == ["query", "scope"]
    tool.model_args = None
    tool.size = 40
    assert size_maximum(tool) == 40
    copy = tool.model_copy(update={"max_size": 50})
    assert size_maximum(copy) == 50
    assert size_maximum(tool) == 40
    with pytest.raises(ValidationError, match="max_size"):
        tool.max_size = 10  # below size 40
    assert tool.max_size is None


def test_a_tool_with_a_reshaped_schema_pickles(make: Make) -> None:
    tool = make(MetasoSearchTool, transport=None, model_args=["size"], max_size=7)
    assert tool.size == 7  # left unset, the default follows the bound
    restored = pickle.loads(pickle.dumps(tool))
    assert list(restored.tool_call_schema.model_json_schema()["properties"]) == ["query", "size"]
    assert size_maximum(restored) == 7


def test_args_schema_is_built_not_given(make: Make) -> None:
    class Other(BaseModel):
        query: str

    with pytest.raises(ValidationError, match="model_args"):
        make(MetasoSearchTool, args_schema=Other)
    # The whole schema, as the class has it, is no change: the bound is still shown.
    assert size_maximum(make(MetasoSearchTool, args_schema=MetasoSearchInput)) == 20


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"scope": "news"}, ["scope", *SCOPES]),
        ({"size": 0}, ["size"]),
        ({"size": 101}, ["size", "100"]),
        ({"page": 0}, ["page"]),
        ({"size": 30, "max_size": 10}, ["size (30) is above max_size (10)"]),
        ({"max_size": 0}, ["max_size"]),
        ({"max_size": 101}, ["max_size", "100"]),
    ],
)
def test_bad_instance_settings_fail_at_construction(
    kwargs: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(ValidationError) as info:
        MetasoSearchTool(metaso_api_key="test-key", **kwargs)
    for word in expected:
        assert word in str(info.value)


def test_model_dump_is_warning_free(make: Make) -> None:
    # handle_validation_error holds a function: its field type must say it can.
    tool = make(MetasoSearchTool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dumped = tool.model_dump()
    assert dumped["name"] == "metaso_search"


def test_async_path_is_native(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_sync(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the async path must not fall back to the sync one")

    monkeypatch.setattr(MetasoClient, "request", no_sync)
    tool = make(MetasoSearchTool, size=2)
    assert type(tool)._arun is not BaseTool._arun
    result = asyncio.run(tool.ainvoke(tool_call("metaso_search", query="q")))
    assert result.status == "success"
    assert len(result.artifact) == 2


# --- content and artifact --------------------------------------------------------------------


def test_content_lists_each_result(make: Make, invoke: Invoke) -> None:
    result = tool_message(invoke, make(MetasoSearchTool), query=SEED_QUERY)
    content = result.content
    assert isinstance(content, str)
    assert result.status == "success"
    assert content.startswith(f"Metaso webpage search for '{SEED_QUERY}': 10 of 86 results.")
    assert "\\u" not in content  # Chinese is never escaped
    position = 0
    for item in load_seed_response()["webpages"]:
        entry = content.index(f"[{item['position']}] {item['title']}", position)
        link = content.index(item["link"], entry)
        date = content.index(item["date"], link)
        text = item.get("summary") or item["snippet"]
        position = content.index(text.strip(), date)


def test_content_of_a_scholar_result_shows_authors(make: Make, invoke: Invoke) -> None:
    result = tool_message(
        invoke, make(MetasoSearchTool), query="大语言模型", scope="scholar", size=2
    )
    authors = result.artifact[0].metadata["authors"]
    assert ", ".join(authors) in result.content


def test_artifact_is_what_the_retriever_builds(make: Make, invoke: Invoke) -> None:
    tool_docs = tool_message(invoke, make(MetasoSearchTool), query=SEED_QUERY).artifact
    retriever_docs = invoke(make(MetasoRetriever), SEED_QUERY)
    assert len(tool_docs) == 10
    assert tool_docs == retriever_docs


def test_artifact_matches_the_retriever_for_other_settings(make: Make, invoke: Invoke) -> None:
    settings = {"scope": "video", "include_raw_content": True, "concise_snippet": True}
    tool_docs = tool_message(
        invoke, make(MetasoSearchTool, size=4, **settings), query="猫"
    ).artifact
    retriever_docs = invoke(make(MetasoRetriever, k=4, **settings), "猫")
    assert len(tool_docs) == 4
    assert tool_docs == retriever_docs
    # Raw content was asked for and came back: it is the page content (it starts with the title).
    assert all(d.page_content.startswith(d.metadata["title"]) for d in tool_docs)
    assert all("content" not in d.metadata for d in tool_docs)


def test_raw_page_text_goes_to_the_artifact_not_the_model(make: Make) -> None:
    tool = make(MetasoSearchTool, size=3, include_raw_content=True)
    message = tool.invoke(tool_call(tool.name, query="秘塔"))
    for doc in message.artifact:
        assert "content" not in doc.metadata  # it is the page_content
        assert doc.page_content not in message.content
        shown = doc.metadata.get("summary") or doc.metadata["snippet"]
        assert shown in message.content


def test_plain_args_return_the_content_only(make: Make, invoke: Invoke) -> None:
    content = invoke(make(MetasoSearchTool, size=3), {"query": "秘塔"})
    assert isinstance(content, str)
    assert content.startswith("Metaso webpage search for '秘塔': 3 of ")
    assert "[3] " in content
    assert "[4] " not in content


def test_instance_defaults_are_sent(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    tool = make(MetasoSearchTool, scope="scholar", size=3, page=2, include_summary=False)
    invoke(tool, tool_call("metaso_search", query="q"))
    assert emulator.requests[0].json() == {
        "q": "q",
        "scope": "scholar",
        "page": 2,  # without size: the API takes one or the other
        "includeSummary": False,
    }


def test_per_call_arguments_override_instance_defaults(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    tool = make(MetasoSearchTool, scope="scholar", size=3)
    result = tool_message(invoke, tool, query="q", scope="video", size=5)
    body = emulator.requests[0].json()
    assert (body["scope"], body["size"]) == ("video", 5)
    assert len(result.artifact) == 5
    assert result.content.startswith("Metaso video search for 'q': 5 of ")
    paged = tool_message(invoke, tool, query="q", page=2)
    body = emulator.requests[1].json()
    assert (body["scope"], body["page"], "size" in body) == ("scholar", 2, False)
    assert [doc.metadata["position"] for doc in paged.artifact] == [11, 12, 13]
    # The instance keeps its defaults for the next call.
    invoke(tool, tool_call("metaso_search", query="q"))
    body = emulator.requests[2].json()
    assert (body["scope"], body["size"], "page" in body) == ("scholar", 3, False)


def test_page_is_sent_only_when_set(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    invoke(make(MetasoSearchTool), tool_call("metaso_search", query="q"))
    assert "page" not in emulator.requests[0].json()


def test_no_results_is_one_sentence(make: Make, invoke: Invoke) -> None:
    result = tool_message(invoke, make(MetasoSearchTool), query="冷门话题", page=100)
    assert result.status == "success"
    assert result.artifact == []
    content = result.content
    assert isinstance(content, str)
    assert "\n" not in content
    assert content.count(".") == 1
    assert content.endswith(".")
    assert "No webpage results" in content
    assert "冷门话题" in content


# --- failures come back as messages ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"query": "q", "scope": "news"}, ["scope", *SCOPES]),
        ({"query": ""}, ["query", "empty"]),
        ({"query": "   "}, ["query", "empty"]),
        ({}, ["query"]),
        ({"query": "q", "size": 0}, ["size"]),
        ({"query": "q", "page": 0}, ["page"]),
        ({"query": "q", "k": 3}, ["k", "not an argument of this tool"]),
    ],
)
def test_invalid_arguments_come_back_as_an_error_message(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, args: dict[str, Any], expected: list[str]
) -> None:
    tool = make(MetasoSearchTool)
    result = tool_message(invoke, tool, **args)
    assert result.status == "error"
    for word in expected:
        assert word in result.content
    assert "call the tool again" in result.content
    assert emulator.requests == []
    # With plain arguments: the same text as a string, not an exception.
    text = invoke(tool, args)
    assert text == result.content


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.status(401), ["401", "METASO_API_KEY"]),
        (Fault.status(403), ["403", "METASO_API_KEY"]),
        (Fault.status(402), ["402", "Top up"]),
        (Fault.status(429), ["429", "Rate limited", "wait"]),
        (Fault.status(429, retry_after=3600), ["Rate limited", "wait 3600 s"]),
        (Fault.status(503), ["503", "retry"]),
        (Fault.business_error(1000, "参数错误"), ["参数错误", "1000"]),
        (Fault.garbage(), ["HTML page", "base URL"]),
        (Fault.drop(), ["Check the network"]),
        (Fault.timeout(), ["ReadTimeout", "retry"]),
    ],
)
def test_api_failures_come_back_as_an_error_message(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, fault: Fault, expected: list[str]
) -> None:
    tool = make(MetasoSearchTool, max_retries=0)
    emulator.script(fault)
    result = tool_message(invoke, tool, query="秘塔")
    assert result.status == "error"
    assert result.content.startswith("Metaso search")
    for word in expected:
        assert word in result.content
    emulator.script(fault)
    # A fresh tool: after a 429 with Retry-After, this one rightly holds back.
    text = invoke(make(MetasoSearchTool, max_retries=0), {"query": "秘塔"})
    assert text == result.content


def test_wrong_key_message_names_the_env_var(make: Make, invoke: Invoke) -> None:
    other = MetasoEmulator(api_key="test-key-of-someone-else")
    result = tool_message(invoke, make(MetasoSearchTool, emulator=other), query="q")
    assert result.status == "error"
    assert "METASO_API_KEY" in result.content
    assert "Missing or invalid API key" in result.content


def test_key_absent_from_tool_messages(make: Make, invoke: Invoke) -> None:
    emulator = MetasoEmulator(api_key=SECRET)
    tool = make(MetasoSearchTool, emulator=emulator, metaso_api_key=SECRET, max_retries=0)
    emulator.script(Fault.status(401, body={"error": {"message": f"bad key {SECRET}"}}))
    failed = tool_message(invoke, tool, query="q")
    assert failed.status == "error"
    assert SECRET not in failed.content
    assert SECRET not in repr(failed)
    succeeded = tool_message(invoke, tool, query="q")
    assert succeeded.status == "success"
    assert SECRET not in repr(succeeded)


def test_tool_keeps_working_after_an_error(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    tool = make(MetasoSearchTool, size=2, max_retries=0)
    emulator.script(Fault.status(500))
    assert tool_message(invoke, tool, query="q").status == "error"
    assert len(tool_message(invoke, tool, query="q").artifact) == 2


# --- what the model reads of each kind of result (issue 10.9, 11.2) ---------------------------


def scripted(make: Make, emulator: MetasoEmulator, scope: str, *items: dict[str, Any]) -> Any:
    emulator.script(Fault.status(200, body={f"{scope}s": list(items), "total": 40}))
    return make(MetasoSearchTool, scope=scope).invoke(tool_call("metaso_search", query="q"))


def test_an_image_shows_its_url_and_size_and_its_title_once(
    make: Make, emulator: MetasoEmulator
) -> None:
    image = {"title": "断桥残雪", "imageUrl": "https://img.cn/a.jpg", "imageWidth": 1024}
    sized = {**image, "title": "雪后西湖", "imageUrl": "https://img.cn/b.png", "imageHeight": 600}
    sized["imageWidth"] = 800
    result = scripted(make, emulator, "image", image, sized)
    assert result.content.split("\n\n")[1:] == [
        "[1] 断桥残雪\nhttps://img.cn/a.jpg",  # no height: no size
        "[2] 雪后西湖\nhttps://img.cn/b.png\n800x600 pixels",
    ]
    assert [d.metadata["source"] for d in result.artifact] == [
        "https://img.cn/a.jpg",
        "https://img.cn/b.png",
    ]


@pytest.mark.parametrize(
    ("duration", "shown"),
    [("617", "duration 10:17"), ("59", "duration 0:59"), ("3725", "duration 1:02:05")],
)
def test_a_duration_in_seconds_reads_as_a_time(
    make: Make, emulator: MetasoEmulator, duration: str, shown: str
) -> None:
    video = {"title": "v", "link": "https://v.cn/1", "date": "2024-06-17", "duration": duration}
    content = scripted(make, emulator, "video", {**video, "snippet": "s"}).content
    assert content.endswith(f"\n2024-06-17 | {shown}\ns")


def test_a_duration_that_is_not_seconds_is_shown_as_written(
    make: Make, emulator: MetasoEmulator
) -> None:
    podcast = {"title": "p", "link": "https://p.cn/1", "duration": "12:03", "authors": ["甲"]}
    assert scripted(make, emulator, "podcast", podcast).content.endswith("\nduration 12:03 | 甲")


def test_a_long_query_is_cut_short_in_the_text(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    query = "秘塔" * 5000
    found = tool_message(invoke, make(MetasoSearchTool, size=1), query=query).content
    header = found.split("\n")[0]
    assert (
        header == f"Metaso webpage search for '{query[:99]}…': 1 of {header.split()[-2]} results."
    )
    assert emulator.requests[0].json()["q"] == query  # cut in the text only
    emulator.script(Fault.status(200, body={"webpages": [], "total": 0}))
    empty = tool_message(invoke, make(MetasoSearchTool), query=query + "?").content
    assert empty == f"No webpage results found for '{query[:99]}…'."


def test_a_query_reads_on_one_line_with_no_doubled_punctuation(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(Fault.status(200, body={"webpages": [], "total": 0}))
    content = tool_message(invoke, make(MetasoSearchTool), query="什么是\n秘塔?  ").content
    assert content == "No webpage results found for '什么是 秘塔?'."


# --- filters a call adds -------------------------------------------------------------------


def hosts(message: ToolMessage) -> set[str]:
    return {urlsplit(doc.metadata["source"]).hostname or "" for doc in message.artifact}


def test_a_call_may_keep_only_some_sites(served: Served, invoke: Invoke) -> None:
    tool = served(MetasoSearchTool, size=5)
    result = tool_message(invoke, tool, query="秘塔", include_domains=["example.com"])
    assert result.status == "success"
    assert result.artifact
    assert all(host == "example.com" or host.endswith(".example.com") for host in hosts(result))
    assert "outside the requested sites" in result.content


def test_a_call_adds_exclusions_to_the_tools_own(served: Served, invoke: Invoke) -> None:
    tool = served(MetasoSearchTool, size=10, exclude_domains=["example.org"])
    result = tool_message(invoke, tool, query="秘塔", exclude_domains=["example.net"])
    assert result.artifact
    assert not any(host.endswith(("example.org", "example.net")) for host in hosts(result))


def test_a_call_cannot_lift_the_tools_sites(served: Served, invoke: Invoke) -> None:
    tool = served(MetasoSearchTool, include_domains=["example.com"])
    result = tool_message(invoke, tool, query="秘塔", include_domains=["example.org"])
    assert result.status == "error"
    assert "Invalid arguments" in result.content
    assert "example.org" in result.content


def test_filters_outside_model_args_are_not_the_models(served: Served, invoke: Invoke) -> None:
    tool = served(MetasoSearchTool, model_args=["scope"])
    assert "include_domains" not in tool.tool_call_schema.model_json_schema()["properties"]
    result = tool_message(invoke, tool, query="秘塔", include_domains=["example.com"])
    assert result.status == "error"
    assert "include_domains: fixed by the developer of this tool" in result.content


def test_a_call_with_a_bad_domain_is_told_which(served: Served, invoke: Invoke) -> None:
    result = tool_message(
        invoke, served(MetasoSearchTool), query="秘塔", include_domains=["not a domain"]
    )
    assert result.status == "error"
    assert "not a domain" in result.content


# --- what the model reads follows what it may set --------------------------------------------


def test_a_fixed_scope_is_not_offered_in_the_description_or_the_schema(make: Make) -> None:
    tool = make(MetasoSearchTool, scope="scholar", model_args=["size"])
    assert "scope=" not in tool.description
    assert "'video'" not in tool.description
    assert "academic papers" in tool.description
    schema = tool.tool_call_schema.model_json_schema()
    assert "scope" not in str(schema)
    # Offered, the scope's description names this tool's default, not the API's.
    offered = make(MetasoSearchTool, scope="video").tool_call_schema.model_json_schema()
    assert "'video' (videos, default)" in offered["properties"]["scope"]["description"]
    assert "scope='scholar'" in make(MetasoSearchTool).description


def test_the_description_follows_model_args_set_later_unless_the_developer_wrote_one(
    make: Make,
) -> None:
    tool = make(MetasoSearchTool, scope="video")
    assert "scope='scholar'" in tool.description
    tool.model_args = ("size",)
    assert tool.description.startswith("Search videos with Metaso")
    assert "scope" not in str(tool.tool_call_schema.model_json_schema())
    own = make(MetasoSearchTool, description="Mine.", model_args=[])
    assert own.description == "Mine."
    assert own.model_copy(update={"model_args": ["scope"]}).description == "Mine."


def test_a_fixed_argument_from_the_model_is_refused_as_the_developers_choice(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    tool = make(MetasoSearchTool, scope="scholar", model_args=["size"])
    refused = tool_message(invoke, tool, query="q", scope="video", recency_days=3)
    assert refused.status == "error"
    assert "scope: fixed by the developer of this tool, leave it out" in refused.content
    assert "recency_days: fixed by the developer of this tool" in refused.content
    assert "Valid scopes" not in refused.content  # no invitation to try another
    unknown = tool_message(invoke, tool, query="q", colour="red")
    assert "colour: not an argument of this tool" in unknown.content
    assert emulator.requests == []


def test_max_results_is_another_name_of_size(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    tool = make(MetasoSearchTool, max_results=4)
    assert tool.size == 4
    assert len(tool_message(invoke, tool, query="q").artifact) == 4
    assert len(tool_message(invoke, tool, query="q", max_results=2).artifact) == 2
    assert [r.json()["size"] for r in emulator.requests] == [4, 2]
    both = tool_message(invoke, tool, query="q", size=3, max_results=2)
    assert both.status == "error"
    assert "max_results: another name of size, give only one of them" in both.content
    assert "not an argument" not in both.content
    assert len(emulator.requests) == 2


# --- what the text says of pages and filters -------------------------------------------------


def test_results_are_numbered_from_one_on_any_page(make: Make, invoke: Invoke) -> None:
    message = tool_message(invoke, make(MetasoSearchTool, size=3), query="q", page=2)
    assert [doc.metadata["position"] for doc in message.artifact] == [11, 12, 13]
    entries = message.content.split("\n\n")[1:]
    assert [entry.split(" ")[0] for entry in entries] == ["[1]", "[2]", "[3]"]


def test_a_page_past_the_end_says_how_many_results_there_are(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(Fault.status(200, body={"webpages": [], "total": 42}))
    content = tool_message(invoke, make(MetasoSearchTool), query="q", page=9).content
    assert (
        content == "No webpage results on page 9 for 'q': the search has 42 results, 5 pages of 10."
    )


def test_a_page_with_a_size_above_ten_says_a_page_holds_ten(make: Make, invoke: Invoke) -> None:
    message = tool_message(invoke, make(MetasoSearchTool), query="q", page=2, size=15)
    assert len(message.artifact) == 10
    assert message.content.endswith(
        "(Page 2 holds at most 10 results; page=3 gives the next ones.)"
    )
    within = tool_message(invoke, make(MetasoSearchTool), query="q", page=2, size=10)
    assert "holds at most" not in within.content


def test_recency_days_tells_the_model_what_happens_to_undated_results(make: Make) -> None:
    def shown(tool: MetasoSearchTool) -> str:
        schema = tool.tool_call_schema.model_json_schema()
        return str(schema["properties"]["recency_days"]["description"])

    tool = make(MetasoSearchTool)
    assert shown(tool).endswith(" Results whose date cannot be read are kept.")
    tool.keep_undated = False
    assert shown(tool).endswith(" Results whose date cannot be read are dropped.")


def test_the_last_page_names_no_next_one(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    items = load_seed_response()["webpages"]
    emulator.script(Fault.status(200, body={"webpages": items, "total": 20}))
    message = tool_message(invoke, make(MetasoSearchTool), query="q", page=2, size=15)
    assert len(message.artifact) == 10
    assert "page=3" not in message.content
    assert "holds at most" not in message.content


def test_a_filtered_page_names_the_page_after_those_it_read(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    tool = make(MetasoSearchTool)
    message = tool_message(invoke, tool, query="q", page=3, include_domains=["example.com"])
    pages = [request.json()["page"] for request in emulator.requests]
    assert pages == [3, 4, 5]
    assert len(message.artifact) < 10
    assert message.content.endswith("(Read pages 3-5; page=6 gives the next ones.)")


def test_a_page_the_model_may_not_set_is_not_advised(make: Make, invoke: Invoke) -> None:
    tool = make(MetasoSearchTool, page=2, size=15, model_args=["size"])
    message = tool_message(invoke, tool, query="q")
    assert message.content.endswith("(Page 2 holds at most 10 results.)")
    assert "page=" not in message.content


def test_filters_that_keep_nothing_say_what_they_keep(served: Served, invoke: Invoke) -> None:
    tool = served(MetasoSearchTool, exclude_domains=["example.org"], recency_days=30)
    content = tool_message(invoke, tool, query="秘塔", include_domains=["nowhere.cn"]).content
    assert content.startswith("No webpage results found for '秘塔' (0 of ")
    cutoff = today_in_china() - timedelta(days=30)
    assert content.endswith(
        f"; kept only results from nowhere.cn, not from example.org, "
        f"dated on or after {cutoff.isoformat()}."
    )


def test_an_image_shows_its_own_url_beside_its_pages_link(
    make: Make, emulator: MetasoEmulator
) -> None:
    image = {"title": "断桥", "link": "https://hz.cn/p", "imageUrl": "https://img.cn/a.jpg"}
    message = scripted(make, emulator, "image", image)
    assert (
        message.content.split("\n\n")[1] == "[1] 断桥\nhttps://hz.cn/p\nimage: https://img.cn/a.jpg"
    )


# --- what reaches the model is bounded -------------------------------------------------------


def test_the_text_is_cut_at_max_chars_saying_how_much_and_the_artifact_is_whole(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    huge = "长" * 5_000_000
    emulator.script(
        Fault.status(
            200, body={"webpages": [{"title": "t", "link": "https://a.cn/", "snippet": huge}]}
        )
    )
    message = tool_message(invoke, make(MetasoSearchTool), query="q" * 10_000)
    assert len(message.content) < DEFAULT_MAX_CHARS + 100
    assert message.content.endswith(" more characters]")
    assert "[… cut: " in message.content
    assert message.artifact[0].page_content == huge
    # 20 results with their summaries fit whole.
    twenty = tool_message(invoke, make(MetasoSearchTool), query=SEED_QUERY, size=20).content
    assert "[… cut" not in twenty
    assert "[20] " in twenty


def test_the_docstring_names_every_argument_model_args_may_give() -> None:
    doc = MetasoSearchTool.__doc__ or ""
    paragraph = doc.split("model_args:", 1)[1].split("max_chars:", 1)[0]
    for name in list(MetasoSearchInput.model_fields)[1:]:
        assert f"``{name}``" in paragraph, name
