"""The MCP server end to end, driven by the MCP SDK's clients (stdio, streamable HTTP) and
by ``langchain-mcp-adapters``.

Every expectation is what the LangChain tools themselves give for the same arguments
against the same emulator, so the server is checked to add nothing and lose nothing.

``python -m langchain_metaso.mcp`` runs in a child process where the process is the point:
over stdio (as an MCP client starts it), over streamable HTTP, and without the SDK. The
other tests check what flags and variables make of the server, so they build it in this
process as ``main`` does and reach it over the SDK's in-memory streams
(``connect_in_process``), sparing each a child's start (~1.5 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, ToolMessage
from pydantic import ValidationError
from redis_support import stop

import langchain_metaso
from langchain_metaso import (
    MetasoAnswerTool,
    MetasoError,
    MetasoReaderTool,
    MetasoSearchTool,
    MetasoStoreCache,
    MetasoToolkit,
)
from langchain_metaso.mcp import INSTALL_HINT
from langchain_metaso.testing import MetasoEmulator

try:
    from langchain.agents import create_agent
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_mcp_adapters.tools import load_mcp_tools
    from mcp import ClientSession, StdioServerParameters, types
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.memory import create_connected_server_and_client_session

    from langchain_metaso.mcp.server import build_server, build_tools, main, parse_options
except ImportError as missing:  # pragma: no cover - depends on the environment
    HINT = f"{missing}: pip install 'langchain-metaso[mcp]' langchain-mcp-adapters"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{HINT}; CI must run the MCP tests", pytrace=False)
    pytest.skip(HINT, allow_module_level=True)

REPO = Path(langchain_metaso.__file__).resolve().parents[1]
KEY = "test-key"
CALLS = {
    "metaso_search": {"query": "秘塔 AI 搜索", "size": 3},
    "metaso_reader": {"url": "https://example.com/article"},
    "metaso_answer": {"query": "秘塔 AI 搜索是哪家公司做的?"},
}


def server_env(**variables: str) -> dict[str, str]:
    """The child's environment: this checkout importable, and ``variables``; no other
    ``METASO_*`` of the developer's (the SDK passes on only a few safe variables)."""
    return {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])} | (
        variables
    )


def server_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "langchain_metaso.mcp", *args]


@asynccontextmanager
async def connect(*args: str, **variables: str) -> AsyncIterator[ClientSession]:
    """A session with the server started over stdio; the child ends with the block."""
    command, *rest = server_command(*args)
    params = StdioServerParameters(command=command, args=rest, env=server_env(**variables))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def without_metaso_settings(patch: pytest.MonkeyPatch) -> None:
    """Unset the developer's ``METASO_*`` variables, as ``server_env`` leaves them out."""
    for name in [name for name in os.environ if name.startswith("METASO_")]:
        patch.delenv(name)


@asynccontextmanager
async def connect_in_process(*args: str, **variables: str) -> AsyncIterator[ClientSession]:
    """``connect`` without a child: the tools ``main`` builds for these flags and variables
    (no other ``METASO_*``), behind the same server, closed with the block."""
    with pytest.MonkeyPatch.context() as patch:
        without_metaso_settings(patch)
        for name, value in variables.items():
            patch.setenv(name, value)
        tools = build_tools(parse_options(list(args)))
        try:
            async with create_connected_server_and_client_session(build_server(tools)) as session:
                yield session
        finally:
            await tools[0].aclose()  # the pool the three share, as the server closes it


def tool_call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_call", "id": "call_1", "name": name, "args": args}


def langchain_answer(tool: Any, args: dict[str, Any]) -> ToolMessage:
    """What the LangChain tool gives a model for ``args``."""
    message = tool.invoke(tool_call(tool.name, args))
    assert isinstance(message, ToolMessage)
    return message


def offline_tools(**search_settings: Any) -> list[Any]:
    """The LangChain tools on an emulator of their own, as the server builds them."""
    emulator = MetasoEmulator(api_key=KEY)
    tools = MetasoToolkit(metaso_api_key=KEY, transport=emulator.transport()).get_tools()
    tools[0] = tools[0].model_copy(update=search_settings)
    return tools


