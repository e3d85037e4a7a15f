"""The event model: immutable, time-stamped observations a detector receives.

Timestamps are integer nanoseconds since the Unix epoch, UTC (``ts_ns``). Every event carries a
stable ``event_id`` so that alerts can cite their evidence. Nothing here refers to ground truth:
which actor caused an event is kept apart, in :mod:`harness.truth`, and never reaches a detector.

``NetworkFlow`` records follow NetFlow/EDR export semantics: a long flow is reported in several
records, one per active-timeout interval, each carrying the bytes and packets *of that interval*
(``is_final`` marks the last); the same ``flow_id`` stitches them. A flow that ended within one
interval is a single final record.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "AnomalyKind",
    "AppProtocol",
    "Direction",
    "DnsQuery",
    "Event",
    "EventKind",
    "FileAccess",
    "FileOperation",
    "NetworkConnection",
    "NetworkFlow",
    "ProcessStart",
    "ProtocolAnomaly",
    "Transport",
    "event_kind",
]

NS_PER_S = 1_000_000_000


class EventKind(StrEnum):
    PROCESS_START = "process_start"
    FILE_ACCESS = "file_access"
    NETWORK_FLOW = "network_flow"
    DNS_QUERY = "dns_query"
    PROTOCOL_ANOMALY = "protocol_anomaly"
    NETWORK_CONNECTION = "network_connection"


class Transport(StrEnum):
    TCP = "tcp"
    UDP = "udp"


class Direction(StrEnum):
    #: From an internal host to an address outside the organisation.
    OUTBOUND = "outbound"
    #: From outside to an internal host.
    INBOUND = "inbound"
    #: Between two internal hosts (including the internal resolver and proxy).
    INTERNAL = "internal"


class AppProtocol(StrEnum):
    """Application protocol identified from payload, not from the port."""

    DNS = "dns"
    HTTP = "http"
    TLS = "tls"
    SMB = "smb"
    QUIC = "quic"
    RTP = "rtp"
    UNKNOWN = "unknown"


class FileOperation(StrEnum):
    READ = "read"
    WRITE = "write"
    CREATE = "create"


class AnomalyKind(StrEnum):
    NO_HANDSHAKE = "no_handshake"
    OUT_OF_WINDOW = "out_of_window"
    INJECTED_RESET = "injected_reset"
    MALFORMED_DNS = "malformed_dns"
    PORT_PROTOCOL_MISMATCH = "port_protocol_mismatch"
    WRONG_DIRECTION_FIRST_DATA = "wrong_direction_first_data"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessStart:
    """A process was created (Sysmon 1, EDR process event)."""

    event_id: str
    ts_ns: int
    host: str
    process_guid: str
    pid: int
    image: str
    name: str
    command_line: str
    parent_guid: str | None
    user: str
    signer: str | None = None

    kind = EventKind.PROCESS_START


@dataclass(frozen=True, slots=True, kw_only=True)
class FileAccess:
    """A process read, wrote or created a file (Security 4663, ETW, EDR)."""

    event_id: str
    ts_ns: int
    host: str
    process_guid: str
    path: str
    operation: FileOperation
    bytes: int

    kind = EventKind.FILE_ACCESS


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkFlow:
    """One export record of a transport flow, seen from the host that opened it.

    ``bytes_out``/``packets_out`` are what the originator (``src``) sent in this record's
    interval, ``bytes_in``/``packets_in`` what it received. ``process_guid`` is ``None`` when the
    sensor cannot attribute flows to processes (network-only telemetry).
    """

    event_id: str
    ts_ns: int
    flow_id: str
    host: str
    process_guid: str | None
    transport: Transport
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    direction: Direction
    app_protocol: AppProtocol
    start_ns: int
    end_ns: int
    bytes_out: int
    bytes_in: int
    packets_out: int
    packets_in: int
    is_final: bool = True
    server_name: str | None = None

    kind = EventKind.NETWORK_FLOW


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkConnection:
    """An endpoint sensor saw a process open or accept a connection (Sysmon event 3): who and
    where, but no byte counts. :mod:`harness.ingest.join` joins these to flow records (Zeek,
    NetFlow) on the 5-tuple and time to make process-attributed :class:`NetworkFlow` records;
    detectors consume the joined flows.

    ``initiated`` is True when the process opened the connection (Sysmon ``Initiated``); the
    5-tuple is then ``src`` = this host's side.
    """

    event_id: str
    ts_ns: int
    host: str
    process_guid: str
    transport: Transport
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    direction: Direction
    initiated: bool = True

    kind = EventKind.NETWORK_CONNECTION


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsQuery:
    """A DNS query and its response.

    ``process_guid`` is set only when the query went through the operating system's resolver
    API (Sysmon 22 sees those); a tool that builds its own DNS packets yields ``None`` here and
    shows up, attributed, only as a UDP/53 :class:`NetworkFlow`.
    """

    event_id: str
    ts_ns: int
    host: str
    process_guid: str | None
    src_ip: str
    resolver_ip: str
    query: str
    qtype: str
    rcode: str
    answers: tuple[str, ...]
    query_bytes: int
    response_bytes: int

    kind = EventKind.DNS_QUERY


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolAnomaly:
    """Packet inspection found traffic that does not follow its protocol or flow state."""

    event_id: str
    ts_ns: int
    host: str | None
    transport: Transport
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    anomaly: AnomalyKind
    detail: str
    app_protocol: AppProtocol = AppProtocol.UNKNOWN

    kind = EventKind.PROTOCOL_ANOMALY


Event = ProcessStart | FileAccess | NetworkFlow | DnsQuery | ProtocolAnomaly | NetworkConnection


def event_kind(event: Event) -> EventKind:
    """The kind of an event (a class attribute, so no per-instance storage)."""
    return event.kind
