"""Shared helpers for the pcap reader tests: capture building and reading."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from harness.events import DnsQuery, Event, NetworkFlow, ProtocolAnomaly
from harness.ingest import IngestConfig, PcapEventReader
from harness.pcap.writer import PcapWriter

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def write(path: Path, packets: Iterable[tuple[int, bytes]], *, linktype: int = 1) -> Path:
    with PcapWriter(path, linktype=linktype) as w:
        w.write_many(sorted(packets, key=lambda p: p[0]))
    return path


def read(
    path: Path,
    *,
    fast: bool = True,
    chunk_bytes: int = 16 << 20,
    config: IngestConfig | None = None,
) -> tuple[list[Event], PcapEventReader]:
    reader = PcapEventReader(path, fast=fast, chunk_bytes=chunk_bytes, config=config)
    return list(reader), reader


def flows(events: list[Event]) -> list[NetworkFlow]:
    return [e for e in events if isinstance(e, NetworkFlow)]


def dns(events: list[Event]) -> list[DnsQuery]:
    return [e for e in events if isinstance(e, DnsQuery)]


def anomalies(events: list[Event]) -> list[ProtocolAnomaly]:
    return [e for e in events if isinstance(e, ProtocolAnomaly)]


def swap_endianness(data: bytes) -> bytes:
    """The same classic pcap file written big-endian."""
    out = bytearray()
    magic, major, minor, zone, sig, snap, lt = struct.unpack_from("<IHHiIII", data, 0)
    out += struct.pack(">IHHiIII", magic, major, minor, zone, sig, snap, lt)
    p = 24
    while p < len(data):
        sec, sub, cap, orig = struct.unpack_from("<IIII", data, p)
        out += struct.pack(">IIII", sec, sub, cap, orig)
        out += data[p + 16 : p + 16 + cap]
        p += 16 + cap
    return bytes(out)


def client_hello(server_name: str) -> bytes:
    """A small well-formed TLS 1.3 ClientHello record with an SNI extension."""
    name = server_name.encode()
    sni = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    extensions = sni + b"\x00\x2b\x00\x03\x02\x03\x04"
    body = (
        b"\x03\x03" + bytes(range(32)) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
        + struct.pack("!H", len(extensions)) + extensions
    )  # fmt: skip
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake
