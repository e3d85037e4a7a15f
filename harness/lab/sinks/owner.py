"""Which client process holds a socket, looked up in ``/proc`` when the sink sees the
connection (:class:`OwnerLookup`).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

__all__ = ["OwnerLookup"]


def _proc_endpoint(text: str) -> tuple[str, int]:
    """``0100007F:0035`` (``/proc/net/tcp`` form) as ``("127.0.0.1", 53)``; IPv6 likewise."""
    ip_hex, _, port_hex = text.partition(":")
    raw = bytes.fromhex(ip_hex)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port_hex, 16)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    if words[:12] == b"\0" * 10 + b"\xff\xff":
        return socket.inet_ntop(socket.AF_INET, words[12:]), int(port_hex, 16)
    return socket.inet_ntop(socket.AF_INET6, words), int(port_hex, 16)


class OwnerLookup:
    """Which process holds a client's socket, looked up in ``/proc`` the moment the sink sees
    the connection or the first datagram of a flow, while the client still waits for an answer.

    The lab's socket monitor polls; a socket that lives a few milliseconds (a resolver lookup, a
    session the sink refuses at once) falls between two polls. The sink sees every one of them
    and, when it shares the harness's ``/proc`` (netns and loopback backends; not a container
    with its own pid namespace), finds the owner at once: the socket table of each network
    namespace holding a client address, the inode whose local end is the client's address and
    port, and the process with that inode among its descriptors. The result (pid, ``starttime``
    ticks, comm, network namespace) is a hint for the orchestrator's attribution.
    """

    def __init__(self, clients: set[str], proc: str = "/proc") -> None:
        self.clients = clients
        self.proc = proc
        self._ns_pids: dict[str, list[int]] = {}
        self._scanned = 0.0
        self._lock = threading.Lock()

    @staticmethod
    def usable(proc: str = "/proc") -> bool:
        """Whether other processes' descriptors can be read (root, as the lab runs)."""
        return os.geteuid() == 0 and os.path.isdir(f"{proc}/1/fd")

    def _scan(self) -> None:
        by_ns: dict[str, list[int]] = {}
        for name in os.listdir(self.proc):
            if not name.isdigit():
                continue
            try:
                ns = os.readlink(f"{self.proc}/{name}/ns/net")
            except OSError:
                continue
            by_ns.setdefault(ns, []).append(int(name))
        self._ns_pids = by_ns
        self._scanned = time.monotonic()

    def lookup(self, transport: str, client_ip: str, client_port: int) -> dict[str, Any] | None:
        if client_ip not in self.clients:
            return None
        tables = ("tcp", "tcp6") if transport == "tcp" else ("udp", "udp6")
        with self._lock:
            for attempt in range(2):
                if attempt or time.monotonic() - self._scanned > 0.5:
                    self._scan()
                found = self._find(tables, client_ip, client_port)
                if found is not None:
                    return found
        return None

    def _find(
        self, tables: tuple[str, ...], client_ip: str, client_port: int
    ) -> dict[str, Any] | None:
        for ns, pids in self._ns_pids.items():
            inode = self._inode(pids, tables, client_ip, client_port)
            if inode is None:
                continue
            target = f"socket:[{inode}]"
            for pid in pids:
                base = f"{self.proc}/{pid}"
                try:
                    fds = os.listdir(f"{base}/fd")
                except OSError:
                    continue
                for fd in fds:
                    try:
                        if os.readlink(f"{base}/fd/{fd}") != target:
                            continue
                        with open(f"{base}/stat", "rb") as f:
                            stat = f.read()
                    except OSError:
                        continue
                    rpar = stat.rfind(b")")
                    fields = stat[rpar + 2 :].split()
                    return {
                        "pid": pid,
                        "start_ticks": int(fields[19]),
                        "comm": stat[stat.find(b"(") + 1 : rpar].decode(errors="replace"),
                        "netns": ns,
                        "ts_ns": time.time_ns(),
                    }
        return None

    def _inode(
        self, pids: list[int], tables: tuple[str, ...], client_ip: str, client_port: int
    ) -> int | None:
        for pid in pids[:3]:  # any live member shows the namespace's tables
            read = False
            for table in tables:
                try:
                    with open(f"{self.proc}/{pid}/net/{table}", encoding="ascii") as f:
                        lines = f.readlines()[1:]
                except OSError:
                    continue
                read = True
                for line in lines:
                    parts = line.split()
                    if len(parts) < 10 or parts[9] == "0":
                        continue
                    if _proc_endpoint(parts[1]) == (client_ip, client_port):
                        return int(parts[9])
            if read:
                return None
        return None
