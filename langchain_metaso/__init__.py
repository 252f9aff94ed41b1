"""LangChain integration for the Metaso (秘塔) AI search API.

Public names are imported on first use: ``import langchain_metaso.testing`` (the emulator,
standard library and httpx only) must not load pydantic and LangChain through this file.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what each name is, for type checkers
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
    from langchain_metaso.tools.answer import MetasoAnswerInput, MetasoAnswerTool
    from langchain_metaso.tools.base import MetasoTool
    from langchain_metaso.tools.reader import MetasoReaderInput, MetasoReaderTool
    from langchain_metaso.tools.search import MetasoSearchInput, MetasoSearchTool
    from langchain_metaso.usage import CreditBudget, MetasoUsage, RedisCreditBudget, metaso_usage

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
    "RedisCreditBudget",
    "RedisRateLimiter",
    "Scope",
    "SearchRequest",
    "SearchResponse",
    "SearchResult",
    "__version__",
    "metaso_usage",
]

# The modules that hold the public names, looked through in this order on first use.
_MODULES = (
    "errors",
    "providers",
    "scopes",
    "search",
    "cache",
    "usage",
    "config",
    "tools",
    "retrievers",
    "document_loaders",
    "chat",
    "chat_models",
    "toolkits",
    "rate_limiters",
)


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module in _MODULES:
            value = getattr(import_module(f"{__name__}.{module}"), name, _MISSING)
            if value is not _MISSING:
                globals()[name] = value  # later lookups skip this function
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


_MISSING = object()
