"""Read Sysmon and Windows Security events (EVTX, XML exports, JSON lines) as the project's events.

:func:`read_sysmon` (or :class:`SysmonReader`) reads one or several files, each in any of:

* **EVTX** (``ElfFile`` magic): decoded chunk by chunk with the ``evtx`` package (pyevtx-rs),
  see :mod:`harness.ingest._evtx`; a damaged chunk costs only its own records.
* **XML**: ``wevtutil qe LOG /f:xml`` (``<Event>`` elements back to back, no root) and Event
  Viewer "Save as XML" (``<Events><Event xmlns=…>…``); UTF-8 or UTF-16 with a byte-order mark.
  Each ``<Event>…</Event>`` is parsed on its own, so a broken one is skipped and the next read.
* **JSON**: one object a line (or a JSON array of objects, as newer OTRF Security-Datasets files
  are), in three shapes told apart per object: Winlogbeat (``winlog.event_id``,
  ``winlog.event_data.*``, ``winlog.channel``, ``winlog.computer_name``/``host.name``,
  ``@timestamp``; the fields that Winlogbeat's Sysmon module moves to ECS, such as
  ``process.entity_id`` or ``source.ip``, are read from there when ``event_data`` lacks them),
  flat keys as in the OTRF Security-Datasets (``EventID``, ``Channel``, ``Hostname`` or
  ``Computer``, ``UtcTime``, ``ProcessGuid``, …, ``@timestamp``), and ``evtx_dump -o jsonl``
  output (``{"Event": {"System": …, "EventData": …}}``).

Any of them may be gzip-compressed. A file that is none of these raises
:class:`SysmonInputError` when the reader is created.

Mapping (Sysmon field names):

* Sysmon 1 → :class:`~harness.events.ProcessStart` (``ProcessGuid``, ``ProcessId``, ``Image``,
  ``CommandLine``, ``ParentProcessGuid``, ``User``). Sysmon 1 logs no code signer:
  ``signer`` is ``None`` unless a ``Signature`` field is present (some pipelines add it).
  An all-zero parent GUID becomes ``None``.
* Sysmon 3 → :class:`~harness.events.NetworkConnection`. Sysmon's ``Source*`` side is the side
  that opened the connection (for ``Initiated=false`` that is the remote peer). ``direction``
  follows the address plan (:class:`~harness.ingest.pcap.AddressPlan`): outbound when only the
  source is internal, inbound when only the destination is, internal when both are; when
  neither is, outbound if this host initiated, else inbound. IPv4-mapped IPv6 addresses
  (``::ffff:a.b.c.d``) are written as IPv4.
* Sysmon 11 → :class:`~harness.events.FileAccess` (``CREATE``, ``TargetFilename``, bytes 0).
* Sysmon 22 → :class:`~harness.events.DnsQuery`. ``QueryStatus`` (a Windows error code) becomes
  an rcode name: 0 and 9501 (``DNS_INFO_NO_RECORDS``) ``NOERROR``, 9001 to 9005 ``FORMERR``,
  ``SERVFAIL``, ``NXDOMAIN``, ``NOTIMP``, ``REFUSED``, 1460 and 10060 (timeouts) ``NOANSWER``
  (as the pcap reader names an unanswered query), anything else ``STATUS_<code>``.
  ``QueryResults`` (``type:  5 cname.example;::ffff:192.0.2.1;…``) gives the answers: CNAME
  targets and addresses, ``::ffff:`` stripped. Sysmon does not log the query type: it is
  ``AAAA`` when every address answer is IPv6, else ``A`` (also when there is no answer).
  Sysmon logs neither sizes, client address nor resolver: ``query_bytes`` and
  ``response_bytes`` are the wire sizes such a query and response would have (12-byte header,
  the name, type and class, an 11-byte EDNS0 record; per answer a 12-byte record head plus 4 or
  16 address bytes or the CNAME target), ``src_ip`` is ``0.0.0.0`` and ``resolver_ip`` is
  :attr:`SysmonConfig.resolver_ip` (default ``0.0.0.0``: unknown).
* Security 4663 (object access, ``ObjectType`` File) → :class:`~harness.events.FileAccess`:
  ``READ`` when ``AccessMask`` has ReadData (0x1) or ReadEA (0x8), else ``WRITE`` when it has
  WriteData (0x2) or AppendData (0x4); other masks (delete, attribute or ACL access) are counted
  and skipped. 4663 names the process by ``ProcessId`` and ``ProcessName`` but has no GUID: it is
  attributed through a (host, pid, image) → GUID map built from the Sysmon events read before it
  in time order (process creations, and any Sysmon event carrying ``ProcessGuid``, ``ProcessId``
  and ``Image``), the latest wins. Limitation: a process never seen by Sysmon, or one whose pid was
  reused before Sysmon saw the new process, is missed or misattributed; unattributed reads are
  counted (:attr:`SysmonStats.unattributed_file_access`) and dropped. 4663 logs no byte count.

GUIDs are written ``{lower-case}`` whatever the source's spelling (EVTX renders them upper case
without braces). Times: Sysmon ``UtcTime`` (``2023-01-01 12:00:00.123``, UTC) when present, else
``System/TimeCreated/@SystemTime`` or ``@timestamp`` (ISO 8601), as integer ns.

Event ids are stable: ``sysmon:<file index>:<record id>`` (``security:`` for the Security
channel) for EVTX files, where record ids are unique; for XML and JSON, whose files may merge
several hosts or channels, the record's position: ``sysmon:<file index>:L<line>`` (JSON lines),
``…:E<n>`` (n-th ``<Event>`` or n-th array element).

Order: output is in time order through a bounded reorder buffer. Records in a log are nearly
ordered, but Sysmon writes some events (network connections in particular) seconds after they
happened. An event is held until one :attr:`SysmonConfig.reorder_window_s` later in event time
has been read (or :attr:`SysmonConfig.max_buffered` events are held); one that arrives older
than what was already released is still emitted, at once, and counted in
:attr:`SysmonStats.late_events`. Several files are merged in time order.

Bad input: other event ids are counted per id (:attr:`SysmonStats.other_event_ids`), not errors.
A record with missing or malformed fields (no GUID, a bad GUID, a bad time, a bad address) is
skipped with a warning naming file and record position; a damaged EVTX chunk or unreadable XML or
JSON text likewise. Warnings go to ``on_warning`` (default: the first 100 are kept in
:attr:`SysmonReader.warnings`), and :attr:`SysmonReader.stats` counts everything skipped.
"""

