"""The agent tools: search, reader and answer, on one shared base (``base.MetasoTool``)."""

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
