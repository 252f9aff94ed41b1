"""The socket route: a threaded HTTP/1.1 keep-alive server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from ._reply import Interruption, Plan, Reply

# How long a timeout fault holds the connection at most; the client hanging up or the server
# stopping cuts it short. The hang-up is noticed within one step.
_TIMEOUT_HOLD = 30.0
_HOLD_STEP = 0.05
# SO_LINGER on, with a zero timeout: closing then sends RST instead of FIN.
_RESET_LINGER = struct.pack("ii", 1, 0)
# Upper bound on waiting for handler threads when the server stops.
_JOIN_TIMEOUT = 5.0
# How often serve_forever checks for shutdown: also how long leaving serve() takes, which
# a test suite serving an emulator per test pays each time (100 idle wake-ups a second).
_POLL_INTERVAL = 0.01


class MetasoEmulator(Protocol):
    """What the server needs of the emulator it serves (so this module need not import it)."""

    connection_delay: float

    def _exchange(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> AbstractContextManager[Plan]: ...

    def _connection_opened(self) -> None: ...

    def _connection_closed(self) -> None: ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog: hundreds of clients may connect at the same moment.
    request_queue_size = 1024

    def __init__(self, emulator: MetasoEmulator, port: int = 0) -> None:
        self.emulator = emulator
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall without a network.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.socket.getsockname()[1]

    def track(self, connection: socket.socket) -> None:
        with self._lock:
            if not self.stopping.is_set():
                self._connections[connection] = threading.current_thread()
                self.emulator._connection_opened()
                return
        # Accepted while stopping: end it at once so its handler thread does not linger.
        _hang_up(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._lock:
            if self._connections.pop(connection, None) is not None:
                self.emulator._connection_closed()

    def stop(self) -> None:
        with self._lock:
            self.stopping.set()  # also wakes handlers waiting out a delay
            open_connections = list(self._connections.items())
        self.shutdown()
        # Idle keep-alive handlers block reading the next request; hanging up releases them.
        for connection, _ in open_connections:
            _hang_up(connection)
        self.server_close()
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for _, thread in open_connections:
            thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up mid-answer on purpose (their timeouts, our faults): not worth a traceback.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _hang_up(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A stream's parts go out in separate writes; Nagle would hold the later ones back.
    disable_nagle_algorithm = True
    # Buffered, so a whole answer leaves in one send (flushed after each request, and after
    # each part of a stream): one write for the headers and one for the body cost the client
    # a wake-up more.
    wbufsize = 1 << 16
    server: _Server

    def setup(self) -> None:
        super().setup()
        self._first_request = True
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests print what they need."""

    def _handle(self) -> None:
        body = self._read_body()
        if body is None:
            self.send_error(400, "Unreadable request body")
            self.close_connection = True
            return
        emulator = self.server.emulator
        if self._first_request:
            self._first_request = False
            self._pause(emulator.connection_delay)
        headers = {name.lower(): ", ".join(self.headers.get_all(name, ())) for name in self.headers}
        path = unquote(urlsplit(self.path).path)
        with emulator._exchange(self.command, path, headers, body) as plan:
            if not self._pause(plan.delay):
                self.close_connection = True
                return
            self._deliver(plan.outcome)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def _pause(self, seconds: float) -> bool:
        """Wait, unless the server stops first; True when the wait ran its course."""
        return not self.server.stopping.wait(seconds)

    def _read_body(self) -> bytes | None:
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        except ValueError:
            return None

    def _read_chunked(self) -> bytes:
        parts = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        # Skip trailers up to the blank line (or end of input).
        while self.rfile.readline().strip():
            pass
        return b"".join(parts)

    def _hold(self) -> None:
        """Stay silent until the client hangs up, the server stops or the hold runs out."""
        with selectors.DefaultSelector() as selector:  # not select.select: fds may exceed 1024
            selector.register(self.connection, selectors.EVENT_READ)
            for _ in range(round(_TIMEOUT_HOLD / _HOLD_STEP)):
                if selector.select(0) and self._peer_closed():
                    return
                if not self._pause(_HOLD_STEP):
                    return

    def _peer_closed(self) -> bool:
        """Called when the socket is readable: readable with nothing to read is end of stream."""
        try:
            return not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:  # reset by the client
            return True

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_LINGER)
        # The descriptor really closes (with RST) when finish() closes rfile, its last user;
        # shutdown_request's FIN afterwards then finds a closed socket and does nothing.
        self.connection.close()

    def _deliver(self, outcome: Reply | Interruption) -> None:
        if outcome is Interruption.TIMEOUT:
            self._hold()
        elif outcome is Interruption.RESET:
            self._reset()
        if isinstance(outcome, Interruption):
            self.close_connection = True  # hang up without a word
            return
        self.send_response(outcome.status)
        for name, value in (*outcome.headers, outcome.framing):
            self.send_header(name, value)
        self.end_headers()
        for part in outcome.delivered():
            # Streamed parts go out one by one, each as an HTTP chunk, as the client reads them.
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if outcome.streamed else part)
            if outcome.streamed:
                self.wfile.flush()
        if outcome.truncated:
            self.close_connection = True
        elif outcome.streamed:
            self.wfile.write(b"0\r\n\r\n")


@contextlib.contextmanager
def serve(emulator: MetasoEmulator, port: int = 0) -> Iterator[str]:
    """Run a server for ``emulator`` while the block runs; yields its base URL."""
    server = _Server(emulator, port)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": _POLL_INTERVAL},
        name="metaso-emulator",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.stop()
        thread.join(_JOIN_TIMEOUT)
