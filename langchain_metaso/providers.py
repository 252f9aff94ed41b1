"""The two providers of the Metaso API, and how to tell their keys apart."""

from __future__ import annotations

__all__ = ["DEFAULT_BASE_URL", "METASO_CN_BASE_URL", "PROVIDERS_HINT"]

DEFAULT_BASE_URL = "https://api.302.ai/metaso"
"""302.AI, the provider documented in the seed; its keys start with ``sk-``."""
METASO_CN_BASE_URL = "https://metaso.cn/api/v1"
"""Metaso itself; its keys start with ``mk-``."""

PROVIDERS_HINT = (
    f"302.AI keys start with 'sk-' and go with {DEFAULT_BASE_URL}, "
    f"metaso.cn keys start with 'mk-' and go with {METASO_CN_BASE_URL}"
)
