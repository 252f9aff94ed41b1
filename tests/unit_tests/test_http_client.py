"""The HTTP core, driven through the public classes: requests, errors, retries, pooling."""

from __future__ import annotations

import asyncio
import email.utils
import gc
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from langchain_metaso import (
    SCOPES,
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoConnectionError,
    MetasoError,
    MetasoInsufficientCreditsError,
    MetasoRateLimitError,
    MetasoResponseError,
    MetasoRetriever,
    MetasoServerError,
    MetasoTimeoutError,
)
from langchain_metaso.testing import SEED_QUERY, Fault, MetasoEmulator, load_seed_response

Invoke = Callable[..., Any]
Make = Callable[..., Any]  # the ``make`` fixture of conftest
SECRET = "test-key-SHOULD-NOT-LEAK"


def retriever(make: Make, **kwargs: Any) -> MetasoRetriever:
    return make(MetasoRetriever, **kwargs)  # type: ignore[no-any-return]


def socket_retriever(make: Make, base_url: str, **kwargs: Any) -> MetasoRetriever:
    return retriever(make, transport=None, base_url=base_url, **kwargs)


def failure(invoke: Invoke, target: MetasoRetriever, query: str = "秘塔") -> MetasoError:
    with pytest.raises(MetasoError) as info:
        invoke(target, query)
    return info.value


# --- what is sent ----------------------------------------------------------------------------


