"""The raw TCP and UDP servers: the TCP stream sink (:class:`StreamHandler`), DNS over TCP
(:class:`DnsTcpHandler`) and the UDP loop that answers DNS or plain datagrams
(:class:`UdpLoop`).
"""

from __future__ import annotations

import ipaddress
import select
import socket
import socketserver
import threading
import time

from harness.lab.backend import Service
from harness.lab.sinks.dns import answer_dns, looks_like_dns
from harness.lab.sinks.logs import Conn
from harness.lab.sinks.shared import TCP_IDLE_S, Shared, TCPServer

__all__ = ["TCP_ACK_PAUSE_S", "UDP_IDLE_S", "DnsTcpHandler", "StreamHandler", "UdpLoop"]

#: A UDP flow with no datagram for this long is written to ``conn.log`` (Zeek's UDP default).
UDP_IDLE_S = 60.0
#: A TCP sink answers after the client has been quiet this long following data.
TCP_ACK_PAUSE_S = 0.3


def _sniff_app(head: bytes) -> str | None:
    """Zeek-like dynamic protocol detection on the first client bytes of a stream."""
    if len(head) >= 3 and head[0] == 0x16 and head[1] == 0x03:
        return "ssl"
    first = head.split(b" ", 1)[0]
    if first in {b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT"}:
        return "http"
    if head.startswith(b"SSH-"):
        return "ssh"
    return None


class StreamHandler(socketserver.BaseRequestHandler):
    """Raw TCP: read to EOF, answer ``ACK <bytes>`` after each pause in the client's data."""

    server: TCPServer

    def handle(self) -> None:
        shared = self.server.shared
        conn = shared.open_conn_for(self)
        sock: socket.socket = self.request
        acked = 0
        idle_since = time.monotonic()
        self.final_state = "SF"
        while True:
            timeout = TCP_ACK_PAUSE_S if conn.bytes_in > acked else 1.0
            ready, _, _ = select.select([sock], [], [], timeout)
            if not ready:
                if conn.bytes_in > acked:
                    reply = b"ACK %d\n" % conn.bytes_in
                    try:
                        sock.sendall(reply)
                    except OSError:
                        self.final_state = "RSTR"
                        return
                    conn.bytes_out += len(reply)
                    acked = conn.bytes_in
                if shared.stopping.is_set() or time.monotonic() - idle_since > TCP_IDLE_S:
                    self.final_state = "S1"
                    return
                continue
            try:
                data = sock.recv(1 << 16)
            except OSError:
                self.final_state = "RSTO"
                return
            if not data:
                conn.client_closed = True
                return
            if conn.app is None and not conn.head:
                conn.app = _sniff_app(data)
            conn.bytes_in += len(data)
            conn.last_ns = time.time_ns()
            shared.seen(conn, data)
            idle_since = time.monotonic()


class DnsTcpHandler(socketserver.BaseRequestHandler):
    """DNS over TCP: length-prefixed messages until EOF."""

    server: TCPServer

    def handle(self) -> None:
        shared = self.server.shared
        conn = shared.open_conn_for(self)
        conn.app = "dns"
        sock: socket.socket = self.request
        sock.settimeout(30.0)
        self.final_state = "SF"
        buf = b""
        while True:
            try:
                data = sock.recv(1 << 16)
            except OSError:
                self.final_state = "S1"
                return
            if not data:
                conn.client_closed = True
                return
            conn.bytes_in += len(data)
            buf += data
            while len(buf) >= 2:
                size = int.from_bytes(buf[:2], "big")
                if len(buf) < 2 + size:
                    break
                message, buf = buf[2 : 2 + size], buf[2 + size :]
                answer = answer_dns(message, shared.plan)
                shared.dns_logged(conn, message, answer, "tcp")
                if answer.response is not None:
                    out = len(answer.response).to_bytes(2, "big") + answer.response
                    try:
                        sock.sendall(out)
                    except OSError:
                        self.final_state = "RSTR"
                        return
                    conn.bytes_out += len(out)


class UdpLoop:
    """A UDP socket served by one thread: DNS answers or the plain UDP sink."""

    def __init__(self, shared: Shared, address: tuple[str, int], service: str) -> None:
        family = (
            socket.AF_INET6 if ipaddress.ip_address(address[0]).version == 6 else socket.AF_INET
        )
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.5)
        self.shared = shared
        self.service = service
        self.address = address
        self.flows: dict[tuple[str, int], Conn] = {}
        self.thread = threading.Thread(target=self.run, name=f"udp-{address}", daemon=True)

    def run(self) -> None:
        shared = self.shared
        last_sweep = time.monotonic()
        while not shared.stopping.is_set():
            try:
                data, client = self.sock.recvfrom(65_535)
            except TimeoutError:
                data, client = b"", None
            except OSError:
                if shared.stopping.is_set():
                    break
                continue
            if client is not None:
                self.datagram(data, (client[0], int(client[1])))
            if time.monotonic() - last_sweep >= 1.0:
                last_sweep = time.monotonic()
                self.sweep(time.time_ns() - int(UDP_IDLE_S * 1e9))
        self.sweep(None)

    def datagram(self, data: bytes, client: tuple[str, int]) -> None:
        shared = self.shared
        conn = self.flows.get(client)
        if conn is None:
            conn = shared.begin(self.service, "udp", client, self.address)
            conn.state = "SF"
            self.flows[client] = conn
        conn.bytes_in += len(data)
        conn.datagrams_in += 1
        conn.last_ns = time.time_ns()
        if self.service == Service.DNS.value:
            conn.app = "dns"
            answer = answer_dns(data, shared.plan)
            shared.dns_logged(conn, data, answer, "udp")
            reply = answer.response
        else:
            if conn.app is None and conn.datagrams_in == 1:
                conn.app = "dns" if looks_like_dns(data) else None
            shared.seen(conn, data)
            reply = b"ok"
        if reply is not None:
            try:
                self.sock.sendto(reply, client)
                conn.bytes_out += len(reply)
            except OSError:
                pass
        conn.end_ns = conn.last_ns = time.time_ns()

    def sweep(self, before_ns: int | None) -> None:
        for client, conn in list(self.flows.items()):
            if before_ns is None or conn.last_ns < before_ns:
                del self.flows[client]
                self.shared.end(conn, "SF")
