"""Input discovery, format sniffing by content, and the merged stream of several inputs."""

from __future__ import annotations

import gzip
import json
import struct
import sys
from pathlib import Path

import pytest

from harness.ecs import dumps_event
from harness.errors import InputError
from harness.events import (
    AppProtocol,
    Direction,
    DnsQuery,
    FileAccess,
    FileOperation,
    NetworkFlow,
    ProcessStart,
    Transport,
)
from harness.fields import Field
from harness.ingest.sources import (
    SourceKind,
    UnreadableInputError,
    expand_paths,
    open_inputs,
    require_events,
    sniff,
)
from harness.pcap.render import dns_flow, render_flow
from harness.pcap.writer import PcapWriter

T0 = 1_793_000_000_000_000_000
S = 1_000_000_000


def flow(i: int, ts: int, *, guid: str | None = None) -> NetworkFlow:
    return NetworkFlow(
        event_id=f"e{i}", ts_ns=ts, flow_id=f"f{i}", host="ws001", process_guid=guid,
        transport=Transport.TCP, src_ip="192.0.2.10", src_port=50_000 + i,
        dst_ip="203.0.113.5", dst_port=443, direction=Direction.OUTBOUND,
        app_protocol=AppProtocol.TLS, start_ns=ts - S, end_ns=ts, bytes_out=1000, bytes_in=5000,
        packets_out=5, packets_in=6,
    )  # fmt: skip


def edr_events() -> list[object]:
    return [
        ProcessStart(
            event_id="e0", ts_ns=T0, host="ws001", process_guid="p1", pid=10,
            image=r"C:\x\a.exe", name="a.exe", command_line="a.exe", parent_guid=None, user="u",
        ),
        FileAccess(
            event_id="e1", ts_ns=T0 + S, host="ws001", process_guid="p1", path=r"C:\d.txt",
            operation=FileOperation.READ, bytes=10,
        ),
        flow(2, T0 + 2 * S, guid="p1"),
        DnsQuery(
            event_id="e3", ts_ns=T0 + 3 * S, host="ws001", process_guid="p1",
            src_ip="192.0.2.10", resolver_ip="192.0.2.53", query="www.example", qtype="A",
            rcode="NOERROR", answers=("203.0.113.5",), query_bytes=40, response_bytes=56,
        ),
    ]  # fmt: skip


def write_ecs(path: Path, events: list[object], *, compress: bool = False) -> Path:
    text = "".join(dumps_event(e) + "\n" for e in events)  # type: ignore[arg-type]
    if compress:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_pcap(path: Path) -> Path:
    rendered = render_flow(
        dns_flow(
            ts_ns=T0, src_ip="192.0.2.10", src_port=53_000, resolver_ip="198.51.100.53",
            qname="abc.tunnel.example", qtype="TXT",
        )
    )  # fmt: skip
    with PcapWriter(path) as w:
        w.write_many(rendered.packets)
    return path


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"\x0a\x0d\x0d\x0a" + b"\x00" * 24, SourceKind.PCAPNG),
        (b"ElfFile\x00" + b"\x00" * 120, SourceKind.SYSMON_EVTX),
        (
            b'<?xml version="1.0"?>\n<Events><Event xmlns="x"></Event></Events>',
            SourceKind.SYSMON_XML,
        ),
        (b"#separator \\x09\n#set_separator\t,\n", SourceKind.ZEEK_TSV),
        (b'{"ts": 1.0, "uid": "C1", "id.orig_h": "192.0.2.1"}\n', SourceKind.ZEEK_JSON),
        (b'{"@timestamp": "x", "winlog": {"event_id": 3}}\n', SourceKind.WINLOGBEAT),
        (b'{"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational"}\n', SourceKind.OTRF),
    ],
)
def test_sniff_recognises_formats_by_content(
    tmp_path: Path, content: bytes, kind: SourceKind
) -> None:
    path = tmp_path / "input.log"  # the name says nothing
    path.write_bytes(content)
    assert sniff(path).kind is kind
    gz = tmp_path / "input.bin"
    gz.write_bytes(gzip.compress(content))
    found = sniff(gz)
    assert found.kind is kind
    assert found.gzip


def test_sniff_pcap_and_ecs_whatever_their_names(tmp_path: Path) -> None:
    assert sniff(write_pcap(tmp_path / "capture.txt")).kind is SourceKind.PCAP
    assert sniff(write_ecs(tmp_path / "events.pcap", edr_events())).kind is SourceKind.ECS


def test_sniff_rejects_empty_and_unknown_with_the_reason(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(UnreadableInputError, match="empty"):
        sniff(empty)
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"MZ\x90\x00 not a capture")
    with pytest.raises(
        UnreadableInputError, match=r"unrecognised format.*4d 5a 90 00.*expected pcap"
    ):
        sniff(junk)
    other_json = tmp_path / "other.json"
    other_json.write_text('{"hello": 1}\n')
    with pytest.raises(UnreadableInputError, match="unrecognised format"):
        sniff(other_json)
    assert UnreadableInputError("x").exit_code == 3


