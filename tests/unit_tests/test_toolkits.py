"""MetasoToolkit: three tools, one configuration, one pool of connections."""

from __future__ import annotations

import asyncio
import pickle
import warnings
from typing import Any

import pytest
from conftest import SECRET, Make
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseToolkit
from pydantic import ValidationError

from langchain_metaso.config import MetasoConfig
from langchain_metaso.testing import MetasoEmulator
from langchain_metaso.toolkits import MetasoToolkit
from langchain_metaso.tools import MetasoSearchTool
from langchain_metaso.tools.answer import MetasoAnswerTool
from langchain_metaso.tools.reader import MetasoReaderTool

CALLS = {
    "metaso_search": {"query": "秘塔", "size": 2},
    "metaso_reader": {"url": "https://example.com/a"},
    "metaso_answer": {"query": "秘塔是什么"},
}


def tool_call(name: str, number: int = 1) -> dict[str, Any]:
    return {"name": name, "args": CALLS[name], "id": f"{name}-{number}", "type": "tool_call"}


def test_get_tools_returns_search_reader_and_answer(make: Make) -> None:
    toolkit = make(MetasoToolkit)
    assert isinstance(toolkit, BaseToolkit)
    tools = toolkit.get_tools()
    assert [type(tool) for tool in tools] == [MetasoSearchTool, MetasoReaderTool, MetasoAnswerTool]
    assert [tool.name for tool in tools] == ["metaso_search", "metaso_reader", "metaso_answer"]


def test_tools_share_the_configuration_and_the_pool(make: Make) -> None:
    toolkit = make(
        MetasoToolkit,
        base_url="https://metaso.cn/api/v1/",
        timeout=7,
        max_retries=4,
        retry_backoff=0.2,
        max_concurrency=3,
    )
    for tool in toolkit.get_tools():
        for name in MetasoConfig.model_fields:
            assert getattr(tool, name) == getattr(toolkit, name), name
        assert tool.base_url == "https://metaso.cn/api/v1"
        assert tool._pool is toolkit._pool
    # A tool reconfigured by copy still shares the pool.
    search = toolkit.get_tools()[0].model_copy(update={"size": 3})
    assert search._pool is toolkit._pool


def test_settings_are_validated_once_for_all(make: Make) -> None:
    with pytest.raises(ValidationError, match="base_url"):
        make(MetasoToolkit, base_url="ftp://x")
    with pytest.raises(ValidationError, match="METASO_API_KEY"):
        MetasoToolkit()


def test_the_key_never_shows(make: Make) -> None:
    toolkit = make(MetasoToolkit, metaso_api_key=SECRET, transport=None)
    for shown in (toolkit, *toolkit.get_tools()):
        assert SECRET not in repr(shown)
        assert SECRET not in str(shown)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert SECRET not in str(shown.model_dump())
    # Pickled copies carry the key (they must work), but get a fresh pool.
    copy = pickle.loads(pickle.dumps(toolkit))
    assert copy.metaso_api_key.get_secret_value() == SECRET
    assert copy._pool is not toolkit._pool


def test_every_tool_works_through_the_shared_pool(make: Make, emulator: MetasoEmulator) -> None:
    tools = make(MetasoToolkit).get_tools()
    for tool in tools:
        result = tool.invoke(tool_call(tool.name))
        assert isinstance(result, ToolMessage)
        assert result.status == "success", result.content
    assert [request.path for request in emulator.requests] == [
        "/metaso/search",
        "/metaso/reader",
        "/metaso/chat/completions",
    ]


def test_sequential_calls_of_all_tools_reuse_one_connection(
    make: Make, emulator: MetasoEmulator, emulator_url: str
) -> None:
    toolkit = make(MetasoToolkit, transport=None, base_url=emulator_url, max_concurrency=2)
    tools = toolkit.get_tools()
    for round_ in range(3):
        for tool in tools:
            assert tool.invoke(tool_call(tool.name, round_)).status == "success"
    assert emulator.stats.requests == 9
    # One pooled keep-alive connection served the three tools: not one each.
    assert emulator.stats.connections_opened == 1
    toolkit.close()


def test_concurrent_calls_of_all_tools_stay_within_max_concurrency(
    make: Make, emulator: MetasoEmulator, emulator_url: str
) -> None:
    emulator.latency = 0.05
    toolkit = make(MetasoToolkit, transport=None, base_url=emulator_url, max_concurrency=2)
    tools = toolkit.get_tools()

    async def run() -> list[ToolMessage]:
        calls = [tool.ainvoke(tool_call(tool.name, n)) for n in range(4) for tool in tools]
        results = await asyncio.gather(*calls)
        await toolkit.aclose()
        return results

    results = asyncio.run(run())
    assert all(result.status == "success" for result in results)
    assert emulator.stats.requests == 12
    # The bound holds for the three tools together, not per tool.
    assert emulator.stats.peak_in_flight == 2
    assert emulator.stats.connections_opened <= 2
