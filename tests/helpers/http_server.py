"""A local HTTP file server on 127.0.0.1 for download tests: counts requests, honours Range,
and can misbehave on purpose (cut a response short, ignore Range, serve corrupt bytes)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    """What the server holds and how it behaves; ``requests`` logs ``(path, Range header)``."""

    files: dict[str, bytes]
    port: int = 0
    cut_responses: int = 0  # the next N responses stop halfway (the connection closes)
    ignore_range: bool = False  # answer Range requests with the whole file (200)
    corrupt: bool = False  # flip the last byte of every response
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


def _handler(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name, requested = self.path.lstrip("/"), self.headers.get("Range")
            served.requests.append((name, requested))
            if name not in served.files:
                self.send_error(404)
                return
            data, start = served.files[name], 0
            if requested and not served.ignore_range:
                start = int(requested.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if served.corrupt:
                body = body[:-1] + bytes([body[-1] ^ 0xFF])
            if served.cut_responses > 0:
                served.cut_responses -= 1
                body = body[: len(body) // 2]
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

    return Handler


@contextmanager
def serve(files: dict[str, bytes], **behaviour: object) -> Iterator[Served]:
    """Serve ``files`` (name → content) on a free loopback port until the block ends."""
    served = Served(files, **behaviour)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    server.daemon_threads = True
    served.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
