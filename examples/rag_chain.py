"""Retrieval-augmented generation: ``MetasoRetriever`` in an LCEL chain.

    python examples/rag_chain.py "什么是检索增强生成?"     # real search and a real chat model
    python examples/rag_chain.py --offline                  # emulator and a stand-in model

retriever -> numbered sources with URLs -> prompt -> chat model -> text. The chat model's
key is its provider's own (``OPENAI_API_KEY``), or with ``--model-via-302ai`` the 302.AI
key in ``METASO_API_KEY``, at 302.AI's chat API. The chain also
returns the documents, so the answer's sources can be shown next to it.
Offline, the model is a stand-in that answers by citing the sources it finds in its
prompt: its output shows what reached the model.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from _common import (
    MODEL_VIA_302AI,
    MODEL_VIA_302AI_HELP,
    ExampleParser,
    chat_model_failures,
    format_docs,
    metaso_settings,
    offline_chat_model,
    real_chat_model,
    result_count,
    run,
)
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableParallel, RunnablePassthrough

from langchain_metaso import MetasoRetriever

PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Answer the question using only the numbered sources below, citing them as "
            "[n]. Say so if they do not answer it.\n\nSources:\n\n{context}",
        ),
        ("human", "{question}"),
    ]
)


def build_chain(
    retriever: BaseRetriever, model: Runnable[Any, Any]
) -> Runnable[str, dict[str, Any]]:
    """question -> {"question", "docs", "answer"}."""
    answer = (
        RunnablePassthrough.assign(context=lambda state: format_docs(state["docs"]))
        | PROMPT
        | model
        | StrOutputParser()
    )
    return RunnableParallel(question=RunnablePassthrough(), docs=retriever).assign(answer=answer)


def main() -> None:
    parser = ExampleParser(
        description="Retrieval-augmented generation: MetasoRetriever in an LCEL chain."
    )
    parser.add_argument("question", nargs="?", default="什么是检索增强生成(RAG)?")
    parser.add_argument("--k", type=result_count, default=4, help="sources to retrieve (1-100)")
    parser.add_argument("--model", default="gpt-4o-mini", help="the chat model's name")
    parser.add_argument(MODEL_VIA_302AI, action="store_true", help=MODEL_VIA_302AI_HELP)
    parser.add_argument("--offline", action="store_true", help="emulator and stand-in model")
    args = parser.parse_args()

    retriever = MetasoRetriever(k=args.k, **metaso_settings(args.offline))
    model = (
        offline_chat_model()
        if args.offline
        else real_chat_model(args.model, via_302ai=args.model_via_302ai)
    )
    with (
        nullcontext()
        if args.offline
        else chat_model_failures(args.model, via_302ai=args.model_via_302ai)
    ):
        result = build_chain(retriever, model).invoke(args.question)

    print(f"Question: {result['question']}\n\nSources:")
    for number, doc in enumerate(result["docs"], start=1):
        print(
            f"[{number}] {doc.metadata.get('title') or '(untitled)'}\n    {doc.metadata['source']}"
        )
    print(f"\nAnswer:\n{result['answer']}")


if __name__ == "__main__":
    run(main)
