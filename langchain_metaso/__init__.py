"""LangChain integration for the Metaso (秘塔) AI search API.

Public names are imported on first use, so ``import langchain_metaso`` costs next to
nothing and ``from langchain_metaso import MetasoSearchTool`` loads only what the tool
needs (not the reader, loader or answer modules).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from langchain_metaso.errors import (
    MetasoAPIError,
    MetasoAuthenticationError,
    MetasoBudgetExceededError,
    MetasoConnectionError,
    MetasoError,
    MetasoInsufficientCreditsError,
    MetasoRateLimitError,
    MetasoResponseError,
    MetasoServerError,
    MetasoTimeoutError,
)

if TYPE_CHECKING:
    from langchain_metaso.answer import CHAT_MODELS, ChatModel
    from langchain_metaso.answer_tool import MetasoAnswerInput, MetasoAnswerTool
    from langchain_metaso.cache import InMemoryCache, MetasoCache, MetasoStoreCache
    from langchain_metaso.config import DEFAULT_BASE_URL, METASO_CN_BASE_URL, MetasoConfig
    from langchain_metaso.document_loaders import MetasoLoader
    from langchain_metaso.models import (
        SCOPES,
        Scope,
        SearchRequest,
        SearchResponse,
        SearchResult,
    )
    from langchain_metaso.rate_limiters import RedisRateLimiter
    from langchain_metaso.reader_tool import MetasoReaderInput, MetasoReaderTool
    from langchain_metaso.retrievers import MetasoRetriever
    from langchain_metaso.toolkits import MetasoToolkit
    from langchain_metaso.tools import MetasoSearchInput, MetasoSearchTool, MetasoTool
    from langchain_metaso.usage import CreditBudget, MetasoUsage, metaso_usage

__version__ = "0.1.0"

_LAZY = {
    "CHAT_MODELS": "answer",
    "ChatModel": "answer",
    "MetasoAnswerInput": "answer_tool",
    "MetasoAnswerTool": "answer_tool",
    "InMemoryCache": "cache",
    "MetasoCache": "cache",
    "MetasoStoreCache": "cache",
    "DEFAULT_BASE_URL": "config",
    "METASO_CN_BASE_URL": "config",
    "MetasoConfig": "config",
    "MetasoLoader": "document_loaders",
    "SCOPES": "models",
    "Scope": "models",
    "SearchRequest": "models",
    "SearchResponse": "models",
    "SearchResult": "models",
    "RedisRateLimiter": "rate_limiters",
    "MetasoReaderInput": "reader_tool",
    "MetasoReaderTool": "reader_tool",
    "MetasoRetriever": "retrievers",
    "MetasoToolkit": "toolkits",
    "MetasoSearchInput": "tools",
    "MetasoSearchTool": "tools",
    "MetasoTool": "tools",
    "CreditBudget": "usage",
    "MetasoUsage": "usage",
    "metaso_usage": "usage",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "CHAT_MODELS",
    "DEFAULT_BASE_URL",
    "METASO_CN_BASE_URL",
    "SCOPES",
    "ChatModel",
    "CreditBudget",
    "InMemoryCache",
    "MetasoAPIError",
    "MetasoAnswerInput",
    "MetasoAnswerTool",
    "MetasoAuthenticationError",
    "MetasoBudgetExceededError",
    "MetasoCache",
    "MetasoConfig",
    "MetasoConnectionError",
    "MetasoError",
    "MetasoInsufficientCreditsError",
    "MetasoLoader",
    "MetasoRateLimitError",
    "MetasoReaderInput",
    "MetasoReaderTool",
    "MetasoResponseError",
    "MetasoRetriever",
    "MetasoSearchInput",
    "MetasoSearchTool",
    "MetasoServerError",
    "MetasoStoreCache",
    "MetasoTimeoutError",
    "MetasoTool",
    "MetasoToolkit",
    "MetasoUsage",
    "RedisRateLimiter",
    "Scope",
    "SearchRequest",
    "SearchResponse",
    "SearchResult",
    "__version__",
    "metaso_usage",
]