def test_headers_sent(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    invoke(retriever(make), "秘塔")
    [sent] = emulator.requests
    assert sent.method == "POST"
    assert sent.path == "/metaso/search"  # the default base URL, https://api.302.ai/metaso
    assert sent.headers["authorization"] == f"Bearer {emulator.api_key}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "application/json"


def test_body_is_json_with_chinese_unescaped(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    invoke(retriever(make), "大语言模型 幻觉 评测")
    [sent] = emulator.requests
    assert "大语言模型 幻觉 评测".encode() in sent.body
    assert b"\\u" not in sent.body
    assert sent.json()["q"] == "大语言模型 幻觉 评测"


def test_body_has_only_the_fields_that_were_set(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    invoke(retriever(make), "  秘塔  ")
    assert emulator.requests[0].json() == {
        "q": "秘塔",
        "scope": "webpage",
        "includeSummary": True,
        "size": 10,
    }


def test_body_maps_every_setting(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    target = retriever(
        make,
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


def test_per_call_k_and_scope_are_sent(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    invoke(retriever(make, k=4, scope="scholar"), "q", k=2, scope="video")
    body = emulator.requests[0].json()
    assert (body["size"], body["scope"]) == (2, "video")


# --- validation before any I/O ---------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_fails_before_any_request(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, query: str
) -> None:
    with pytest.raises(ValueError, match="query must not be empty"):
        invoke(retriever(make), query)
    assert emulator.requests == []


def test_unknown_per_call_scope_fails_before_any_request(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    with pytest.raises(ValueError, match="scope") as info:
        invoke(retriever(make), "q", scope="news")
    assert all(scope in str(info.value) for scope in SCOPES)
    assert emulator.requests == []


@pytest.mark.parametrize("k", [0, 101, -1])
def test_per_call_k_out_of_range_fails_before_any_request(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, k: int
) -> None:
    with pytest.raises(ValidationError) as info:
        invoke(retriever(make), "q", k=k)
    assert info.value.errors()[0]["loc"] == ("k",)  # the caller's name, not the API's
    assert emulator.requests == []


# --- error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "every"),
    [
        (Fault.status(401), True),
        (Fault.status(403), True),
        (Fault.status(402), True),
        (Fault.status(200, body={"error": {"err_code": -10007, "message": "daily"}}), True),
        (Fault.status(404), True),
        (Fault.status(405), True),
        (Fault.status(501), True),
        (Fault.garbage(), True),  # a web page at HTTP 200
        (Fault.garbage(status=400), True),
        (Fault.status(400), False),
        (Fault.business_error(1000, "参数错误"), False),
        (Fault.status(429), False),
        (Fault.status(500), False),
        (Fault.garbage(status=502), False),  # a proxy's error page before the right server
        (Fault.garbage(b"not json", content_type="text/plain"), False),
        (Fault.drop(), False),
    ],
)
def test_fails_every_request_marks_what_no_retry_or_other_request_gets_past(
    make: Make, emulator: MetasoEmulator, emulator_url: str, fault: Fault, every: bool
) -> None:
    emulator.script(fault)
    with pytest.raises(MetasoError) as info:
        socket_retriever(make, emulator_url, max_retries=0).invoke("q")
    assert info.value.fails_every_request is every


def test_wrong_key_is_an_authentication_error(make: Make, invoke: Invoke) -> None:
    other = MetasoEmulator(api_key="test-key-of-someone-else")
    error = failure(invoke, retriever(make, emulator=other))
    assert type(error) is MetasoAuthenticationError
    assert error.status_code == 401
    assert error.endpoint == "search"
    assert error.url.endswith("/search")
    assert "Missing or invalid API key" in error.provider_message  # the provider's words
    message = str(error)
    assert "search" in message
    assert "401" in message
    assert "Missing or invalid API key" in message
    assert "METASO_API_KEY" in message  # what to do
    assert len(other.requests) == 1  # not retried


def test_403_is_an_authentication_error(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(Fault.status(403, body={"error": {"message": "Key disabled"}}))
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoAuthenticationError
    assert error.status_code == 403
    assert "Key disabled" in str(error)
    assert "METASO_API_KEY" in str(error)
    assert len(emulator.requests) == 1


def test_402_is_insufficient_credits(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    emulator.script(Fault.status(402))
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoInsufficientCreditsError
    assert error.status_code == 402
    assert "Payment Required" in str(error)
    assert "Top up" in str(error)
    assert len(emulator.requests) == 1


def test_balance_words_at_http_200_are_insufficient_credits(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(Fault.business_error(4002, "账户余额不足"))
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoInsufficientCreditsError
    assert (error.status_code, error.code) == (200, 4002)
    assert "账户余额不足" in str(error)
    assert len(emulator.requests) == 1


def test_429_with_retry_after(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, sleeps: list[float]
) -> None:
    emulator.script(*[Fault.status(429, retry_after=0.25)] * 3)
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoRateLimitError
    assert error.status_code == 429
    assert error.retry_after == 0.25
    assert "Too Many Requests" in str(error)
    assert "Rate limited: wait 0.25 s" in str(error)
    assert sleeps == [0.25, 0.25]
    assert len(emulator.requests) == 3


def test_429_without_retry_after(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, sleeps: list[float]
) -> None:
    emulator.script(Fault.status(429))
    error = failure(invoke, retriever(make, max_retries=0))
    assert type(error) is MetasoRateLimitError
    assert error.retry_after is None
    assert "429" in str(error)
    assert "Rate limited" in str(error)
    assert sleeps == []
    assert len(emulator.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_a_server_error_after_retries(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, status: int
) -> None:
    emulator.script(*[Fault.status(status)] * 3)
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoServerError
    assert error.status_code == status
    assert str(status) in str(error)
    assert "provider's side" in str(error)
    assert len(emulator.requests) == 3


def test_5xx_with_an_html_page_is_a_server_error_without_the_page(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    # A proxy's error page in front of the right server: transient, and never pasted.
    emulator.script(Fault.status(502, body="<html>nginx: bad gateway</html>"))
    error = failure(invoke, retriever(make, max_retries=0))
    assert isinstance(error, MetasoServerError)
    assert "nginx" not in str(error)
    assert "HTML page" in error.provider_message
    assert "Bad Gateway" in error.provider_message


def test_business_error_at_http_200(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    emulator.script(Fault.business_error(1000, "参数错误: size 与 page 二选一"))
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoAPIError
    assert error.status_code == 200
    assert error.code == 1000
    assert error.provider_message == "参数错误: size 与 page 二选一"
    assert "code 1000" in str(error)
    assert "参数错误: size 与 page 二选一" in str(error)
    assert "Check the request parameters" in str(error)
    assert len(emulator.requests) == 1  # not retried


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("参数错误。", "参数错误。 Check"),
        ("Invalid request.", "Invalid request. Check"),
        ("Is the query empty?", "Is the query empty? Check"),
        ("参数错误", "参数错误. Check"),
    ],
)
def test_a_provider_message_is_not_given_a_second_full_stop(
    make: Make, emulator: MetasoEmulator, said: str, shown: str
) -> None:
    emulator.script(Fault.business_error(1000, said))
    with pytest.raises(MetasoAPIError) as info:
        retriever(make).invoke("q")
    assert f": {shown} the request parameters" in str(info.value)


def test_a_provider_message_echoing_a_long_query_is_cut_short(
    make: Make, emulator: MetasoEmulator
) -> None:
    query = "秘塔" * 5000
    emulator.script(Fault.business_error(1000, f"query too long: {query}"))
    with pytest.raises(MetasoAPIError) as info:
        retriever(make).invoke(query)
    assert info.value.provider_message == f"query too long: {query}"[:300] + "…"
    assert len(str(info.value)) < 600
    assert "…. " not in str(info.value)


def test_business_error_with_string_code(make: Make, emulator: MetasoEmulator) -> None:
    emulator.script(Fault.garbage(b'{"errCode": "2001", "errMsg": "bad"}', 200, "application/json"))
    with pytest.raises(MetasoAPIError) as info:
        retriever(make).invoke("q")
    assert (info.value.code, info.value.provider_message) == ("2001", "bad")


def test_errcode_zero_is_success(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    body = {"errCode": 0, "errMsg": "ok", "webpages": [{"title": "成功"}]}
    emulator.script(Fault.garbage(json.dumps(body).encode(), 200, "application/json"))
    documents = invoke(retriever(make), "q")
    assert [d.page_content for d in documents] == ["成功"]


def test_302ai_error_json(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    error_body = {
        "error": {"err_code": 40001, "message": "Invalid scope parameter", "type": "invalid"}
    }
    emulator.script(Fault.status(400, body=error_body))
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoAPIError
    assert (error.status_code, error.code) == (400, 40001)
    assert error.provider_message == "Invalid scope parameter"
    assert "HTTP 400" in str(error)
    assert "Invalid scope parameter" in str(error)
    assert len(emulator.requests) == 1  # a 400 is not retried


@pytest.mark.parametrize("status", [400, 404, 405, 422])
def test_other_4xx_are_not_retried(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, status: int
) -> None:
    emulator.script(Fault.status(status))
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoAPIError
    assert error.status_code == status
    assert len(emulator.requests) == 1


def test_non_json_body(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    emulator.script(Fault.garbage(b"upstream said no", content_type="text/plain"))
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoResponseError
    assert error.endpoint == "search"
    assert error.body_excerpt == "upstream said no"
    assert "not JSON (text/plain)" in str(error)
    assert "base URL" in str(error)
    assert len(emulator.requests) == 1


def test_an_html_page_says_the_url_is_not_the_api_without_pasting_it(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(Fault.garbage())
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoResponseError
    assert error.body_excerpt == ""
    assert "Bad Gateway" not in str(error)
    assert "an HTML page, not an answer of the Metaso API" in str(error)
    assert error.url.endswith("/search")
    assert error.url in str(error)
    assert "base URL" in str(error)
    assert len(emulator.requests) == 1


@pytest.mark.parametrize("body", ["x" * 5000, "中文" * 3000])
def test_non_json_body_is_cut_short(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, body: str
) -> None:
    emulator.script(Fault.garbage(body.encode(), content_type="text/plain"))
    error = failure(invoke, retriever(make))
    assert isinstance(error, MetasoResponseError)
    assert error.body_excerpt.endswith("…")
    assert 100 <= len(error.body_excerpt) <= 1000
    assert error.body_excerpt[:-1] == body[: len(error.body_excerpt) - 1]
    assert len(str(error)) < 1500


@pytest.mark.parametrize(
    ("body", "kind"), [(b"[1, 2]", "list"), (b'"webpages"', "str"), (b"42", "int")]
)
def test_json_that_is_not_an_object(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, body: bytes, kind: str
) -> None:
    emulator.script(Fault.garbage(body, 200, "application/json"))
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoResponseError
    assert f"expected a JSON object, got {kind}" in str(error)
    assert error.body_excerpt == body.decode()


def test_json_without_the_result_list(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    emulator.script(Fault.garbage(b'{"total": 3, "scholars": []}', 200, "application/json"))
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoResponseError
    assert "'webpages'" in str(error)
    assert '"total": 3' in error.body_excerpt


def test_connection_drop_after_retries(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(*[Fault.drop()] * 3)
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoConnectionError
    assert isinstance(error.__cause__, httpx.RemoteProtocolError)
    assert error.endpoint == "search"
    assert "disconnected" in str(error)  # what httpx said
    assert "Check the network and the base URL" in str(error)
    assert len(emulator.requests) == 3


def test_timeout_after_retries(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    emulator.script(*[Fault.timeout()] * 3)
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoTimeoutError
    assert isinstance(error, MetasoConnectionError)
    assert isinstance(error.__cause__, httpx.TimeoutException)
    assert "ReadTimeout" in str(error)
    assert len(emulator.requests) == 3


def test_truncated_body_after_retries(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    emulator.script(*[Fault.truncated()] * 3)
    error = failure(invoke, retriever(make))
    assert type(error) is MetasoConnectionError
    assert isinstance(error.__cause__, httpx.TransportError)
    assert len(emulator.requests) == 3


def test_socket_timeout_is_a_timeout_error(
    make: Make, emulator: MetasoEmulator, emulator_url: str
) -> None:
    emulator.script(Fault.timeout())
    target = socket_retriever(make, emulator_url, timeout=0.2, max_retries=0)
    with pytest.raises(MetasoTimeoutError) as info:
        target.invoke("q")
    assert isinstance(info.value.__cause__, httpx.TimeoutException)
    assert info.value.url == f"{emulator_url}/search"
    target.close()


def test_unreachable_server_is_a_connection_error(make: Make, invoke: Invoke) -> None:
    # Port 9 (discard) on loopback: nothing listens there in a test environment.
    target = socket_retriever(make, "http://127.0.0.1:9", max_retries=1)
    error = failure(invoke, target)
    assert type(error) is MetasoConnectionError
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert "http://127.0.0.1:9/search" in str(error)


# --- retries ---------------------------------------------------------------------------------


def test_503_then_200_succeeds(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, sleeps: list[float]
) -> None:
    emulator.script(Fault.status(503))
    documents = invoke(retriever(make, k=3), "秘塔")
    assert len(documents) == 3
    assert len(emulator.requests) == 2
    assert emulator.requests[0].body == emulator.requests[1].body
    assert len(sleeps) == 1


@pytest.mark.parametrize("fault", [Fault.drop(), Fault.timeout(), Fault.truncated()])
def test_transport_failure_then_200_succeeds(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, fault: Fault
) -> None:
    emulator.script(fault)
    assert len(invoke(retriever(make, k=2), "秘塔")) == 2
    assert len(emulator.requests) == 2


def test_retry_after_is_honoured(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, sleeps: list[float]
) -> None:
    emulator.script(Fault.status(429, retry_after=1.5))
    invoke(retriever(make, retry_backoff=10.0), "q")
    assert sleeps == [1.5]  # the server's word, not the 5-10 s backoff
    assert len(emulator.requests) == 2


def test_retry_after_zero_retries_at_once(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, sleeps: list[float]
) -> None:
    emulator.script(Fault.status(429, retry_after=0))
    invoke(retriever(make, retry_backoff=10.0), "q")
    assert all(delay == 0 for delay in sleeps)
    assert len(emulator.requests) == 2


def test_retry_after_on_503_is_honoured(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, sleeps: list[float]
) -> None:
    # RFC 9110 defines Retry-After for 503 as well as 429; the issue says the header
    # is honoured, without restricting it to rate limits.
    emulator.script(Fault.status(503, retry_after=1.5))
    invoke(retriever(make), "q")
    assert sleeps == [1.5]
    assert len(emulator.requests) == 2


def test_retry_after_as_http_date(make: Make, invoke: Invoke, sleeps: list[float]) -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        if len(seen) == 1:
            when = email.utils.formatdate(time.time() + 30, usegmt=True)
            return httpx.Response(429, headers={"Retry-After": when})
        return httpx.Response(200, json={"webpages": [{"title": "t"}]})

    target = retriever(make, transport=httpx.MockTransport(handler))
    assert invoke(target, "q")[0].page_content == "t"
    [delay] = sleeps
    assert 20 < delay <= 30


def test_long_retry_after_is_not_waited_out(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, sleeps: list[float]
) -> None:
    emulator.script(Fault.status(429, retry_after=3600))
    error = failure(invoke, retriever(make))
    assert isinstance(error, MetasoRateLimitError)
    assert error.retry_after == 3600
    assert "wait 3600 s" in str(error)
    assert sleeps == []
    assert len(emulator.requests) == 1


def test_backoff_is_exponential_with_jitter(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, sleeps: list[float]
) -> None:
    emulator.script(*[Fault.status(500)] * 4)
    with pytest.raises(MetasoServerError):
        invoke(retriever(make, retry_backoff=1.0, max_retries=3), "q")
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):
        assert 0.5 * 2**attempt <= delay <= 2**attempt


def test_backoff_is_capped(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, sleeps: list[float]
) -> None:
    emulator.script(*[Fault.status(500)] * 3)
    with pytest.raises(MetasoServerError):
        invoke(retriever(make, retry_backoff=1000.0), "q")
    assert len(sleeps) == 2
    assert all(delay <= 20 for delay in sleeps)


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_attempts_are_max_retries_plus_one(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, max_retries: int
) -> None:
    emulator.script(*[Fault.status(503)] * 10)
    with pytest.raises(MetasoServerError):
        invoke(retriever(make, max_retries=max_retries), "q")
    assert len(emulator.requests) == max_retries + 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(400),
        Fault.status(401),
        Fault.status(403),
        Fault.status(402),
        Fault.business_error(1000, "参数错误"),
        Fault.garbage(),
    ],
)
def test_permanent_errors_are_not_retried(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, fault: Fault, sleeps: list[float]
) -> None:
    emulator.script(fault)
    with pytest.raises(MetasoError):
        invoke(retriever(make, max_retries=5), "q")
    assert len(emulator.requests) == 1
    assert sleeps == []


# --- the key never leaks ---------------------------------------------------------------------


def leaky(make: Make, fault: Fault) -> tuple[MetasoRetriever, MetasoEmulator]:
    emulator = MetasoEmulator(api_key=SECRET)
    emulator.script(fault)
    return make(MetasoRetriever, emulator=emulator, metaso_api_key=SECRET, max_retries=0), emulator


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(401, body={"error": {"message": f"invalid key {SECRET}"}}),
        Fault.status(500, body=f"upstream rejected Bearer {SECRET}"),
        Fault.status(429, body={"message": f"slow down, {SECRET}"}),
        Fault.business_error(1000, f"bad key {SECRET}"),
        Fault.garbage(f"Authorization: Bearer {SECRET}".encode(), content_type="text/plain"),
        Fault.garbage(json.dumps({"echo": SECRET}).encode(), 200, "application/json"),
        Fault.garbage(json.dumps([SECRET]).encode(), 200, "application/json"),
    ],
)
def test_key_echoed_by_the_server_is_redacted(make: Make, invoke: Invoke, fault: Fault) -> None:
    target, emulator = leaky(make, fault)
    error = failure(invoke, target)
    assert emulator.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    assert all(SECRET not in str(value) for value in vars(error).values())
    assert "***" in str(error)


def test_key_in_a_transport_error_is_redacted(make: Make, invoke: Invoke) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy refused {SECRET}", request=request)

    target = retriever(
        make, metaso_api_key=SECRET, transport=httpx.MockTransport(handler), max_retries=0
    )
    error = failure(invoke, target)
    assert isinstance(error, MetasoConnectionError)
    assert SECRET not in str(error)
    assert "proxy refused ***" in str(error)


# --- pooling ---------------------------------------------------------------------------------


def test_sequential_sync_calls_reuse_one_connection(
    make: Make, emulator: MetasoEmulator, emulator_url: str
) -> None:
    target = socket_retriever(make, emulator_url, k=2)
    for index in range(5):
        assert len(target.invoke(f"问题 {index}")) == 2
    assert emulator.stats.requests == 5
    assert emulator.stats.connections_opened == 1
    target.close()


def test_copies_share_the_pool(make: Make, emulator: MetasoEmulator, emulator_url: str) -> None:
    target = socket_retriever(make, emulator_url, k=2)
    target.invoke("a")
    target.model_copy(update={"k": 3}).invoke("b")
    assert emulator.stats.connections_opened == 1
    target.close()


def test_batch_on_threads_is_bounded_by_max_concurrency(
    make: Make, emulator: MetasoEmulator, emulator_url: str
) -> None:
    emulator.latency = 0.05
    target = socket_retriever(make, emulator_url, k=1, max_concurrency=3)
    queries = [f"查询 {i}" for i in range(8)]
    results = target.batch(queries, config={"max_concurrency": 8})
    assert [docs[0].metadata["query"] for docs in results] == queries
    assert emulator.stats.requests == 8
    assert 1 <= emulator.stats.connections_opened <= 3
    assert emulator.stats.peak_in_flight <= 3
    target.close()


def test_close_then_call_again(make: Make, emulator: MetasoEmulator, emulator_url: str) -> None:
    target = socket_retriever(make, emulator_url, k=1)
    target.invoke("a")
    target.close()
    target.invoke("b")
    assert emulator.stats.requests == 2
    assert emulator.stats.connections_opened == 2
    target.close()


@pytest.mark.asyncio
async def test_async_calls_in_one_loop_reuse_one_connection(
    make: Make, emulator: MetasoEmulator, emulator_url: str
) -> None:
    target = socket_retriever(make, emulator_url, k=2)
    for index in range(5):
        assert len(await target.ainvoke(f"问题 {index}")) == 2
    assert emulator.stats.connections_opened == 1
    await target.aclose()


@pytest.mark.asyncio
async def test_async_gather_is_bounded_by_max_concurrency(
    make: Make, emulator: MetasoEmulator, emulator_url: str
) -> None:
    emulator.latency = 0.05
    target = socket_retriever(make, emulator_url, k=1, max_concurrency=3)
    results = await asyncio.gather(*(target.ainvoke(f"q{i}") for i in range(8)))
    assert [docs[0].metadata["query"] for docs in results] == [f"q{i}" for i in range(8)]
    assert 1 <= emulator.stats.connections_opened <= 3
    assert emulator.stats.peak_in_flight <= 3
    await target.aclose()


@pytest.mark.asyncio
async def test_async_batch_is_bounded_by_max_concurrency(
    make: Make, emulator: MetasoEmulator, emulator_url: str
) -> None:
    emulator.latency = 0.05
    target = socket_retriever(make, emulator_url, k=1, max_concurrency=2)
    results = await target.abatch([f"q{i}" for i in range(8)])
    assert len(results) == 8
    assert emulator.stats.peak_in_flight <= 2
    assert emulator.stats.connections_opened <= 2
    await target.aclose()


def test_repeated_asyncio_run(make: Make, emulator: MetasoEmulator, emulator_url: str) -> None:
    target = socket_retriever(make, emulator_url, k=2)
    for _ in range(3):
        documents = asyncio.run(target.ainvoke("事件循环"))
        assert len(documents) == 2
    assert emulator.stats.requests == 3
    target.close()


def test_repeated_asyncio_run_does_not_keep_dead_loops_connections(
    make: Make, emulator: MetasoEmulator, emulator_url: str
) -> None:
    # A sync program calling asyncio.run per request must not pile up one open
    # connection (and one closed event loop) per call for the life of the instance.
    target = socket_retriever(make, emulator_url, k=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # how a dropped socket closes
        for _ in range(5):
            asyncio.run(target.ainvoke("q"))
        gc.collect()
    assert emulator.stats.connections_opened == 5
    for _ in range(100):  # the server notices a close a moment later
        if emulator.stats.connections_open <= 1:
            break
        time.sleep(0.02)
    assert emulator.stats.connections_open <= 1
    target.close()


def test_repeated_asyncio_run_in_process(make: Make, emulator: MetasoEmulator) -> None:
    target = retriever(make, k=2)
    for _ in range(3):
        assert len(asyncio.run(target.ainvoke("事件循环"))) == 2
    assert len(emulator.requests) == 3


def test_sync_and_async_alternate(make: Make, emulator: MetasoEmulator, emulator_url: str) -> None:
    target = socket_retriever(make, emulator_url, k=1)
    for _ in range(2):
        assert len(target.invoke("a")) == 1
        assert len(asyncio.run(target.ainvoke("b"))) == 1
    assert emulator.stats.requests == 4
    target.close()


@pytest.mark.asyncio
async def test_calls_inside_a_running_loop(
    make: Make, emulator: MetasoEmulator, emulator_url: str
) -> None:
    # As in Jupyter: the loop is already running and stays up between calls.
    target = socket_retriever(make, emulator_url, k=1)
    assert len(await target.ainvoke("a")) == 1
    assert len(target.invoke("b")) == 1  # a sync call from inside the loop works too
    assert len(await target.ainvoke("c")) == 1
    assert emulator.stats.requests == 3
    await target.aclose()
    target.close()


@pytest.mark.asyncio
async def test_async_retry_inside_a_running_loop(
    make: Make, emulator: MetasoEmulator, sleeps: list[float]
) -> None:
    emulator.script(Fault.status(429, retry_after=0.5))
    documents = await retriever(make, k=1).ainvoke("q")
    assert len(documents) == 1
    assert sleeps == [0.5]


def test_seed_query_round_trip(make: Make, invoke: Invoke) -> None:
    documents = invoke(retriever(make), SEED_QUERY)
    items = load_seed_response()["webpages"]
    assert [d.metadata["source"] for d in documents] == [item["link"] for item in items]
