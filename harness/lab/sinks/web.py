"""The HTTPS and HTTP sinks: ``GET ?size=N`` returns that many bytes, ``POST`` and ``PUT``
read and count the body (:class:`HttpHandler`).
"""

from __future__ import annotations

import http.server
import time
import urllib.parse
from typing import Any

from harness.lab import RUN_ID_HEADER
from harness.lab.sinks.logs import Conn
from harness.lab.sinks.shared import TCP_IDLE_S, Shared, TCPServer

__all__ = ["MAX_GET_BYTES", "HttpHandler"]

#: The largest body a ``GET ?size=N`` returns.
MAX_GET_BYTES = 64 << 20


class _Counting:
    """A file-like proxy that counts bytes read from / written to the wrapped stream."""

    def __init__(self, stream: Any, conn: Conn, shared: Shared, *, inbound: bool) -> None:
        self._stream = stream
        self._conn = conn
        self._shared = shared
        self._inbound = inbound

    def _count(self, data: bytes) -> bytes:
        if self._inbound:
            self._conn.bytes_in += len(data)
            self._shared.seen(self._conn, data)
        else:
            self._conn.bytes_out += len(data)
        self._conn.last_ns = time.time_ns()
        return data

    def read(self, size: int = -1) -> bytes:
        return self._count(self._stream.read(size))

    def readline(self, size: int = -1) -> bytes:
        return self._count(self._stream.readline(size))

    def write(self, data: bytes) -> int:
        written = self._stream.write(data)
        self._count(bytes(data))
        return int(written) if written is not None else len(data)

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()

    @property
    def closed(self) -> bool:
        return bool(self._stream.closed)


class HttpHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "eh-lab-sink/1"
    sys_version = ""
    server: TCPServer
    timeout = TCP_IDLE_S

    def setup(self) -> None:
        super().setup()
        self.conn = self.server.shared.open_conn_for(self)
        self.rfile = _Counting(self.rfile, self.conn, self.server.shared, inbound=True)  # type: ignore[assignment]
        self.wfile = _Counting(self.wfile, self.conn, self.server.shared, inbound=False)  # type: ignore[assignment]
        if self.conn.app is None:
            self.conn.app = "http"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _begin(self) -> tuple[int, int]:
        self.conn.requests += 1
        header = self.headers.get(RUN_ID_HEADER)
        if header is not None and header.strip().lower() == self.server.shared.plan.run_id:
            self.conn.run_id = self.server.shared.plan.run_id
        return self.conn.bytes_in, self.conn.bytes_out

    def _finish(self, before: tuple[int, int], body: int) -> None:
        shared = self.server.shared
        shared.log.event(
            {
                "event": "http_request",
                "ts_ns": time.time_ns(),
                "uid": self.conn.uid,
                "service": self.conn.service,
                "method": self.command,
                "path": self.path[:200],
                "host": self.headers.get("Host"),
                "user_agent": self.headers.get("User-Agent"),
                "client_ip": self.conn.client_ip,
                "client_port": self.conn.client_port,
                "server_ip": self.conn.server_ip,
                "server_port": self.conn.server_port,
                "body_bytes": body,
                "bytes_in": self.conn.bytes_in - before[0],
                "bytes_out": self.conn.bytes_out - before[1],
                "run_id": shared.plan.run_id
                if (self.headers.get(RUN_ID_HEADER) or "").strip().lower() == shared.plan.run_id
                else None,
            }
        )

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header(RUN_ID_HEADER, self.server.shared.plan.run_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        before = self._begin()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        try:
            size = int(query.get("size", ["0"])[0])
        except ValueError:
            size = -1
        if not 0 <= size <= MAX_GET_BYTES:
            self._reply(400, b'{"error": "size must be 0..%d"}\n' % MAX_GET_BYTES)
            self._finish(before, 0)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.send_header(RUN_ID_HEADER, self.server.shared.plan.run_id)
        self.end_headers()
        chunk = b"x" * min(size, 1 << 16)
        left = size
        while left > 0:
            self.wfile.write(chunk[:left])
            left -= min(left, len(chunk))
        self._finish(before, 0)

    do_HEAD = do_GET

    def _body(self) -> int:
        """Read the request body (Content-Length or chunked); its length."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            total = 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    break
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left > 0:
                    got = self.rfile.read(min(left, 1 << 16))
                    if not got:
                        return total
                    left -= len(got)
                    total += len(got)
                self.rfile.readline(8)
            return total
        length = int(self.headers.get("Content-Length") or 0)
        left = length
        while left > 0:
            got = self.rfile.read(min(left, 1 << 16))
            if not got:
                break
            left -= len(got)
        return length - left

    def do_POST(self) -> None:
        before = self._begin()
        try:
            body = self._body()
        except ValueError:
            self.close_connection = True
            self._reply(400, b'{"error": "bad body framing"}\n')
            self._finish(before, 0)
            return
        self._reply(200, b'{"received": %d}\n' % body)
        self._finish(before, body)

    do_PUT = do_POST

    def _not_allowed(self) -> None:
        before = self._begin()
        self.close_connection = True
        self._reply(405, b'{"error": "method not allowed"}\n')
        self._finish(before, 0)

    do_DELETE = do_OPTIONS = do_PATCH = _not_allowed
