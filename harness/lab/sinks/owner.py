"""Which client process holds a socket, looked up in ``/proc`` when the sink sees the
connection (:class:`OwnerLookup`), with the ``/proc`` readers of :mod:`harness.lab.procfs`.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from harness.events import Transport
from harness.lab.procfs import (
    SOCKET_TABLES,
    endpoint,
    netns_of,
    read_stat,
    socket_inodes,
    socket_table,
)

__all__ = ["OwnerLookup"]


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
            ns = netns_of(self.proc, int(name))
            if ns is not None:
                by_ns.setdefault(ns, []).append(int(name))
        self._ns_pids = by_ns
        self._scanned = time.monotonic()

    def lookup(self, transport: str, client_ip: str, client_port: int) -> dict[str, Any] | None:
        if client_ip not in self.clients:
            return None
        wanted = Transport.TCP if transport == "tcp" else Transport.UDP
        tables = tuple((name, v6) for name, t, v6 in SOCKET_TABLES if t is wanted)
        with self._lock:
            for attempt in range(2):
                if attempt or time.monotonic() - self._scanned > 0.5:
                    self._scan()
                found = self._find(tables, client_ip, client_port)
                if found is not None:
                    return found
        return None

    def _find(
        self, tables: tuple[tuple[str, bool], ...], client_ip: str, client_port: int
    ) -> dict[str, Any] | None:
        for ns, pids in self._ns_pids.items():
            inode = self._inode(pids, tables, client_ip, client_port)
            if inode is None:
                continue
            for pid in pids:
                # Lazy: stops reading descriptor links at the socket.
                if inode not in socket_inodes(self.proc, pid):
                    continue
                st = read_stat(self.proc, pid)
                if st is None:
                    continue
                return {
                    "pid": pid,
                    "start_ticks": st.start_ticks,
                    "comm": st.comm,
                    "netns": ns,
                    "ts_ns": time.time_ns(),
                }
        return None

    def _inode(
        self,
        pids: list[int],
        tables: tuple[tuple[str, bool], ...],
        client_ip: str,
        client_port: int,
    ) -> int | None:
        for pid in pids[:3]:  # any live member shows the namespace's tables
            read = False
            for table, v6 in tables:
                rows = socket_table(self.proc, pid, table)
                if rows is None:
                    continue
                read = True
                for inode, parts in rows:
                    if endpoint(parts[1], v6) == (client_ip, client_port):
                        return inode
            if read:
                return None
        return None