def text_of(result: types.CallToolResult) -> str:
    [block] = result.content
    assert isinstance(block, types.TextContent)
    return block.text


def schema_of(tool: Any) -> dict[str, Any]:
    schema: dict[str, Any] = tool.tool_call_schema.model_json_schema()
    return schema


def listed(tools: Sequence[types.Tool]) -> dict[str, tuple[str | None, dict[str, Any]]]:
    return {tool.name: (tool.description, tool.inputSchema) for tool in tools}


@pytest.mark.asyncio
async def test_stdio_serves_the_langchain_tools_schemas_and_answers() -> None:
    expected = offline_tools()
    async with connect("--offline") as session:
        served = (await session.list_tools()).tools
        assert listed(served) == {
            tool.name: (tool.description, schema_of(tool)) for tool in expected
        }
        for tool in expected:
            args = CALLS[tool.name]
            result = await session.call_tool(tool.name, args)
            want = langchain_answer(tool, args)
            assert want.status == "success"
            assert not result.isError
            assert text_of(result) == want.text

        # A bad argument: the tool's own advice, as an MCP tool error.
        result = await session.call_tool("metaso_search", {"query": ""})
        want = langchain_answer(expected[0], {"query": ""})
        assert want.status == "error"
        assert result.isError
        assert text_of(result) == want.text

        result = await session.call_tool("metaso_search", {"query": "秘塔", "sizes": 3})
        assert result.isError
        assert text_of(result) == langchain_answer(expected[0], {"query": "秘塔", "sizes": 3}).text

        result = await session.call_tool("metaso_nothing", {"query": "秘塔"})
        assert result.isError
        assert "metaso_search" in text_of(result)


@pytest.mark.asyncio
async def test_flags_and_environment_configure_the_tools_as_their_settings_do() -> None:
    search = offline_tools(
        scope="scholar", max_size=5, model_args=("size",), exclude_domains=["news.example.com"]
    )[0]
    answer = MetasoAnswerTool(metaso_api_key=KEY, scope="scholar", model_args=())
    reader = MetasoReaderTool(metaso_api_key=KEY)
    args = ("--offline", "--model-args", "size", "--exclude-domains", "news.example.com")
    variables = {"METASO_MAX_SIZE": "5", "METASO_SCOPE": "scholar"}
    async with connect_in_process(*args, **variables) as session:
        served = listed((await session.list_tools()).tools)
        assert served["metaso_search"][1] == schema_of(search)
        assert served["metaso_answer"][1] == schema_of(answer)
        assert served["metaso_reader"][1] == schema_of(reader)
        assert set(served["metaso_search"][1]["properties"]) == {"query", "size"}

        call = {"query": "秘塔", "size": 50}  # above max_size: cut, and the text says so
        result = await session.call_tool("metaso_search", call)
        assert not result.isError
        assert text_of(result) == langchain_answer(search, call).text
        assert "scholar" in text_of(result)


@pytest.mark.asyncio
async def test_a_credit_budget_refuses_calls_with_the_tools_message() -> None:
    [search, *_] = offline_tools(credit_budget=0)
    async with connect_in_process("--offline", "--credit-budget", "0") as session:
        result = await session.call_tool("metaso_search", CALLS["metaso_search"])
    want = langchain_answer(search, CALLS["metaso_search"])
    assert want.status == "error"
    assert result.isError
    assert text_of(result) == want.text


@pytest.mark.asyncio
async def test_a_wrong_key_is_a_tool_error_with_the_tools_message() -> None:
    emulator = MetasoEmulator(api_key=KEY)
    with emulator.serve() as url:
        async with connect_in_process(METASO_API_KEY="wrong-key", METASO_BASE_URL=url) as session:
            result = await session.call_tool("metaso_search", CALLS["metaso_search"])
        tool = MetasoSearchTool(metaso_api_key="wrong-key", base_url=url, max_retries=0)
        want = langchain_answer(tool, CALLS["metaso_search"])
    assert want.status == "error"
    assert result.isError
    assert text_of(result) == want.text
    assert "wrong-key" not in text_of(result)
    # The server did call the API, with the key from its environment.
    assert emulator.requests[0].headers["authorization"] == "Bearer wrong-key"


