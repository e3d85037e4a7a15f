"""Sysmon / Windows Security reader: every mapping in every format, attribution, order, damage.

Samples in ``data/``: ``sysmon_events.xml`` (Event Viewer "Save as XML" of a Sysmon and a Security
log: real schema, synthetic values), the same events as Winlogbeat NDJSON without its Sysmon module
(``sysmon_winlogbeat.ndjson``) and in OTRF flat-key JSON lines (``sysmon_otrf.jsonl``), two events
as Winlogbeat's Sysmon module leaves them (fields moved to ECS, ``sysmon_winlogbeat_ecs.ndjson``),
and two real OTRF Security-Datasets records (``otrf_createremotethread_excerpt.json``, BSD-3-Clause,
see ``NOTICE-OTRF.txt``). EVTX files are written at test time by
:class:`harness.ingest._evtx.EvtxWriter` from the XML sample and decoded by the independent
``evtx`` (pyevtx-rs) parser.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import re
import struct
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from harness.ingest._evtx import CHUNK_SIZE, HEADER_SIZE, EvtxRecord, EvtxWriter, Guid, Value
from harness.ingest.sysmon import (
    SysmonConfig,
    SysmonInputError,
    SysmonReader,
    read_sysmon,
)

DATA = Path(__file__).parent / "data"
XML = DATA / "sysmon_events.xml"
NS = "{http://schemas.microsoft.com/win/2004/08/events/event}"
PS_GUID = "{6f0c1a2b-8dd2-63ff-550d-000000001c00}"
SVC_GUID = "{6f0c1a2b-0a31-63ff-1400-000000001c00}"
PS = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
MS = 1_000_000


def read(path: Path | list[Path], **config: object) -> tuple[list[Event], SysmonReader]:
    reader = SysmonReader(path, config=SysmonConfig(**config))  # type: ignore[arg-type]
    return list(reader), reader


# -- EVTX from the XML sample ---------------------------------------------------------------

_GUIDS = {"ProcessGuid", "ParentProcessGuid", "LogonGuid"}
_INTS = {"ProcessId", "ParentProcessId", "SourcePort", "DestinationPort", "TerminalSessionId"}
_BOOLS = {"Initiated", "SourceIsIpv6", "DestinationIsIpv6"}


def _typed(name: str, text: str) -> Value:
    """The value as Windows stores it (Sysmon's manifest types)."""
    if name in _GUIDS:
        return Guid(text)
    if name in _INTS and text.isdigit():
        return int(text)
    if name in _BOOLS:
        return text == "true"
    return text


def xml_to_evtx_records(path: Path) -> list[EvtxRecord]:
    out = []
    for ev in ET.parse(path).getroot():
        system = ev.find(f"{NS}System")
        assert system is not None
        provider = system.find(f"{NS}Provider")
        created = system.find(f"{NS}TimeCreated")
        assert provider is not None
        assert created is not None
        stamp = created.attrib["SystemTime"]
        secs = int(datetime.fromisoformat(stamp[:19] + "+00:00").timestamp())
        data = [
            (d.attrib["Name"], _typed(d.attrib["Name"], d.text or ""))
            for d in ev.iterfind(f"{NS}EventData/{NS}Data")
        ]
        out.append(
            EvtxRecord(
                record_id=int(system.findtext(f"{NS}EventRecordID") or 0),
                event_id=int(system.findtext(f"{NS}EventID") or 0),
                provider=provider.attrib["Name"],
                provider_guid=provider.attrib["Guid"],
                channel=system.findtext(f"{NS}Channel") or "",
                computer=system.findtext(f"{NS}Computer") or "",
                time_ns=secs * 1_000_000_000 + int(stamp[20:27]) * 100,
                data=data,
            )
        )
    return out


def write_evtx(path: Path, records: list[EvtxRecord]) -> Path:
    with path.open("wb") as f, EvtxWriter(f) as w:
        for rec in records:
            w.write(rec)
    return path


def many_records(n: int, *, start: int = 1) -> list[EvtxRecord]:
    """``n`` Sysmon 3 records, one per 10 ms (enough to fill several chunks)."""
    base = 1_700_000_000_000_000_000
    recs = []
    for i in range(start, start + n):
        ts = base + i * 10 * MS
        utc = datetime.fromtimestamp(ts // 10**9, UTC)
        recs.append(
            EvtxRecord(
                record_id=i,
                event_id=3,
                provider="Microsoft-Windows-Sysmon",
                channel="Microsoft-Windows-Sysmon/Operational",
                computer="WS03.corp.example",
                time_ns=ts,
                data=[
                    ("RuleName", "-"),
                    ("UtcTime", utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{(ts // MS) % 1000:03d}"),
                    ("ProcessGuid", Guid(PS_GUID)),
                    ("ProcessId", 6700),
                    ("Image", PS),
                    ("User", "CORP\\alice"),
                    ("Protocol", "tcp"),
                    ("Initiated", True),
                    ("SourceIsIpv6", False),
                    ("SourceIp", "192.0.2.12"),
                    ("SourcePort", 40000 + i % 20000),
                    ("DestinationIsIpv6", False),
                    ("DestinationIp", "198.51.100.80"),
                    ("DestinationPort", 443),
                ],
            )
        )
    return recs


@pytest.fixture(scope="module")
def evtx_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_evtx(tmp_path_factory.mktemp("evtx") / "sample.evtx", xml_to_evtx_records(XML))


# -- mapping ----------------------------------------------------------------------------------


def _strip_ids(events: list[Event]) -> list[Event]:
    """Events without their source-specific id, times to the millisecond."""
    return [replace(e, event_id="", ts_ns=e.ts_ns // MS) for e in events]


def test_xml_sample_maps_every_event_type() -> None:
    events, reader = read(XML)
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "ProcessStart", "ProcessStart", "DnsQuery", "NetworkConnection", "FileAccess",
        "FileAccess", "NetworkConnection", "DnsQuery", "DnsQuery",
    ]  # fmt: skip
    assert all(a.ts_ns <= b.ts_ns for a, b in itertools.pairwise(events))
    svc, ps, dns, conn, read_ev, create, inbound, nx, v6 = events
    assert isinstance(svc, ProcessStart)
    assert svc.parent_guid is None
    assert isinstance(ps, ProcessStart)
    assert ps.process_guid == PS_GUID
    assert ps.pid == 6700
    assert ps.image == PS
    assert ps.name == "powershell.exe"
    assert ps.user == "CORP\\alice"
    assert ps.signer is None
    assert ps.command_line.endswith("-NoProfile -File C:\\Users\\alice\\sync.ps1")
    assert ps.parent_guid == "{6f0c1a2b-5e10-63ff-3d02-000000001c00}"
    assert ps.host == "WS01.corp.example"
    assert ps.ts_ns == 1_677_662_102_456_000_000  # UtcTime 2023-03-01 09:15:02.456
    assert isinstance(dns, DnsQuery)
    assert (dns.query, dns.qtype, dns.rcode) == ("files.contoso.example", "A", "NOERROR")
    assert dns.answers == ("cdn.files.example", "198.51.100.20", "198.51.100.21")
    assert dns.process_guid == PS_GUID
    assert dns.resolver_ip == "0.0.0.0"
    # 12 + (21 + 2) + 4 + 11; answers: 12 + 19 (CNAME), 2 x (12 + 4)
    assert (dns.query_bytes, dns.response_bytes) == (50, 50 + 31 + 32)
    assert isinstance(conn, NetworkConnection)
    assert (conn.transport, conn.src_ip, conn.src_port, conn.dst_ip, conn.dst_port) == (
        Transport.TCP, "192.0.2.10", 50112, "198.51.100.20", 443,
    )  # fmt: skip
    assert conn.direction is Direction.OUTBOUND
    assert conn.initiated
    assert conn.process_guid == PS_GUID
    assert isinstance(read_ev, FileAccess)
    assert read_ev.operation is FileOperation.READ
    assert read_ev.process_guid == PS_GUID
    assert read_ev.event_id.startswith("security:0:")
    assert read_ev.path == r"C:\Users\alice\Documents\q3-forecast.xlsx"
    assert read_ev.bytes == 0
    assert isinstance(create, FileAccess)
    assert create.operation is FileOperation.CREATE
    assert create.path == r"C:\Users\alice\AppData\Local\Temp\stage.zip"
    assert isinstance(inbound, NetworkConnection)
    assert not inbound.initiated
    assert inbound.direction is Direction.INBOUND
    assert inbound.process_guid == SVC_GUID
    assert (inbound.src_ip, inbound.dst_port) == ("203.0.113.7", 3389)
    assert isinstance(nx, DnsQuery)
    assert nx.rcode == "NXDOMAIN"
    assert nx.answers == ()
    assert isinstance(v6, DnsQuery)
    assert v6.qtype == "AAAA"
    assert v6.answers == ("2001:db8::53",)
    s = reader.stats
    assert s.records == 12
    assert s.formats == ("xml",)
    assert s.other_event_ids == {"Microsoft-Windows-Sysmon/Operational:5": 1}
    assert (s.unattributed_file_access, s.other_access, s.skipped_records) == (1, 1, 0)
    assert s.events == {"process_start": 2, "dns_query": 3, "network_connection": 2,
                        "file_access": 2}  # fmt: skip
    assert len({e.event_id for e in events}) == len(events)


@pytest.mark.parametrize("name", ["sysmon_winlogbeat.ndjson", "sysmon_otrf.jsonl", "evtx"])
def test_every_format_gives_the_same_events(name: str, evtx_sample: Path) -> None:
    expected, _ = read(XML)
    path = evtx_sample if name == "evtx" else DATA / name
    events, reader = read(path)
    assert _strip_ids(events) == _strip_ids(expected)
    assert reader.stats.skipped_records == 0
    assert reader.stats.records == 12
    if name == "evtx":
        assert reader.stats.formats == ("evtx",)
        assert events[1].event_id == "sysmon:0:40111"  # EVTX ids are record ids
        assert events[4].event_id == "security:0:88211"


def test_wevtutil_rootless_utf16_and_gzip_variants(tmp_path: Path) -> None:
    expected, _ = read(XML)
    text = XML.read_text(encoding="utf-8")
    body = text.split("<Events>", 1)[1].rsplit("</Events>", 1)[0]
    rootless = tmp_path / "wevtutil.xml"
    rootless.write_text(body, encoding="utf-8")
    utf16 = tmp_path / "viewer-utf16.xml"
    utf16.write_text(text, encoding="utf-16")
    gz = tmp_path / "events.xml.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    jgz = tmp_path / "otrf.jsonl.gz"
    jgz.write_bytes(gzip.compress((DATA / "sysmon_otrf.jsonl").read_bytes()))
    for path in (rootless, utf16, gz, jgz):
        events, _reader = read(path)
        assert _strip_ids(events) == _strip_ids(expected), path.name
    assert SysmonReader(gz).stats.formats == ("xml.gz",)


def test_winlogbeat_sysmon_module_ecs_fields() -> None:
    events, reader = read(DATA / "sysmon_winlogbeat_ecs.ndjson")
    dns, conn = events  # put in time order: the DNS query happened first
    assert isinstance(dns, DnsQuery)
    assert isinstance(conn, NetworkConnection)
    guid = "{7a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9}"
    assert dns.query == "update.vendor.example"
    assert dns.rcode == "NOERROR"
    assert dns.answers == ("edge.vendor.example", "203.0.113.80")
    assert dns.process_guid == guid
    assert conn.transport is Transport.UDP
    assert conn.initiated
    assert (conn.src_ip, conn.src_port, conn.dst_ip, conn.dst_port) == (
        "192.0.2.11", 53011, "203.0.113.53", 53,
    )  # fmt: skip
    assert conn.direction is Direction.OUTBOUND
    assert conn.host == "WS02.corp.example"
    assert reader.stats.skipped_records == 0


def test_published_otrf_records() -> None:
    events, reader = read(DATA / "otrf_createremotethread_excerpt.json")
    create, start = events
    assert reader.stats.formats == ("json-array",)
    assert isinstance(create, FileAccess)
    assert create.operation is FileOperation.CREATE
    assert create.path == r"C:\Windows\Prefetch\SVCHOST.EXE-E8610451.pf"
    assert isinstance(start, ProcessStart)
    assert start.process_guid == "{03bfca49-8dd2-632c-550d-000000000b00}"
    assert start.pid == 12372
    assert start.parent_guid == "{03bfca49-8c7c-632c-430d-000000000b00}"
    assert start.host == "WORKSTATION6.mssentinel.local"
    assert start.user == "MSSENTINEL\\wardog"
    assert start.ts_ns == 1_663_864_274_259_000_000  # 2022-09-22 16:31:14.259 UTC


def test_address_plan_sets_direction(tmp_path: Path) -> None:
    # With 198.51.100.0/24 declared internal too, the outbound connection becomes internal.
    events, _ = read(XML, internal_networks=("192.0.2.0/24", "198.51.100.0/24"))
    conns = [e for e in events if isinstance(e, NetworkConnection)]
    assert [c.direction for c in conns] == [Direction.INTERNAL, Direction.INBOUND]
    events, _ = read(XML, internal_networks=("10.0.0.0/8",))  # nothing in the capture internal
    conns = [e for e in events if isinstance(e, NetworkConnection)]
    assert [c.direction for c in conns] == [Direction.OUTBOUND, Direction.INBOUND]


# -- 4663 attribution ---------------------------------------------------------------------------


def _split_xml(tmp_path: Path) -> tuple[Path, Path]:
    """The sample as two logs, as Windows keeps them: Sysmon's and Security's."""
    events = re.findall(r"<Event .*?</Event>", XML.read_text(encoding="utf-8"), re.DOTALL)
    sec = [ln for ln in events if "<Channel>Security</Channel>" in ln]
    sysmon = [ln for ln in events if ln not in sec]
    a, b = tmp_path / "Security.xml", tmp_path / "Sysmon.xml"
    a.write_text("<Events>\n" + "\n".join(sec) + "\n</Events>\n", encoding="utf-8")
    b.write_text("<Events>\n" + "\n".join(sysmon) + "\n</Events>\n", encoding="utf-8")
    return a, b


def test_4663_attributed_across_files_in_time_order(tmp_path: Path) -> None:
    security, sysmon = _split_xml(tmp_path)
    # Security first on the command line: the merge still sees the process start before the read.
    events, reader = read([security, sysmon])
    reads = [e for e in events if isinstance(e, FileAccess) and e.operation is FileOperation.READ]
    assert [(r.process_guid, r.event_id) for r in reads] == [(PS_GUID, "security:0:E1")]
    assert reader.stats.unattributed_file_access == 1
    assert reader.stats.other_access == 1
    assert all(a.ts_ns <= b.ts_ns for a, b in itertools.pairwise(events))
    assert {e.event_id.split(":")[1] for e in events} == {"0", "1"}
    # Without the Sysmon log nothing can be attributed: both reads counted, none emitted.
    events, reader = read(security)
    assert events == []
    assert reader.stats.unattributed_file_access == 2


def test_4663_follows_pid_reuse_and_write_mask(tmp_path: Path) -> None:
    records = [json.loads(x) for x in (DATA / "sysmon_otrf.jsonl").read_text().splitlines()]
    base = next(r for r in records if r.get("ProcessGuid") == PS_GUID and r["EventID"] == 1)
    read_rec = next(
        r for r in records if r.get("AccessMask") == "0x1" and r["ProcessId"] == "0x1a2c"
    )
    assert base["EventID"] == 1
    assert read_rec["EventID"] == 4663
    new_guid = "{6f0c1a2b-9999-63ff-550d-000000001c00}"
    later = dict(base, ProcessGuid=new_guid, UtcTime="2023-03-01 09:20:00.000")
    read2 = dict(read_rec, UtcTime=None, TimeCreated="2023-03-01T09:20:01.000Z",
                 **{"@timestamp": "2023-03-01T09:20:01.000Z"}, AccessMask="0x6",
                 RecordNumber=1)  # fmt: skip
    path = tmp_path / "reuse.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (base, read_rec, later, read2)) + "\n")
    events, _ = read(path)
    accesses = [e for e in events if isinstance(e, FileAccess)]
    assert [(a.process_guid, a.operation) for a in accesses] == [
        (PS_GUID, FileOperation.READ), (new_guid, FileOperation.WRITE),
    ]  # fmt: skip


# -- order --------------------------------------------------------------------------------------


def test_reorder_window_and_late_events(tmp_path: Path) -> None:
    lines = (DATA / "sysmon_otrf.jsonl").read_text().splitlines()
    dns_late = dict(json.loads(lines[2]), UtcTime="2023-03-01 09:14:00.000")  # 62 s before
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join([*lines, json.dumps(dns_late)]) + "\n")
    seen: list[SysmonInputError] = []
    reader = SysmonReader(path, on_warning=seen.append, config=SysmonConfig(reorder_window_s=30))
    events = list(reader)
    assert reader.stats.late_events == 1
    late = [i for i, e in enumerate(events) if e.ts_ns == 1_677_662_040_000_000_000]
    assert len(late) == 1
    assert events[late[0] - 1].ts_ns > events[late[0]].ts_ns  # emitted out of order, not lost
    assert len(seen) == 1
    assert "line 13" in str(seen[0])
    assert "reorder window" in str(seen[0])
    # A wide enough window puts it in its place.
    events, reader = read(path, reorder_window_s=120)
    assert reader.stats.late_events == 0
    assert all(a.ts_ns <= b.ts_ns for a, b in itertools.pairwise(events))
    # With a window of an hour the buffer cap decides: 100 holds the file, 5 does not.
    events, reader = read(path, reorder_window_s=3600, max_buffered=100)
    assert reader.stats.late_events == 0
    events, reader = read(path, reorder_window_s=3600, max_buffered=5)
    assert reader.stats.late_events == 1


# -- bad input ----------------------------------------------------------------------------------


def test_not_telemetry_raises_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello, this is not an event log\n")
    with pytest.raises(SysmonInputError, match=r"notes\.txt.*not EVTX, XML or JSON"):
        read_sysmon(bad)
    with pytest.raises(SysmonInputError, match="cannot open"):
        read_sysmon(tmp_path / "missing.evtx")
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    with pytest.raises(InputError):
        read_sysmon(empty)


def test_bad_xml_records_are_skipped_with_their_position(tmp_path: Path) -> None:
    text = XML.read_text(encoding="utf-8")
    lines = text.splitlines()
    ps_start = lines[3]
    assert PS_GUID in ps_start
    assert "<EventID>1</EventID>" in ps_start
    broken = [
        ps_start.replace(f'<Data Name="ProcessGuid">{PS_GUID}</Data>', ""),  # missing GUID
        ps_start.replace(PS_GUID, "{not-a-guid}"),
        ps_start.replace("2023-03-01 09:15:02.456", "yesterday at noon"),
        ps_start.replace("</System>", "</Sys>"),  # malformed XML
        '<!DOCTYPE x [<!ENTITY a "aaaa">]>' + ps_start.replace("CORP\\alice", "&a;"),
        ps_start.replace('Name="Image">', 'Name="Image"> ').replace(PS, " "),  # blank Image
        ps_start.replace("CORP\\alice", "<![CDATA[CORP\\alice]]>"),
    ]
    path = tmp_path / "broken.xml"
    path.write_text("\n".join(["<Events>", *broken, ps_start, "<Event xmlns='x'><System>"]))
    seen: list[SysmonInputError] = []
    reader = SysmonReader(path, on_warning=seen.append)
    events = list(reader)
    assert len(events) == 1
    assert isinstance(events[0], ProcessStart)
    msgs = [str(w) for w in sorted(seen, key=lambda w: int(str(w.position).split()[1]))]
    assert len(msgs) == 8
    assert all("broken.xml" in m for m in msgs)
    assert "line 2 (event 1)" in msgs[0]
    assert "missing ProcessGuid" in msgs[0]
    assert "line 3 (event 2)" in msgs[1]
    assert "is not a GUID" in msgs[1]
    assert "bad time 'yesterday at noon'" in msgs[2]
    assert "malformed XML" in msgs[3]
    assert "undefined entity" in msgs[4]  # a DTD before <Event> is never applied
    assert "missing Image" in msgs[5]
    assert "DOCTYPE, ENTITY or CDATA" in msgs[6]
    assert "line 10 (event 9)" in msgs[7]
    assert "without </Event>" in msgs[7]
    s = reader.stats
    assert (s.bad_records, s.damaged_records, s.skipped_records) == (7, 1, 8)


def test_bad_json_lines_and_array_elements(tmp_path: Path) -> None:
    lines = (DATA / "sysmon_otrf.jsonl").read_text().splitlines()
    path = tmp_path / "broken.jsonl"
    bad_port = json.loads(lines[7])
    assert bad_port["EventID"] == 3
    bad_port["DestinationPort"] = "70000"
    path.write_text("\n".join([
        lines[0], '{"EventID": 1, "Hostname": "WS01', "[1, 2]", json.dumps(bad_port),
        json.dumps(dict(json.loads(lines[1]), Hostname="")), *lines[1:],
    ]) + "\n")  # fmt: skip
    seen: list[SysmonInputError] = []
    reader = SysmonReader(path, on_warning=seen.append)
    events = list(reader)
    assert len(events) == 9
    seen.sort(key=lambda w: str(w.position))
    assert [w.position for w in seen] == ["line 2", "line 3", "line 4", "line 5"]
    assert "DestinationPort '70000' is not a port" in str(seen[2])
    assert "missing Computer" in str(seen[3])
    assert reader.stats.bad_records == 4
    arr = tmp_path / "broken.json"
    objs = [json.loads(x) for x in lines[:3]]
    arr.write_text("[" + json.dumps(objs[0]) + ",\n{\"EventID\": 1, oops},\n"
                   + json.dumps(objs[1]) + "," + json.dumps(objs[2]) + "]")  # fmt: skip
    seen.clear()
    reader = SysmonReader(arr, on_warning=seen.append)
    assert len(list(reader)) == 3
    assert len(seen) == 1
    assert "element 2" in str(seen[0])
    assert reader.stats.damaged_records == 1


def test_config_is_validated() -> None:
    with pytest.raises(InvalidParameterError, match="reorder_window_s"):
        SysmonConfig(reorder_window_s=-1)
    with pytest.raises(InvalidParameterError, match="resolver_ip"):
        SysmonConfig(resolver_ip="dns.example")
    with pytest.raises(InvalidParameterError, match="max_buffered"):
        SysmonConfig(max_buffered=0)


# -- EVTX -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_chunks(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[int]]:
    """An EVTX file of three full chunks and the number of records in each."""
    path = write_evtx(tmp_path_factory.mktemp("evtx3") / "big.evtx", many_records(360))
    data = path.read_bytes()
    counts = []
    chunks = (len(data) - HEADER_SIZE) // CHUNK_SIZE
    for i in range(chunks):
        off = HEADER_SIZE + i * CHUNK_SIZE
        assert data[off : off + 8] == b"ElfChnk\x00"
        first, last = struct.unpack_from("<QQ", data, off + 8)
        counts.append(last - first + 1)
    assert chunks >= 3
    assert len(data) == HEADER_SIZE + chunks * CHUNK_SIZE
    assert sum(counts) == 360
    return data, counts


def test_evtx_writer_round_trip(three_chunks: tuple[bytes, list[int]], tmp_path: Path) -> None:
    data, _ = three_chunks
    path = tmp_path / "big.evtx"
    path.write_bytes(data)
    from evtx import PyEvtxParser  # the independent decoder checks the writer's checksums

    ids = [r["event_record_id"] for r in PyEvtxParser(str(path), validate_checksums=True)]
    assert sorted(ids) == list(range(1, 361))
    events, reader = read(path)
    assert len(events) == 360
    assert reader.stats.skipped_records == 0
    assert all(isinstance(e, NetworkConnection) for e in events)
    assert [e.event_id for e in events[:2]] == ["sysmon:0:1", "sysmon:0:2"]


@pytest.mark.parametrize("damage", ["signature", "records", "truncated"])
def test_broken_evtx_chunk_is_skipped_and_counted(
    damage: str, three_chunks: tuple[bytes, list[int]], tmp_path: Path
) -> None:
    data, counts = three_chunks
    raw = bytearray(data)
    middle = HEADER_SIZE + CHUNK_SIZE
    if damage == "signature":
        raw[middle : middle + 8] = b"XXXXXXXX"
    elif damage == "records":
        # Garbage over the binary XML of records a good way into the chunk.
        raw[middle + 30000 : middle + 34000] = bytes(range(256)) * 15 + bytes(160)
    else:
        raw = raw[: middle + CHUNK_SIZE + 20000]  # the last chunk cut short
    path = tmp_path / f"{damage}.evtx"
    path.write_bytes(bytes(raw))
    seen: list[SysmonInputError] = []
    reader = SysmonReader(path, on_warning=seen.append)
    events = list(reader)
    s = reader.stats
    assert seen
    assert all("evtx" in str(w) for w in seen)
    if damage == "truncated":
        assert any(f"chunk 2 at byte offset {middle + CHUNK_SIZE}" in str(w) for w in seen)
        assert counts[0] + counts[1] < len(events) < sum(counts[:3])
    else:
        assert any(f"chunk 1 at byte offset {middle}" in str(w) for w in seen)
        assert len(events) + s.damaged_records == sum(counts)
        assert s.damaged_records > 0
        if damage == "signature":
            assert s.damaged_records == counts[1]
            ids = {int(e.event_id.rsplit(":", 1)[1]) for e in events}
            assert max(ids) == 360
            assert min(ids) == 1
    assert all(a.ts_ns <= b.ts_ns for a, b in itertools.pairwise(events))


# -- fuzz ---------------------------------------------------------------------------------------


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, pos, value in edits:
        if not out:
            break
        p = pos % len(out)
        if kind == 0:
            out[p] = value
        elif kind == 1:
            del out[p : p + value]
        else:
            out[p:p] = bytes([value]) * (value % 7 + 1)
    return bytes(out)


_EDITS = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 1 << 30), st.integers(0, 255)),
    min_size=1, max_size=12,
)  # fmt: skip
_SMALL_XML = "\n".join(XML.read_text(encoding="utf-8").splitlines()[:6]).encode() + b"\n</Events>"
_SMALL_JSON = "\n".join((DATA / "sysmon_winlogbeat.ndjson").read_text().splitlines()[:5]).encode()


@pytest.fixture(scope="module")
def small_evtx() -> bytes:
    buf = io.BytesIO()
    with EvtxWriter(buf) as w:
        for rec in xml_to_evtx_records(XML)[:6]:
            w.write(rec)
    return buf.getvalue()


def _fuzz_once(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    try:
        reader = SysmonReader(path, on_warning=lambda _w: None)
    except SysmonInputError:
        return
    for event in reader:
        assert event.event_id
        assert event.host
    s = reader.stats
    assert s.records >= 0
    assert s.skipped_records >= 0


_FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_FUZZ
@given(edits=_EDITS)
def test_fuzz_xml(tmp_path: Path, edits: list[tuple[int, int, int]]) -> None:
    _fuzz_once(tmp_path, "f.xml", _mutate(_SMALL_XML, edits))


@_FUZZ
@given(edits=_EDITS)
def test_fuzz_json(tmp_path: Path, edits: list[tuple[int, int, int]]) -> None:
    _fuzz_once(tmp_path, "f.json", _mutate(_SMALL_JSON, edits))


@_FUZZ
@given(edits=_EDITS, gz=st.booleans())
def test_fuzz_evtx(
    tmp_path: Path, small_evtx: bytes, edits: list[tuple[int, int, int]], gz: bool
) -> None:
    # Edits land in the header and the first records, where the decoder does its work.
    data = _mutate(small_evtx[: HEADER_SIZE + 6000], edits) + small_evtx[HEADER_SIZE + 6000 :]
    _fuzz_once(tmp_path, "f.evtx", gzip.compress(data) if gz else data)


@settings(max_examples=60, deadline=None)
@given(obj=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
        st.sampled_from(["EventID", "Channel", "Hostname", "UtcTime", "ProcessGuid",
                         "ProcessId", "Image", "winlog", "event_id", "event_data", "Event",
                         "System", "EventData", "QueryResults", "AccessMask"]),
        kids, max_size=6),
    max_leaves=20,
))  # fmt: skip
def test_fuzz_json_shapes(obj: object) -> None:
    line = json.dumps({"EventID": 1, "Hostname": "h", "UtcTime": "2023-01-01 00:00:00", "x": obj})
    with tempfile.TemporaryDirectory() as d:
        for n, text in enumerate((line, json.dumps(obj), json.dumps([obj, obj]))):
            _fuzz_once(Path(d), f"shape{n}.json", text.encode())
