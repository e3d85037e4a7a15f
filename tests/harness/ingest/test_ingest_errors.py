"""Bad input: clear errors naming file and offset, resynchronisation, counts; and fuzzing."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import InputError
from harness.events import Transport
from harness.ingest import PcapEventReader, PcapInputError
from harness.pcap.render import FlowSpec, dns_flow, render_flow
from tests.harness.ingest.conftest import T0, S, client_hello, flows, read, write

EDITCAP = shutil.which("editcap")


def _packets() -> list[tuple[int, bytes]]:
    specs = [
        FlowSpec(transport=Transport.TCP, src_ip="192.0.2.101", src_port=50_000 + i,
                 dst_ip="203.0.113.9", dst_port=443, start_ns=T0 + i * S,
                 end_ns=T0 + i * S + 2 * S, bytes_out=3_000, bytes_in=20_000,
                 messages_out=(client_hello("x.example"),))
        for i in range(6)
    ]  # fmt: skip
    specs += [
        dns_flow(src_ip="192.0.2.101", src_port=33_000 + i, resolver_ip="192.0.2.10",
                 ts_ns=T0 + i * S, qname=f"q{i}.example", answers=["203.0.113.9"])
        for i in range(6)
    ]  # fmt: skip
    return [p for s in specs for p in render_flow(s).packets]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write(tmp_path_factory.mktemp("err") / "good.pcap", _packets()).read_bytes()


def _record_offsets(data: bytes) -> list[int]:
    offs, p = [], 24
    while p < len(data):
        offs.append(p)
        p += 16 + struct.unpack_from("<I", data, p + 8)[0]
    return offs


def test_not_a_capture(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello, this is not a pcap file at all")
    with pytest.raises(PcapInputError, match=r"notes\.txt.*not a pcap or pcapng"):
        PcapEventReader(bad)
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        PcapEventReader(empty)
    with pytest.raises(InputError, match="cannot open"):
        PcapEventReader(tmp_path / "missing.pcap")


def test_truncated_file_reports_offset_and_keeps_earlier_records(
    good: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(good[: _record_offsets(good)[-1] + 30])  # inside the last record
    events, reader = read(path)
    stats = reader.stats
    assert stats.truncated_tail
    assert stats.skipped_records == 1
    assert stats.records == len(_record_offsets(good)) - 1
    (warning,) = reader.warnings
    assert "cut.pcap" in str(warning)
    assert warning.offset == _record_offsets(good)[-1]
    assert len(flows(events)) == 12


def test_corrupt_record_header_resynchronises(good: bytes, tmp_path: Path) -> None:
    offs = _record_offsets(good)
    data = bytearray(good)
    struct.pack_into("<I", data, offs[40] + 8, 0xFFFFFF00)  # absurd captured length
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(bytes(data))
    events, reader = read(path)
    stats = reader.stats
    assert stats.damaged_regions == 1
    assert stats.skipped_bytes > 0
    assert stats.records == len(offs) - 1  # only the damaged record is lost
    assert reader.warnings[0].offset == offs[40]
    assert "corrupt.pcap" in str(reader.warnings[0])
    assert read(path, fast=False)[0] == events


def test_bad_subsecond_field_resynchronises(good: bytes, tmp_path: Path) -> None:
    offs = _record_offsets(good)
    data = bytearray(good)
    struct.pack_into("<I", data, offs[10] + 4, 2_000_000_000)
    path = tmp_path / "sub.pcap"
    path.write_bytes(bytes(data))
    _, reader = read(path)
    assert reader.stats.damaged_regions == 1
    assert reader.stats.records == len(offs) - 1


@pytest.mark.skipif(EDITCAP is None, reason="editcap not installed")
def test_corrupt_pcapng_block(good: bytes, tmp_path: Path) -> None:
    src = tmp_path / "good.pcap"
    src.write_bytes(good)
    ng = tmp_path / "good.pcapng"
    subprocess.run([EDITCAP, "-F", "pcapng", str(src), str(ng)], check=True)
    data = bytearray(ng.read_bytes())
    # Find the 30th enhanced packet block and break its length field.
    p, seen = 0, 0
    while True:
        btype, blen = struct.unpack_from("<II", data, p)
        if btype == 6:
            seen += 1
            if seen == 30:
                break
        p += blen
    struct.pack_into("<I", data, p + 4, 0x7FFFFFF0)
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(bytes(data))
    events, reader = read(bad)
    assert reader.stats.damaged_regions == 1
    assert reader.warnings[0].offset == p
    assert reader.stats.records == len(_record_offsets(good)) - 1
    assert len(flows(events)) >= 12


def test_malformed_frames_are_counted_not_raised(tmp_path: Path) -> None:
    frames = [
        (T0, b"\x02" * 12 + b"\x08\x00" + b"\x45\x00\x00"),  # IPv4 header cut short
        (T0 + 1, b"\x02" * 12 + b"\x08\x00" + b"\x41" + bytes(30)),  # IHL of 4 bytes
        (T0 + 2, b"\x02" * 12 + b"\x08\x06" + bytes(28)),  # ARP: not an error
    ]
    events, reader = read(write(tmp_path / "m.pcap", frames))
    assert events == []
    assert sum(reader.stats.malformed.values()) == 2
    assert reader.stats.other_packets == 1


def _consume(path: Path, fast: bool) -> None:
    try:
        reader = PcapEventReader(path, fast=fast, chunk_bytes=4096)
    except InputError:
        return
    for _ in reader:
        pass
    assert reader.stats.records >= 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=3000), ng=st.booleans())
def test_fuzz_random_bytes(tmp_path: Path, data: bytes, ng: bool) -> None:
    header = (
        bytes.fromhex("0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c000000")
        if ng
        else struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
    )
    path = tmp_path / "fuzz.bin"
    path.write_bytes(header + data)
    _consume(path, fast=True)
    _consume(path, fast=False)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(st.tuples(st.integers(0, 40_000), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.integers(0, 40_000),
)
def test_fuzz_mutated_capture(
    good: bytes, tmp_path: Path, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(good[: 24 + cut])
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    path = tmp_path / "mut.pcap"
    path.write_bytes(bytes(data))
    _consume(path, fast=True)
    _consume(path, fast=False)
