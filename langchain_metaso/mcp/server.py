"""The MCP server: the LangChain tools, built once at start, behind the MCP SDK's
low-level ``Server``.

Everything a client sees comes from the tools at run time: the names, the descriptions,
the input schemas (``tool_call_schema``, what a LangChain model is shown), the text of
each answer and of each failure (the ``ToolMessage`` a LangChain agent gets).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any

import anyio
from langchain_core.messages import ToolMessage
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from pydantic import BaseModel, ValidationError

from langchain_metaso.cache import MetasoStoreCache
from langchain_metaso.config import check_arguments
from langchain_metaso.errors import MetasoError
from langchain_metaso.tools import MetasoAnswerTool, MetasoReaderTool, MetasoSearchTool
from langchain_metaso.tools.base import MetasoTool

__all__ = ["build_server", "build_tools", "input_schema", "main", "parse_options"]

PROG = "langchain-metaso-mcp"
# The key the --offline emulator accepts: not a secret, it never leaves the process.
OFFLINE_KEY = "offline-mcp-key"
LOOPBACK = ("127.0.0.1", "localhost", "::1")

# The search tool's settings, given as flags or METASO_<NAME> variables (the scope also
# the answer tool's). Handed to the tools as text, for them to check: a bad value fails at
# start with their message.
SEARCH_SETTINGS = {
    "scope": "default scope of search and answer (webpage, scholar, ...)",
    "max_size": "the most results a search may return",
    "include_domains": "comma-separated sites to keep results from only",
    "exclude_domains": "comma-separated sites never to keep results from",
    "recency_days": "keep results of the last this many days only",
    "published_after": "keep results dated on or after this day (YYYY-MM-DD)",
    "published_before": "keep results dated on or before this day (YYYY-MM-DD)",
    "keep_undated": "with a date filter, keep undated results (true/false)",
}
OTHER_SETTINGS = {
    "model_args": "comma-separated call arguments besides query/url a model may set "
    "(e.g. scope,size); the others take the server's values. Default: all",
    "credit_budget": "credits the three tools may spend together",
    "redis_url": "Redis URL of a cache shared by servers and programs (redis://host:6379/0)",
}
LISTS = ("include_domains", "exclude_domains", "model_args")


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with ``METASO_<SETTING>`` variables as the flags' defaults."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve the Metaso tools (metaso_search, metaso_reader, metaso_answer) "
        "over MCP. The key and API root come from METASO_API_KEY and METASO_BASE_URL.",
    )
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP: address to bind")
    parser.add_argument("--port", type=int, default=8000, help="HTTP: port (0: any free one)")
    parser.add_argument(
        "--offline", action="store_true", help="answer from the bundled emulator (no key)"
    )
    for name, text in (SEARCH_SETTINGS | OTHER_SETTINGS).items():
        variable = f"METASO_{name.upper()}"
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            default=os.environ.get(variable) or None,
            help=f"{text} (or {variable})",
        )
    options = parser.parse_args(argv)
    for name in LISTS:
        value = getattr(options, name)
        if value is not None:
            setattr(options, name, [part.strip() for part in value.split(",") if part.strip()])
    return options


def build_tools(options: argparse.Namespace) -> list[MetasoTool]:
    """The three tools, sharing one connection pool, cache and credit budget.

    Raises:
        ValueError: a setting the tools reject (no key, a bad scope...), with their message.
    """
    shared: dict[str, Any] = {"credit_budget": options.credit_budget}
    if options.offline:
        from langchain_metaso.testing import MetasoEmulator

        shared |= {
            "metaso_api_key": OFFLINE_KEY,
            "transport": MetasoEmulator(api_key=OFFLINE_KEY).transport(),
        }
    if options.redis_url:
        shared["cache"] = MetasoStoreCache.from_redis_url(options.redis_url)

    given = {name: getattr(options, name) for name in SEARCH_SETTINGS}
    search = MetasoSearchTool(
        **shared, **{name: value for name, value in given.items() if value is not None}
    )
    answer = {"scope": given["scope"]} if given["scope"] is not None else {}
    tools: list[MetasoTool] = [
        search,
        search.share_connections(MetasoReaderTool),
        search.share_connections(MetasoAnswerTool, **answer),
    ]
    if options.model_args is not None:
        # One list for the three tools: each takes the names among its own arguments.
        takes = {tool.name: list(input_schema(tool)["properties"])[1:] for tool in tools}
        names = {name: [name] for arguments in takes.values() for name in arguments}
        check_arguments("--model-args", options.model_args, names)
        for tool in tools:
            tool.model_args = tuple(n for n in options.model_args if n in takes[tool.name])
    return tools


def input_schema(tool: MetasoTool) -> dict[str, Any]:
    """The JSON schema of the arguments a model may give ``tool``."""
    schema = tool.tool_call_schema
    # A MetasoTool's is always a pydantic model.
    assert isinstance(schema, type)
    assert issubclass(schema, BaseModel)
    return schema.model_json_schema()


def build_server(tools: list[MetasoTool]) -> Server[Any, Any]:
    """An MCP server whose tools answer as ``tools`` answer a LangChain agent."""
    server: Server[Any, Any] = Server("langchain-metaso")
    by_name = {tool.name: tool for tool in tools}
    listed = [
        types.Tool(name=tool.name, description=tool.description, inputSchema=input_schema(tool))
        for tool in tools
    ]

    @server.list_tools()  # type: ignore[untyped-decorator, no-untyped-call]
    async def list_tools() -> list[types.Tool]:
        return listed

    # The tool checks the arguments itself, and says what to fix as it says it in LangChain.
    @server.call_tool(validate_input=False)  # type: ignore[untyped-decorator]
    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        tool = by_name.get(name)
        if tool is None:
            text = f"No tool {name!r} here: call one of {', '.join(by_name)}."
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=text)], isError=True
            )
        call = {"type": "tool_call", "id": "mcp", "name": name, "args": arguments}
        message: ToolMessage = await tool.ainvoke(call)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=message.text)],
            isError=message.status == "error",
        )

    return server


async def serve_stdio(server: Server[Any, Any]) -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def serve_http(server: Server[Any, Any], host: str, port: int) -> None:
    """Streamable HTTP at ``/mcp``; the URL is printed on stderr once clients can connect."""
    import uvicorn
    from mcp.server.fastmcp.server import StreamableHTTPASGIApp
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.routing import Route

    # On a loopback address, refuse other Host/Origin headers (DNS rebinding), as the SDK's
    # FastMCP does; a server bound elsewhere is for its operator to protect.
    security = (
        TransportSecuritySettings(
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
        if host in LOOPBACK
        else None
    )
    manager = StreamableHTTPSessionManager(app=server, security_settings=security)
    app = Starlette(
        routes=[Route("/mcp", endpoint=StreamableHTTPASGIApp(manager))],
        lifespan=lambda _: manager.run(),
    )
    # Bound before the URL is printed: a client that reads it waits in the backlog.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family) as listening:
        shown = f"[{host}]" if ":" in host else host
        print(
            f"{PROG}: serving MCP at http://{shown}:{listening.getsockname()[1]}/mcp",
            file=sys.stderr,
            flush=True,
        )
        await uvicorn.Server(uvicorn.Config(app, log_level="warning")).serve([listening])


async def run(tools: list[MetasoTool], options: argparse.Namespace) -> None:
    server = build_server(tools)
    try:
        if options.transport == "http":
            await serve_http(server, options.host, options.port)
        else:
            await serve_stdio(server)
    finally:
        await tools[0].aclose()  # the pool the three share


def main(argv: list[str] | None = None) -> int:
    """Build the tools (a missing key or a bad setting ends here, exit 2), then serve."""
    options = parse_options(argv)
    try:
        tools = build_tools(options)
    except (ValueError, MetasoError) as exc:  # pydantic's ValidationError is a ValueError
        print(f"{PROG}: error: {describe(exc)}", file=sys.stderr)
        return 2
    if options.offline:  # stdout is the protocol's, with stdio
        print(f"{PROG}: offline: answers come from the bundled emulator", file=sys.stderr)
    anyio.run(run, tools, options)
    return 0


def describe(exc: Exception) -> str:
    """An error on one line: each of a validation error's problems with its own message."""
    if not isinstance(exc, ValidationError):
        return " ".join(str(exc).split())
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: "
        f"{error.get('ctx', {}).get('error', error['msg'])}"
        for error in exc.errors()
    )
