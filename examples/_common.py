"""What the examples share: real-or-offline settings, clean error exits, RAG helpers.

Runnable examples import it as ``_common`` (their own folder is first on ``sys.path``);
the notebook too (Jupyter starts its kernel in the notebook's folder).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ValidationError

from langchain_metaso import MetasoError

OFFLINE_NOTICE = "Offline: answers come from the bundled Metaso emulator (no network, no credits)."
MISSING_KEY = (
    "METASO_API_KEY is not set. Get a key at https://302.ai (sk-...) or https://metaso.cn "
    "(mk-..., then also set METASO_BASE_URL=https://metaso.cn/api/v1) and export "
    "METASO_API_KEY=..., or run with --offline to use the bundled emulator."
)
# The key the offline emulator accepts: not a secret, it never leaves the process.
OFFLINE_KEY = "offline-example-key"
# 302.AI serves an OpenAI-compatible chat API, so one 302.AI key drives search and model.
CHAT_BASE_URL = "https://api.302.ai/v1"


def metaso_settings(offline: bool) -> dict[str, Any]:
    """Keyword arguments for any ``langchain_metaso`` class.

    Offline: an in-process emulator, announced on stdout. Otherwise nothing: the classes
    read ``METASO_API_KEY`` and ``METASO_BASE_URL`` themselves. Neither: exit 2 with one
    message saying what to do.
    """
    if offline:
        from langchain_metaso.testing import MetasoEmulator

        print(OFFLINE_NOTICE, flush=True)
        emulator = MetasoEmulator(api_key=OFFLINE_KEY)
        return {"metaso_api_key": OFFLINE_KEY, "transport": emulator.transport()}
    if not os.environ.get("METASO_API_KEY", "").strip():
        print(MISSING_KEY, file=sys.stderr)
        sys.exit(2)
    return {}


def run(main: Callable[[], None]) -> None:
    """Run ``main``; an API or configuration error ends it with its message, exit 1."""
    try:
        main()
    except (MetasoError, ValidationError) as exc:
        sys.exit(f"Error: {exc}")
    except BrokenPipeError:  # piped into `head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def real_chat_model(model: str) -> BaseChatModel:
    """An OpenAI-compatible chat model at 302.AI (or ``OPENAI_BASE_URL``).

    The key is ``OPENAI_API_KEY``, else the 302.AI key in ``METASO_API_KEY``.
    """
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        sys.exit(
            "This example needs langchain-openai for a real chat model: "
            'pip install -e ".[examples]" (or run with --offline).'
        )
    api_key = os.environ.get("OPENAI_API_KEY") or os.environ.get("METASO_API_KEY", "")
    base_url = os.environ.get("OPENAI_BASE_URL", CHAT_BASE_URL)
    return ChatOpenAI(model=model, api_key=api_key, base_url=base_url, temperature=0)


def format_docs(docs: Sequence[Document]) -> str:
    """Numbered sources for a prompt: title, URL, date, then the text."""
    blocks = []
    for number, doc in enumerate(docs, start=1):
        meta = doc.metadata
        lines = [f"[{number}] {meta.get('title') or '(untitled)'}", f"URL: {meta['source']}"]
        if meta.get("date"):
            lines.append(f"Date: {meta['date']}")
        lines.append(doc.page_content.strip())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


_SOURCE = re.compile(r"^\[(\d+)\] (.+)\nURL: (\S+)", re.MULTILINE)


def _cite_sources(prompt: PromptValue) -> AIMessage:
    messages = prompt.to_messages()
    context = "\n".join(str(message.content) for message in messages[:-1])
    sources = _SOURCE.findall(context)
    if not sources:
        return AIMessage(content="The prompt held no sources, so there is nothing to cite.")
    cited = "; ".join(f"{title} [{number}] ({url})" for number, title, url in sources)
    return AIMessage(
        content=f"Offline stand-in answer to {messages[-1].content!r}: "
        f"the {len(sources)} retrieved sources are {cited}."
    )


def offline_chat_model() -> Runnable[PromptValue, AIMessage]:
    """Stands in for a chat model offline: it answers by citing the sources in its prompt,
    so its output shows that the retrieved context reached the model."""
    return RunnableLambda(_cite_sources, name="OfflineCitingModel")
