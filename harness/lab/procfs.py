"""Readers of the ``/proc`` files the lab's socket attribution needs, shared by the harness's
socket monitor (:class:`harness.lab.attribution.SocketMonitor`) and the sinks' owner lookup
(:class:`harness.lab.sinks.OwnerLookup`).

Every reader takes the proc root (``/proc``, or another mount of it) and a pid, and answers
``None`` (or nothing) when the process is gone or the file cannot be read: processes come and go
between listing ``/proc`` and reading their files, so a failed read is not an error.

* :func:`read_stat`: ppid, comm and ``starttime`` of ``/proc/PID/stat``;
* :func:`netns_of`: the network namespace (``readlink /proc/PID/ns/net``, ``net:[INODE]``);
* :func:`socket_inodes`: the socket inodes of the process's open descriptors (``/proc/PID/fd``);
* :func:`socket_table`: the rows of one of the namespace's socket tables
  (``/proc/PID/net/{tcp,tcp6,udp,udp6}``, :data:`SOCKET_TABLES`), whose addresses
  :func:`endpoint` decodes.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from harness.events import Transport

__all__ = [
    "SOCKET_TABLES",
    "TCP_LISTEN",
    "Stat",
    "endpoint",
    "hex_ip",
    "netns_of",
    "read_stat",
    "socket_inodes",
    "socket_table",
]

#: The socket tables of ``/proc/PID/net``: (file name, transport, IPv6).
SOCKET_TABLES: tuple[tuple[str, Transport, bool], ...] = (
    ("tcp", Transport.TCP, False),
    ("tcp6", Transport.TCP, True),
    ("udp", Transport.UDP, False),
    ("udp6", Transport.UDP, True),
)
#: The ``st`` column of a listening TCP socket.
TCP_LISTEN = "0A"


@dataclass(frozen=True, slots=True)
class Stat:
    """What the attribution needs of ``/proc/PID/stat``."""

    ppid: int
    comm: str
    #: ``starttime``: clock ticks since boot.
    start_ticks: int


def hex_ip(text: str, v6: bool) -> str:
    """An address as the socket tables print it (``0100007F``) in text form (``127.0.0.1``); an
    IPv4-mapped IPv6 address as its IPv4 address."""
    raw = bytes.fromhex(text)
    if not v6:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    # /proc prints the address as four host-order (little-endian) 32-bit words.
    words = struct.unpack("<4I", raw)
    packed = struct.pack(">4I", *words)
    if packed[:12] == b"\0" * 10 + b"\xff\xff":
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


def endpoint(text: str, v6: bool) -> tuple[str, int]:
    """``0100007F:0035`` (a socket table's address column) as ``("127.0.0.1", 53)``."""
    ip, _, port = text.partition(":")
    return hex_ip(ip, v6), int(port, 16)


def read_stat(proc: str, pid: int) -> Stat | None:
    """ppid, comm and start ticks of ``pid``; ``None`` if it is gone or the line is malformed."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: it ends at the last ')'.
    lpar, rpar = data.find(b"("), data.rfind(b")")
    fields = data[rpar + 2 :].split()
    try:
        return Stat(
            ppid=int(fields[1]),
            comm=data[lpar + 1 : rpar].decode(errors="replace"),
            start_ticks=int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


def netns_of(proc: str, pid: int) -> str | None:
    """The network namespace of ``pid`` (``net:[INODE]``), or ``None`` if it is gone."""
    try:
        return os.readlink(f"{proc}/{pid}/ns/net")
    except OSError:
        return None


def socket_inodes(proc: str, pid: int) -> Iterator[int]:
    """The inodes of the sockets among ``pid``'s open descriptors, in descriptor listing order.
    Lazy, so that a caller looking for one inode stops reading links once it is found."""
    base = f"{proc}/{pid}/fd"
    try:
        fds = os.listdir(base)
    except OSError:
        return
    for fd in fds:
        try:
            target = os.readlink(f"{base}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            yield int(target[8:-1])


def socket_table(proc: str, pid: int, table: str) -> list[tuple[int, list[str]]] | None:
    """The rows of ``/proc/PID/net/TABLE`` (the tables of ``pid``'s network namespace) that
    have a socket inode, as (inode, whitespace-split columns), in table order; ``None`` when
    the table cannot be read (as opposed to ``[]``: read, no socket)."""
    try:
        with open(f"{proc}/{pid}/net/{table}", encoding="ascii") as f:
            lines = f.readlines()[1:]
    except OSError:
        return None
    rows = []
    for line in lines:
        parts = line.split()
        if len(parts) < 10:
            continue
        inode = int(parts[9])
        # Inode 0: a socket with no descriptor left (TIME_WAIT and the like).
        if inode != 0:
            rows.append((inode, parts))
    return rows
