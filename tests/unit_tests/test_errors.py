"""The typed errors (``errors.py``): what each says (what failed, the provider's words, what
to do), whether it fails every request, and that it survives pickling and copying."""

from __future__ import annotations

import copy
import pickle

import pytest
from conftest import Make

import langchain_metaso.errors as errors
from langchain_metaso import MetasoRetriever
from langchain_metaso.testing import Fault, MetasoEmulator

# --- what they say --------------------------------------------------------------------------


def test_an_api_error_says_what_failed_the_providers_words_and_what_to_do() -> None:
    error = errors.MetasoAPIError(
        "bad scope",
        status_code=400,
        endpoint="search",
        url="https://api.302.ai/metaso/search",
        code=40001,
        hint="Use one of the six scopes.",
    )
    assert str(error) == (
        "Metaso search failed with HTTP 400, code 40001 (https://api.302.ai/metaso/search): "
        "bad scope. Use one of the six scopes."
    )
    bare = errors.MetasoServerError("", status_code=503, endpoint="reader", retry_after=2)
    assert str(bare) == (
        "Metaso reader failed with HTTP 503: no message. This is on the provider's side; "
        "wait a moment and retry. The server asked to wait 2 s."
    )


def test_a_rate_limit_error_says_how_long_to_wait_when_the_server_said() -> None:
    told = errors.MetasoRateLimitError(
        "slow down", status_code=429, endpoint="search", retry_after=1.5
    )
    assert str(told).endswith("Rate limited: wait 1.5 s (the server's Retry-After) and retry.")
    untold = errors.MetasoRateLimitError("slow", status_code=429, endpoint="search")
    assert str(untold).endswith("Rate limited: wait a moment and retry, or lower max_concurrency.")


def test_other_errors_say_what_came_back_or_what_was_not_reached() -> None:
    unusable = errors.MetasoResponseError("not JSON", endpoint="reader", body_excerpt="<p>hi</p>")
    assert str(unusable).startswith(
        "Metaso reader returned an unusable answer: not JSON. Received: '<p>hi</p>' "
    )
    assert "base URL" in str(unusable)
    unreachable = errors.MetasoTimeoutError(
        "ReadTimeout", endpoint="search", url="https://a.cn/search"
    )
    assert str(unreachable) == (
        "Metaso search could not reach https://a.cn/search: ReadTimeout. "
        "Check the network and the base URL (METASO_BASE_URL), then retry."
    )
    budget = errors.MetasoBudgetExceededError(budget=20, used=25.5, endpoint="search")
    assert "budget of 20 credits is spent (25.5 used)" in str(budget)


@pytest.mark.parametrize("endpoint", ["search", "reader", "chat/completions"])
def test_the_budget_message_names_the_endpoint_and_tells_a_model_to_stop(endpoint: str) -> None:
    text = str(errors.MetasoBudgetExceededError(budget=5, used=6, endpoint=endpoint))
    assert text.startswith(f"Metaso {endpoint} was not sent: the credit budget of 5 credits")
    assert "search budget" not in text
    assert text.endswith("Do not call Metaso again; go on with what you have.")
    assert "Raise credit_budget" not in text  # the developer's setting, not the model's move


def test_a_budget_only_held_by_calls_in_flight_tells_a_model_to_try_again_later() -> None:
    # 30 of 30 held, 9 spent: the calls in flight may cost less than they hold.
    error = errors.MetasoBudgetExceededError(budget=30, used=39, spent=9, endpoint="search")
    assert (error.budget, error.used, error.spent, error.held) == (30, 39, 9, 30)
    assert str(error) == (
        "Metaso search was not sent: calls still running hold the 21 credits left of the "
        "credit budget of 30 (9 are spent); this call may go through once they finish: try "
        "again after them."
    )
    assert not error.fails_every_request  # a loader skips the page, it does not stop
    spent = errors.MetasoBudgetExceededError(budget=30, used=40, spent=30, endpoint="search")
    assert (spent.spent, spent.held, spent.fails_every_request) == (30, 10, True)
    assert "is spent (30 used)" in str(spent)
    assert str(spent).endswith("Do not call Metaso again; go on with what you have.")


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
    with pytest.raises(errors.MetasoAPIError) as info:
        make(MetasoRetriever).invoke("q")
    assert f": {shown} the request parameters" in str(info.value)


# --- what they mean -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "every"),
    [
        (errors.MetasoAuthenticationError("k", status_code=401, endpoint="search"), True),
        (errors.MetasoInsufficientCreditsError("c", status_code=402, endpoint="search"), True),
        (errors.MetasoBudgetExceededError(budget=1, used=1, endpoint="search"), True),
        (errors.MetasoAPIError("p", status_code=400, endpoint="search"), False),
        (errors.MetasoRateLimitError("r", status_code=429, endpoint="search"), False),
        (errors.MetasoServerError("s", status_code=500, endpoint="search"), False),
        (errors.MetasoResponseError("x", endpoint="search"), False),
        (errors.MetasoConnectionError("x", endpoint="search"), False),
        (errors.MetasoTimeoutError("x", endpoint="search"), False),
        # A setting may say otherwise than the class: a wrong base_url fails every request.
        (
            errors.MetasoAPIError(
                "p", status_code=404, endpoint="search", fails_every_request=True
            ),
            True,
        ),
        (errors.MetasoResponseError("x", endpoint="search", fails_every_request=True), True),
    ],
)
def test_whether_an_error_fails_every_request(error: errors.MetasoError, every: bool) -> None:
    assert isinstance(error, errors.MetasoError)
    assert error.fails_every_request is every


def test_a_timeout_is_a_connection_error_and_every_http_answer_an_api_error() -> None:
    assert issubclass(errors.MetasoTimeoutError, errors.MetasoConnectionError)
    for cls in (
        errors.MetasoAuthenticationError,
        errors.MetasoInsufficientCreditsError,
        errors.MetasoRateLimitError,
        errors.MetasoServerError,
    ):
        assert issubclass(cls, errors.MetasoAPIError)


# --- errors travel ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        errors.MetasoRateLimitError(
            "slow", status_code=429, endpoint="search", url="u", retry_after=2
        ),
        errors.MetasoAPIError("bad", status_code=404, endpoint="search", hint="Check base_url."),
        errors.MetasoResponseError("not JSON", endpoint="reader", body_excerpt="<html>"),
        errors.MetasoTimeoutError("ReadTimeout", endpoint="search", url="u"),
        errors.MetasoBudgetExceededError(budget=20, used=25.5, endpoint="reader"),
        errors.MetasoBudgetExceededError(budget=20, used=25.5, spent=3, endpoint="reader"),
    ],
)
def test_errors_survive_pickling_and_copying(error: Exception) -> None:
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        assert vars(clone) == vars(error)
