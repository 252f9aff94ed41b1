"""The agent tools: search, reader and answer, on one shared base (``base.MetasoTool``).

Each is imported on first use, so ``MetasoSearchTool`` does not load the others.
"""

from typing import TYPE_CHECKING

from langchain_metaso._lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_metaso.tools.answer import MetasoAnswerInput, MetasoAnswerTool
    from langchain_metaso.tools.base import MetasoTool
    from langchain_metaso.tools.reader import MetasoReaderInput, MetasoReaderTool
    from langchain_metaso.tools.search import MetasoSearchInput, MetasoSearchTool

__all__ = [
    "MetasoAnswerInput",
    "MetasoAnswerTool",
    "MetasoReaderInput",
    "MetasoReaderTool",
    "MetasoSearchInput",
    "MetasoSearchTool",
    "MetasoTool",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "MetasoAnswerInput": "answer",
        "MetasoAnswerTool": "answer",
        "MetasoTool": "base",
        "MetasoReaderInput": "reader",
        "MetasoReaderTool": "reader",
        "MetasoSearchInput": "search",
        "MetasoSearchTool": "search",
    },
)
