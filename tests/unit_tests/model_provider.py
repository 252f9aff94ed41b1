"""A stand-in for an OpenAI-compatible model provider, served on 127.0.0.1.

Code that builds its chat model as a user would (``ChatOpenAI(...)``,
``create_agent("openai:gpt-4o-mini", ...)``) reaches it through ``OPENAI_BASE_URL``, so the
README and the examples run offline as written. It records each request's Authorization
header and answers like a tool-calling model: given tools and a question, it calls the
first tool with the question as ``query``; otherwise it answers ``ANSWER`` (after a tool
result, followed by that result's first line).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = "模型的回答"


@dataclass
class ModelProvider:
    url: str
    """The base URL to put in ``OPENAI_BASE_URL`` (ends in ``/v1``)."""
    authorizations: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


def reply(request: dict[str, Any]) -> dict[str, Any]:
    """The chat completion answering ``request``."""
    messages = request.get("messages") or [{}]
    last = messages[-1]
    tools = request.get("tools") or []
    message: dict[str, Any] = {"role": "assistant", "content": ANSWER}
    if last.get("role") == "tool":
        first_line = str(last.get("content", "")).splitlines()[:1]
        message["content"] = "\n".join([ANSWER, *first_line])
    elif tools:
        call = {"query": str(last.get("content", ""))}
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": f"call_{len(messages)}",
                "type": "function",
                "function": {
                    "name": tools[0]["function"]["name"],
                    "arguments": json.dumps(call, ensure_ascii=False),
                },
            }
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": request.get("model", "gpt-4o-mini"),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    provider: ModelProvider


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        provider = self.server.provider
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        provider.authorizations.append(self.headers.get("Authorization", ""))
        provider.requests.append(request)
        body = json.dumps(reply(request), ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


@contextmanager
def model_provider() -> Iterator[ModelProvider]:
    """Serve a provider on a free port of 127.0.0.1 until the block ends."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.provider = provider = ModelProvider(url=f"http://127.0.0.1:{server.server_port}/v1")
    # Leaving waits for serve_forever to see the shutdown: at the default 0.5 s poll, that
    # was most of a README block's test.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
