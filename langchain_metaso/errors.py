"""Typed errors raised by every public class of ``langchain_metaso``.

Messages say what failed, the provider's own words and what to do next. They are
built from data that never includes the API key (the HTTP core also redacts the key
from anything the server echoes back).
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import ToolException

from langchain_metaso.providers import PROVIDERS_HINT

__all__ = [
    "MetasoAPIError",
    "MetasoAuthenticationError",
    "MetasoBudgetExceededError",
    "MetasoConnectionError",
    "MetasoError",
    "MetasoInsufficientCreditsError",
    "MetasoRateLimitError",
    "MetasoResponseError",
    "MetasoServerError",
    "MetasoTimeoutError",
]


def _sentence(text: str) -> str:
    """``text`` ended as a sentence: a full stop is added unless it has its own (a
    provider's ``参数错误。`` must not read ``参数错误。.``)."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?", "…", "。", "！", "？")) else text + "."


class MetasoError(ToolException):
    """Base class of every error raised by ``langchain_metaso``.

    A ``ToolException``, so that a tool hands it to the model as an error ``ToolMessage``
    (``handle_tool_error``) and, with ``handle_tool_error=False``, raises it as it is.

    Attributes:
        fails_every_request: No request can succeed until a setting changes: the key
            is missing or wrong, the credits (or the ``credit_budget``) are used up, or
            ``base_url`` is not the Metaso API. A loader raises these instead of skipping
            the page.
    """

    fails_every_request: bool = False

    def __reduce__(self) -> Any:
        # Our constructors take keyword arguments, which Exception's own pickling (and so
        # copy and multiprocessing) would drop: rebuilt from the message and the
        # attributes, without calling __init__ again.
        return Exception.__new__, (type(self), *self.args), self.__dict__


class MetasoAPIError(MetasoError):
    """The server answered, and the answer is an error.

    Attributes:
        status_code: HTTP status (200 for a business error carried in the body).
        code: The provider's own error code (``errCode``, ``err_code``), if any.
        provider_message: The provider's own message, if any (cut short past 300 characters).
        endpoint: The endpoint that failed, e.g. ``"search"``.
        url: The URL that was called (never carries the key).
        retry_after: Seconds the server asked to wait (``Retry-After``), if it said.
        fails_every_request: See ``MetasoError``; true of an answer saying that
            ``base_url`` is not the API (HTTP 404, 405, 501, a redirect, a web page).
    """

    hint = "Check the request parameters against the Metaso API reference."

    def __init__(
        self,
        provider_message: str,
        *,
        status_code: int,
        endpoint: str,
        url: str = "",
        code: int | str | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
        fails_every_request: bool | None = None,
    ) -> None:
        self.provider_message = provider_message
        self.status_code = status_code
        self.endpoint = endpoint
        self.url = url
        self.code = code
        self.retry_after = retry_after
        # None: the class's own.
        if hint is not None:
            self.hint = hint
        if fails_every_request is not None:
            self.fails_every_request = fails_every_request
        where = f" ({self.url})" if self.url else ""
        code_part = f", code {self.code}" if self.code is not None else ""
        super().__init__(
            f"Metaso {self.endpoint} failed with HTTP {self.status_code}{code_part}{where}: "
            f"{_sentence(provider_message or 'no message')} {self._advice()}"
        )

    def _advice(self) -> str:
        wait = f" The server asked to wait {self.retry_after:g} s." if self.retry_after else ""
        return self.hint + wait


class MetasoAuthenticationError(MetasoAPIError):
    """HTTP 401 or 403: the API key is missing, wrong, or not valid for this base URL."""

    fails_every_request = True

    hint = (
        "Check that METASO_API_KEY (or metaso_api_key=) holds a valid key for this "
        f"base URL: {PROVIDERS_HINT}."
    )


class MetasoInsufficientCreditsError(MetasoAPIError):
    """HTTP 402, or a body saying the balance is short: the account is out of credits."""

    fails_every_request = True

    hint = "Top up the account's balance (credits) with the provider, then retry."


class MetasoRateLimitError(MetasoAPIError):
    """HTTP 429: too many requests; ``retry_after`` says how long to wait, if known."""

    hint = "Rate limited: wait a moment and retry, or lower max_concurrency."

    def _advice(self) -> str:
        if self.retry_after:
            return (
                f"Rate limited: wait {self.retry_after:g} s (the server's Retry-After) and retry."
            )
        return self.hint


class MetasoServerError(MetasoAPIError):
    """HTTP 5xx: the provider (or a proxy in front of it) failed."""

    hint = "This is on the provider's side; wait a moment and retry."


class MetasoResponseError(MetasoError):
    """The server answered with a body this package cannot use.

    Attributes:
        endpoint: The endpoint that answered.
        body_excerpt: The start of what came back, cut short.
        url: The URL that was called, if known.
        fails_every_request: See ``MetasoError``; true of a web page where an answer
            of the API was expected.
    """

    def __init__(
        self,
        problem: str,
        *,
        endpoint: str,
        body_excerpt: str = "",
        url: str = "",
        fails_every_request: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.body_excerpt = body_excerpt
        self.url = url
        self.fails_every_request = fails_every_request
        shown = f" Received: {body_excerpt!r}" if body_excerpt else ""
        where = f" ({url})" if url else ""
        super().__init__(
            f"Metaso {endpoint} returned an unusable answer{where}: {_sentence(problem)}{shown} "
            "Check that the base URL points at the Metaso API (base_url= or "
            "METASO_BASE_URL), not a proxy or a web page."
        )


class MetasoConnectionError(MetasoError):
    """The server could not be reached, or stopped answering, even after retries.

    Attributes:
        endpoint: The endpoint that was called.
        url: The URL that was called.
    """

    advice = "Check the network and the base URL (METASO_BASE_URL), then retry."

    def __init__(
        self,
        problem: str,
        *,
        endpoint: str,
        url: str = "",
        advice: str | None = None,
        answered: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.url = url
        self.answered = answered
        if advice is not None:
            self.advice = advice
        # "Could not reach" only when nothing came back; else the answer broke off.
        failed = "did not get the whole answer from" if answered else "could not reach"
        super().__init__(
            f"Metaso {endpoint} {failed} {url or 'the server'}: {_sentence(problem)} {self.advice}"
        )


class MetasoTimeoutError(MetasoConnectionError):
    """No answer in time: within ``timeout`` for an attempt, or ``total_timeout`` for
    the whole call with its retries; the message says which."""


class MetasoBudgetExceededError(MetasoError):
    """A credit budget, spent or held by calls in flight, refused a call before sending it.

    Raised for a ``credit_budget`` of an instance (shared with its copies) or of a
    ``metaso_usage(credit_budget=...)`` block. Calls already under way when the budget
    ran out finish, so what is spent can exceed the budget by their credits.

    Attributes:
        budget: The budget, in credits.
        used: ``spent + held``, which refused the call.
        spent: Credits spent so far; once they reach ``budget``, ``fails_every_request``.
        held: Credits held by calls in flight: the call may go through once they finish.
        endpoint: The endpoint of the refused call, e.g. ``"search"``.
    """

    def __init__(
        self, *, budget: float, used: float, endpoint: str, spent: float | None = None
    ) -> None:
        self.budget = budget
        self.used = used
        self.spent = used if spent is None else spent
        self.held = used - self.spent
        self.endpoint = endpoint
        self.fails_every_request = self.spent >= budget
        # Read by a model too (an agent's tool): told to stop only if only the developer can help.
        why = (
            f"the credit budget of {budget:g} credits is spent ({self.spent:g} used), and "
            "no Metaso call can be made until the developer raises it (credit_budget, "
            "metaso_usage). Do not call Metaso again; go on with what you have."
            if self.fails_every_request
            else f"calls still running hold the {budget - self.spent:g} credits left of the "
            f"credit budget of {budget:g} ({self.spent:g} are spent); this call may go "
            "through once they finish: try again after them."
        )
        super().__init__(f"Metaso {endpoint} was not sent: {why}")
