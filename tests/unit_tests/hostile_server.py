"""A raw-socket HTTP server on 127.0.0.1 that misbehaves as a test tells it to.

``HostileServer(behave)`` reads each request (headers and body) and hands the connection
to ``behave(conn, server)``, which writes whatever it likes. Nothing depends on timing: a
behaviour that must wait blocks on ``server.release`` (a ``threading.Event`` the fixture
sets at the end), and ``server.requests`` counts what reached it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

Behave = Callable[[socket.socket, "HostileServer"], None]


class HostileServer:
    def __init__(self, behave: Behave) -> None:
        self.behave = behave
        self.release = threading.Event()
        self.closed_by_client = threading.Event()
        self.arrived = threading.Event()  # set once a request has been read
        self.requests = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                while self._read_request(conn):
                    with self._lock:
                        self.requests += 1
                    self.arrived.set()
                    self.behave(conn, self)
            except OSError:
                pass

    def _read_request(self, conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                self.closed_by_client.set()
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += conn.recv(65536)
        return True

    def stop(self) -> None:
        self.release.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(5)


def head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)
