"""A small threaded HTTP server for tests: handlers are plain functions; and
:class:`FakeService`, the base of the fakes that answer like a real service.

Each response goes out in one write with TCP_NODELAY (a stdlib server otherwise stalls
~40 ms per response, which distorts anything timed).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Response = tuple[int, dict[str, str], bytes]
Handler = Callable[[str, str, dict[str, str], bytes], Response]


def json_response(data: Any, status: int = 200) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open 50+ connections at once (default: 5)
    allow_reuse_address = True


class FakeHTTPServer:
    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        outer = self
        self.handler = handler
        self.requests: list[tuple[str, str, bytes]] = []

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, body))
                status, headers, payload = outer.handler(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
                headers = {"Content-Length": str(len(payload)), **headers}
                head += [f"{k}: {v}" for k, v in headers.items()]
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _Server((host, port), RequestHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHTTPServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def count(self, path_prefix: str) -> int:
        return sum(1 for _m, p, _b in self.requests if p.startswith(path_prefix))


class FakeService:
    """A local service that answers like a real one (Stripe, Mastodon…): a subclass
    answers in ``handle`` and forgets what a test did in ``reset``, so one server can
    serve a whole test module. ``delay`` holds each answer back (see :meth:`hold`) until
    the service stops, so tests see timeouts without waiting them out."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.release = threading.Event()
        self.server = FakeHTTPServer(self.handle)

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> Self:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.__exit__(*exc)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        raise NotImplementedError

    def hold(self) -> None:
        """Wait ``delay`` seconds before answering, or until the service stops."""
        if self.delay:
            self.release.wait(self.delay)

    def reset(self) -> None:
        self.delay = 0.0
