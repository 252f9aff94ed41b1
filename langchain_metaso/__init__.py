"""LangChain integration for the Metaso (秘塔) AI search API."""

from langchain_metaso.config import DEFAULT_BASE_URL, METASO_CN_BASE_URL, MetasoConfig
from langchain_metaso.errors import (
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoConnectionError,
    MetasoError,
    MetasoInsufficientCreditsError,
    MetasoRateLimitError,
    MetasoResponseError,
    MetasoServerError,
    MetasoTimeoutError,
)
from langchain_metaso.models import SCOPES, Scope, SearchRequest, SearchResponse, SearchResult
from langchain_metaso.retrievers import MetasoRetriever
from langchain_metaso.tools import MetasoSearchInput, MetasoSearchTool

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BASE_URL",
    "METASO_CN_BASE_URL",
    "SCOPES",
    "MetasoAPIError",
    "MetasoAuthenticationError",
    "MetasoConfig",
    "MetasoConnectionError",
    "MetasoError",
    "MetasoInsufficientCreditsError",
    "MetasoRateLimitError",
    "MetasoResponseError",
    "MetasoRetriever",
    "MetasoSearchInput",
    "MetasoSearchTool",
    "MetasoServerError",
    "MetasoTimeoutError",
    "Scope",
    "SearchRequest",
    "SearchResponse",
    "SearchResult",
    "__version__",
]
