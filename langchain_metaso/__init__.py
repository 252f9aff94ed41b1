"""LangChain integration for the Metaso (秘塔) AI search API."""

from langchain_metaso.cache import InMemoryCache, MetasoCache, MetasoStoreCache
from langchain_metaso.chat import CHAT_MODELS, ChatModel
from langchain_metaso.chat_models import ChatMetaso
from langchain_metaso.config import MetasoConfig
from langchain_metaso.document_loaders import MetasoLoader
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
from langchain_metaso.providers import DEFAULT_BASE_URL, METASO_CN_BASE_URL
from langchain_metaso.rate_limiters import RedisRateLimiter
from langchain_metaso.retrievers import MetasoRetriever
from langchain_metaso.scopes import SCOPES, Scope
from langchain_metaso.search import SearchRequest, SearchResponse, SearchResult
from langchain_metaso.toolkits import MetasoToolkit
from langchain_metaso.tools import (
    MetasoAnswerInput,
    MetasoAnswerTool,
    MetasoReaderInput,
    MetasoReaderTool,
    MetasoSearchInput,
    MetasoSearchTool,
    MetasoTool,
)
from langchain_metaso.usage import CreditBudget, MetasoUsage, metaso_usage

__version__ = "0.1.0"

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
    "RedisRateLimiter",
    "Scope",
    "SearchRequest",
    "SearchResponse",
    "SearchResult",
    "__version__",
    "metaso_usage",
]
