"""The sink process's logs: ``sinks.jsonl`` and Zeek-style ``conn.log`` and ``dns.log``
(:class:`SinkLog`), and what the sink knows about one connection or UDP flow
(:class:`Conn`).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.lab.backend import LabPlan

__all__ = ["Conn", "SinkLog"]


class SinkLog:
    """Thread-safe writers of ``sinks.jsonl``, ``conn.log`` and ``dns.log``."""

    def __init__(self, directory: Path, plan: LabPlan) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.run_id = plan.run_id
        self._internal = [ipaddress.ip_network(n, strict=False) for n in plan.internal_networks]
        self._lock = threading.Lock()
        self._uids = itertools.count(1)
        self._events = (directory / "sinks.jsonl").open("a", encoding="utf-8")
        self._conn = (directory / "conn.log").open("a", encoding="utf-8")
        self._dns = (directory / "dns.log").open("a", encoding="utf-8")
        self._closed = False

    def uid(self) -> str:
        with self._lock:
            return f"C{self.run_id}{next(self._uids):09d}"

    def is_local(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip.version == n.version and ip in n for n in self._internal)

    def _write(self, stream: IO[str], record: Mapping[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
        with self._lock:
            if self._closed:
                return
            stream.write(line)
            stream.flush()

    def event(self, record: Mapping[str, Any]) -> None:
        self._write(self._events, record)

    def conn(self, c: Conn) -> None:
        """One connection or UDP flow: a ``sinks.jsonl`` line and a ``conn.log`` record."""
        end = c.end_ns or time.time_ns()
        self.event(
            {
                "event": "connection",
                "ts_ns": c.start_ns,
                "end_ns": end,
                "service": c.service,
                "transport": c.transport,
                "client_ip": c.client_ip,
                "client_port": c.client_port,
                "server_ip": c.server_ip,
                "server_port": c.server_port,
                "bytes_in": c.bytes_in,
                "bytes_out": c.bytes_out,
                "datagrams_in": c.datagrams_in if c.transport == "udp" else None,
                "requests": c.requests,
                "run_id": c.run_id,
                "state": c.state,
                "uid": c.uid,
                "owner": c.owner,
            }
        )
        record: dict[str, Any] = {
            "ts": c.start_ns / 1e9,
            "uid": c.uid,
            "id.orig_h": c.client_ip,
            "id.orig_p": c.client_port,
            "id.resp_h": c.server_ip,
            "id.resp_p": c.server_port,
            "proto": c.transport,
            "duration": max(0, end - c.start_ns) / 1e9,
            "orig_bytes": c.bytes_in,
            "resp_bytes": c.bytes_out,
            "conn_state": c.state,
            "local_orig": self.is_local(c.client_ip),
            "local_resp": self.is_local(c.server_ip),
            "missed_bytes": 0,
        }
        if c.app is not None:
            record["service"] = c.app
        if c.transport == "tcp":
            record["history"] = c.history()
        self._write(self._conn, record)

    def dns(self, record: Mapping[str, Any]) -> None:
        self._write(self._dns, record)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for stream in (self._events, self._conn, self._dns):
                stream.flush()
                stream.close()


@dataclass(slots=True, kw_only=True)
class Conn:
    """What the sink knows about one connection or UDP flow (mutable while it runs)."""

    uid: str
    service: str
    transport: str
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    start_ns: int = field(default_factory=time.time_ns)
    end_ns: int | None = None
    last_ns: int = field(default_factory=time.time_ns)
    bytes_in: int = 0
    bytes_out: int = 0
    datagrams_in: int = 0
    requests: int = 0
    run_id: str | None = None
    #: Zeek's ``service`` for the connection (``dns``, ``ssl``, ``http``) when identified.
    app: str | None = None
    state: str = "S1"
    client_closed: bool = False
    logged: bool = False
    head: bytearray = field(default_factory=bytearray)
    #: The client process holding the socket, as :class:`OwnerLookup` found it (or None).
    owner: dict[str, Any] | None = None

    def history(self) -> str:
        # The sink accepted the connection, so the handshake happened.
        out = "ShA"
        if self.bytes_in:
            out += "D"
        if self.bytes_out:
            out += "d"
        if self.client_closed:
            out += "F"
        return out
