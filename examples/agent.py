"""A LangChain agent that answers a question with ``MetasoSearchTool``.

    python examples/agent.py "秘塔 AI 搜索有哪些特点?"     # real search and a real chat model
    python examples/agent.py --offline                      # emulator and a scripted model

With keys: Metaso search via ``METASO_API_KEY`` and an OpenAI-compatible chat model
(``pip install -e ".[examples]"``) whose key is its provider's own, ``OPENAI_API_KEY`` (and
``OPENAI_BASE_URL``); with ``--model-via-302ai``, 302.AI's chat API with the 302.AI key
in ``METASO_API_KEY``. The Metaso key never goes to a model provider otherwise.
Offline: the bundled emulator answers the searches and a scripted fake chat model plays
the model, issuing a real ``metaso_search`` tool call, so the whole agent loop runs.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from _common import (
    MODEL_VIA_302AI,
    MODEL_VIA_302AI_HELP,
    ExampleParser,
    chat_model_failures,
    metaso_settings,
    real_chat_model,
    run,
)
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_metaso import MetasoSearchTool
from langchain_metaso.testing import SEED_QUERY

SYSTEM_PROMPT = (
    "You answer questions using the metaso_search tool. Search first, then answer "
    "briefly in the question's language and cite the URLs of the results you used."
)
_RESULT = re.compile(r"^\[(\d+)\] (.+)\n(https?://\S+)", re.MULTILINE)


class ScriptedToolCallingModel(GenericFakeChatModel):
    """Plays the model offline: its scripted messages (a ``metaso_search`` call) come
    first; once a tool result is in the conversation, it answers from that result."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedToolCallingModel:
        # The script already knows its tool; nothing to bind.
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        if isinstance(messages[-1], ToolMessage):
            return ChatResult(generations=[ChatGeneration(message=answer_from(messages[-1]))])
        return super()._generate(messages, *args, **kwargs)


def answer_from(result: ToolMessage) -> AIMessage:
    """What a model might say after reading the tool's text: the top results, cited."""
    found = _RESULT.findall(str(result.content))
    if not found:
        return AIMessage(content=f"The search did not help: {result.content}")
    cited = "\n".join(f"- {title} [{number}] {url}" for number, title, url in found[:3])
    return AIMessage(content=f"Metaso found {len(found)} results; the most relevant:\n{cited}")


def offline_model(question: str) -> BaseChatModel:
    call = {"name": "metaso_search", "args": {"query": question}, "id": "call_1"}
    return ScriptedToolCallingModel(messages=iter([AIMessage(content="", tool_calls=[call])]))


def main() -> None:
    parser = ExampleParser(description="A LangChain agent that answers with MetasoSearchTool.")
    parser.add_argument("question", nargs="?", default=SEED_QUERY)
    parser.add_argument("--model", default="gpt-4o-mini", help="the chat model's name")
    parser.add_argument(MODEL_VIA_302AI, action="store_true", help=MODEL_VIA_302AI_HELP)
    parser.add_argument("--offline", action="store_true", help="emulator and scripted model")
    args = parser.parse_args()

    tool = MetasoSearchTool(size=5, **metaso_settings(args.offline))
    model = (
        offline_model(args.question)
        if args.offline
        else real_chat_model(args.model, via_302ai=args.model_via_302ai)
    )
    agent = create_agent(model, [tool], system_prompt=SYSTEM_PROMPT)
    with (
        nullcontext()
        if args.offline
        else chat_model_failures(args.model, via_302ai=args.model_via_302ai)
    ):
        state = agent.invoke({"messages": [{"role": "user", "content": args.question}]})

    for message in state["messages"]:
        if isinstance(message, AIMessage) and message.tool_calls:
            for call in message.tool_calls:
                arguments = json.dumps(call["args"], ensure_ascii=False)
                print(f"Tool call: {call['name']}({arguments})")
        elif isinstance(message, ToolMessage):
            preview = textwrap.indent("\n".join(str(message.content).splitlines()[:6]), "  ")
            print(f"Tool result ({message.name}, {message.status}):\n{preview}\n  ...")
    print(f"\nAnswer:\n{state['messages'][-1].text}")


if __name__ == "__main__":
    run(main)