def test_expand_paths_walks_directories_and_rejects_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.log").write_text("x")
    (tmp_path / "sub" / "a.log").write_text("x")
    (tmp_path / ".hidden").write_text("x")
    found = expand_paths([tmp_path])
    assert [p.name for p in found] == ["b.log", "a.log"]
    with pytest.raises(InputError, match=r"'nope\.pcap' does not exist") as info:
        expand_paths(["nope.pcap"])
    assert info.value.exit_code == 2


def test_merge_is_time_ordered_and_ids_stay_unique(tmp_path: Path) -> None:
    a = write_ecs(tmp_path / "a.ndjson", [flow(1, T0 + 1 * S), flow(2, T0 + 5 * S)])
    b = write_ecs(
        tmp_path / "b.ndjson.gz", [flow(1, T0 + 3 * S), flow(2, T0 + 4 * S)], compress=True
    )
    with open_inputs([a, b]) as inputs:
        events = list(inputs)
    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)
    ids = [e.event_id for e in events]
    assert len(set(ids)) == 4
    assert {"e1", "e2", "in1/e1", "in1/e2"} == set(ids)  # the second ECS input is prefixed
    flows = [e for e in events if isinstance(e, NetworkFlow)]
    assert {f.flow_id for f in flows} == {"f1", "f2", "in1/f1", "in1/f2"}
    assert [s.events for s in inputs.summaries] == [2, 2]


def test_a_bad_line_is_skipped_counted_and_located(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    lines = [dumps_event(flow(1, T0)), '{"egress_harness": {"kind": "bogus"}}', "not json"]
    lines.append(dumps_event(flow(2, T0 + S)))
    path.write_text("\n".join(lines) + "\n")
    with open_inputs([path]) as inputs:
        events = list(inputs)
    assert len(events) == 2
    (summary,) = inputs.summaries
    assert summary.skipped_records == 2
    assert summary.warnings == 2
    assert summary.first_warnings[0].startswith(f"{path}:2:")
    assert summary.first_warnings[1].startswith(f"{path}:3:")


def test_fields_inferred_from_kinds_and_events(tmp_path: Path) -> None:
    with open_inputs([write_ecs(tmp_path / "edr.ndjson", edr_events())]) as inputs:
        list(inputs)
    assert inputs.fields() == {
        Field.PROCESS, Field.FILE_READ, Field.FLOW_BYTES, Field.FLOW_PROCESS,
        Field.FLOW_APP_PROTOCOL, Field.DNS_QUERY, Field.DNS_PROCESS,
    }  # fmt: skip
    assert inputs.attributed_flows == (1, 1)
    with open_inputs([write_pcap(tmp_path / "c.pcap")]) as inputs:
        list(inputs)
    assert inputs.fields() == {
        Field.FLOW_BYTES,
        Field.FLOW_APP_PROTOCOL,
        Field.DNS_QUERY,
        Field.PACKETS,
    }
    assert inputs.attributed_flows == (0, 1)


def test_unreadable_inputs_are_reported_and_others_still_read(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01\x02\x03junk")
    good = write_ecs(tmp_path / "good.ndjson", edr_events())
    with open_inputs([junk, good]) as inputs:
        events = list(inputs)
    assert len(events) == 4
    require_events(inputs)  # something was read: no error
    errors = {s.path: s.error for s in inputs.summaries}
    assert errors[str(good)] is None
    assert "unrecognised format" in (errors[str(junk)] or "")
    with open_inputs([junk]) as inputs:
        list(inputs)
    with pytest.raises(UnreadableInputError, match=r"nothing could be read: .*junk\.bin"):
        require_events(inputs)


def test_a_corrupt_capture_is_read_around_the_damage(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "c.pcap")
    data = bytearray(path.read_bytes())
    data[24 + 8 : 24 + 12] = struct.pack("<I", 0xFFFFFFF0)  # first record: impossible caplen
    path.write_bytes(bytes(data))
    with open_inputs([path]) as inputs:
        list(inputs)
    (summary,) = inputs.summaries
    assert summary.skipped_records >= 1
    assert summary.first_warnings
    assert "byte offset 24" in summary.first_warnings[0]


def test_a_format_whose_reader_is_missing_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "harness.ingest.zeek", None)
    path = tmp_path / "conn.log"
    path.write_text(json.dumps({"ts": 1.0, "uid": "C1", "id.orig_h": "192.0.2.1"}) + "\n")
    with open_inputs([path]) as inputs:
        assert list(inputs) == []
    (summary,) = inputs.summaries
    assert summary.error is not None
    assert "not supported in this build" in summary.error
