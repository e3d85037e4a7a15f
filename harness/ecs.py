"""Events as Elastic Common Schema (ECS) documents, one JSON object per line (NDJSON).

:func:`to_ecs` maps an :class:`~harness.events.Event` to an ECS document and :func:`from_ecs`
maps it back; the pair round-trips every event kind exactly. Fields ECS defines carry the data
under their ECS names (``@timestamp``, ``event.kind/category/type/action``, ``host.name``,
``process.*``, ``user.name``, ``file.path``, ``source.*``, ``destination.*``, ``network.*``,
``dns.*``, ``tls.client.server_name``, ``url.domain``); what ECS lacks lives under
``egress_harness.*`` (the event id and kind, the flow id and ``is_final``, exact nanosecond
times, the anomaly kind, the file bytes of an access, whether an endpoint connection was
initiated by the process). An endpoint connection (Sysmon event 3) is ``event.category:
network``, ``event.type: [connection, start]`` with ``process.entity_id`` and the Community ID,
and no byte counts.

Flows carry their Community ID (v1: seed 0, SHA-1, base64; see :func:`community_id`), written
here from the published specification so that it matches Zeek, Suricata and Elastic Agent.

The text is canonical: keys sorted, no insignificant whitespace, UTF-8, one event per line, so
the same events always give the same bytes. A line that is not a document this module wrote
raises :class:`EcsFormatError` (an :class:`~harness.errors.InputError`) naming the line.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO, Any

from harness.errors import InputError
from harness.events import (
    NS_PER_S,
    AnomalyKind,
    AppProtocol,
    Direction,
    DnsQuery,
    Event,
    EventKind,
    FileAccess,
    FileOperation,
    NetworkConnection,
    NetworkFlow,
    ProcessStart,
    ProtocolAnomaly,
    Transport,
)

__all__ = [
    "ECS_VERSION",
    "EcsFormatError",
    "community_id",
    "dumps_event",
    "format_timestamp",
    "from_ecs",
    "loads_event",
    "parse_timestamp",
    "read_ndjson",
    "to_ecs",
    "write_ndjson",
]

ECS_VERSION = "8.11.0"
_NS = "egress_harness"
_PROTO_NUMBERS = {Transport.TCP: 6, Transport.UDP: 17}
_FILE_TYPES = {
    FileOperation.READ: "access",
    FileOperation.WRITE: "change",
    FileOperation.CREATE: "creation",
}


class EcsFormatError(InputError):
    """A line that is not an ECS document of an event this harness can read back."""


# -- helpers --------------------------------------------------------------------------------


def community_id(
    transport: Transport, src_ip: str, src_port: int, dst_ip: str, dst_port: int, *, seed: int = 0
) -> str:
    """The Community ID v1 of a TCP or UDP flow (https://github.com/corelight/community-id-spec).

    Both directions of a flow give the same id: the endpoints are ordered (address, then port)
    before hashing ``seed | src | dst | proto | 0 | sport | dport``.
    """
    a = _packed(src_ip)
    b = _packed(dst_ip)
    if (b, dst_port) < (a, src_port):
        a, b, src_port, dst_port = b, a, dst_port, src_port
    data = (
        seed.to_bytes(2, "big")
        + a
        + b
        + bytes((_PROTO_NUMBERS[transport], 0))
        + src_port.to_bytes(2, "big")
        + dst_port.to_bytes(2, "big")
    )
    return "1:" + base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode()


@lru_cache(maxsize=65_536)
def _packed(ip: str) -> bytes:
    """The network-order bytes of an address (cached: flows repeat a few thousand addresses)."""
    return ipaddress.ip_address(ip).packed


def format_timestamp(ts_ns: int) -> str:
    """ISO 8601 UTC with nine fractional digits: ``2026-11-02T00:00:00.000000001Z``."""
    sec, nsec = divmod(ts_ns, NS_PER_S)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nsec:09d}Z"


def parse_timestamp(text: str) -> int:
    """The inverse of :func:`format_timestamp` (also accepts fewer fractional digits)."""
    try:
        whole, _, frac = text.removesuffix("Z").partition(".")
        if not text.endswith("Z") or len(frac) > 9 or (frac and not frac.isdigit()):
            raise ValueError(text)
        dt = datetime.fromisoformat(whole + "+00:00")
        return int(dt.astimezone(UTC).timestamp()) * NS_PER_S + int(frac.ljust(9, "0") or "0")
    except ValueError as exc:
        raise EcsFormatError(
            f"invalid @timestamp {text!r}: expected ISO 8601 UTC like "
            "'2026-11-02T00:00:00.000000000Z'"
        ) from exc


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            value = _drop_none(value)
            if not value:
                continue
        if value is not None:
            out[key] = value
    return out


# -- event -> ECS ---------------------------------------------------------------------------


def _base(event: Event, categories: list[str], types: list[str], action: str) -> dict[str, Any]:
    return {
        "@timestamp": format_timestamp(event.ts_ns),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "kind": "event",
            "category": categories,
            "type": types,
            "action": action,
            "dataset": f"{_NS}.{event.kind.value}",
        },
        _NS: {"event_id": event.event_id, "kind": event.kind.value, "ts_ns": event.ts_ns},
    }


def to_ecs(event: Event) -> dict[str, Any]:
    """The ECS document of ``event`` (nested objects; absent optional values are left out)."""
    if isinstance(event, ProcessStart):
        doc = _base(event, ["process"], ["start"], "process-started")
        doc["host"] = {"name": event.host}
        doc["user"] = {"name": event.user}
        doc["process"] = {
            "entity_id": event.process_guid,
            "pid": event.pid,
            "executable": event.image,
            "name": event.name,
            "command_line": event.command_line,
            "parent": {"entity_id": event.parent_guid},
            "code_signature": (
                None if event.signer is None else {"exists": True, "subject_name": event.signer}
            ),
        }
    elif isinstance(event, FileAccess):
        doc = _base(event, ["file"], [_FILE_TYPES[event.operation]], event.operation.value)
        doc["host"] = {"name": event.host}
        doc["process"] = {"entity_id": event.process_guid}
        doc["file"] = {"path": event.path}
        doc[_NS]["file"] = {"bytes": event.bytes}
    elif isinstance(event, NetworkFlow):
        doc = _base(
            event,
            ["network"],
            ["connection", "end" if event.is_final else "info"],
            "flow-final" if event.is_final else "flow-interim",
        )
        doc["event"]["start"] = format_timestamp(event.start_ns)
        doc["event"]["end"] = format_timestamp(event.end_ns)
        doc["host"] = {"name": event.host}
        doc["process"] = {"entity_id": event.process_guid}
        doc["source"] = {
            "ip": event.src_ip,
            "port": event.src_port,
            "bytes": event.bytes_out,
            "packets": event.packets_out,
        }
        doc["destination"] = {
            "ip": event.dst_ip,
            "port": event.dst_port,
            "bytes": event.bytes_in,
            "packets": event.packets_in,
            "domain": event.server_name,
        }
        doc["network"] = {
            "transport": event.transport.value,
            "iana_number": str(_PROTO_NUMBERS[event.transport]),
            "protocol": event.app_protocol.value,
            "direction": event.direction.value,
            "bytes": event.bytes_out + event.bytes_in,
            "packets": event.packets_out + event.packets_in,
            "community_id": community_id(
                event.transport, event.src_ip, event.src_port, event.dst_ip, event.dst_port
            ),
        }
        if event.server_name is not None and event.app_protocol is AppProtocol.TLS:
            doc["tls"] = {"client": {"server_name": event.server_name}}
        if event.server_name is not None and event.app_protocol is AppProtocol.HTTP:
            doc["url"] = {"domain": event.server_name}
        doc[_NS].update(
            flow_id=event.flow_id,
            is_final=event.is_final,
            start_ns=event.start_ns,
            end_ns=event.end_ns,
        )
    elif isinstance(event, NetworkConnection):
        doc = _base(event, ["network"], ["connection", "start"], "connection-attempted")
        doc["host"] = {"name": event.host}
        doc["process"] = {"entity_id": event.process_guid}
        doc["source"] = {"ip": event.src_ip, "port": event.src_port}
        doc["destination"] = {"ip": event.dst_ip, "port": event.dst_port}
        doc["network"] = {
            "transport": event.transport.value,
            "iana_number": str(_PROTO_NUMBERS[event.transport]),
            "direction": event.direction.value,
            "community_id": community_id(
                event.transport, event.src_ip, event.src_port, event.dst_ip, event.dst_port
            ),
        }
        doc[_NS]["initiated"] = event.initiated
    elif isinstance(event, DnsQuery):
        doc = _base(event, ["network"], ["protocol", "info"], "dns-query")
        doc["host"] = {"name": event.host}
        doc["process"] = {"entity_id": event.process_guid}
        doc["source"] = {"ip": event.src_ip, "bytes": event.query_bytes}
        doc["destination"] = {"ip": event.resolver_ip, "bytes": event.response_bytes}
        doc["network"] = {"transport": "udp", "protocol": "dns"}
        doc["dns"] = {
            "type": "answer",
            "question": {"name": event.query, "type": event.qtype},
            "response_code": event.rcode,
            "answers": [{"data": a, "type": event.qtype} for a in event.answers],
        }
    elif isinstance(event, ProtocolAnomaly):
        doc = _base(event, ["network"], ["protocol"], event.anomaly.value)
        doc["message"] = event.detail
        doc["host"] = {"name": event.host}
        doc["source"] = {"ip": event.src_ip, "port": event.src_port}
        doc["destination"] = {"ip": event.dst_ip, "port": event.dst_port}
        doc["network"] = {
            "transport": event.transport.value,
            "protocol": event.app_protocol.value,
            "community_id": community_id(
                event.transport, event.src_ip, event.src_port, event.dst_ip, event.dst_port
            ),
        }
        doc[_NS]["anomaly"] = {"kind": event.anomaly.value}
    else:  # pragma: no cover - Event is a closed union
        raise TypeError(f"not an event: {event!r}")
    return _drop_none(doc)


def dumps_event(event: Event) -> str:
    """One canonical NDJSON line (without the newline)."""
    return json.dumps(to_ecs(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write_ndjson(events: Iterable[Event], target: str | os.PathLike[str] | IO[str]) -> int:
    """Write ``events`` as NDJSON to a path or a text file; returns the number of lines."""
    if isinstance(target, str | os.PathLike):
        with open(target, "w", encoding="utf-8", newline="\n") as out:
            return write_ndjson(events, out)
    count = 0
    batch: list[str] = []
    for event in events:
        batch.append(dumps_event(event))
        count += 1
        if len(batch) >= 4096:
            target.write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        target.write("\n".join(batch) + "\n")
    return count


# -- ECS -> event ---------------------------------------------------------------------------


class _Doc:
    """Typed access to a nested document that names the missing or mistyped field."""

    __slots__ = ("doc",)

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc

    def get(self, path: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        node: Any = self.doc
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if optional:
                    return None
                raise EcsFormatError(f"ECS document lacks {path!r}")
            node = node[part]
        # bool is an int: refuse it where an int is wanted.
        if not isinstance(node, kind) or (isinstance(node, bool) and kind is int):
            raise EcsFormatError(f"ECS field {path!r} has {node!r}, expected {kind}")
        return node

    def text(self, path: str) -> str:
        return str(self.get(path, str))

    def opt_text(self, path: str) -> str | None:
        value = self.get(path, str, optional=True)
        return None if value is None else str(value)

    def integer(self, path: str) -> int:
        return int(self.get(path, int))


def _enum(cls: Any, value: str, field: str) -> Any:
    try:
        return cls(value)
    except ValueError as exc:
        known = ", ".join(m.value for m in cls)
        raise EcsFormatError(f"ECS field {field!r} has {value!r}, expected one of {known}") from exc


def from_ecs(doc: Mapping[str, Any]) -> Event:
    """The event an ECS document written by :func:`to_ecs` describes."""
    d = _Doc(doc)
    kind = _enum(EventKind, d.text(f"{_NS}.kind"), f"{_NS}.kind")
    ts_ns = d.integer(f"{_NS}.ts_ns")
    if parse_timestamp(d.text("@timestamp")) != ts_ns:
        raise EcsFormatError(f"@timestamp {d.text('@timestamp')!r} disagrees with ts_ns {ts_ns}")
    event_id = d.text(f"{_NS}.event_id")
    if kind is EventKind.PROCESS_START:
        return ProcessStart(
            event_id=event_id,
            ts_ns=ts_ns,
            host=d.text("host.name"),
            process_guid=d.text("process.entity_id"),
            pid=d.integer("process.pid"),
            image=d.text("process.executable"),
            name=d.text("process.name"),
            command_line=d.text("process.command_line"),
            parent_guid=d.opt_text("process.parent.entity_id"),
            user=d.text("user.name"),
            signer=d.opt_text("process.code_signature.subject_name"),
        )
    if kind is EventKind.FILE_ACCESS:
        return FileAccess(
            event_id=event_id,
            ts_ns=ts_ns,
            host=d.text("host.name"),
            process_guid=d.text("process.entity_id"),
            path=d.text("file.path"),
            operation=_enum(FileOperation, d.text("event.action"), "event.action"),
            bytes=d.integer(f"{_NS}.file.bytes"),
        )
    if kind is EventKind.NETWORK_FLOW:
        return NetworkFlow(
            event_id=event_id,
            ts_ns=ts_ns,
            flow_id=d.text(f"{_NS}.flow_id"),
            host=d.text("host.name"),
            process_guid=d.opt_text("process.entity_id"),
            transport=_enum(Transport, d.text("network.transport"), "network.transport"),
            src_ip=d.text("source.ip"),
            src_port=d.integer("source.port"),
            dst_ip=d.text("destination.ip"),
            dst_port=d.integer("destination.port"),
            direction=_enum(Direction, d.text("network.direction"), "network.direction"),
            app_protocol=_enum(AppProtocol, d.text("network.protocol"), "network.protocol"),
            start_ns=d.integer(f"{_NS}.start_ns"),
            end_ns=d.integer(f"{_NS}.end_ns"),
            bytes_out=d.integer("source.bytes"),
            bytes_in=d.integer("destination.bytes"),
            packets_out=d.integer("source.packets"),
            packets_in=d.integer("destination.packets"),
            is_final=bool(d.get(f"{_NS}.is_final", bool)),
            server_name=d.opt_text("destination.domain"),
        )
    if kind is EventKind.NETWORK_CONNECTION:
        return NetworkConnection(
            event_id=event_id,
            ts_ns=ts_ns,
            host=d.text("host.name"),
            process_guid=d.text("process.entity_id"),
            transport=_enum(Transport, d.text("network.transport"), "network.transport"),
            src_ip=d.text("source.ip"),
            src_port=d.integer("source.port"),
            dst_ip=d.text("destination.ip"),
            dst_port=d.integer("destination.port"),
            direction=_enum(Direction, d.text("network.direction"), "network.direction"),
            initiated=bool(d.get(f"{_NS}.initiated", bool)),
        )
    if kind is EventKind.DNS_QUERY:
        answers = d.get("dns.answers", list, optional=True) or []
        return DnsQuery(
            event_id=event_id,
            ts_ns=ts_ns,
            host=d.text("host.name"),
            process_guid=d.opt_text("process.entity_id"),
            src_ip=d.text("source.ip"),
            resolver_ip=d.text("destination.ip"),
            query=d.text("dns.question.name"),
            qtype=d.text("dns.question.type"),
            rcode=d.text("dns.response_code"),
            answers=tuple(_Doc(a).text("data") for a in answers),
            query_bytes=d.integer("source.bytes"),
            response_bytes=d.integer("destination.bytes"),
        )
    return ProtocolAnomaly(
        event_id=event_id,
        ts_ns=ts_ns,
        host=d.opt_text("host.name"),
        transport=_enum(Transport, d.text("network.transport"), "network.transport"),
        src_ip=d.text("source.ip"),
        src_port=d.integer("source.port"),
        dst_ip=d.text("destination.ip"),
        dst_port=d.integer("destination.port"),
        anomaly=_enum(AnomalyKind, d.text(f"{_NS}.anomaly.kind"), f"{_NS}.anomaly.kind"),
        detail=d.text("message"),
        app_protocol=_enum(AppProtocol, d.text("network.protocol"), "network.protocol"),
    )


def loads_event(line: str) -> Event:
    """The event of one NDJSON line."""
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EcsFormatError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise EcsFormatError(f"expected a JSON object, got {type(doc).__name__}")
    return from_ecs(doc)


def read_ndjson(source: str | os.PathLike[str] | IO[str]) -> Iterator[Event]:
    """Yield the events of an NDJSON file written by :func:`write_ndjson`; blank lines are
    skipped, anything else that is not an event raises :class:`EcsFormatError` naming the line."""
    if isinstance(source, str | os.PathLike):
        try:
            handle = open(source, encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise EcsFormatError(f"cannot open {os.fspath(source)!r}: {exc.strerror}") from exc
        with handle:
            yield from read_ndjson(handle)
        return
    name = getattr(source, "name", "<stream>")
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            yield loads_event(line)
        except EcsFormatError as exc:
            raise EcsFormatError(f"{name}:{number}: {exc}") from exc
