"""Settings shared by every public class: key, base URL, limits, copies, secrecy."""

from __future__ import annotations

import asyncio
import copy
import pickle
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import SECRET, TEST_KEY, Invoke, Make
from pydantic import SecretStr, ValidationError

import langchain_metaso
from langchain_metaso import (
    DEFAULT_BASE_URL,
    METASO_CN_BASE_URL,
    SCOPES,
    MetasoAuthenticationError,
    MetasoConfig,
    MetasoLoader,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoTool,
)
from langchain_metaso.testing import MetasoEmulator

CLASSES = [MetasoRetriever, MetasoSearchTool]


def query_for(target: Any, query: str = "秘塔") -> Any:
    """The input of one search through either public class."""
    return {"query": query} if isinstance(target, MetasoSearchTool) else query


def call(target: Any) -> Any:
    return target.invoke(query_for(target))


# --- the key ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("kwargs", [{}, {"metaso_api_key": ""}, {"metaso_api_key": "  "}])
def test_missing_key_is_an_error_naming_the_env_var(cls: type, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="METASO_API_KEY") as info:
        cls(**kwargs)
    assert "metaso_api_key" in str(info.value)


@pytest.mark.parametrize("cls", CLASSES)
def test_key_from_the_environment_is_sent(
    cls: type, emulator: MetasoEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METASO_API_KEY", "test-key")
    target = cls(transport=emulator.transport())
    assert target.metaso_api_key.get_secret_value() == "test-key"
    call(target)
    assert emulator.requests[0].headers["authorization"] == "Bearer test-key"


def test_key_argument_wins_over_the_environment(
    emulator: MetasoEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METASO_API_KEY", "test-key-from-env")
    target = MetasoRetriever(metaso_api_key="test-key", transport=emulator.transport())
    target.invoke("q")
    assert emulator.requests[0].headers["authorization"] == "Bearer test-key"


def test_a_pasted_key_with_a_trailing_newline_is_cleaned(
    make: Make, emulator: MetasoEmulator
) -> None:
    retriever = make(MetasoRetriever, metaso_api_key=f"  {TEST_KEY}\n")
    assert retriever.metaso_api_key.get_secret_value() == TEST_KEY
    assert retriever.invoke("q")
    assert emulator.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"


@pytest.mark.parametrize(
    "bad_key", ["sk-SECRET VALUE", "sk-SECRET\nVALUE", "sk-SECRET\x00", "sk－SECRETVALUE"]
)
def test_a_key_that_cannot_go_into_a_header_is_refused_without_echoing_it(bad_key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MetasoSearchTool(metaso_api_key=bad_key)
    message = str(caught.value)
    assert "METASO_API_KEY" in message
    assert "SECRET" not in message


# --- the base URL ----------------------------------------------------------------------------


def test_default_base_url_is_302ai() -> None:
    assert MetasoRetriever(metaso_api_key="test-key").base_url == DEFAULT_BASE_URL
    assert MetasoSearchTool(metaso_api_key="test-key").base_url == DEFAULT_BASE_URL


@pytest.mark.parametrize("cls", CLASSES)
def test_base_url_from_the_environment(cls: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METASO_BASE_URL", "https://metaso.cn/api/v1/")
    assert cls(metaso_api_key="test-key").base_url == "https://metaso.cn/api/v1"


@pytest.fixture
def urls() -> list[str]:
    return []


@pytest.fixture
def recording(urls: list[str]) -> httpx.MockTransport:
    """Records the full URL of each request and answers one result."""

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json={"webpages": [{"title": "t", "link": "https://x/"}]})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.302.ai/metaso", "https://api.302.ai/metaso/search"),
        ("https://api.302.ai/metaso/", "https://api.302.ai/metaso/search"),
        ("https://metaso.cn/api/v1", "https://metaso.cn/api/v1/search"),
        ("https://metaso.cn/api/v1/", "https://metaso.cn/api/v1/search"),
        (" https://metaso.cn/api/v1// ", "https://metaso.cn/api/v1/search"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/search"),
    ],
)
def test_endpoint_url(
    make: Make,
    invoke: Invoke,
    recording: httpx.MockTransport,
    urls: list[str],
    base_url: str,
    expected: str,
) -> None:
    target = make(MetasoRetriever, base_url=base_url, transport=recording)
    assert target.base_url == expected.removesuffix("/search")
    invoke(target, "q")
    assert urls == [expected]


@pytest.mark.parametrize(
    ("base_url", "path"),
    [
        ("https://api.302.ai/metaso", "/metaso/search"),
        ("https://metaso.cn/api/v1/", "/api/v1/search"),
    ],
)
def test_endpoint_path_reaches_the_emulator(
    make: Make, emulator: MetasoEmulator, base_url: str, path: str
) -> None:
    assert len(make(MetasoRetriever, base_url=base_url, k=2).invoke("q")) == 2
    assert emulator.requests[0].path == path


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "base_url", ["", "metaso.cn/api/v1", "ftp://metaso.cn/api/v1", "http://", "https:///x"]
)
def test_bad_base_url_is_an_error(cls: type, base_url: str) -> None:
    with pytest.raises(ValidationError, match="base_url must be an http") as info:
        cls(metaso_api_key="test-key", base_url=base_url)
    assert DEFAULT_BASE_URL in str(info.value)  # shows what a good one looks like


@pytest.fixture
def two_servers() -> Iterator[tuple[MetasoEmulator, str, MetasoEmulator, str]]:
    first, second = MetasoEmulator(api_key="test-key"), MetasoEmulator(api_key="test-key")
    with first.serve() as first_url, second.serve() as second_url:
        yield first, first_url, second, second_url


@pytest.mark.parametrize("cls", CLASSES)
def test_model_copy_with_a_new_base_url_talks_to_it(
    make: Make,
    invoke: Invoke,
    cls: type,
    two_servers: tuple[MetasoEmulator, str, MetasoEmulator, str],
) -> None:
    first, first_url, second, second_url = two_servers
    original = make(cls, transport=None, base_url=first_url)
    invoke(original, query_for(original))
    moved = original.model_copy(update={"base_url": second_url})
    invoke(moved, query_for(moved))
    invoke(original, query_for(original))
    assert (len(first.requests), len(second.requests)) == (2, 1)
    original.close()


def test_model_copy_with_a_new_base_url_in_process(
    make: Make, recording: httpx.MockTransport, urls: list[str]
) -> None:
    original = make(MetasoSearchTool, transport=recording)
    original.model_copy(update={"base_url": METASO_CN_BASE_URL}).invoke({"query": "q"})
    original.invoke({"query": "q"})
    assert urls == [f"{METASO_CN_BASE_URL}/search", f"{DEFAULT_BASE_URL}/search"]


def test_model_copy_with_a_new_key_sends_it(make: Make, emulator: MetasoEmulator) -> None:
    original = make(MetasoRetriever, metaso_api_key="test-key-wrong", max_retries=0)
    with pytest.raises(MetasoAuthenticationError):
        original.invoke("q")
    fixed = original.model_copy(update={"metaso_api_key": SecretStr("test-key")})
    assert len(fixed.invoke("q")) == 10


# --- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES)
def test_defaults_are_sane(cls: type) -> None:
    target = cls(metaso_api_key="test-key")
    assert 0 < target.timeout <= 120
    assert target.max_retries >= 2
    assert target.retry_backoff > 0
    assert target.max_concurrency >= 1


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": 0},
        {"timeout": -1},
        {"max_retries": -1},
        {"retry_backoff": -0.5},
        {"max_concurrency": 0},
    ],
)
def test_bad_limits_are_errors(cls: type, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=next(iter(kwargs))):
        cls(metaso_api_key="test-key", **kwargs)