from __future__ import annotations

import gzip
import heapq
import io
import ipaddress
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from itertools import count
from typing import IO, Any, BinaryIO

from harness.errors import InputError, InvalidParameterError
from harness.events import (
    Direction,
    DnsQuery,
    Event,
    FileAccess,
    FileOperation,
    NetworkConnection,
    ProcessStart,
    Transport,
)
from harness.ingest._evtx import EVTX_MAGIC, EvtxDamage, iter_chunks
from harness.ingest._flows import DEFAULT_INTERNAL_NETWORKS, AddressPlan

__all__ = [
    "SysmonConfig",
    "SysmonFormat",
    "SysmonInputError",
    "SysmonReader",
    "SysmonStats",
    "read_sysmon",
]

_MAX_KEPT_WARNINGS = 100
#: An XML event or JSON array element longer than this is damage, not a record.
_MAX_RECORD_CHARS = 1 << 20
_READ_CHARS = 1 << 20
_SYSMON_CHANNEL = "microsoft-windows-sysmon/operational"
_SECURITY_CHANNEL = "security"
_SYSMON_IDS = frozenset({1, 3, 11, 22})
_SECURITY_IDS = frozenset({4663})
_ZERO_GUID = "{00000000-0000-0000-0000-000000000000}"
_GUID_RE = re.compile(r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                      r"[0-9a-fA-F]{12})\}?")  # fmt: skip
_TIME_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9})\d*)?\s*"
    r"(Z|UTC|[+-]\d{2}:?\d{2})?"
)
_EVENT_START = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?Event[\s>/]")
_EVENT_END = re.compile(r"</(?:[A-Za-z_][\w.-]*:)?Event\s*>")
_READ_MASK = 0x1 | 0x8
_WRITE_MASK = 0x2 | 0x4
_DNS_STATUS = {
    0: "NOERROR", 9501: "NOERROR", 9001: "FORMERR", 9002: "SERVFAIL", 9003: "NXDOMAIN",
    9004: "NOTIMP", 9005: "REFUSED", 1460: "NOANSWER", 10060: "NOANSWER",
}  # fmt: skip
#: Winlogbeat's Sysmon module translates QueryStatus to these names.
_DNS_STATUS_NAMES = {
    "SUCCESS": 0, "DNS_INFO_NO_RECORDS": 9501, "DNS_ERROR_RCODE_FORMAT_ERROR": 9001,
    "DNS_ERROR_RCODE_SERVER_FAILURE": 9002, "DNS_ERROR_RCODE_NAME_ERROR": 9003,
    "DNS_ERROR_RCODE_NOT_IMPLEMENTED": 9004, "DNS_ERROR_RCODE_REFUSED": 9005,
    "ERROR_TIMEOUT": 1460, "WSAETIMEDOUT": 10060,
}  # fmt: skip
#: Where Winlogbeat's Sysmon/Security modules put an ``event_data`` field they take out of it.
_ECS_FALLBACK = {
    "ProcessGuid": ("process", "entity_id"),
    "ProcessId": ("process", "pid"),
    "Image": ("process", "executable"),
    "CommandLine": ("process", "command_line"),
    "ParentProcessGuid": ("process", "parent", "entity_id"),
    "Protocol": ("network", "transport"),
    "SourceIp": ("source", "ip"),
    "SourcePort": ("source", "port"),
    "DestinationIp": ("destination", "ip"),
    "DestinationPort": ("destination", "port"),
    "TargetFilename": ("file", "path"),
    "QueryName": ("dns", "question", "name"),
    "QueryStatus": ("sysmon", "dns", "status"),
    "ProcessName": ("process", "executable"),
    "ObjectName": ("file", "path"),
}