@pytest.mark.asyncio
async def test_the_redis_cache_is_shared_with_langchain_programs(redis_url: str) -> None:
    async with connect_in_process("--offline", "--redis-url", redis_url) as session:
        result = await session.call_tool("metaso_search", CALLS["metaso_search"])
    assert not result.isError
    # A program on an emulator that would refuse its key gets the server's answer from
    # the cache, without a request.
    refusing = MetasoEmulator(api_key="another-key")
    cache = MetasoStoreCache.from_redis_url(redis_url)
    tool = MetasoSearchTool(metaso_api_key=KEY, transport=refusing.transport(), cache=cache)
    assert langchain_answer(tool, CALLS["metaso_search"]).text == text_of(result)
    assert refusing.requests == []


def test_a_missing_key_fails_at_start_with_the_tools_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    without_metaso_settings(monkeypatch)
    try:
        MetasoSearchTool()
    except ValidationError as exc:
        [error] = exc.errors()
        reason = str(error["ctx"]["error"])
    except MetasoError as exc:
        reason = str(exc)
    else:
        pytest.fail("a tool was made without a key")
    reason = " ".join(reason.split())
    assert main([]) != 0
    done = capsys.readouterr()
    assert done.out == ""
    assert reason in " ".join(done.err.split())


def test_without_the_mcp_sdk_it_says_how_to_install_it() -> None:
    script = (
        "import sys; sys.modules['mcp'] = None; import langchain_metaso.tools; "
        "import runpy; runpy.run_module('langchain_metaso.mcp', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=server_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == INSTALL_HINT
    assert "pip install 'langchain-metaso[mcp]'" in INSTALL_HINT


@pytest.fixture
def http_server() -> Iterator[str]:
    """The server over streamable HTTP on a free loopback port; its URL. Stopped after."""
    process = subprocess.Popen(
        server_command("--offline", "--transport", "http", "--port", "0"),
        env=server_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        # The server prints its URL once its socket listens; EOF means it died.
        for line in process.stderr:
            if "serving MCP at " in line:
                yield line.rsplit(" ", 1)[1].strip()
                break
        else:
            pytest.fail(f"the server ended without serving (exit {process.wait()})")
    finally:
        stop(process)


@pytest.mark.asyncio
async def test_streamable_http_serves_the_tools(http_server: str) -> None:
    assert http_server.startswith("http://127.0.0.1:")
    async with (
        streamable_http_client(http_server) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        served = (await session.list_tools()).tools
        result = await session.call_tool("metaso_reader", CALLS["metaso_reader"])
    expected = offline_tools()
    assert [tool.name for tool in served] == [tool.name for tool in expected]
    assert text_of(result) == langchain_answer(expected[1], CALLS["metaso_reader"]).text

    # Bound to loopback, it refuses a request for another host (DNS rebinding).
    async with httpx.AsyncClient() as client:
        refused = await client.post(http_server, headers={"Host": "evil.example"}, json={})
    assert refused.status_code == 421


class ScriptedModel(GenericFakeChatModel):
    """Plays an agent's model: its scripted tool call, then a final answer."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:
        return self


@pytest.mark.asyncio
async def test_langchain_mcp_adapters_load_the_tools_back_into_an_agent() -> None:
    expected = {tool.name: tool for tool in offline_tools()}
    async with connect_in_process("--offline") as session:
        tools = await load_mcp_tools(session)
        assert {tool.name: tool.description for tool in tools} == {
            name: tool.description for name, tool in expected.items()
        }
        call = {"name": "metaso_answer", "args": CALLS["metaso_answer"], "id": "call_1"}
        script = [AIMessage(content="", tool_calls=[call]), AIMessage(content="Done.")]
        agent = create_agent(ScriptedModel(messages=iter(script)), tools)
        state = await agent.ainvoke({"messages": [{"role": "user", "content": "秘塔?"}]})
    [message] = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    want = langchain_answer(expected["metaso_answer"], CALLS["metaso_answer"])
    assert message.status == "success"
    assert message.text == want.text
    assert state["messages"][-1].text == "Done."
