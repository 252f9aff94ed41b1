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
# 302.AI serves an OpenAI-compatible chat API; its key drives it only when asked (MODEL_VIA_302AI).
CHAT_BASE_URL_302AI = "https://api.302.ai/v1"
MODEL_VIA_302AI = "--model-via-302ai"
MODEL_VIA_302AI_HELP = (
    "use 302.AI's OpenAI-compatible chat API for the model, with the 302.AI key in "
    "METASO_API_KEY (otherwise the model's key is OPENAI_API_KEY)"
)


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


def real_chat_model(model: str, *, via_302ai: bool) -> BaseChatModel:
    """An OpenAI-compatible chat model, whose key and address are the provider's own
    settings (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, read by langchain-openai).

    The Metaso key goes to a model provider only when asked (``via_302ai``), and then
    only to 302.AI, which serves both, and only when it is a 302.AI key.
    """
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        sys.exit(
            "This example needs langchain-openai for a real chat model: "
            'pip install -e ".[examples]" (or run with --offline).'
        )
    if via_302ai:
        if os.environ.get("METASO_BASE_URL", "").strip():
            sys.exit(
                f"Error: {MODEL_VIA_302AI} sends METASO_API_KEY to 302.AI's chat API, so it "
                "needs a 302.AI key, and METASO_BASE_URL is set (another provider's key): "
                "unset it, or set OPENAI_API_KEY for the model instead."
            )
        api_key = os.environ.get("METASO_API_KEY", "")
        return ChatOpenAI(model=model, api_key=api_key, base_url=CHAT_BASE_URL_302AI, temperature=0)
    if not os.environ.get("OPENAI_API_KEY", "").strip():
        sys.exit(
            "Error: the chat model needs its own key: set OPENAI_API_KEY (and OPENAI_BASE_URL "
            f"for a provider other than OpenAI), or pass {MODEL_VIA_302AI} to use your "
            "302.AI key (METASO_API_KEY) with 302.AI's chat API, or run with --offline."
        )
    return ChatOpenAI(model=model, temperature=0)


def chat_base_url(via_302ai: bool) -> str:
    if via_302ai:
        return CHAT_BASE_URL_302AI
    return os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"


@contextmanager
def chat_model_failures(model: str, *, via_302ai: bool) -> Iterator[None]:
    """End with one line saying what to set when the real chat model cannot answer
    (unreachable, a key it refuses, an unknown model): Metaso's own errors still
    reach ``run``, as the tools hand theirs to the model."""
    try:
        yield
    except (MetasoError, ValidationError):
        raise
    except Exception as exc:  # the provider's own error types: any of them means the same
        sys.exit(
            f"Error: the chat model {model!r} at {chat_base_url(via_302ai)} did not answer "
            f"({type(exc).__name__}: {one_line(exc)}). Set OPENAI_API_KEY and "
            "OPENAI_BASE_URL for the chat model's provider (or pass "
            f"{MODEL_VIA_302AI} with a 302.AI key), pick a model it serves with --model, "
            "or run with --offline."
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