def test_timeout_is_applied_to_each_request(make: Make) -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={"webpages": []})

    make(MetasoRetriever, transport=httpx.MockTransport(handler), timeout=7.5).invoke("q")
    [timeouts] = seen
    assert timeouts["connect"] == timeouts["read"] == timeouts["write"] == 7.5


# --- copies ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES)
def test_pickle_round_trip_works_afterwards(
    make: Make, cls: type, emulator: MetasoEmulator, emulator_url: str
) -> None:
    original = make(cls, transport=None, base_url=emulator_url, max_retries=5)
    original.invoke(query_for(original))  # a live pooled client must not travel
    restored = pickle.loads(pickle.dumps(original))
    assert type(restored) is cls
    assert restored.max_retries == 5
    assert restored.metaso_api_key.get_secret_value() == "test-key"
    restored.invoke(query_for(restored))
    assert emulator.stats.requests == 2
    assert emulator.stats.connections_opened == 2  # the copy opened its own
    original.close()
    restored.close()


@pytest.mark.parametrize("cls", CLASSES)
def test_deepcopy_works_afterwards(
    make: Make, cls: type, emulator: MetasoEmulator, emulator_url: str
) -> None:
    original = make(cls, transport=None, base_url=emulator_url)
    original.invoke(query_for(original))
    clone = copy.deepcopy(original)
    clone.invoke(query_for(clone))
    assert emulator.stats.requests == 2
    assert emulator.stats.connections_opened == 2
    original.close()
    clone.close()


