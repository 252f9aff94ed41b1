"""Ask the web a question with ChatMetaso: the answer streams in, then its numbered sources.

    python examples/chat.py "秘塔 AI 搜索是哪家公司做的?" --model fast_thinking
    python examples/chat.py --offline          # no key needed: the bundled emulator

With ``METASO_API_KEY`` set it calls the real API (``METASO_BASE_URL`` picks the provider).
The answer's ``[[n]]`` marks cite the n-th source. A thinking model's reasoning, when it
sends any, is printed apart, before the answer.
"""

from __future__ import annotations

import argparse

from _common import metaso_settings, run
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.content import Citation

from langchain_metaso import CHAT_MODELS, SCOPES, ChatMetaso

HEADINGS = {"reasoning": "Reasoning:", "text": "Answer:"}


def citations(message: AIMessage) -> list[Citation]:
    """The answer's sources, as LangChain's standard citations of its text."""
    return [
        annotation
        for block in message.content_blocks
        if block["type"] == "text"
        for annotation in block.get("annotations", [])
        if annotation["type"] == "citation"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="秘塔 AI 搜索是哪家公司做的?")
    parser.add_argument("--model", default="fast", help=f"{', '.join(CHAT_MODELS)}, or newer")
    parser.add_argument("--scope", choices=SCOPES, default="webpage", help="where to search")
    parser.add_argument("--offline", action="store_true", help="use the bundled emulator")
    args = parser.parse_args()

    chat = ChatMetaso(model=args.model, scope=args.scope, **metaso_settings(args.offline))
    answer = AIMessageChunk(content="")
    showing = None
    for chunk in chat.stream(args.question):
        answer += chunk
        for block in chunk.content_blocks:
            piece = block.get("reasoning") or block.get("text")
            if not piece:
                continue  # the sources come first, as annotations of the text
            if block["type"] != showing:
                print(("\n\n" if showing else "") + HEADINGS[block["type"]])
                showing = block["type"]
            print(piece, end="", flush=True)

    print("\n\nSources:")
    for number, citation in enumerate(citations(answer), start=1):
        print(f"[{number}] {citation.get('title') or '(untitled)'}")
        print(f"    {citation.get('url') or '(no link)'}")
    # A stream reports its token counts; credits come only with a whole answer.
    usage = answer.usage_metadata
    tokens = f", {usage['total_tokens']} tokens" if usage else ""
    print(f"\n({answer.response_metadata['model_name']}{tokens})")


if __name__ == "__main__":
    run(main)
