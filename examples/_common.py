"""What the examples share: real-or-offline settings, clean error exits, RAG helpers.

Runnable examples import it as ``_common`` (their own folder is first on ``sys.path``);
the notebook too (Jupyter starts its kernel in the notebook's folder).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ValidationError

from langchain_metaso import MetasoError
from langchain_metaso.search import MAX_SIZE

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


class ExampleParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line, as a program's are."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def result_count(text: str) -> int:
    """An ``argparse`` type: a number of results the API can return (1-100)."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= number <= MAX_SIZE:
        raise argparse.ArgumentTypeError(f"{number} is not between 1 and {MAX_SIZE}")
    return number


def one_line(exc: BaseException) -> str:
    """An error's message on one line: pydantic's and providers' span several."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
    return " ".join(str(exc).split())


def run(main: Callable[[], None]) -> None:
    """Run ``main``; an API or configuration error ends it with its message, exit 1."""
    try:
        main()
    except (MetasoError, ValidationError) as exc:
        sys.exit(f"Error: {one_line(exc)}")
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
    return ChatOpenAI(model=model, api_key=api_key, base_url=chat_base_url(), temperature=0)


def chat_base_url() -> str:
    return os.environ.get("OPENAI_BASE_URL", CHAT_BASE_URL)


@contextmanager
def chat_model_failures(model: str) -> Iterator[None]:
    """End with one line saying what to set when the real chat model cannot answer
    (unreachable, a key it refuses, an unknown model): Metaso's own errors still
    reach ``run``, as the tools hand theirs to the model."""
    try:
        yield
    except (MetasoError, ValidationError):
        raise
    except Exception as exc:  # the provider's own error types: any of them means the same
        sys.exit(
            f"Error: the chat model {model!r} at {chat_base_url()} did not answer "
            f"({type(exc).__name__}: {one_line(exc)}). Set OPENAI_API_KEY (else "
            "METASO_API_KEY, a 302.AI key, is used) and OPENAI_BASE_URL for the chat "
            "model's provider, pick one it serves with --model, or run with --offline."
        )


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