@pytest.mark.parametrize("cls", CLASSES)
def test_deepcopy_with_an_in_process_transport(
    make: Make, cls: type, emulator: MetasoEmulator
) -> None:
    # The transport is how a user plugs in a proxy or a test double: a copy must keep
    # using the same one, not fail trying to copy its locks.
    original = make(cls)
    clone = copy.deepcopy(original)
    clone.invoke(query_for(clone))
    assert len(emulator.requests) == 1


@pytest.mark.parametrize("cls", CLASSES)
def test_deepcopy_with_a_user_supplied_httpx_transport(cls: type) -> None:
    original = cls(metaso_api_key="test-key", transport=httpx.HTTPTransport(retries=1))
    clone = copy.deepcopy(original)
    assert clone.transport is original.transport


@pytest.mark.parametrize("cls", CLASSES)
def test_model_copy_works_afterwards(make: Make, cls: type, emulator: MetasoEmulator) -> None:
    original = make(cls)
    original.invoke(query_for(original))
    clone = original.model_copy(update={"scope": "scholar"})
    clone.invoke(query_for(clone))
    asyncio.run(clone.ainvoke(query_for(clone)))
    assert [r.json()["scope"] for r in emulator.requests] == ["webpage", "scholar", "scholar"]
    assert original.scope == "webpage"


# --- secrecy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES)
def test_key_absent_from_construction_errors(cls: type) -> None:
    for bad in ({"base_url": "nowhere"}, {"scope": "news"}, {"timeout": 0}):
        with pytest.raises(ValidationError) as info:
            cls(metaso_api_key=SECRET, **bad)
        assert SECRET not in str(info.value)
        assert SECRET not in repr(info.value)


# --- one name per concept, no argument ignored ------------------------------------------------

PUBLIC = [
    cls
    for name in langchain_metaso.__all__
    if isinstance(cls := getattr(langchain_metaso, name), type)
    and issubclass(cls, MetasoConfig)
    and cls not in (MetasoConfig, MetasoTool)
]
# What a class needs besides the key to be made at all.
REQUIRED: dict[type, dict[str, Any]] = {MetasoLoader: {"urls": ["https://example.com/a"]}}


def build(cls: type, **kwargs: Any) -> Any:
    return cls(**{"api_key": "test-key", **REQUIRED.get(cls, {}), **kwargs})


def test_every_public_class_is_checked() -> None:
    assert {cls.__name__ for cls in PUBLIC} == {
        "ChatMetaso",
        "MetasoAnswerTool",
        "MetasoLoader",
        "MetasoReaderTool",
        "MetasoRetriever",
        "MetasoSearchTool",
        "MetasoToolkit",
    }


