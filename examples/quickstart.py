"""Search with Metaso and print the results.

    python examples/quickstart.py "秘塔 AI 搜索" --scope webpage --k 5
    python examples/quickstart.py --offline          # no key needed: the bundled emulator

With ``METASO_API_KEY`` set it calls the real API (``METASO_BASE_URL`` picks the provider).
"""

from __future__ import annotations

from _common import ExampleParser, metaso_settings, result_count, run

from langchain_metaso import SCOPES, MetasoRetriever
from langchain_metaso.testing import SEED_QUERY


def shorten(text: str, width: int = 160) -> str:
    # By characters, not words: Chinese text has no spaces to break at.
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def main() -> None:
    parser = ExampleParser(description=__doc__.splitlines()[0])
    parser.add_argument("query", nargs="?", default=SEED_QUERY, help="what to search for")
    parser.add_argument("--scope", choices=SCOPES, default="webpage", help="where to search")
    parser.add_argument("--k", type=result_count, default=10, help="number of results (1-100)")
    parser.add_argument("--offline", action="store_true", help="use the bundled emulator")
    args = parser.parse_args()

    retriever = MetasoRetriever(k=args.k, scope=args.scope, **metaso_settings(args.offline))
    docs = retriever.invoke(args.query)
    print(f"Metaso {args.scope} search for {args.query!r}: {len(docs)} results\n")
    for number, doc in enumerate(docs, start=1):
        meta = doc.metadata
        print(f"{number:>2}. {meta.get('title') or '(untitled)'}")
        print(f"    {meta['source']}")
        details = [meta.get("date"), meta.get("duration"), ", ".join(meta.get("authors", ()))]
        if any(details):
            print(f"    {' | '.join(part for part in details if part)}")
        # page_content is the AI summary when the API gave one, else the snippet.
        print(f"    {shorten(doc.page_content)}\n")


if __name__ == "__main__":
    run(main)
