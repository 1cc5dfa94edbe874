"""A stand-in web server on 127.0.0.1 that records what the worker sends it: JSON posts (routine
callbacks, tool requests) and their headers, and serves ``page`` as text to GETs (pre-checks)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Capture(ThreadingHTTPServer):
    """Records each request as ``{"method", "path", "headers", "json"}`` in ``requests``; ``posts``
    holds the JSON bodies of the POSTs."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.page = "price: 9.99"
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append({"method": self.command, "path": self.path, "headers": headers, "json": body})

            def do_GET(self) -> None:  # noqa: N802
                self._record()
                body = outer.page.encode()
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                self._record()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def posts(self) -> list:
        return [r["json"] for r in self.requests if r["method"] == "POST"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/done"


@pytest.fixture
def capture():
    server = Capture()
    yield server
    server.shutdown()
    server.server_close()
