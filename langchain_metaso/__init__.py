"""LangChain integration for the Metaso (秘塔) AI search API.

Public names are imported on first use, so ``import langchain_metaso`` costs next to
nothing and ``from langchain_metaso import MetasoSearchTool`` loads only what the tool
needs (not the reader, loader or answer modules).
"""

from typing import TYPE_CHECKING

from langchain_metaso._lazy import lazy_exports
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
    from langchain_metaso.cache import InMemoryCache, MetasoCache, MetasoStoreCache
    from langchain_metaso.chat import CHAT_MODELS, ChatModel
    from langchain_metaso.chat_models import ChatMetaso
    from langchain_metaso.config import MetasoConfig
    from langchain_metaso.document_loaders import MetasoLoader
    from langchain_metaso.providers import DEFAULT_BASE_URL, METASO_CN_BASE_URL
    from langchain_metaso.rate_limiters import RedisRateLimiter
    from langchain_metaso.retrievers import MetasoRetriever
    from langchain_metaso.scopes import SCOPES, Scope
    from langchain_metaso.search import SearchRequest, SearchResponse, SearchResult
    from langchain_metaso.toolkits import MetasoToolkit
    from langchain_metaso.tools.answer import MetasoAnswerInput, MetasoAnswerTool
    from langchain_metaso.tools.base import MetasoTool
    from langchain_metaso.tools.reader import MetasoReaderInput, MetasoReaderTool
    from langchain_metaso.tools.search import MetasoSearchInput, MetasoSearchTool
    from langchain_metaso.usage import CreditBudget, MetasoUsage, RedisCreditBudget, metaso_usage

__version__ = "0.1.0"

_LAZY = {
    "InMemoryCache": "cache",
    "MetasoCache": "cache",
    "MetasoStoreCache": "cache",
    "CHAT_MODELS": "chat",
    "ChatModel": "chat",
    "ChatMetaso": "chat_models",
    "MetasoConfig": "config",
    "MetasoLoader": "document_loaders",
    "DEFAULT_BASE_URL": "providers",
    "METASO_CN_BASE_URL": "providers",
    "RedisRateLimiter": "rate_limiters",
    "MetasoRetriever": "retrievers",
    "SCOPES": "scopes",
    "Scope": "scopes",
    "SearchRequest": "search",
    "SearchResponse": "search",
    "SearchResult": "search",
    "MetasoToolkit": "toolkits",
    "MetasoAnswerInput": "tools.answer",
    "MetasoAnswerTool": "tools.answer",
    "MetasoTool": "tools.base",
    "MetasoReaderInput": "tools.reader",
    "MetasoReaderTool": "tools.reader",
    "MetasoSearchInput": "tools.search",
    "MetasoSearchTool": "tools.search",
    "CreditBudget": "usage",
    "MetasoUsage": "usage",
    "RedisCreditBudget": "usage",
    "metaso_usage": "usage",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "CHAT_MODELS",
    "DEFAULT_BASE_URL",
    "METASO_CN_BASE_URL",
    "SCOPES",
    "ChatMetaso",
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
    "RedisCreditBudget",
    "RedisRateLimiter",
    "Scope",
    "SearchRequest",
    "SearchResponse",
    "SearchResult",
    "__version__",
    "metaso_usage",
]
