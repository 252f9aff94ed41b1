"""The two providers of the Metaso API (``providers.py``): their base URLs, and the hint
that tells their keys apart wherever a key or a URL may be wrong."""

from __future__ import annotations

from langchain_metaso import DEFAULT_BASE_URL, METASO_CN_BASE_URL, MetasoAuthenticationError
from langchain_metaso._http.failures import WRONG_URL_HINT
from langchain_metaso.providers import PROVIDERS_HINT


def test_the_base_urls_are_302ai_then_metaso_cn() -> None:
    assert DEFAULT_BASE_URL == "https://api.302.ai/metaso"
    assert METASO_CN_BASE_URL == "https://metaso.cn/api/v1"


def test_the_hint_pairs_each_key_prefix_with_its_base_url() -> None:
    assert PROVIDERS_HINT == (
        "302.AI keys start with 'sk-' and go with https://api.302.ai/metaso, "
        "metaso.cn keys start with 'mk-' and go with https://metaso.cn/api/v1"
    )


def test_a_wrong_key_or_url_points_at_both_providers() -> None:
    error = MetasoAuthenticationError("invalid key", status_code=401, endpoint="search")
    assert PROVIDERS_HINT in str(error)
    assert DEFAULT_BASE_URL in WRONG_URL_HINT
    assert METASO_CN_BASE_URL in WRONG_URL_HINT