class SysmonInputError(InputError):
    """A file that is not Sysmon/Windows event telemetry, or a damaged record inside one.

    ``path`` and ``position`` (e.g. ``line 12``, ``chunk 3 at byte offset 200704``, or ``None``
    for the whole file) locate it.
    """

    def __init__(self, path: str, position: str | None, message: str) -> None:
        self.path = path
        self.position = position
        where = f"{path!r}" if position is None else f"{path!r} at {position}"
        super().__init__(f"{where}: {message}")


class SysmonFormat(StrEnum):
    EVTX = "evtx"
    XML = "xml"
    JSON_LINES = "json-lines"
    JSON_ARRAY = "json-array"


@dataclass(frozen=True, slots=True, kw_only=True)
class SysmonConfig:
    """Policies of the Sysmon reader."""

    #: Addresses inside these prefixes are the organisation's (direction of Sysmon 3 events).
    internal_networks: tuple[str, ...] = DEFAULT_INTERNAL_NETWORKS
    #: How far back in event time a record may arrive and still be put in order.
    reorder_window_s: float = 30.0
    #: At most this many events are held for reordering (per file), whatever their times.
    max_buffered: int = 100_000
    #: Resolver address given to Sysmon 22 queries, which do not log it.
    resolver_ip: str = "0.0.0.0"  # noqa: S104 - an address value, not a socket bind

    def __post_init__(self) -> None:
        if not self.reorder_window_s >= 0:
            raise InvalidParameterError(
                "reorder_window_s", self.reorder_window_s, "zero or more seconds"
            )
        if self.max_buffered < 1:
            raise InvalidParameterError("max_buffered", self.max_buffered, "at least 1")
        try:
            ipaddress.ip_address(self.resolver_ip)
        except ValueError as exc:
            raise InvalidParameterError("resolver_ip", self.resolver_ip, "an IP address") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class SysmonStats:
    """What a read saw and what it had to skip."""

    paths: tuple[str, ...]
    formats: tuple[str, ...]
    #: Records decoded from the files (of any event id).
    records: int
    #: Events produced, by kind.
    events: dict[str, int]
    #: Records of event ids this reader does not map, by "channel:id" (not errors).
    other_event_ids: dict[str, int]
    #: Records skipped for missing or malformed fields.
    bad_records: int
    #: Records lost in damaged EVTX chunks or unreadable XML/JSON text.
    damaged_records: int
    damaged_regions: int
    #: Security 4663 file accesses whose process could not be found in the Sysmon events.
    unattributed_file_access: int
    #: Security 4663 records that are not file reads or writes (other object types or masks).
    other_access: int
    #: Events that arrived later than the reorder window allowed (emitted out of order).
    late_events: int
    warnings: int

    @property
    def skipped_records(self) -> int:
        """Records lost to damage or bad fields (other event ids are not counted here)."""
        return self.bad_records + self.damaged_records


class _Bad(Exception):
    """A record field that is missing or malformed (becomes a warning, never escapes)."""


@dataclass(slots=True)
class _Rec:
    """One decoded record, whatever its source format."""

    event_id: int
    security: bool
    host: str
    ts_ns: int
    record_key: str
    position: str
    data: Mapping[str, Any]
    answers: tuple[tuple[str, str], ...] | None = None


@dataclass(slots=True)
class _Counters:
    records: int = 0
    bad: int = 0
    damaged: int = 0
    regions: int = 0
    unattributed: int = 0
    other_access: int = 0
    late: int = 0
    events: dict[str, int] = field(default_factory=dict)
    other_ids: dict[str, int] = field(default_factory=dict)


# -- value parsing ----------------------------------------------------------------------------

_epoch_cache: dict[str, int] = {}


def _parse_time(value: object) -> int:
    """Integer ns since the epoch from a Sysmon UtcTime or an ISO 8601 time (UTC if no zone)."""
    if not isinstance(value, str):
        raise _Bad(f"time {value!r} is not a string")
    m = _TIME_RE.fullmatch(value.strip())
    if m is None:
        raise _Bad(f"bad time {value!r}")
    date, clock, frac, zone = m.groups()
    key = date + clock
    secs = _epoch_cache.get(key)
    if secs is None:
        try:
            dt = datetime.fromisoformat(f"{date}T{clock}").replace(tzinfo=UTC)
        except ValueError as exc:
            raise _Bad(f"bad time {value!r}") from exc
        secs = int(dt.timestamp())
        if len(_epoch_cache) > 100_000:
            _epoch_cache.clear()
        _epoch_cache[key] = secs
    if zone and zone not in ("Z", "UTC"):
        sign = -1 if zone[0] == "+" else 1
        digits = zone[1:].replace(":", "")
        secs += sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    ns = int(frac.ljust(9, "0")) if frac else 0
    return secs * 1_000_000_000 + ns


_guid_cache: dict[str, str] = {}


def _guid(value: object, name: str) -> str:
    if isinstance(value, str) and (hit := _guid_cache.get(value)) is not None:
        return hit
    if value is None or value == "":
        raise _Bad(f"missing {name}")
    if not isinstance(value, str) or (m := _GUID_RE.fullmatch(value.strip())) is None:
        raise _Bad(f"{name} {value!r} is not a GUID")
    guid = "{" + m.group(1).lower() + "}"
    if len(_guid_cache) > 100_000:
        _guid_cache.clear()
    _guid_cache[value] = guid
    return guid


