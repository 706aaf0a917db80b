"""A real HTTP server on loopback that records the webhook posts it receives, for tests.

    with Receiver(answers=[500, 200]) as hook: ... hook.url ... hook.bodies

``answers`` are the status codes given in turn (the last one repeats); ``delay`` seconds are
slept before each answer (a slow receiver).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, answers: list[int] | None = None, delay: float = 0.0) -> None:
        self.answers = answers or [200]
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.calls = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    code = receiver.answers[min(receiver.calls, len(receiver.answers) - 1)]
                    receiver.calls += 1
                    receiver.bodies.append(json.loads(body))
                    receiver.headers.append(dict(self.headers))
                time.sleep(receiver.delay)
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a time-out test)

            def log_message(self, *_args: object) -> None:
                return None

        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
