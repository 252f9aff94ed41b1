"""Cases found in review: keys that cannot go into a header, bodies httpx cannot decode,
cache entries that collide or rot, errors that must survive pickling, redirects, and
event loops that must not be kept alive."""

from __future__ import annotations

import asyncio
import copy
import gc
import gzip
import pickle
from typing import Any

import httpx
import pytest
from conftest import TEST_KEY, Make
from pydantic import ValidationError

from langchain_metaso import (
    InMemoryCache,
    MetasoAPIError,
    MetasoInsufficientCreditsError,
    MetasoLoader,
    MetasoRateLimitError,
    MetasoReaderTool,
    MetasoResponseError,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoTimeoutError,
)
from langchain_metaso.testing import Fault, MetasoEmulator, load_seed_response


def tool_call(**args: Any) -> dict[str, Any]:
    return {"name": "metaso_search", "args": args, "id": "1", "type": "tool_call"}


# --- keys ------------------------------------------------------------------------------


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


# --- bodies httpx cannot decode ------------------------------------------------------


def corrupt_gzip(request: httpx.Request) -> httpx.Response:
    good = gzip.compress(b'{"webpages": []}')
    return httpx.Response(
        200,
        content=good[:10] + b"garbage" + good[10:],
        headers={"content-encoding": "gzip", "content-type": "application/json"},
    )


def test_a_body_that_fails_to_decompress_is_a_response_error_not_retried() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return corrupt_gzip(request)

    retriever = MetasoRetriever(metaso_api_key=TEST_KEY, transport=httpx.MockTransport(handler))
    with pytest.raises(MetasoResponseError, match="DecodingError"):
        retriever.invoke("q")
    with pytest.raises(MetasoResponseError, match="DecodingError"):
        asyncio.run(retriever.ainvoke("q"))
    assert len(requests) == 2  # one each: decoding again would not help

    tool = MetasoSearchTool(metaso_api_key=TEST_KEY, transport=httpx.MockTransport(handler))
    message = tool.invoke(tool_call(query="q"))
    assert message.status == "error"
    assert "unusable answer" in message.content


# --- the cache ---------------------------------------------------------------------------


def test_reader_formats_sharing_a_cache_do_not_collide(
    make: Make, emulator: MetasoEmulator
) -> None:
    cache = InMemoryCache()
    as_json = make(MetasoReaderTool, cache=cache, reader_format="json")
    as_text = make(MetasoReaderTool, cache=cache, reader_format="text")
    url = "https://example.com/a"
    first = as_json.invoke({"url": url})
    second = as_text.invoke({"url": url})
    assert isinstance(first, str)
    assert isinstance(second, str)
    assert emulator.stats.requests == 2
    assert len(cache) == 2


def test_a_cache_entry_that_no_longer_parses_is_a_miss(
    make: Make, emulator: MetasoEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    cache = InMemoryCache()
    retriever = make(MetasoRetriever, k=2, cache=cache)
    retriever.invoke("q")
    for key in list(cache._entries):
        cache.set(key, {"unexpected": "shape"})  # e.g. written by another version
    docs = retriever.invoke("q")
    assert len(docs) == 2
    assert emulator.stats.requests == 2
    assert "did not parse" in caplog.text


# --- errors travel ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        MetasoRateLimitError("slow", status_code=429, endpoint="search", url="u", retry_after=2),
        MetasoAPIError("bad", status_code=404, endpoint="search", hint="Check base_url."),
        MetasoResponseError("not JSON", endpoint="reader", body_excerpt="<html>"),
        MetasoTimeoutError("ReadTimeout", endpoint="search", url="u"),
    ],
)
def test_errors_survive_pickling_and_copying(error: Exception) -> None:
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        assert vars(clone) == vars(error)


# --- what the tool shows the model ------------------------------------------------------------


def test_raw_page_text_goes_to_the_artifact_not_the_model(make: Make) -> None:
    tool = make(MetasoSearchTool, size=3, include_raw_content=True)
    message = tool.invoke(tool_call(query="秘塔"))
    for doc in message.artifact:
        assert "content" not in doc.metadata  # it is the page_content
        assert doc.page_content not in message.content
        shown = doc.metadata.get("summary") or doc.metadata["snippet"]
        assert shown in message.content


# --- error classification --------------------------------------------------------------------


def test_a_redirect_points_at_the_base_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"location": "https://api.302.ai/metaso/search"})

    retriever = MetasoRetriever(
        metaso_api_key=TEST_KEY,
        base_url="http://api.302.ai/metaso",
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(MetasoAPIError) as caught:
        retriever.invoke("q")
    assert caught.value.status_code == 301
    assert "https://api.302.ai/metaso/search" in str(caught.value)
    assert "base_url" in str(caught.value)


@pytest.mark.parametrize(
    ("message", "credits"),
    [
        ("余额不足", True),
        ("Insufficient balance", True),
        ("the credit_card field is invalid", False),
        ("参数错误", False),
    ],
)
def test_only_balance_messages_mean_out_of_credits(
    make: Make, emulator: MetasoEmulator, message: str, credits: bool
) -> None:
    emulator.script(Fault.status(400, body={"error": {"message": message}}))
    with pytest.raises(MetasoAPIError) as caught:
        make(MetasoRetriever).invoke("q")
    assert isinstance(caught.value, MetasoInsufficientCreditsError) is credits
    assert message in str(caught.value)


# --- event loops -------------------------------------------------------------------------------


def test_finished_event_loops_are_not_kept(make: Make) -> None:
    retriever = make(MetasoRetriever, k=1)
    for _ in range(3):
        asyncio.run(retriever.ainvoke("q"))
    for _ in range(2):  # loops closed without shutting down their async generators
        loop = asyncio.new_event_loop()
        loop.run_until_complete(retriever.ainvoke("q"))
        loop.close()
    asyncio.run(retriever.ainvoke("q"))
    gc.collect()
    assert len(retriever._pool._async) == 0


# --- the loader ---------------------------------------------------------------------------------


def test_the_loader_does_not_pay_for_summaries_it_discards(
    make: Make, emulator: MetasoEmulator
) -> None:
    docs = make(MetasoLoader, query="秘塔", k=2).load()
    assert len(docs) == 2
    search = emulator.requests[0].json()
    assert search["includeSummary"] is False
    assert load_seed_response()["webpages"]  # the emulator's data is intact


# --- the chat endpoint's path ----------------------------------------------------------------


def test_the_chat_path_is_configurable(make: Make, emulator: MetasoEmulator) -> None:
    from langchain_metaso import MetasoAnswerTool

    seen: list[str] = []
    inner = emulator.transport()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        # The emulator routes on the path's ending: hand it the standard one.
        moved = httpx.Request(
            request.method,
            str(request.url).replace("/v2/answer", "/chat/completions"),
            headers=request.headers,
            content=request.content,
        )
        return inner.handle_request(moved)

    tool = make(MetasoAnswerTool, transport=httpx.MockTransport(handler), chat_path="/v2/answer/")
    assert tool.chat_path == "v2/answer"
    content = tool.invoke({"query": "秘塔是什么"})
    assert seen == ["/metaso/v2/answer"]
    assert "Sources:" in content


@pytest.mark.parametrize("bad", ["", "/", "https://elsewhere.example/chat"])
def test_a_chat_path_that_is_not_a_path_is_refused(bad: str) -> None:
    from langchain_metaso import MetasoAnswerTool

    with pytest.raises(ValidationError, match="chat_path"):
        MetasoAnswerTool(metaso_api_key=TEST_KEY, chat_path=bad)
