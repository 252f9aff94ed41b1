"""How a failed answer maps to a typed error: 302.AI's err_codes first, then the status.

Against the emulator over a socket, as a real server would answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from langchain_metaso import (
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoError,
    MetasoInsufficientCreditsError,
    MetasoResponseError,
    MetasoRetriever,
    MetasoServerError,
)
from langchain_metaso._http.error_table import PROVIDER_CODES, meaning
from langchain_metaso.testing import Fault, MetasoEmulator

Invoke = Callable[..., Any]
KEY = "test-key"

# The table: code -> (error class, retried).
EXPECTED: dict[int, tuple[type[MetasoAPIError], bool]] = {
    -10001: (MetasoAuthenticationError, False),
    -10005: (MetasoAuthenticationError, False),
    -10004: (MetasoInsufficientCreditsError, False),
    -10006: (MetasoInsufficientCreditsError, False),
    -10007: (MetasoInsufficientCreditsError, False),
    -10012: (MetasoInsufficientCreditsError, False),
    -10003: (MetasoServerError, True),
    -10008: (MetasoServerError, True),
    -1024: (MetasoServerError, True),
    -10011: (MetasoAPIError, False),
    -10009: (MetasoAPIError, False),
    -10002: (MetasoAPIError, False),
    -10010: (MetasoAPIError, False),
}


@pytest.fixture
def served() -> Iterator[tuple[MetasoEmulator, str]]:
    emulator = MetasoEmulator(api_key=KEY)
    with emulator.serve() as base_url:
        yield emulator, base_url


def retriever(base_url: str, **settings: Any) -> MetasoRetriever:
    return MetasoRetriever(
        metaso_api_key=KEY, base_url=base_url, retry_backoff=0.001, max_retries=1, **settings
    )


def failure(invoke: Invoke, target: MetasoRetriever) -> MetasoError:
    with pytest.raises(MetasoError) as caught:
        invoke(target, "秘塔")
    return caught.value


def test_the_table_covers_every_code_of_302ai() -> None:
    assert set(PROVIDER_CODES) == set(EXPECTED)


@pytest.mark.parametrize("code", sorted(EXPECTED))
@pytest.mark.parametrize("status", [None, 200, 400, 500])
def test_302ai_codes_decide_whatever_the_status(
    served: tuple[MetasoEmulator, str], invoke: Invoke, code: int, status: int | None
) -> None:
    emulator, base_url = served
    expected, retried = EXPECTED[code]
    emulator.script(Fault.provider_error(code, status=status), Fault.provider_error(code))
    error = failure(invoke, retriever(base_url))
    assert type(error) is expected
    assert error.code == code
    assert emulator.stats.requests == (2 if retried else 1)
    assert str(code) in str(error)
    if expected is MetasoInsufficientCreditsError:
        # Credits and quotas: the message says which, and never blames the key.
        assert "METASO_API_KEY" not in str(error)
        assert "quota" in str(error) or "balance" in str(error)


def test_a_code_sent_as_text_is_read_as_a_number() -> None:
    assert meaning(200, "-10004", "").error is MetasoInsufficientCreditsError
    assert meaning(200, "not a code", "").error is MetasoAPIError


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.business_error(1000, "参数错误"), MetasoAPIError),
        (Fault.business_error(4003, "余额不足"), MetasoInsufficientCreditsError),
    ],
)
def test_metaso_business_errors_stay_errors_with_their_message(
    served: tuple[MetasoEmulator, str], invoke: Invoke, fault: Fault, expected: type
) -> None:
    emulator, base_url = served
    emulator.script(fault)
    error = failure(invoke, retriever(base_url))
    assert type(error) is expected
    assert isinstance(error, MetasoAPIError)
    assert error.status_code == 200
    assert error.provider_message in str(error)
    assert emulator.stats.requests == 1


def test_err_code_zero_with_data_is_a_success(
    served: tuple[MetasoEmulator, str], invoke: Invoke
) -> None:
    emulator, base_url = served
    body = {
        "errCode": 0,
        "errMsg": "",
        "total": 1,
        "webpages": [{"title": "t", "link": "https://a.cn/"}],
    }
    emulator.script(Fault.status(200, body=body))
    docs = invoke(retriever(base_url), "秘塔")
    assert [doc.metadata["source"] for doc in docs] == ["https://a.cn/"]


# --- a wrong base_url ------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 405, 501])
def test_statuses_of_a_wrong_url_are_not_retried_and_say_so(
    served: tuple[MetasoEmulator, str], invoke: Invoke, status: int
) -> None:
    emulator, base_url = served
    emulator.script(Fault.status(status), Fault.status(status))
    error = failure(invoke, retriever(base_url))
    assert type(error) is MetasoAPIError
    assert emulator.stats.requests == 1
    assert "does not look like the Metaso API" in str(error)
    assert f"{base_url}/search" in str(error)
    assert "base URL" in str(error)


def test_a_typo_in_base_url_meets_the_servers_own_404(
    served: tuple[MetasoEmulator, str], invoke: Invoke
) -> None:
    emulator, base_url = served
    error = failure(invoke, retriever(base_url + "/metasoo"))
    assert isinstance(error, MetasoAPIError)
    assert error.status_code == 404
    assert emulator.stats.requests == 1
    assert f"{base_url}/metasoo/search" in str(error)
    assert "does not look like the Metaso API" in str(error)


@pytest.mark.parametrize("status", [200, 403, 404])
def test_an_html_page_is_named_never_pasted(
    served: tuple[MetasoEmulator, str], invoke: Invoke, status: int
) -> None:
    emulator, base_url = served
    page = b"<!DOCTYPE html><html><body>Welcome to nginx! secret internals</body></html>"
    emulator.script(Fault.garbage(page, status=status), Fault.garbage(page, status=status))
    error = failure(invoke, retriever(base_url))
    assert isinstance(error, MetasoAPIError | MetasoResponseError)
    assert emulator.stats.requests == 1
    assert "nginx" not in str(error)
    assert "HTML page" in str(error)
    assert "base URL" in str(error)


def test_a_proxys_error_page_in_front_of_the_api_is_transient(
    served: tuple[MetasoEmulator, str], invoke: Invoke
) -> None:
    emulator, base_url = served
    emulator.script(Fault.status(503, body="<html>Service Unavailable</html>"))
    docs = invoke(retriever(base_url), "秘塔")
    assert docs
    assert emulator.stats.requests == 2
