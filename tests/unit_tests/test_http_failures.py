"""How a failed answer maps to a typed error (``_http/failures.py``): 302.AI's err_codes
first, then the status, then the provider's words; what is retried, and what fails every
request.

302.AI's codes and their messages are those of ``fixtures/errors_302ai.json``.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Invoke, Make, Served, failure
from emulator_support import fixture

from langchain_metaso import (
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoError,
    MetasoInsufficientCreditsError,
    MetasoRateLimitError,
    MetasoResponseError,
    MetasoRetriever,
    MetasoServerError,
)
from langchain_metaso._http.failures import PROVIDER_CODES, error_kind
from langchain_metaso.testing import Fault, MetasoEmulator

ERRORS_302AI = fixture("errors_302ai.json")
# 302.AI's own words for each code.
MESSAGES: dict[str, str] = ERRORS_302AI["err_codes"]

# Written out from the API reference, not read off the package's table: code -> (error
# class, retried).
EXPECTED: dict[int, tuple[type[MetasoAPIError], bool]] = {
    **dict.fromkeys([-10001, -10005], (MetasoAuthenticationError, False)),
    **dict.fromkeys([-10004, -10006, -10007, -10012], (MetasoInsufficientCreditsError, False)),
    **dict.fromkeys([-10003, -10008, -1024], (MetasoServerError, True)),
    **dict.fromkeys([-10011, -10009, -10002, -10010], (MetasoAPIError, False)),
}
# No request can succeed until a setting changes: the key, the credits, the endpoint or the
# tool on 302.AI (a loader stops at the first page instead of skipping every page).
EVERY_REQUEST = {-10001, -10005, -10004, -10006, -10007, -10012, -10009, -10002, -10010}


# --- 302.AI's codes ----------------------------------------------------------------------


def test_the_table_covers_every_code_of_302ai() -> None:
    assert set(PROVIDER_CODES) == set(EXPECTED) == {int(code) for code in MESSAGES}
    assert set(ERRORS_302AI["envelope_example"]["error"]) == {"err_code", "message"}


@pytest.mark.parametrize("code", sorted(EXPECTED))
@pytest.mark.parametrize("status", [None, 200, 400, 500])
def test_302ai_codes_decide_whatever_the_status(
    served: Served, emulator: MetasoEmulator, invoke: Invoke, code: int, status: int | None
) -> None:
    expected, retried = EXPECTED[code]
    message = MESSAGES[str(code)]
    emulator.script(*[Fault.provider_error(code, status=status, message=message)] * 2)
    error = failure(invoke, served(MetasoRetriever, max_retries=1))
    assert type(error) is expected
    assert (error.code, error.provider_message) == (code, message)
    if status is not None:  # None: the status the emulator guesses for the code
        assert error.status_code == status
    assert str(code) in str(error)
    assert message in str(error)
    # Only the provider's transient failures are tried again.
    assert emulator.stats.requests == (2 if retried else 1)
    assert error.fails_every_request is (code in EVERY_REQUEST)
    if expected is MetasoInsufficientCreditsError:
        # Credits and quotas: the message says which, and never blames the key.
        assert "METASO_API_KEY" not in str(error)
        assert "quota" in str(error) or "balance" in str(error)


def test_a_code_sent_as_text_is_read_as_a_number(make: Make, emulator: MetasoEmulator) -> None:
    assert error_kind(200, "-10004", "").error is MetasoInsufficientCreditsError
    assert error_kind(200, "not a code", "").error is MetasoAPIError
    emulator.script(Fault.status(200, body={"error": {"err_code": "-10004", "message": "x"}}))
    with pytest.raises(MetasoInsufficientCreditsError):
        make(MetasoRetriever).invoke("q")


def test_business_error_with_string_code(make: Make, emulator: MetasoEmulator) -> None:
    emulator.script(Fault.garbage(b'{"errCode": "2001", "errMsg": "bad"}', 200, "application/json"))
    with pytest.raises(MetasoAPIError) as info:
        make(MetasoRetriever).invoke("q")
    assert (info.value.code, info.value.provider_message) == ("2001", "bad")


def test_302ai_error_json(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    error_body = {
        "error": {"err_code": 40001, "message": "Invalid scope parameter", "type": "invalid"}
    }
    emulator.script(Fault.status(400, body=error_body))
    error = failure(invoke, make(MetasoRetriever))
    assert type(error) is MetasoAPIError
    assert (error.status_code, error.code) == (400, 40001)
    assert error.provider_message == "Invalid scope parameter"
    assert "HTTP 400" in str(error)
    assert "Invalid scope parameter" in str(error)
    assert "Check the request parameters" in str(error)
    assert len(emulator.requests) == 1  # a 400 is not retried


# --- Metaso's business errors, at HTTP 200 ---------------------------------------------------


def test_business_error_at_http_200(make: Make, emulator: MetasoEmulator, invoke: Invoke) -> None:
    emulator.script(Fault.business_error(1000, "参数错误: size 与 page 二选一"))
    error = failure(invoke, make(MetasoRetriever))
    assert type(error) is MetasoAPIError
    assert error.status_code == 200
    assert error.code == 1000
    assert error.provider_message == "参数错误: size 与 page 二选一"
    assert "code 1000" in str(error)
    assert "参数错误: size 与 page 二选一" in str(error)
    assert "Check the request parameters" in str(error)
    assert len(emulator.requests) == 1  # not retried


def test_balance_words_at_http_200_are_insufficient_credits(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(Fault.business_error(4002, "账户余额不足"))
    error = failure(invoke, make(MetasoRetriever))
    assert type(error) is MetasoInsufficientCreditsError
    assert (error.status_code, error.code) == (200, 4002)
    assert "账户余额不足" in str(error)
    assert len(emulator.requests) == 1


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


def test_err_code_zero_with_data_is_a_success(
    served: Served, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    body = {
        "errCode": 0,
        "errMsg": "ok",
        "total": 1,
        "webpages": [{"title": "成功", "link": "https://a.cn/"}],
    }
    emulator.script(Fault.status(200, body=body))
    docs = invoke(served(MetasoRetriever), "秘塔")
    assert [(doc.page_content, doc.metadata["source"]) for doc in docs] == [
        ("成功", "https://a.cn/")
    ]


# --- statuses --------------------------------------------------------------------------------


def test_wrong_key_is_an_authentication_error(make: Make, invoke: Invoke) -> None:
    other = MetasoEmulator(api_key="test-key-of-someone-else")
    error = failure(invoke, make(MetasoRetriever, emulator=other))
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


@pytest.mark.parametrize(
    ("status", "body", "expected", "words"),
    [
        (
            403,
            {"error": {"message": "Key disabled"}},
            MetasoAuthenticationError,
            ["Key disabled", "METASO_API_KEY"],
        ),
        (402, None, MetasoInsufficientCreditsError, ["Payment Required", "Top up"]),
    ],
)
def test_a_refused_key_or_account_is_not_retried(
    make: Make,
    emulator: MetasoEmulator,
    invoke: Invoke,
    status: int,
    body: dict[str, Any] | None,
    expected: type[MetasoAPIError],
    words: list[str],
) -> None:
    emulator.script(Fault.status(status, body=body))
    error = failure(invoke, make(MetasoRetriever))
    assert type(error) is expected
    assert error.status_code == status
    for word in words:
        assert word in str(error)
    assert len(emulator.requests) == 1


def test_429_with_retry_after(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, sleeps: list[float]
) -> None:
    emulator.script(*[Fault.status(429, retry_after=0.25)] * 3)
    error = failure(invoke, make(MetasoRetriever))
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
    error = failure(invoke, make(MetasoRetriever, max_retries=0))
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
    error = failure(invoke, make(MetasoRetriever))
    assert type(error) is MetasoServerError
    assert error.status_code == status
    assert str(status) in str(error)
    assert "provider's side" in str(error)
    assert len(emulator.requests) == 3


@pytest.mark.parametrize("status", [400, 422])
def test_other_4xx_are_not_retried(
    make: Make, emulator: MetasoEmulator, invoke: Invoke, status: int
) -> None:
    emulator.script(Fault.status(status))
    error = failure(invoke, make(MetasoRetriever))
    assert type(error) is MetasoAPIError
    assert error.status_code == status
    assert len(emulator.requests) == 1


# --- a wrong base_url, and web pages ---------------------------------------------------------


@pytest.mark.parametrize("status", [404, 405, 501])
def test_statuses_of_a_wrong_url_are_not_retried_and_say_so(
    served: Served, emulator: MetasoEmulator, emulator_url: str, invoke: Invoke, status: int
) -> None:
    emulator.script(Fault.status(status), Fault.status(status))
    error = failure(invoke, served(MetasoRetriever, max_retries=1))
    assert type(error) is MetasoAPIError
    assert error.status_code == status
    assert emulator.stats.requests == 1
    assert "does not look like the Metaso API" in str(error)
    assert f"{emulator_url}/search" in str(error)
    assert "base URL" in str(error)


def test_a_typo_in_base_url_meets_the_servers_own_404(
    served: Served, emulator: MetasoEmulator, emulator_url: str, invoke: Invoke
) -> None:
    error = failure(invoke, served(MetasoRetriever, base_url=emulator_url + "/metasoo"))
    assert isinstance(error, MetasoAPIError)
    assert error.status_code == 404
    assert emulator.stats.requests == 1
    assert f"{emulator_url}/metasoo/search" in str(error)
    assert "does not look like the Metaso API" in str(error)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, MetasoResponseError), (403, MetasoAPIError), (404, MetasoAPIError)],
)
def test_an_html_page_is_named_never_pasted(
    served: Served,
    emulator: MetasoEmulator,
    invoke: Invoke,
    status: int,
    expected: type[MetasoError],
) -> None:
    page = b"<!DOCTYPE html><html><body>Welcome to nginx! secret internals</body></html>"
    emulator.script(Fault.garbage(page, status=status), Fault.garbage(page, status=status))
    error = failure(invoke, served(MetasoRetriever, max_retries=1))
    assert type(error) is expected
    assert error.fails_every_request
    assert emulator.stats.requests == 1
    assert "nginx" not in str(error)
    assert getattr(error, "body_excerpt", "") == ""
    assert "an HTML page, not an answer of the Metaso API" in str(error)
    assert error.url.endswith("/search")
    assert error.url in str(error)
    assert "base URL" in str(error)


def test_a_proxys_error_page_in_front_of_the_api_is_transient(
    served: Served, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    emulator.script(Fault.status(503, body="<html>Service Unavailable</html>"))
    docs = invoke(served(MetasoRetriever), "秘塔")
    assert docs
    assert emulator.stats.requests == 2


def test_5xx_with_an_html_page_is_a_server_error_without_the_page(
    make: Make, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    # A proxy's error page in front of the right server: transient, and never pasted.
    emulator.script(Fault.status(502, body="<html>nginx: bad gateway</html>"))
    error = failure(invoke, make(MetasoRetriever, max_retries=0))
    assert isinstance(error, MetasoServerError)
    assert "nginx" not in str(error)
    assert "HTML page" in error.provider_message
    assert "Bad Gateway" in error.provider_message


# --- what no retry, and no other request, gets past ------------------------------------------


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
    served: Served, emulator: MetasoEmulator, fault: Fault, every: bool
) -> None:
    emulator.script(fault)
    with pytest.raises(MetasoError) as info:
        served(MetasoRetriever, max_retries=0).invoke("q")
    assert info.value.fails_every_request is every
