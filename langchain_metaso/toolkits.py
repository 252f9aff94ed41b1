"""``MetasoToolkit``: search, reader and answer tools sharing one configuration."""

from __future__ import annotations

from langchain_core.tools import BaseTool, BaseToolkit

from langchain_metaso.config import MetasoConfig
from langchain_metaso.tools import MetasoAnswerTool, MetasoReaderTool, MetasoSearchTool

__all__ = ["MetasoToolkit"]


class MetasoToolkit(MetasoConfig, BaseToolkit):
    """Every Metaso (秘塔) tool an agent needs, configured once.

    Setup:
        See ``MetasoConfig``: the package, ``METASO_API_KEY`` and every connection setting.

    Key init args:
        The connection settings, handed to every tool. The tools also share one pool of
        connections, so ``max_concurrency`` bounds their requests together.

    Instantiate:
        .. code-block:: python

            from langchain_metaso import MetasoToolkit

            toolkit = MetasoToolkit(max_concurrency=8)

    Get the tools:
        .. code-block:: python

            tools = toolkit.get_tools()   # metaso_search, metaso_reader, metaso_answer
            agent = create_agent("openai:gpt-4o-mini", tools=tools)

    Each tool has its defaults (``size=10``, ``max_chars=8000``, ``model="fast"``); to
    change one, ``tool.model_copy(update={...})`` keeps the shared pool.
    """

    def get_tools(self) -> list[BaseTool]:
        """The search, reader and answer tools, in that order."""
        return [
            self.share_connections(tool)
            for tool in (MetasoSearchTool, MetasoReaderTool, MetasoAnswerTool)
        ]
