"""Recorded inputs: recognise each file's format by its content and read them all as one stream.

:func:`sniff` looks at a file's first bytes, never at its name: pcap (either byte order, micro-
or nanosecond) and pcapng magics, an EVTX file header (``ElfFile``), a Windows event XML export
(``<Event``/``<Events``), Zeek TSV (``#separator``), and JSON lines whose first document's keys
show where it came from: this harness's own ECS export (``egress_harness``), Winlogbeat
(``winlog``), the OTRF Security-Datasets (``EventID`` and ``Channel``) or Zeek JSON (``uid`` and
``id.orig_h``). A gzip file is looked into. A directory stands for every file under it (hidden
names skipped), in name order.

:func:`open_inputs` reads them as one stream: each input through its reader (pcap: the fast
capture reader; ECS: :mod:`harness.ecs`, line by line; Zeek and Sysmon: the readers of
:mod:`harness.ingest.zeek` and :mod:`harness.ingest.sysmon`, imported when needed so that a
build without them says so instead of failing), re-ordered within a bounded lateness, merged in
event-time order with ``heapq``, and, when an endpoint source (Sysmon) is among them, passed
through :func:`harness.ingest.join.join`, which attributes flows to processes from Sysmon's
network-connection events. The :class:`InputSet` it returns is iterated once; afterwards it
holds per-input :class:`InputSummary` records (events by kind, records skipped, the first few
warnings with file and position, or the error that made the input unreadable), the join's
attribution count and the telemetry fields the inputs showed (:meth:`InputSet.fields`).

Nothing is lost silently: a damaged record is skipped, counted and its message kept (the first
:data:`KEPT_WARNINGS` per input); an input that cannot be read at all is reported with the
reason and the others are still read. Errors::

    InputError (exit 2)              a path that does not exist
    UnreadableInputError (exit 3)    a file that is empty, not a known format, or whose reader
                                     is not in this build

Event ids must be unique across the inputs: the first input of each reader family keeps its
ids (so that labels naming them still apply) and later inputs of the same family get theirs,
and their flow ids, prefixed with ``in<N>/`` (``N`` the input's position).
"""

from __future__ import annotations

import gzip
import heapq
import importlib
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from harness.errors import HarnessError, InputError
from harness.events import (
    DnsQuery,
    Event,
    FileAccess,
    FileOperation,
    NetworkConnection,
    NetworkFlow,
    ProcessStart,
    ProtocolAnomaly,
)
from harness.fields import Field

__all__ = [
    "KEPT_WARNINGS",
    "Family",
    "InputFile",
    "InputSet",
    "InputSummary",
    "SourceKind",
    "UnreadableInputError",
    "expand_paths",
    "open_inputs",
    "require_events",
    "sniff",
]

#: Warning messages kept per input (all are counted).
KEPT_WARNINGS = 5
#: Events of one input may arrive this much out of time order and still be merged in order.
REORDER_LATENESS_S = 600.0
#: At most this many events are held back per input for re-ordering.
REORDER_BUFFER = 200_000
#: Time window of the endpoint-network join (Sysmon connection vs flow start), seconds.
JOIN_WINDOW_S = 5.0
_SNIFF_BYTES = 1 << 16
_NS_PER_S = 1_000_000_000


class UnreadableInputError(HarnessError):
    """An input that exists but cannot be read: empty, of an unknown format, or in a format
    whose reader this build lacks (exit 3)."""


class Family(StrEnum):
    """Which reader handles a kind of input."""

    PCAP = "pcap"
    ECS = "ecs"
    ZEEK = "zeek"
    SYSMON = "sysmon"

    @property
    def endpoint(self) -> bool:
        return self is Family.SYSMON

    @property
    def network(self) -> bool:
        return self in (Family.PCAP, Family.ZEEK)


