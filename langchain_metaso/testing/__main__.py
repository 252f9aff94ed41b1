"""``python -m langchain_metaso.testing serve``: the emulator over HTTP, in its own process.

It prints its base URL (``http://127.0.0.1:PORT``) on the first line of stdout, then reads
one JSON command a line on stdin and answers each with one JSON line (see
``run_command``: ``{"set": {"latency": 0.02}}``, ``{"reset": true}``, ``{"script": [...]}``,
``{}`` for the statistics). It stops when stdin closes or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import sys
import threading

from ._emulator import MetasoEmulator
from ._process import control


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m langchain_metaso.testing",
        description="The offline Metaso emulator, served over HTTP in its own process.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve an emulator on 127.0.0.1",
        description="Serve the emulator on 127.0.0.1. Prints its base URL on the first line, "
        "then answers one JSON command a line on stdin; stops when stdin closes or after "
        "--max-seconds.",
    )
    serve.add_argument("--port", type=int, default=0, help="port (default 0: any free one)")
    serve.add_argument(
        "--api-key",
        help="accept only this key (Authorization: Bearer KEY), answering 401 to any other, "
        "so a wrong key can be tried offline (default: any key)",
    )
    serve.add_argument(
        "--max-seconds", type=float, default=900, help="stop after this long (default 900)"
    )
    args = parser.parse_args(argv)
    emulator = MetasoEmulator(api_key=args.api_key)
    with emulator.serve(args.port) as url:
        print(url, flush=True)
        # A daemon thread: when the time runs out, a read blocked on stdin must not hold us.
        commands_thread = threading.Thread(
            target=control, args=(emulator, sys.stdin, sys.stdout), daemon=True
        )
        commands_thread.start()
        commands_thread.join(args.max_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
