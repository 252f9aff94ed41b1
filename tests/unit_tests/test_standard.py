"""LangChain's standard suites for every tool, the retriever and the chat model, run offline
against the emulator over a real socket."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from conftest import tool_call
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import RetrieversIntegrationTests, ToolsIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests, ToolsUnitTests
from standard_support import OnEmulator, standard_suite
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from langchain_metaso import ChatMetaso, MetasoRetriever, MetasoSearchTool
from langchain_metaso.tools.answer import MetasoAnswerTool
from langchain_metaso.tools.reader import MetasoReaderTool

# What the suites ask of each class is given as a class attribute where it needs no instance.

# --- the tools ----------------------------------------------------------------------------


class SearchTool(OnEmulator):
    tool_constructor = MetasoSearchTool
    tool_invoke_params_example: ClassVar[dict[str, Any]] = {
        "query": "秘塔 AI 搜索",
        "scope": "webpage",
        "size": 3,
    }
    expected_path = "/search"

    def check_artifact(self, artifact: Any) -> None:
        assert len(artifact) == 3


class Reader(OnEmulator):
    tool_constructor = MetasoReaderTool
    tool_invoke_params_example: ClassVar[dict[str, Any]] = {
        "url": "https://example.com/articles/秘塔"
    }
    expected_path = "/reader"


class Answer(OnEmulator):
    tool_constructor = MetasoAnswerTool
    tool_invoke_params_example: ClassVar[dict[str, Any]] = {
        "query": "秘塔 AI 搜索是什么",
        "scope": "webpage",
    }
    expected_path = "/chat/completions"


class ReachesTheEmulator(OnEmulator):
    """Proof that the suite's calls went over the socket and succeeded."""

    tool_invoke_params_example: dict[str, Any]
    expected_path: str

    def check_artifact(self, artifact: Any) -> None:
        assert artifact

    def test_calls_reached_the_emulator(self, tool: BaseTool) -> None:
        before = self.emulator.stats.requests
        message = tool.invoke(tool_call(tool.name, **self.tool_invoke_params_example))
        assert message.status == "success", message.content
        self.check_artifact(message.artifact)
        assert self.emulator.stats.requests == before + 1
        assert self.emulator.requests[-1].path == self.expected_path


class TestMetasoSearchToolUnit(SearchTool, ToolsUnitTests):
    pass


@standard_suite
class TestMetasoSearchToolIntegration(SearchTool, ReachesTheEmulator, ToolsIntegrationTests):
    pass


@standard_suite
class TestMetasoReaderToolUnit(Reader, ToolsUnitTests):
    pass


@standard_suite
class TestMetasoReaderToolIntegration(Reader, ReachesTheEmulator, ToolsIntegrationTests):
    pass


@standard_suite
class TestMetasoAnswerToolUnit(Answer, ToolsUnitTests):
    pass


@standard_suite
class TestMetasoAnswerToolIntegration(Answer, ReachesTheEmulator, ToolsIntegrationTests):
    pass


# --- the retriever ---------------------------------------------------------------------------


@standard_suite
class TestMetasoRetrieverIntegration(OnEmulator, RetrieversIntegrationTests):
    retriever_constructor = MetasoRetriever
    retriever_query_example = "大语言模型 幻觉 评测"

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {**self.constructor_params, "k": 5}

    def test_calls_reached_the_emulator(self, retriever: MetasoRetriever) -> None:
        before = self.emulator.stats.requests
        assert len(retriever.invoke(self.retriever_query_example)) == 5
        assert self.emulator.stats.requests == before + 1


# --- the chat model --------------------------------------------------------------------------


class TestChatMetasoUnit(OnEmulator, ChatModelUnitTests):
    chat_model_class = ChatMetaso
    has_tool_calling = False  # bind_tools is overridden only to say why it is not offered
    has_structured_output = False
    model_override_value = "fast_thinking"

    @pytest.fixture
    def snapshot(self, snapshot: SnapshotAssertion) -> SnapshotAssertion:
        # test_serdes: the emulator's port changes every run, the rest must not.
        return snapshot.with_defaults(exclude=props("base_url"))

    @pytest.mark.xfail(
        reason="dumpd matches the snapshot, but the suite then loads with "
        "allowed_objects='all', which admits only the classes langchain-core maps itself; "
        "test_chat_models loads ChatMetaso with allowed_objects=[ChatMetaso]",
        raises=ValueError,
        strict=True,
    )
    def test_serdes(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # The suite passes api_key= itself: ours must use the same name to win over it.
        params = dict(self.constructor_params)
        params["api_key"] = params.pop("metaso_api_key")
        return params
