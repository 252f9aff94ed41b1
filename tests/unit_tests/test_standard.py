"""LangChain's standard suites, run offline against the emulator over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests, ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from langchain_metaso import MetasoRetriever, MetasoSearchTool
from langchain_metaso.testing import MetasoEmulator

KEY = "test-key"
T = TypeVar("T")

# The standard async tests carry no asyncio mark and may not be overridden, while the
# project runs pytest-asyncio in strict mode: mark the whole class, and silence the
# warning that the mark gets on the class's sync tests.
ASYNC_IN_STRICT_MODE = (
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore:.*is marked with '@pytest.mark.asyncio' but it is not"),
)


def standard_suite(cls: type[T]) -> type[T]:
    for mark in ASYNC_IN_STRICT_MODE:
        cls = mark(cls)
    return cls


class OnEmulator:
    """Serves a fresh emulator on 127.0.0.1 for the whole class; the suites' constructor
    parameters point at it."""

    emulator: MetasoEmulator
    base_url: str

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _serve(cls) -> Iterator[None]:
        cls.emulator = MetasoEmulator(api_key=KEY)
        with cls.emulator.serve() as base_url:
            cls.base_url = base_url
            yield

    @property
    def constructor_params(self) -> dict[str, Any]:
        return {"metaso_api_key": KEY, "base_url": self.base_url, "retry_backoff": 0.01}


class TestMetasoSearchToolUnit(OnEmulator, ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[MetasoSearchTool]:
        return MetasoSearchTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return self.constructor_params

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "秘塔 AI 搜索", "scope": "webpage", "size": 3}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"METASO_API_KEY": "test-key-from-env", "METASO_BASE_URL": "https://metaso.cn/api/v1/"},
            {},
            {"metaso_api_key": "test-key-from-env", "base_url": "https://metaso.cn/api/v1"},
        )


@standard_suite
class TestMetasoSearchToolIntegration(OnEmulator, ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[MetasoSearchTool]:
        return MetasoSearchTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return self.constructor_params

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "秘塔 AI 搜索", "scope": "webpage", "size": 3}

    def test_calls_reached_the_emulator(self, tool: MetasoSearchTool) -> None:
        before = self.emulator.stats.requests
        message = tool.invoke(
            {
                "name": tool.name,
                "args": self.tool_invoke_params_example,
                "id": "1",
                "type": "tool_call",
            }
        )
        assert message.status == "success"
        assert len(message.artifact) == 3
        assert self.emulator.stats.requests == before + 1


@standard_suite
class TestMetasoRetrieverIntegration(OnEmulator, RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[MetasoRetriever]:
        return MetasoRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {**self.constructor_params, "k": 5}

    @property
    def retriever_query_example(self) -> str:
        return "大语言模型 幻觉 评测"

    def test_calls_reached_the_emulator(self, retriever: MetasoRetriever) -> None:
        before = self.emulator.stats.requests
        assert len(retriever.invoke(self.retriever_query_example)) == 5
        assert self.emulator.stats.requests == before + 1
