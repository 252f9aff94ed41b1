"""LangChain's standard tool suites for the reader and answer tools, offline against the
emulator over a real socket."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests
from standard_support import OnEmulator, standard_suite

from langchain_metaso.tools.answer import MetasoAnswerTool
from langchain_metaso.tools.reader import MetasoReaderTool


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
