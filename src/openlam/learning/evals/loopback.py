"""A small HTTP server on loopback for the worlds suites build (a site, a REST service):
subclass and implement :meth:`LoopbackServer.route`."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, str, str]  # status, content type, body


class LoopbackServer:
    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner._reply(self, "GET")

            def do_POST(self) -> None:
                owner._reply(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, method: str, path: str, body: bytes) -> Reply:
        raise NotImplementedError

    def _reply(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        status, kind, text = self.route(method, handler.path.split("?", 1)[0], body)
        data = text.encode()
        # one write with TCP_NODELAY: a response in pieces stalls ~40 ms (delayed ACK)
        handler.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = (
            f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}\r\n"
            f"Content-Type: {kind}\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        handler.wfile.write(head + data)
        handler.close_connection = True