class SourceKind(StrEnum):
    """A recognised input format."""

    PCAP = "pcap"
    PCAPNG = "pcapng"
    ECS = "ecs-ndjson"
    ZEEK_TSV = "zeek-tsv"
    ZEEK_JSON = "zeek-json"
    SYSMON_EVTX = "sysmon-evtx"
    SYSMON_XML = "sysmon-xml"
    WINLOGBEAT = "winlogbeat-json"
    OTRF = "otrf-json"

    @property
    def family(self) -> Family:
        return _FAMILY[self]


_FAMILY = {
    SourceKind.PCAP: Family.PCAP,
    SourceKind.PCAPNG: Family.PCAP,
    SourceKind.ECS: Family.ECS,
    SourceKind.ZEEK_TSV: Family.ZEEK,
    SourceKind.ZEEK_JSON: Family.ZEEK,
    SourceKind.SYSMON_EVTX: Family.SYSMON,
    SourceKind.SYSMON_XML: Family.SYSMON,
    SourceKind.WINLOGBEAT: Family.SYSMON,
    SourceKind.OTRF: Family.SYSMON,
}
_EXPECTED = (
    "pcap, pcapng, EVTX, Windows event XML, Zeek TSV, or JSON lines from egress-harness (ECS), "
    "Winlogbeat, the OTRF Security-Datasets or Zeek"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class InputFile:
    """One input file and the format its content showed."""

    path: str
    kind: SourceKind
    gzip: bool
    size_bytes: int


# -- finding and recognising inputs -----------------------------------------------------------


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named by ``paths``: a file is itself, a directory every file under it (hidden names
    skipped, name order). A path that does not exist raises :class:`InputError` (exit 2)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            out.extend(found)
        elif path.exists():
            out.append(path)
        else:
            raise InputError(f"input {os.fspath(raw)!r} does not exist")
    return list(dict.fromkeys(out))


def _head(path: Path) -> tuple[bytes, bool]:
    """The first bytes of ``path`` (decompressed if it is gzip) and whether it was gzip."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise UnreadableInputError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc
    if raw[:2] != b"\x1f\x8b":
        return raw, False
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(_SNIFF_BYTES), True
    except (OSError, EOFError, zlib.error) as exc:
        raise UnreadableInputError(f"{str(path)!r}: a damaged gzip file ({exc})") from exc


def _first_json_line(text: bytes) -> dict[str, Any] | None:
    for line in text.split(b"\n"):
        if line.strip():
            try:
                doc = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return None
            return doc if isinstance(doc, dict) else None
    return None


def sniff(path: str | os.PathLike[str]) -> InputFile:
    """Recognise the format of the file at ``path`` from its content.

    Raises :class:`UnreadableInputError` for an empty file or an unknown format.
    """
    p = Path(path)
    head, gz = _head(p)
    name = str(p)
    if not head:
        raise UnreadableInputError(f"{name!r} is empty" + (" (after gunzip)" if gz else ""))
    size = p.stat().st_size
    kind = _kind_of(head)
    if kind is None and not gz and head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        # A JSON document longer than the sniffed bytes: read its whole first line.
        with open(p, "rb") as handle:
            kind = _kind_of(handle.readline(64 << 20))
    if kind is None:
        preview = head[:16].hex(" ")
        raise UnreadableInputError(
            f"{name!r}: unrecognised format (first bytes {preview}); expected {_EXPECTED}"
        )
    return InputFile(path=name, kind=kind, gzip=gz, size_bytes=size)


def _kind_of(head: bytes) -> SourceKind | None:
    magic_le = int.from_bytes(head[:4], "little") if len(head) >= 4 else -1
    if magic_le in (0xA1B2C3D4, 0xD4C3B2A1, 0xA1B23C4D, 0x4D3CB2A1):
        return SourceKind.PCAP
    if magic_le == 0x0A0D0D0A:
        return SourceKind.PCAPNG
    if head.startswith(b"ElfFile\x00"):
        return SourceKind.SYSMON_EVTX
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"#separator"):
        return SourceKind.ZEEK_TSV
    if text.startswith(b"<") and (b"<Event" in text[:4096]):
        return SourceKind.SYSMON_XML
    if text.startswith(b"{"):
        doc = _first_json_line(text)
        if doc is None:
            return None
        if "egress_harness" in doc:
            return SourceKind.ECS
        if "winlog" in doc:
            return SourceKind.WINLOGBEAT
        if "EventID" in doc and "Channel" in doc:
            return SourceKind.OTRF
        if "uid" in doc and "id.orig_h" in doc:
            return SourceKind.ZEEK_JSON
    return None


# -- per-input bookkeeping --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InputSummary:
    """What reading one input gave: events by kind, what was skipped and why."""

    path: str
    kind: str | None
    events: int
    events_by_kind: dict[str, int]
    #: Records skipped because they were damaged or malformed (each reported as a warning, or
    #: counted by the reader's statistics).
    skipped_records: int
    warnings: int
    #: The first :data:`KEPT_WARNINGS` warning messages, each naming the file and position.
    first_warnings: tuple[str, ...]
    #: Events that came later than :data:`REORDER_LATENESS_S` behind the input's newest one.
    out_of_order: int
    #: Why the input could not be read (or stopped being read), if it could not.
    error: str | None
    #: Reader-specific figures (the pcap reader's statistics, for one).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def readable(self) -> bool:
        return self.error is None or self.events > 0


@dataclass(slots=True)
class _Tally:
    path: str
    kind: SourceKind | None
    events: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    warnings: int = 0
    first: list[str] = field(default_factory=list)
    out_of_order: int = 0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def warn(self, message: object) -> None:
        self.warnings += 1
        if len(self.first) < KEPT_WARNINGS:
            self.first.append(str(message))

    def summary(self) -> InputSummary:
        return InputSummary(
            path=self.path,
            kind=self.kind.value if self.kind else None,
            events=self.events,
            events_by_kind=dict(sorted(self.by_kind.items())),
            skipped_records=self.skipped,
            warnings=self.warnings,
            first_warnings=tuple(self.first),
            out_of_order=self.out_of_order,
            error=self.error,
            details=self.details,
        )


@dataclass(slots=True)
class _Seen:
    """What the stream showed, for inferring the telemetry fields."""

    process_start: bool = False
    file_read: bool = False
    flows: int = 0
    flows_with_process: int = 0
    flow_app: bool = False
    dns: bool = False
    dns_process: bool = False
    anomaly: bool = False
    connections: int = 0

    def observe(self, e: Event) -> None:
        if isinstance(e, NetworkFlow):
            if e.is_final:
                self.flows += 1
                if e.process_guid is not None:
                    self.flows_with_process += 1
            if e.app_protocol.value != "unknown":
                self.flow_app = True
        elif isinstance(e, DnsQuery):
            self.dns = True
            if e.process_guid is not None:
                self.dns_process = True
        elif isinstance(e, ProcessStart):
            self.process_start = True
        elif isinstance(e, FileAccess):
            if e.operation is FileOperation.READ:
                self.file_read = True
        elif isinstance(e, ProtocolAnomaly):
            self.anomaly = True
        elif isinstance(e, NetworkConnection):
            self.connections += 1


# -- reading ----------------------------------------------------------------------------------


def _missing_reader(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise UnreadableInputError(
            f"{what} is a format not supported in this build ({module} is not installed)"
        ) from exc


def _open_text(path: str, gz: bool) -> IO[str]:
    if gz:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _ecs_events(path: str, gz: bool, tally: _Tally) -> Iterator[Event]:
    from harness.ecs import EcsFormatError, loads_event

    line_no = 0
    try:
        with _open_text(path, gz) as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield loads_event(line)
                except EcsFormatError as exc:
                    tally.skipped += 1
                    tally.warn(f"{path}:{line_no}: {exc}")
    except (OSError, EOFError, zlib.error) as exc:
        tally.skipped += 1
        tally.warn(f"{path}: after line {line_no}: cannot read further ({exc})")


def _pcap_events(inp: InputFile, path: str, tally: _Tally) -> Iterator[Event]:
    from harness.ingest.pcap import PcapEventReader

    reader = PcapEventReader(path, on_warning=lambda err: tally.warn(_relabel(err, path, inp)))
    yield from reader
    stats = reader.stats
    tally.skipped += stats.skipped_records
    tally.details = {
        "format": stats.format,
        "records": stats.records,
        "transport_packets": stats.transport_packets,
        "other_packets": stats.other_packets,
        "malformed_frames": dict(stats.malformed),
        "damaged_regions": stats.damaged_regions,
        "skipped_bytes": stats.skipped_bytes,
        "truncated_tail": stats.truncated_tail,
        "dns_unparsed": stats.dns_unparsed,
        "flows": stats.flows,
    }
    if stats.malformed:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(stats.malformed.items()))
        tally.warn(f"{inp.path}: frames too short or malformed to decode ({reasons})")


def _relabel(err: object, temp_path: str, inp: InputFile) -> str:
    """A reader's message about a decompressed temporary copy, naming the original file."""
    text = str(err)
    if temp_path != inp.path:
        text = text.replace(temp_path, inp.path + " (decompressed)")
    return text


def _sysmon_events(inputs: Sequence[InputFile], tally: _Tally) -> Iterator[Event]:
    """Every Sysmon and Security input in one read: Security 4663 file reads are attributed to
    processes through the Sysmon process events, which live in another log. The reader handles
    gzip itself; skipped records come from its statistics (a damaged EVTX chunk loses many
    records in one warning; a late event is a warning but no loss)."""
    names = ", ".join(repr(i.path) for i in inputs)
    module = _missing_reader("harness.ingest.sysmon", f"{names} (Sysmon/Security)")
    reader = module.SysmonReader([i.path for i in inputs], on_warning=tally.warn)
    yield from reader
    stats = reader.stats
    tally.skipped += stats.bad_records + stats.damaged_records
    tally.details = {
        "records": stats.records,
        "bad_records": stats.bad_records,
        "damaged_records": stats.damaged_records,
        "damaged_regions": stats.damaged_regions,
        "unattributed_file_access": stats.unattributed_file_access,
        "late_events": stats.late_events,
        "other_event_ids": dict(sorted(stats.other_event_ids.items())),
    }


def _zeek_events(inputs: Sequence[InputFile], tally: _Tally) -> Iterator[Event]:
    names = ", ".join(repr(i.path) for i in inputs)
    module = _missing_reader("harness.ingest.zeek", f"{names} (Zeek logs)")

    def on_warning(message: object) -> None:
        tally.skipped += 1
        tally.warn(message)

    yield from module.read_zeek([i.path for i in inputs], on_warning=on_warning)


def _ordered(events: Iterable[Event], tally: _Tally) -> Iterator[Event]:
    """``events`` in time order when none is more than the lateness behind the newest seen;
    later ones are passed on at once and counted (the merge is then out of order for them)."""
    lateness = int(REORDER_LATENESS_S * _NS_PER_S)
    heap: list[tuple[int, str, int, Event]] = []
    newest = None
    released = None
    seq = 0
    for e in events:
        if released is not None and e.ts_ns < released:
            tally.out_of_order += 1
            yield e
            continue
        seq += 1
        heapq.heappush(heap, (e.ts_ns, e.event_id, seq, e))
        newest = e.ts_ns if newest is None else max(newest, e.ts_ns)
        while heap and (heap[0][0] <= newest - lateness or len(heap) > REORDER_BUFFER):
            item = heapq.heappop(heap)
            released = item[0]
            yield item[3]
    while heap:
        yield heapq.heappop(heap)[3]


def _prefixed(events: Iterable[Event], prefix: str) -> Iterator[Event]:
    for e in events:
        if isinstance(e, NetworkFlow):
            yield replace(e, event_id=prefix + e.event_id, flow_id=prefix + e.flow_id)
        else:
            yield replace(e, event_id=prefix + e.event_id)


class InputSet:
    """The merged event stream of several inputs, with what reading them showed.

    Iterate once (a context manager: temporary decompressed copies are removed on exit).
    """

    def __init__(
        self,
        files: Sequence[InputFile],
        failures: Sequence[tuple[str, str]],
        *,
        progress: Callable[[int, int, str], None] | None = None,
        join_window_s: float = JOIN_WINDOW_S,
    ) -> None:
        self.files = tuple(files)
        self._failures = list(failures)
        self._progress = progress
        self._join_window_s = join_window_s
        self._tallies: list[_Tally] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.seen = _Seen()
        self.joined = False
        self.join_error: str | None = None
        self._iterated = False
        self.events = 0

    @property
    def kinds(self) -> tuple[SourceKind, ...]:
        """The formats of the inputs that gave at least one event."""
        readable = {t.path for t in self._tallies if t.events}
        return tuple(dict.fromkeys(f.kind for f in self.files if f.path in readable))

    @property
    def families(self) -> frozenset[Family]:
        return frozenset(k.family for k in self.kinds)

    @property
    def summaries(self) -> tuple[InputSummary, ...]:
        """Per input: the inputs read, in the order given (the Zeek logs as one), then those
        that could not be recognised, with their error."""
        out = [t.summary() for t in self._tallies]
        out += [
            InputSummary(
                path=path,
                kind=None,
                events=0,
                events_by_kind={},
                skipped_records=0,
                warnings=0,
                first_warnings=(),
                out_of_order=0,
                error=message,
            )
            for path, message in self._failures
        ]
        return tuple(out)

    @property
    def join_performed(self) -> bool:
        return self.joined

    @property
    def attributed_flows(self) -> tuple[int, int]:
        """(flows with a process, flows), counting each flow's final record."""
        return self.seen.flows_with_process, self.seen.flows

    def fields(self) -> frozenset[Field]:
        """The telemetry fields the inputs supply (after iteration).

        pcap: flows with bytes, payload-identified protocols, DNS and packet inspection. Zeek:
        flows with bytes and DPD-identified services, DNS if a dns log was read. ECS: what its
        events show. Process attribution, processes, file reads and resolver-API DNS only where
        events carrying them were seen.
        """
        fams = self.families
        s = self.seen
        out: set[Field] = set()
        if s.flows or s.flows_with_process:
            out.add(Field.FLOW_BYTES)
            if Family.PCAP in fams or Family.ZEEK in fams or s.flow_app:
                out.add(Field.FLOW_APP_PROTOCOL)
        if Family.PCAP in fams or s.anomaly:
            out.add(Field.PACKETS)
        if s.dns or Family.PCAP in fams:
            out.add(Field.DNS_QUERY)
        if s.process_start:
            out.add(Field.PROCESS)
        if s.file_read:
            out.add(Field.FILE_READ)
        if s.flows_with_process:
            out.add(Field.FLOW_PROCESS)
        if s.dns_process:
            out.add(Field.DNS_PROCESS)
        return frozenset(out)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _plain_copy(self, inp: InputFile, tally: _Tally) -> str:
        """A path the reader can open: the file itself, or a decompressed temporary copy."""
        if not inp.gzip:
            return inp.path
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="egress-harness-")
        target = os.path.join(self._tmp.name, f"{len(os.listdir(self._tmp.name))}.raw")
        try:
            with gzip.open(inp.path, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            # Keep what decompressed: the reader reports the cut as a truncated tail.
            tally.skipped += 1
            tally.warn(f"{inp.path}: gzip stream damaged ({exc}); reading what came out")
        return target

    def _guard(self, tally: _Tally, make: Callable[[], Iterable[Event]]) -> Iterator[Event]:
        """Run one input's reader, counting its events; a failure ends that input, reported."""
        try:
            for e in make():
                tally.events += 1
                key = e.kind.value
                tally.by_kind[key] = tally.by_kind.get(key, 0) + 1
                if self._progress is not None and tally.events % 100_000 == 0:
                    done = sum(1 for t in self._tallies if t.error is not None)
                    self._progress(done, len(self._tallies), f"{tally.path}: {tally.events} events")
                yield e
        except HarnessError as exc:
            tally.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a reader bug must not stop the other inputs
            tally.error = f"the reader failed: {type(exc).__name__}: {exc}"

    def __iter__(self) -> Iterator[Event]:
        if self._iterated:
            raise HarnessError("an InputSet can be iterated only once")
        self._iterated = True
        streams: list[Iterator[Event]] = []
        family_seen: set[Family] = set()
        together = {
            fam: [f for f in self.files if f.kind.family is fam]
            for fam in (Family.ZEEK, Family.SYSMON)
        }
        for index, inp in enumerate(self.files):
            fam = inp.kind.family
            group = together.get(fam)
            if group is not None and inp is not group[0]:
                continue  # Zeek logs are read together, and so are Sysmon/Security logs
            label = inp.path if group is None else ", ".join(g.path for g in group)
            tally = _Tally(path=label, kind=inp.kind)
            self._tallies.append(tally)
            make = self._maker(inp, group or [inp], tally)
            stream: Iterator[Event] = _ordered(self._guard(tally, make), tally)
            if fam in family_seen:
                stream = _prefixed(stream, f"in{index}/")
            family_seen.add(fam)
            streams.append(stream)
        merged: Iterator[Event] = heapq.merge(*streams, key=lambda e: (e.ts_ns, e.event_id))
        if any(f.kind.family.endpoint for f in self.files):
            merged = self._join(merged)
        for e in merged:
            self.seen.observe(e)
            self.events += 1
            yield e
        if self._progress is not None:
            self._progress(len(self._tallies), len(self._tallies), f"{self.events} events read")

    def _maker(
        self, inp: InputFile, group: Sequence[InputFile], tally: _Tally
    ) -> Callable[[], Iterable[Event]]:
        fam = inp.kind.family
        if fam is Family.ZEEK:
            return lambda: _zeek_events(group, tally)
        if fam is Family.ECS:
            return lambda: _ecs_events(inp.path, inp.gzip, tally)
        if fam is Family.PCAP:
            return lambda: _pcap_events(inp, self._plain_copy(inp, tally), tally)
        return lambda: _sysmon_events(group, tally)

    def _join(self, events: Iterator[Event]) -> Iterator[Event]:
        try:
            module = importlib.import_module("harness.ingest.join")
        except ModuleNotFoundError as exc:
            if exc.name != "harness.ingest.join":
                raise
            self.join_error = (
                "the endpoint-network join is not in this build (harness.ingest.join is "
                "missing): Sysmon network connections are not attributed to flows"
            )
            return (e for e in events if not isinstance(e, NetworkConnection))
        self.joined = True
        joined: Iterator[Event] = module.join(events, window_s=self._join_window_s)
        return joined


def open_inputs(
    paths: Iterable[str | os.PathLike[str]],
    *,
    progress: Callable[[int, int, str], None] | None = None,
    join_window_s: float = JOIN_WINDOW_S,
) -> InputSet:
    """Find and recognise the inputs under ``paths`` and return their merged stream.

    A path that does not exist raises :class:`InputError` (exit 2). Files that cannot be
    recognised are reported in :attr:`InputSet.summaries` with the reason, not raised; the caller
    decides what to do when nothing at all could be read (see :func:`require_events`).
    """
    files: list[InputFile] = []
    failures: list[tuple[str, str]] = []
    for path in expand_paths(paths):
        try:
            files.append(sniff(path))
        except UnreadableInputError as exc:
            failures.append((str(path), str(exc)))
    return InputSet(files, failures, progress=progress, join_window_s=join_window_s)


def require_events(inputs: InputSet) -> None:
    """Raise :class:`UnreadableInputError` (exit 3) when the inputs gave no event at all,
    naming why each input failed."""
    if inputs.events:
        return
    reasons = [s.error or f"{s.path!r}: no events" for s in inputs.summaries]
    if not reasons:
        raise UnreadableInputError("no input files were found")
    raise UnreadableInputError("nothing could be read: " + "; ".join(reasons))
