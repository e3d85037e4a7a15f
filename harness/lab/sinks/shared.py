"""What every server of the sink process shares (:class:`Shared`: the plan, the log, the open
connections, run-id detection, connection and DNS logging) and the threaded TCP server
they run on (:class:`TCPServer`, TLS included).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import socketserver
import ssl
import threading
import time
from typing import Any

from harness.lab.backend import LabPlan
from harness.lab.sinks.dns import DnsAnswer
from harness.lab.sinks.logs import Conn, SinkLog
from harness.lab.sinks.owner import OwnerLookup
from harness.pcap import dnswire

__all__ = ["RUN_ID_SCAN", "TCP_IDLE_S", "Shared", "TCPServer", "find_run_id"]

#: A TCP connection with no data at all for this long is closed by the sink.
TCP_IDLE_S = 300.0
#: Bytes of a stream searched for the run id.
RUN_ID_SCAN = 64 << 10


def find_run_id(run_id: str, data: bytes | str) -> bool:
    """Whether ``run_id`` appears in ``data``: as a whole DNS label or token for short ids
    (so a one-letter id does not match everything), as a substring for ids of 4 or more."""
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    low = text.lower()
    if len(run_id) >= 4:
        return run_id in low
    return run_id in set(re.split(r"[^a-z0-9]+", low))


class Shared:
    """What every server of the sink process shares: the plan, the log, open connections."""

    def __init__(self, plan: LabPlan, log: SinkLog) -> None:
        self.plan = plan
        self.log = log
        self.lock = threading.Lock()
        self.open: dict[str, Conn] = {}
        self.stopping = threading.Event()
        self.owners: OwnerLookup | None = OwnerLookup(
            {c.address for c in plan.clients}
        ) if OwnerLookup.usable() else None  # fmt: skip
        self._by_peer: dict[tuple[str, int, str, int], Conn] = {}

    def begin(
        self, service: str, transport: str, client: tuple[str, int], server: tuple[str, int]
    ) -> Conn:
        conn = Conn(
            uid=self.log.uid(),
            service=service,
            transport=transport,
            client_ip=client[0],
            client_port=int(client[1]),
            server_ip=server[0],
            server_port=int(server[1]),
        )
        with self.lock:
            self.open[conn.uid] = conn
            if transport == "tcp":
                self._by_peer[(client[0], int(client[1]), server[0], int(server[1]))] = conn
        if self.owners is not None:
            conn.owner = self.owners.lookup(transport, conn.client_ip, conn.client_port)
        return conn

    def seen(self, conn: Conn, data: bytes) -> None:
        """Note client bytes for run-id detection and protocol sniffing."""
        if conn.run_id is None and len(conn.head) < RUN_ID_SCAN:
            conn.head += data[: RUN_ID_SCAN - len(conn.head)]
            if find_run_id(self.plan.run_id, bytes(conn.head)):
                conn.run_id = self.plan.run_id

    def end(self, conn: Conn, state: str) -> None:
        with self.lock:
            if conn.logged:
                return
            conn.logged = True
            self.open.pop(conn.uid, None)
            key = (conn.client_ip, conn.client_port, conn.server_ip, conn.server_port)
            if self._by_peer.get(key) is conn:
                del self._by_peer[key]
        conn.end_ns = conn.end_ns or time.time_ns()
        conn.state = state
        self.log.conn(conn)

    def open_conn_for(self, handler: socketserver.BaseRequestHandler) -> Conn:
        client = handler.client_address
        server = handler.request.getsockname()
        with self.lock:
            return self._by_peer[(client[0], int(client[1]), server[0], int(server[1]))]

    def dns_logged(self, conn: Conn, message: bytes, answer: DnsAnswer, proto: str) -> None:
        run_seen = answer.query is not None and find_run_id(self.plan.run_id, answer.query)
        if run_seen:
            conn.run_id = self.plan.run_id
        now = time.time_ns()
        self.log.event(
            {
                "event": "dns_query",
                "ts_ns": now,
                "uid": conn.uid,
                "service": "dns",
                "transport": proto,
                "client_ip": conn.client_ip,
                "client_port": conn.client_port,
                "server_ip": conn.server_ip,
                "server_port": conn.server_port,
                "query": answer.query,
                "qtype": None if answer.qtype is None else dnswire.qtype_name(answer.qtype),
                "rcode": dnswire.rcode_name(answer.rcode),
                "bytes_in": len(message),
                "bytes_out": 0 if answer.response is None else len(answer.response),
                "run_id": self.plan.run_id if run_seen else None,
                "error": answer.error,
            }
        )
        if answer.query is None:
            return  # Zeek's dns.log has no record for a message without a question
        record: dict[str, Any] = {
            "ts": now / 1e9,
            "uid": conn.uid,
            "id.orig_h": conn.client_ip,
            "id.orig_p": conn.client_port,
            "id.resp_h": conn.server_ip,
            "id.resp_p": conn.server_port,
            "proto": proto,
            "trans_id": answer.txid,
            "query": answer.query,
            "qclass": 1,
            "qclass_name": "C_INTERNET",
            "rcode": answer.rcode,
            "rcode_name": dnswire.rcode_name(answer.rcode),
            "AA": answer.rcode in (0, 3),
            "TC": False,
            "RD": False,
            "RA": False,
            "Z": 0,
            "rejected": False,
        }
        if answer.qtype is not None:
            record["qtype"] = answer.qtype
            record["qtype_name"] = dnswire.qtype_name(answer.qtype)
        if answer.answers:
            record["answers"] = list(answer.answers)
            record["TTLs"] = [float(t) for t in answer.ttls]
        self.log.dns(record)

    def end_all(self) -> None:
        with self.lock:
            pending = list(self.open.values())
        for conn in pending:
            self.end(conn, conn.state)


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[socketserver.BaseRequestHandler],
        *,
        shared: Shared,
        service: str,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.address_family = (
            socket.AF_INET6 if ipaddress.ip_address(address[0]).version == 6 else socket.AF_INET
        )
        self.shared = shared
        self.service = service
        self.tls = tls
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        shared = self.shared
        server = request.getsockname()[:2]
        conn = shared.begin(self.service, "tcp", client_address[:2], server)
        state = "SF"
        try:
            if self.tls is not None:
                conn.app = "ssl"
                try:
                    request = self.tls.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    shared.log.event(
                        {"event": "tls_error", "ts_ns": time.time_ns(), "uid": conn.uid,
                         "error": str(exc)[:200]}
                    )  # fmt: skip
                    state = "REJ" if isinstance(exc, ConnectionResetError) else "S1"
                    return
            handler = self.RequestHandlerClass(request, client_address, self)  # type: ignore[arg-type]
            state = getattr(handler, "final_state", "SF")
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError):
            state = "RSTO"
        finally:
            shared.end(conn, state)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client misbehaving must not print tracebacks or stop the server.
        pass