@pytest.mark.parametrize("cls", PUBLIC)
def test_unknown_arguments_are_rejected_naming_them_and_the_valid_ones(
    cls: type[MetasoConfig],
) -> None:
    with pytest.raises(ValidationError) as info:
        build(cls, timeuot=5, colour="red")
    text = str(info.value)
    assert (
        f"{cls.__name__} got unknown arguments 'timeuot' (did you mean 'timeout'?), 'colour'"
        in text
    )
    valid = text.split("Valid arguments: ", 1)[1]
    for name in cls.model_fields:
        assert name in valid
    assert "metaso_api_key (or api_key)" in valid


@pytest.mark.parametrize("cls", PUBLIC)
def test_api_key_is_another_name_of_metaso_api_key(cls: type) -> None:
    assert build(cls).metaso_api_key.get_secret_value() == "test-key"
    with pytest.raises(ValidationError, match="'api_key' and 'metaso_api_key', two names"):
        build(cls, metaso_api_key="test-key")


@pytest.mark.parametrize("cls", CLASSES)
def test_api_key_is_sent(cls: type, emulator: MetasoEmulator, emulator_url: str) -> None:
    target = cls(api_key="test-key", base_url=emulator_url)
    call(target)
    assert emulator.requests[0].headers["authorization"] == "Bearer test-key"


@pytest.mark.parametrize("cls", PUBLIC)
@pytest.mark.parametrize(("name", "value"), [("timeout", 0), ("max_retries", -1)])
def test_settings_changed_after_creation_are_checked_then(cls: type, name: str, value: Any) -> None:
    target = build(cls)
    before = getattr(target, name)
    with pytest.raises(ValidationError, match=name):
        setattr(target, name, value)
    assert getattr(target, name) == before
    with pytest.raises(ValidationError, match=name):
        target.model_copy(update={name: value})
    with pytest.raises(ValidationError, match="'colour'"):
        target.model_copy(update={"colour": "red"})


@pytest.mark.parametrize("cls", CLASSES)
def test_a_scope_changed_later_is_checked_and_never_sent(
    cls: type, emulator: MetasoEmulator, emulator_url: str
) -> None:
    target = cls(api_key="test-key", base_url=emulator_url)
    with pytest.raises(ValidationError) as info:
        target.scope = "news"
    assert all(scope in str(info.value) for scope in SCOPES)
    with pytest.raises(ValidationError, match="scope"):
        target.model_copy(update={"scope": "news"})
    call(target)
    assert [request.json()["scope"] for request in emulator.requests] == ["webpage"]


@pytest.mark.parametrize("cls", PUBLIC)
def test_a_checked_copy_shares_the_connections_and_a_deep_one_does_not(cls: type) -> None:
    target = build(cls)
    shallow = target.model_copy(update={"timeout": 5})
    deep = target.model_copy(update={"timeout": 5}, deep=True)
    assert (shallow.timeout, deep.timeout) == (5, 5)
    assert target.timeout == cls.model_fields["timeout"].default  # the original is unchanged
    assert shallow._pool is target._pool
    assert deep._pool is not target._pool
    budgeted = build(cls, credit_budget=10)
    assert budgeted.model_copy(update={"timeout": 5})._credit_budget() is (
        budgeted._credit_budget()
    )


def test_share_connections_builds_a_sibling_on_the_same_pool(make: Make) -> None:
    from langchain_metaso import MetasoReaderTool, MetasoSearchTool

    search = make(MetasoSearchTool, max_concurrency=3, credit_budget=10)
    reader = search.share_connections(MetasoReaderTool, max_chars=100)
    assert reader._pool is search._pool
    assert reader._credit_budget() is search._credit_budget()
    assert (reader.max_concurrency, reader.max_chars) == (3, 100)
    assert reader.connection_settings() == search.connection_settings()
