"""The benchmark's loopback server: one implementation for the Metaso and the Tavily endpoint.

It runs in its own process (``FakeServer`` starts it), so its threads never compete with
the measured client for the GIL. Both endpoints answer precomputed bytes of the same
results, with the same knobs, as the emulator has them:

- ``latency``: seconds every admitted answer waits (the server's own time);
- ``connection_delay``: extra seconds on the first request of each new connection (a
  simulated TCP + TLS handshake; on loopback the real one costs next to nothing);
- ``max_in_flight``: beyond this many requests in flight, answer 429 at once with
  ``Retry-After: retry_after``.

Routes: ``POST /metaso/search`` answers the seed search response verbatim (the one real
answer of the API reference); ``POST /tavily/search`` answers a Tavily-shaped JSON of the
same ten results. The control plane is the child's stdin/stdout (one JSON object a line),
so configuring and reading statistics open no connection and count no request. The child
stops when its stdin closes (the parent ended, however it ended) or after ``MAX_LIFETIME``.
"""

from __future__ import annotations

import json
import socketserver
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# A hard stop, should the parent never close our stdin.
MAX_LIFETIME = 900.0
SEED_FILE = (
    Path(__file__).resolve().parent.parent
    / "langchain_metaso"
    / "testing"
    / "seed_search_response.json"
)


def metaso_body() -> bytes:
    """The seed response, byte for byte as stored in the package's emulator."""
    return SEED_FILE.read_bytes()


def tavily_body() -> bytes:
    """The seed's results in the shape of Tavily's ``/search`` answer."""
    seed = json.loads(metaso_body())
    results = [
        {
            "url": item.get("link"),
            "title": item.get("title"),
            "content": item.get("summary") or item.get("snippet") or "",
            "score": round(0.95 - 0.05 * index, 2),
            "raw_content": None,
        }
        for index, item in enumerate(seed["webpages"])
    ]
    answer = {
        "query": seed["searchParameters"]["q"],
        "follow_up_questions": None,
        "answer": None,
        "images": [],
        "results": results,
        "response_time": 0.02,
    }
    return json.dumps(answer, ensure_ascii=False).encode("utf-8")


@dataclass
class Knobs:
    latency: float = 0.0
    connection_delay: float = 0.0
    max_in_flight: int | None = None
    retry_after: int = 1


@dataclass
class Stats:
    requests: int = 0
    answered: dict[str, int] = field(default_factory=dict)  # 200s by endpoint
    rejected_429: dict[str, int] = field(default_factory=dict)  # by endpoint
    in_flight: int = 0
    peak_in_flight: int = 0
    connections_opened: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Hundreds of clients may connect at the same moment (the peer's abatch opens 200).
    request_queue_size = 1024

    def __init__(self) -> None:
        self.knobs = Knobs()
        self.stats = Stats()
        self.lock = threading.Lock()
        self.bodies = {"/metaso/search": metaso_body(), "/tavily/search": tavily_body()}
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall without a network.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.socket.getsockname()[1]


def _response(status: int, reason: str, body: bytes, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode("ascii") + body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self._first_request = True
        with self.server.lock:
            self.server.stats.connections_opened += 1

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the benchmark prints what matters."""

    def do_POST(self) -> None:
        server, stats = self.server, self.server.stats
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        knobs = server.knobs
        if self._first_request:
            self._first_request = False
            time.sleep(knobs.connection_delay)
        body = server.bodies.get(self.path)
        if body is None or not self.headers.get("Authorization"):
            self.wfile.write(_response(404 if body is None else 401, "No", b'{"detail": "no"}'))
            return
        endpoint = self.path.split("/")[1]
        with server.lock:
            stats.requests += 1
            admitted = knobs.max_in_flight is None or stats.in_flight < knobs.max_in_flight
            if admitted:
                stats.in_flight += 1
                stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
            else:
                stats.rejected_429[endpoint] = stats.rejected_429.get(endpoint, 0) + 1
        if not admitted:
            # Both providers' error shapes in one body: each client reads its own.
            rejection = b'{"errCode": 429, "errMsg": "Too many requests", "detail": {"error": "Too many requests"}}'  # noqa: E501
            extra = f"Retry-After: {knobs.retry_after}\r\n"
            self.wfile.write(_response(429, "Too Many Requests", rejection, extra))
            return
        try:
            time.sleep(knobs.latency)
            self.wfile.write(_response(200, "OK", body))
        finally:
            # The request leaves the in-flight count only once its answer is written.
            with server.lock:
                stats.in_flight -= 1
                stats.answered[endpoint] = stats.answered.get(endpoint, 0) + 1


def _control(server: _Server) -> None:
    """Serve control commands from stdin until it closes."""
    for line in sys.stdin:
        command = json.loads(line)
        with server.lock:
            if command.get("reset"):
                in_flight = server.stats.in_flight
                server.stats = Stats(in_flight=in_flight, peak_in_flight=in_flight)
            for name in ("latency", "connection_delay", "max_in_flight", "retry_after"):
                if name in command:
                    setattr(server.knobs, name, command[name])
            reply = {"knobs": asdict(server.knobs), "stats": asdict(server.stats)}
        print(json.dumps(reply), flush=True)


def main() -> None:
    server = _Server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_port, flush=True)
    control = threading.Thread(target=_control, args=(server,), daemon=True)
    control.start()
    control.join(MAX_LIFETIME)
    server.shutdown()


class FakeServer:
    """Parent side: start the server process, configure it, read its statistics."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        port = int(self._process.stdout.readline())
        self.url = f"http://127.0.0.1:{port}"
        self.metaso_url = f"{self.url}/metaso"
        self.tavily_url = f"{self.url}/tavily"

    def configure(self, **command: Any) -> dict[str, Any]:
        """Set knobs (``reset=True`` zeroes the totals) and return knobs and statistics."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        reply: dict[str, Any] = json.loads(self._process.stdout.readline())
        return reply

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.configure()["stats"]
        return stats

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    main()
