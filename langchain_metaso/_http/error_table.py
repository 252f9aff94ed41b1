"""How a failed HTTP answer maps to a typed error, in one table a reader can see at once.

The provider's own code wins over the HTTP status: 302.AI answers failures with
``{"error": {"err_code": <negative>, "message": ...}}`` and the status of each code is
not known, so codes are mapped first, then statuses. Whether an error is retried follows
from its class (``retry.TRANSIENT``): the table decides the class, the policy the retry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from langchain_metaso.errors import (
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoInsufficientCreditsError,
    MetasoRateLimitError,
    MetasoServerError,
)
from langchain_metaso.providers import DEFAULT_BASE_URL, METASO_CN_BASE_URL

__all__ = ["WRONG_URL", "WRONG_URL_HINT", "Meaning", "meaning"]

WRONG_URL_HINT = (
    "This URL does not look like the Metaso API: check the base URL (base_url= or "
    f"METASO_BASE_URL), e.g. {DEFAULT_BASE_URL} for 302.AI or {METASO_CN_BASE_URL} for metaso.cn."
)


@dataclass(frozen=True)
class Meaning:
    """The error class an answer stands for, advice that beats the class's own, and
    whether it says something no request can get past (``None``: the class says)."""

    error: type[MetasoAPIError]
    hint: str | None = None
    fails_every_request: bool | None = None


# Nothing of the API answers there: a typo in base_url, not a passing failure.
WRONG_URL = Meaning(MetasoAPIError, WRONG_URL_HINT, fails_every_request=True)


Auth, Credits, Server = MetasoAuthenticationError, MetasoInsufficientCreditsError, MetasoServerError

# 302.AI's codes by what they mean, each with the advice its error gives.
_CODES: tuple[tuple[type[MetasoAPIError], dict[int, str]], ...] = (
    # The key.
    (Auth, {
        -10001: "302.AI got no API key: set METASO_API_KEY or pass metaso_api_key=.",
        -10005: "The 302.AI credential expired: log in to 302.AI and create a new key.",
    }),
    # Credits and quotas: never "check your key".
    (Credits, {
        -10004: "The 302.AI balance is too low: top it up, then retry.",
        -10006: "The key's total quota is used up: raise it in the 302.AI dashboard.",
        -10007: "The key's daily quota is used up: retry tomorrow or raise it.",
        -10012: "The hourly quota is used up: retry in an hour or raise it.",
    }),
    # Transient, on the provider's side: retried.
    (Server, {
        -10003: "302.AI had a network error: retry in a moment.",
        -10008: "302.AI has no channel available right now: retry in a moment.",
        -1024: "The upstream service timed out: retry in a moment.",
    }),
    # The request itself: retrying would not help.
    (MetasoAPIError, {
        -10011: "302.AI found the request invalid: check the parameters.",
        -10009: "302.AI does not support this function on this endpoint.",
        -10002: "The tool is disabled or deleted on 302.AI: enable it there.",
    }),
)  # fmt: skip

PROVIDER_CODES: dict[int, Meaning] = {
    code: Meaning(kind, hint) for kind, hints in _CODES for code, hint in hints.items()
}
# Not found: like a wrong base_url, no request can succeed until it changes.
PROVIDER_CODES[-10010] = Meaning(
    MetasoAPIError, f"302.AI found no such resource. {WRONG_URL_HINT}", fails_every_request=True
)

STATUSES: dict[int, Meaning] = {
    401: Meaning(Auth),
    403: Meaning(Auth),
    402: Meaning(Credits),
    429: Meaning(MetasoRateLimitError),
    404: WRONG_URL,
    405: WRONG_URL,
    501: WRONG_URL,
}

# A message saying the balance or quota is short, whatever the status.
_CREDITS_WORDS = re.compile(
    r"balance|insufficient|out of credits|quota|余额|积分不足|额度不足", re.IGNORECASE
)


def _as_int(code: Any) -> int | None:
    """A provider code as a number (302.AI's may come as ``"-10001"``), if it is one."""
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    try:
        return int(code) if isinstance(code, str) else None
    except ValueError:
        return None


def meaning(status: int, code: Any, message: str, *, html: bool = False) -> Meaning:
    """What an error answer means: by the provider's code, then the status, then its words.

    ``html``: the body was a web page. Below 500 (and 501) that is not the API at all;
    a 5xx page is taken for a proxy's error page in front of the right server.
    """
    number = _as_int(code)
    by_code = None if number is None else PROVIDER_CODES.get(number)
    if by_code is not None:
        return by_code
    if html and (status < 500 or status == 501):
        return WRONG_URL
    by_status = STATUSES.get(status)
    if by_status is not None:
        return by_status
    if _CREDITS_WORDS.search(message):
        return Meaning(Credits)
    if status >= 500:
        return Meaning(Server)
    return Meaning(MetasoAPIError)
