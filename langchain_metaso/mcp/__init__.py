"""The Metaso tools for every MCP client (Claude Desktop, Cursor, IDE agents, LangGraph).

``python -m langchain_metaso.mcp`` (or ``langchain-metaso-mcp``) serves ``metaso_search``,
``metaso_reader`` and ``metaso_answer`` over the Model Context Protocol, configured,
answering and failing as the LangChain tools do; ``--help`` lists the settings. It needs
the MCP SDK: ``pip install 'langchain-metaso[mcp]'``.
"""

from __future__ import annotations

import sys

__all__ = ["INSTALL_HINT", "main"]

INSTALL_HINT = "langchain-metaso-mcp needs the MCP Python SDK: pip install 'langchain-metaso[mcp]'"


def main(argv: list[str] | None = None) -> int:
    """Run the server (the console script); the exit code."""
    # Imported here, so that the package, and this module, load without the SDK.
    try:
        from langchain_metaso.mcp.server import main as serve
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "mcp":
            raise
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    return serve(argv)
