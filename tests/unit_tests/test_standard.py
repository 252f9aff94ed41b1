"""LangChain's standard suites, run offline against the emulator over a real socket."""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import RetrieversIntegrationTests, ToolsIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests, ToolsUnitTests
from standard_support import OnEmulator, standard_suite

from langchain_metaso import ChatMetaso, MetasoRetriever, MetasoSearchTool


class SearchTool(OnEmulator):
    @property
    def tool_constructor(self) -> type[MetasoSearchTool]:
        return MetasoSearchTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "秘塔 AI 搜索", "scope": "webpage", "size": 3}


class TestMetasoSearchToolUnit(SearchTool, ToolsUnitTests):
    pass


@standard_suite
class TestMetasoSearchToolIntegration(SearchTool, ToolsIntegrationTests):
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


class TestChatMetasoUnit(OnEmulator, ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatMetaso]:
        return ChatMetaso

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # The suite passes api_key= itself: ours must use the same name to win over it.
        params = dict(self.constructor_params)
        params["api_key"] = params.pop("metaso_api_key")
        return params

    @property
    def has_tool_calling(self) -> bool:
        return False  # bind_tools is overridden only to say why it is not offered

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def model_override_value(self) -> str:
        return "fast_thinking"