def _int(value: object, name: str) -> int:
    if isinstance(value, bool):
        raise _Bad(f"{name} {value!r} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 16) if text[:2].lower() == "0x" else int(text)
        except ValueError:
            pass
    raise _Bad(f"{name} {value!r} is not a number")


def _text(data: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise _Bad(f"missing {name}")
        return ""
    if isinstance(value, str):
        if required and not value.strip():
            raise _Bad(f"missing {name}")
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _Bad(f"{name} {value!r} is not text")


def _bool(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int):
        return value != 0
    raise _Bad(f"{name} {value!r} is not true or false")


_ip_cache: dict[str, str] = {}


def _ip(value: object, name: str) -> str:
    """The address in its canonical text form (IPv4-mapped IPv6 as IPv4)."""
    if isinstance(value, str) and (hit := _ip_cache.get(value)) is not None:
        return hit
    if not isinstance(value, str):
        raise _Bad(f"{name} {value!r} is not an address")
    try:
        addr = ipaddress.ip_address(value.strip().split("%", 1)[0])
    except ValueError as exc:
        raise _Bad(f"{name} {value!r} is not an address") from exc
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        text = str(addr.ipv4_mapped)
    else:
        text = str(addr)
    if len(_ip_cache) > 100_000:
        _ip_cache.clear()
    _ip_cache[value] = text
    return text


def _port(value: object, name: str) -> int:
    port = _int(value, name)
    if not 0 <= port <= 65535:
        raise _Bad(f"{name} {value!r} is not a port")
    return port


def _basename(path: str) -> str:
    return path.replace("/", "\\").rsplit("\\", 1)[-1]


def _dns_answers(results: str) -> tuple[tuple[str, str], ...]:
    """(type, data) pairs from a Sysmon QueryResults string."""
    out: list[tuple[str, str]] = []
    for part in results.split(";"):
        item = part.strip()
        if not item or item == "-":
            continue
        if item.startswith("type:"):
            bits = item[5:].split()
            if len(bits) >= 2:
                out.append(("CNAME" if bits[0] == "5" else f"TYPE{bits[0]}", bits[1]))
            continue
        try:
            addr = ipaddress.ip_address(item.removeprefix("::ffff:"))
        except ValueError:
            continue
        out.append(("A" if addr.version == 4 else "AAAA", str(addr)))
    return tuple(out)


def _rcode(value: object) -> str:
    if isinstance(value, str) and value.strip().upper() in _DNS_STATUS_NAMES:
        code = _DNS_STATUS_NAMES[value.strip().upper()]
    else:
        code = _int(value, "QueryStatus")
    return _DNS_STATUS.get(code, f"STATUS_{code}")


# -- source formats ---------------------------------------------------------------------------


def _event_id(value: object) -> int:
    if isinstance(value, Mapping):
        value = value.get("#text")
    return _int(value, "EventID")


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _strings_only(data: Any) -> dict[str, Any]:
    return dict(data) if isinstance(data, Mapping) else {}


class _Source:
    """One input file: its format, decoded records (as _Rec) and its damage reports."""

    def __init__(
        self,
        path: str,
        index: int,
        counters: _Counters,
        warn: Callable[[SysmonInputError], None],
    ) -> None:
        self.path = path
        self.index = index
        self._c = counters
        self._warn = warn
        try:
            with open(path, "rb") as raw:
                magic = raw.read(2)
        except OSError as exc:
            raise SysmonInputError(path, None, f"cannot open: {exc.strerror or exc}") from exc
        self.gzipped = magic == b"\x1f\x8b"
        with self._open_binary() as stream:
            try:
                head = stream.read(4096)
            except (OSError, EOFError) as exc:
                raise SysmonInputError(path, None, f"cannot read: {exc}") from exc
        self.format, self.encoding = self._sniff(head)

    def _open_binary(self) -> BinaryIO:
        if self.gzipped:
            return gzip.open(self.path, "rb")  # type: ignore[return-value]
        return open(self.path, "rb")

    def _sniff(self, head: bytes) -> tuple[SysmonFormat, str]:
        if head.startswith(EVTX_MAGIC):
            return SysmonFormat.EVTX, ""
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            encoding, text = "utf-16", head.decode("utf-16", "ignore")
        else:
            encoding, text = "utf-8-sig", head.decode("utf-8-sig", "ignore")
        first = text.lstrip()[:1]
        if first == "<":
            return SysmonFormat.XML, encoding
        if first == "{":
            return SysmonFormat.JSON_LINES, encoding
        if first == "[":
            return SysmonFormat.JSON_ARRAY, encoding
        shown = head[:16]
        raise SysmonInputError(
            self.path, None, f"not EVTX, XML or JSON event telemetry (starts with {shown!r}); "
            "expected an .evtx file, a wevtutil/Event Viewer XML export, or Winlogbeat/OTRF "
            "JSON lines",
        )  # fmt: skip

    def _damage(self, position: str, message: str, lost: int) -> None:
        self._c.regions += 1
        self._c.damaged += lost
        self._warn(SysmonInputError(self.path, position, message))

    def records(self) -> Iterator[_Rec]:
        if self.format is SysmonFormat.EVTX:
            yield from self._evtx()
            return
        with self._open_binary() as raw, _text_stream(raw, self.encoding) as text:
            try:
                if self.format is SysmonFormat.XML:
                    yield from self._xml(text)
                elif self.format is SysmonFormat.JSON_LINES:
                    yield from self._json_lines(text)
                else:
                    yield from self._json_array(text)
            except (OSError, EOFError, UnicodeDecodeError) as exc:
                self._damage("end of readable data", f"cannot read further: {exc}", 0)

    # EVTX -----------------------------------------------------------------------------------

    def _evtx(self) -> Iterator[_Rec]:
        def damage(d: EvtxDamage) -> None:
            where = "file header" if d.chunk < 0 else f"chunk {d.chunk} at byte offset {d.offset}"
            self._damage(where, d.message, d.skipped_records)

        with self._open_binary() as stream:
            try:
                for chunk in iter_chunks(stream, damage):
                    for record_id, text in chunk.records:
                        pos = f"chunk {chunk.chunk}, record {record_id}"
                        try:
                            obj = json.loads(text)
                        except ValueError:
                            self._bad(pos, "record is not valid JSON from the EVTX decoder")
                            continue
                        rec = self._from_evtx_json(obj, pos, str(record_id))
                        if rec is not None:
                            yield rec
            except (OSError, EOFError) as exc:
                self._damage("end of readable data", f"cannot read further: {exc}", 0)

    def _from_evtx_json(self, obj: Any, pos: str, key: str) -> _Rec | None:
        self._c.records += 1
        event = _get(obj, "Event")
        system = _get(event, "System")
        try:
            if not isinstance(system, Mapping):
                raise _Bad("no System element")
            eid = _event_id(system.get("EventID"))
            channel = _text(system, "Channel", required=False)
            if not self._wanted(eid, channel):
                return None
            data = _strings_only(_get(event, "EventData"))
            host = _text(system, "Computer")
            time = data.get("UtcTime") or _get(system, "TimeCreated", "#attributes", "SystemTime")
            record_key = key or _text(system, "EventRecordID", required=False) or pos
            return self._rec(eid, channel, host, time, record_key, pos, data)
        except _Bad as bad:
            self._bad(pos, str(bad))
            return None

    # XML ------------------------------------------------------------------------------------

    def _xml(self, text: IO[str]) -> Iterator[_Rec]:
        buf = ""
        i = 0  # scan position in buf
        line = 1  # line number at buf[i]
        n = 0
        eof = False
        while True:
            m = _EVENT_START.search(buf, i)
            if m is None or (end := _EVENT_END.search(buf, m.end())) is None:
                start = len(buf) - 16 if m is None else m.start()
                if eof or (m is not None and len(buf) - start > _MAX_RECORD_CHARS):
                    if m is None:
                        return
                    n += 1
                    line += buf.count("\n", i, m.start())
                    self._damage(
                        f"line {line} (event {n})",
                        "<Event> element without </Event>; skipped to the next <Event>",
                        1,
                    )
                    line += buf.count("\n", m.start(), m.end())
                    i = m.end()
                    continue
                start = max(start, i)
                line += buf.count("\n", i, start)
                chunk = text.read(_READ_CHARS)
                eof = not chunk
                buf = buf[start:] + chunk
                i = 0
                continue
            n += 1
            line += buf.count("\n", i, m.start())
            element = buf[m.start() : end.end()]
            pos = f"line {line} (event {n})"
            line += element.count("\n")
            i = end.end()
            rec = self._from_xml(element, pos, f"E{n}")
            if rec is not None:
                yield rec

    def _from_xml(self, element: str, pos: str, key: str) -> _Rec | None:
        self._c.records += 1
        if "<!" in element:
            # Windows event XML has no DTDs, entities or CDATA: refuse them (entity expansion).
            self._bad(pos, "DOCTYPE, ENTITY or CDATA markup inside an event")
            return None
        try:
            root = ET.fromstring(element)  # noqa: S314 - no DTD/entity markup, checked above
        except ET.ParseError as exc:
            self._bad(pos, f"malformed XML: {exc}")
            return None
        system: dict[str, Any] = {}
        data: dict[str, Any] = {}
        for part in root:
            tag = part.tag.rsplit("}", 1)[-1]
            if tag == "System":
                for item in part:
                    name = item.tag.rsplit("}", 1)[-1]
                    system[name] = (item.text or "").strip() or dict(item.attrib)
            elif tag == "EventData":
                for i, item in enumerate(part):
                    name = item.attrib.get("Name") or f"Data{i}"
                    data[name] = (item.text or "").strip()
        try:
            eid = _event_id(system.get("EventID"))
            channel = _text(system, "Channel", required=False)
            if not self._wanted(eid, channel):
                return None
            host = _text(system, "Computer")
            created = system.get("TimeCreated")
            time = data.get("UtcTime") or (
                created.get("SystemTime") if isinstance(created, dict) else None
            )
            return self._rec(eid, channel, host, time, key, pos, data)
        except _Bad as bad:
            self._bad(pos, str(bad))
            return None

    # JSON -----------------------------------------------------------------------------------

    def _json_lines(self, text: IO[str]) -> Iterator[_Rec]:
        for line_no, line in enumerate(text, 1):
            stripped = line.strip()
            if not stripped:
                continue
            pos = f"line {line_no}"
            try:
                obj = json.loads(stripped)
            except ValueError as exc:
                self._c.records += 1
                self._bad(pos, f"not a JSON object: {exc}")
                continue
            rec = self._from_json(obj, pos, f"L{line_no}")
            if rec is not None:
                yield rec

    def _json_array(self, text: IO[str]) -> Iterator[_Rec]:
        decoder = json.JSONDecoder()
        buf = ""
        i = 0  # scan position in buf
        consumed = 0  # characters of the file before buf[0]
        n = 0
        eof = False
        opened = False
        while True:
            while i < len(buf) and buf[i] in " \t\r\n,":
                i += 1
            if not eof and len(buf) - i < _MAX_RECORD_CHARS:
                chunk = text.read(_READ_CHARS)
                consumed += i
                buf = buf[i:] + chunk
                i = 0
                eof = not chunk
                continue
            if i >= len(buf):
                return
            if not opened:
                opened = True
                if buf[i] == "[":
                    i += 1
                    continue
            if buf[i] == "]":
                return
            n += 1
            pos = f"element {n} (character {consumed + i})"
            try:
                obj, end = decoder.raw_decode(buf, i)
            except ValueError as exc:
                self._c.records += 1
                nxt = buf.find("{", i + 1)
                skip_to = len(buf) if nxt == -1 else nxt
                self._damage(pos, f"not a JSON object: {exc}; skipped {skip_to - i} characters",
                             1)  # fmt: skip
                i = skip_to
                continue
            i = end
            rec = self._from_json(obj, pos, f"E{n}")
            if rec is not None:
                yield rec

    def _from_json(self, obj: Any, pos: str, key: str) -> _Rec | None:
        if not isinstance(obj, dict):
            self._c.records += 1
            self._bad(pos, f"a JSON {type(obj).__name__}, not an object")
            return None
        if isinstance(obj.get("Event"), Mapping):
            return self._from_evtx_json(obj, pos, key)
        self._c.records += 1
        winlog = obj.get("winlog")
        try:
            if isinstance(winlog, Mapping):
                return self._from_winlogbeat(obj, winlog, pos, key)
            eid = _event_id(obj.get("EventID", obj.get("event_id")))
            channel = _text(obj, "Channel", required=False)
            if not self._wanted(eid, channel):
                return None
            host = _text(obj, "Hostname" if obj.get("Hostname") else "Computer")
            time = obj.get("UtcTime") or obj.get("TimeCreated") or obj.get("@timestamp")
            return self._rec(eid, channel, host, time, key, pos, obj)
        except _Bad as bad:
            self._bad(pos, str(bad))
            return None

    def _from_winlogbeat(
        self, obj: Mapping[str, Any], winlog: Mapping[str, Any], pos: str, key: str
    ) -> _Rec | None:
        eid = _event_id(winlog.get("event_id"))
        channel = _text(winlog, "channel", required=False)
        if not self._wanted(eid, channel):
            return None
        data = _strings_only(winlog.get("event_data"))
        for name, path in _ECS_FALLBACK.items():
            if name not in data and (value := _get(obj, *path)) is not None:
                data[name] = value
        if "User" not in data and isinstance(user := _get(obj, "user", "name"), str):
            domain = _get(obj, "user", "domain")
            data["User"] = f"{domain}\\{user}" if isinstance(domain, str) else user
        if "Initiated" not in data and isinstance(d := _get(obj, "network", "direction"), str):
            data["Initiated"] = "true" if d in ("egress", "outbound") else "false"
        answers: tuple[tuple[str, str], ...] | None = None
        if "QueryResults" not in data and isinstance(found := _get(obj, "dns", "answers"), list):
            answers = tuple(
                (str(a.get("type", "")), str(a["data"]))
                for a in found
                if isinstance(a, Mapping) and a.get("data") is not None
            )
        host = winlog.get("computer_name") or _get(obj, "host", "name")
        if not isinstance(host, str) or not host:
            raise _Bad("missing winlog.computer_name and host.name")
        time = data.get("UtcTime") or obj.get("@timestamp")
        rec = self._rec(eid, channel, host, time, key, pos, data)
        rec.answers = answers
        return rec

    # common ---------------------------------------------------------------------------------

    def _wanted(self, eid: int, channel: str) -> bool:
        low = channel.lower()
        if eid in _SYSMON_IDS and low in ("", _SYSMON_CHANNEL):
            return True
        if eid in _SECURITY_IDS and low in ("", _SECURITY_CHANNEL):
            return True
        name = f"{channel or '?'}:{eid}"
        self._c.other_ids[name] = self._c.other_ids.get(name, 0) + 1
        return False

    def _rec(
        self, eid: int, channel: str, host: str, time: object, key: str, pos: str,
        data: Mapping[str, Any],
    ) -> _Rec:  # fmt: skip
        security = eid in _SECURITY_IDS
        if time is None or time == "":
            raise _Bad("missing UtcTime/TimeCreated/@timestamp")
        prefix = "security" if security else "sysmon"
        return _Rec(
            event_id=eid, security=security, host=host, ts_ns=_parse_time(time),
            record_key=f"{prefix}:{self.index}:{key}", position=pos, data=data,
        )  # fmt: skip

    def _bad(self, pos: str, message: str) -> None:
        self._c.bad += 1
        self._warn(SysmonInputError(self.path, pos, f"record skipped: {message}"))


@contextmanager
def _text_stream(raw: BinaryIO, encoding: str) -> Iterator[IO[str]]:
    """Text over a binary stream; the binary stream stays the caller's to close."""
    wrapper = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline=None)
    try:
        yield wrapper
    finally:
        wrapper.detach()


# -- the reader -------------------------------------------------------------------------------


class SysmonReader:
    """Iterate over the events of one or several Sysmon/Security files, in time order.

    Iterate once; :attr:`stats` is complete after iteration. ``paths`` gives the file index used
    in event ids (its position in the sequence).
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        config: SysmonConfig | None = None,
        on_warning: Callable[[SysmonInputError], None] | None = None,
    ) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = tuple(os.fspath(p) for p in paths)
        self.config = config or SysmonConfig()
        self.warnings: list[SysmonInputError] = []
        self._on_warning = on_warning
        self._warning_count = 0
        self._c = _Counters()
        self._plan = AddressPlan(self.config.internal_networks)
        self._internal: dict[str, bool] = {}
        self._procs: dict[tuple[str, int, str], str] = {}
        # Opening checks every file's format at once: a wrong file fails here.
        self._sources = [_Source(p, i, self._c, self._warn) for i, p in enumerate(self.paths)]

    def _warn(self, err: SysmonInputError) -> None:
        self._warning_count += 1
        if self._on_warning is not None:
            self._on_warning(err)
        elif len(self.warnings) < _MAX_KEPT_WARNINGS:
            self.warnings.append(err)

    @property
    def stats(self) -> SysmonStats:
        c = self._c
        return SysmonStats(
            paths=self.paths,
            formats=tuple(str(s.format) + (".gz" if s.gzipped else "") for s in self._sources),
            records=c.records,
            events=dict(c.events),
            other_event_ids=dict(sorted(c.other_ids.items())),
            bad_records=c.bad,
            damaged_records=c.damaged,
            damaged_regions=c.regions,
            unattributed_file_access=c.unattributed,
            other_access=c.other_access,
            late_events=c.late,
            warnings=self._warning_count,
        )

    def __iter__(self) -> Iterator[Event]:
        streams = [self._ordered(s) for s in self._sources]
        merged: Iterable[tuple[int, int, int, _Rec]] = (
            streams[0] if len(streams) == 1 else heapq.merge(*streams)
        )
        for _ts, _f, _seq, rec in merged:
            try:
                event = self._map(rec)
            except _Bad as bad:
                self._c.bad += 1
                path = self.paths[int(rec.record_key.split(":", 2)[1])]
                self._warn(SysmonInputError(path, rec.position, f"record skipped: {bad}"))
                continue
            if event is not None:
                kind = str(event.kind)
                self._c.events[kind] = self._c.events.get(kind, 0) + 1
                yield event

    def _ordered(self, source: _Source) -> Iterator[tuple[int, int, int, _Rec]]:
        """The source's records in time order, through the bounded reorder buffer."""
        window = int(self.config.reorder_window_s * 1_000_000_000)
        cap = self.config.max_buffered
        heap: list[tuple[int, int, int, _Rec]] = []
        seq = count()
        newest = None
        released = None
        warned = False
        for rec in source.records():
            item = (rec.ts_ns, source.index, next(seq), rec)
            if released is not None and rec.ts_ns < released:
                self._c.late += 1
                if not warned:
                    warned = True
                    late = (released - rec.ts_ns) / 1e9
                    self._warn(
                        SysmonInputError(
                            source.path,
                            rec.position,
                            f"event time is {late:.3f} s older than events already released "
                            f"(reorder window {self.config.reorder_window_s} s); emitted out of "
                            "order (counted in late_events; further ones are only counted)",
                        )
                    )
                yield item
                continue
            heapq.heappush(heap, item)
            newest = rec.ts_ns if newest is None else max(newest, rec.ts_ns)
            while heap and (heap[0][0] <= newest - window or len(heap) > cap):
                out = heapq.heappop(heap)
                released = out[0]
                yield out
        while heap:
            yield heapq.heappop(heap)

    # -- mapping ------------------------------------------------------------------------------

    def _direction(self, src: str, dst: str, initiated: bool) -> Direction:
        s, d = self._is_internal(src), self._is_internal(dst)
        if s and d:
            return Direction.INTERNAL
        if s:
            return Direction.OUTBOUND
        if d:
            return Direction.INBOUND
        return Direction.OUTBOUND if initiated else Direction.INBOUND

    def _is_internal(self, addr: str) -> bool:
        hit = self._internal.get(addr)
        if hit is None:
            if len(self._internal) > 65_536:
                self._internal.clear()
            hit = self._plan.is_internal(ipaddress.ip_address(addr).packed)
            self._internal[addr] = hit
        return hit

    def _remember(self, host: str, data: Mapping[str, Any], guid: str) -> None:
        pid, image = data.get("ProcessId"), data.get("Image")
        if pid is None or not isinstance(image, str):
            return
        try:
            key = (host.lower(), _int(pid, "ProcessId"), image.lower())
        except _Bad:
            return
        if len(self._procs) > 1_000_000:
            self._procs.clear()
        self._procs[key] = guid

    def _map(self, rec: _Rec) -> Event | None:
        d = rec.data
        eid = rec.event_id
        ev_id = rec.record_key
        if eid == 4663:
            return self._file_access_4663(rec)
        guid = _guid(d.get("ProcessGuid"), "ProcessGuid")
        if eid == 1:
            pid = _int(d.get("ProcessId"), "ProcessId")
            image = _text(d, "Image")
            parent = d.get("ParentProcessGuid")
            parent_guid = None if parent in (None, "", "-") else _guid(parent, "ParentProcessGuid")
            if parent_guid == _ZERO_GUID:
                parent_guid = None
            self._remember(rec.host, d, guid)
            signer = d.get("Signature")
            return ProcessStart(
                event_id=ev_id, ts_ns=rec.ts_ns, host=rec.host, process_guid=guid, pid=pid,
                image=image, name=_basename(image), command_line=_text(d, "CommandLine",
                required=False), parent_guid=parent_guid, user=_text(d, "User", required=False),
                signer=signer if isinstance(signer, str) and signer not in ("", "-") else None,
            )  # fmt: skip
        self._remember(rec.host, d, guid)
        if eid == 3:
            proto = _text(d, "Protocol").lower()
            if proto not in ("tcp", "udp"):
                raise _Bad(f"Protocol {proto!r} is not tcp or udp")
            src = _ip(d.get("SourceIp"), "SourceIp")
            dst = _ip(d.get("DestinationIp"), "DestinationIp")
            initiated = _bool(d.get("Initiated", True), "Initiated")
            return NetworkConnection(
                event_id=ev_id, ts_ns=rec.ts_ns, host=rec.host, process_guid=guid,
                transport=Transport(proto), src_ip=src,
                src_port=_port(d.get("SourcePort"), "SourcePort"), dst_ip=dst,
                dst_port=_port(d.get("DestinationPort"), "DestinationPort"),
                direction=self._direction(src, dst, initiated), initiated=initiated,
            )  # fmt: skip
        if eid == 11:
            return FileAccess(
                event_id=ev_id, ts_ns=rec.ts_ns, host=rec.host, process_guid=guid,
                path=_text(d, "TargetFilename"), operation=FileOperation.CREATE, bytes=0,
            )  # fmt: skip
        return self._dns(rec, guid)

    def _dns(self, rec: _Rec, guid: str) -> DnsQuery:
        d = rec.data
        query = _text(d, "QueryName").rstrip(".")
        if rec.answers is not None:
            answers = rec.answers
        else:
            raw = d.get("QueryResults")
            answers = _dns_answers(raw) if isinstance(raw, str) else ()
        addrs = [t for t, _ in answers if t in ("A", "AAAA")]
        qtype = "AAAA" if addrs and all(t == "AAAA" for t in addrs) else "A"
        qbytes = 12 + len(query) + 2 + 4 + 11
        rbytes = qbytes + sum(
            12 + (4 if t == "A" else 16 if t == "AAAA" else len(v) + 2) for t, v in answers
        )
        return DnsQuery(
            event_id=rec.record_key, ts_ns=rec.ts_ns, host=rec.host, process_guid=guid,
            src_ip="0.0.0.0", resolver_ip=self.config.resolver_ip, query=query,  # noqa: S104
            qtype=qtype, rcode=_rcode(d.get("QueryStatus", 0)),
            answers=tuple(v for _, v in answers), query_bytes=qbytes,
            response_bytes=rbytes,
        )  # fmt: skip

    def _file_access_4663(self, rec: _Rec) -> FileAccess | None:
        d = rec.data
        otype = d.get("ObjectType")
        mask = _int(d.get("AccessMask"), "AccessMask")
        if (isinstance(otype, str) and otype != "File") or not mask & (_READ_MASK | _WRITE_MASK):
            self._c.other_access += 1
            return None
        path = _text(d, "ObjectName")
        pid = _int(d.get("ProcessId"), "ProcessId")
        image = _text(d, "ProcessName")
        guid = self._procs.get((rec.host.lower(), pid, image.lower()))
        if guid is None:
            self._c.unattributed += 1
            return None
        op = FileOperation.READ if mask & _READ_MASK else FileOperation.WRITE
        return FileAccess(
            event_id=rec.record_key, ts_ns=rec.ts_ns, host=rec.host, process_guid=guid,
            path=path, operation=op, bytes=0,
        )  # fmt: skip


def read_sysmon(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    on_warning: Callable[[SysmonInputError], None] | None = None,
    config: SysmonConfig | None = None,
) -> Iterator[Event]:
    """The events of the Sysmon/Security file(s) at ``path`` (see :class:`SysmonReader`).

    The files are opened (and their format checked) at once, before the first event is asked for.
    """
    reader = SysmonReader(path, config=config, on_warning=on_warning)
    return iter(reader)
