"""LangChain's standard tool suites for the reader and answer tools, offline against the
emulator over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import pytest
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from langchain_metaso.answer_tool import MetasoAnswerTool
from langchain_metaso.reader_tool import MetasoReaderTool
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
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"metaso_api_key": KEY, "base_url": self.base_url, "retry_backoff": 0.01}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"METASO_API_KEY": "test-key-from-env", "METASO_BASE_URL": "https://metaso.cn/api/v1/"},
            {},
            {"metaso_api_key": "test-key-from-env", "base_url": "https://metaso.cn/api/v1"},
        )


class Reader(OnEmulator):
    @property
    def tool_constructor(self) -> type[MetasoReaderTool]:
        return MetasoReaderTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"url": "https://example.com/articles/秘塔"}


class Answer(OnEmulator):
    @property
    def tool_constructor(self) -> type[MetasoAnswerTool]:
        return MetasoAnswerTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "秘塔 AI 搜索是什么", "scope": "webpage"}


class ReachesTheEmulator(OnEmulator):
    """Proof that the suite's calls went over the socket and succeeded."""

    tool_invoke_params_example: dict[str, Any]
    expected_path: str

    def test_calls_reached_the_emulator(self, tool: BaseTool) -> None:
        before = self.emulator.stats.requests
        call = {"name": tool.name, "args": self.tool_invoke_params_example, "id": "1"}
        message = tool.invoke({**call, "type": "tool_call"})
        assert message.status == "success", message.content
        assert message.artifact
        assert self.emulator.stats.requests == before + 1
        assert self.emulator.requests[-1].path == self.expected_path


@standard_suite
class TestMetasoReaderToolUnit(Reader, ToolsUnitTests):
    pass


@standard_suite
class TestMetasoReaderToolIntegration(Reader, ReachesTheEmulator, ToolsIntegrationTests):
    expected_path = "/reader"


@standard_suite
class TestMetasoAnswerToolUnit(Answer, ToolsUnitTests):
    pass


@standard_suite
class TestMetasoAnswerToolIntegration(Answer, ReachesTheEmulator, ToolsIntegrationTests):
    expected_path = "/chat/completions"
