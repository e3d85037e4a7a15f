"""PcapWriter and the pcap reader: format, round trips (ours and scapy's), errors."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from harness.errors import InputError
from harness.pcap.writer import (
    LINKTYPE_ETHERNET,
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
    PcapFormatError,
    PcapReader,
    PcapWriter,
    iter_pcap,
    pcap_bytes,
)

T0 = 1_700_000_000_123_456_789

packets_strategy = st.lists(
    st.tuples(st.integers(0, 2**32 * 10**9 - 1), st.binary(min_size=0, max_size=300)),
    max_size=40,
)


def test_global_header_is_nanosecond_little_endian_ethernet() -> None:
    data = pcap_bytes([])
    assert len(data) == 24
    magic, major, minor, zone, sigfigs, snaplen, linktype = struct.unpack("<IHHiIII", data)
    assert (magic, major, minor, zone, sigfigs) == (PCAP_MAGIC_NS, 2, 4, 0, 0)
    assert snaplen == 262_144
    assert linktype == LINKTYPE_ETHERNET


def test_record_layout() -> None:
    data = pcap_bytes([(T0, b"\xaa" * 60)])
    sec, nsec, caplen, origlen = struct.unpack_from("<IIII", data, 24)
    assert sec * 10**9 + nsec == T0
    assert caplen == origlen == 60
    assert data[40:] == b"\xaa" * 60


@given(packets_strategy)
def test_round_trip_through_our_reader(packets: list[tuple[int, bytes]]) -> None:
    assert list(iter_pcap(io.BytesIO(pcap_bytes(packets)))) == packets


@settings(max_examples=25, deadline=None)
@given(packets_strategy)
def test_round_trip_through_scapy_rdpcap(
    tmp_path_factory: pytest.TempPathFactory, packets: list[tuple[int, bytes]]
) -> None:
    path = tmp_path_factory.mktemp("rt") / "x.pcap"
    with PcapWriter(path) as writer:
        writer.write_many(packets)
    read = rdpcap(str(path))
    assert len(read) == len(packets)
    for pkt, (ts_ns, frame) in zip(read, packets, strict=True):
        # The bytes scapy read (re-building arbitrary bytes as Ether would "fix" them).
        assert pkt.original == frame
        # scapy keeps the exact nanosecond value as a decimal number of seconds.
        assert int(pkt.time * 10**9) == ts_ns


def test_writes_raw_bytes_of_scapy_packets(tmp_path: Path) -> None:
    # Deliberately odd: reserved IP flag set, every TCP flag at once.
    pkt = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="10.0.0.1", dst="10.0.0.2", flags="evil")
        / TCP(flags="SFRPAU")
    )
    frame = bytes(pkt)
    path = tmp_path / "odd.pcap"
    with PcapWriter(path) as writer:
        writer.write(T0, frame)
    [(ts, back)] = list(iter_pcap(path))
    assert (ts, back) == (T0, frame)
    assert bytes(rdpcap(str(path))[0]) == frame


def test_write_and_write_many_agree() -> None:
    packets = [(T0 + i, bytes([i]) * (i + 1)) for i in range(50)]
    one, many = io.BytesIO(), io.BytesIO()
    with PcapWriter(one) as w:
        for ts, frame in packets:
            w.write(ts, frame)
    with PcapWriter(many) as w:
        w.write_many(packets)
    assert one.getvalue() == many.getvalue()


def test_identical_input_gives_identical_bytes(tmp_path: Path) -> None:
    packets = [(T0 + i * 1000, bytes(range(i % 256)) * 3) for i in range(2000)]
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    with PcapWriter(a, buffer_size=1000) as w:
        w.write_many(packets)
    with PcapWriter(b) as w:
        w.write_many(packets)
    assert a.read_bytes() == b.read_bytes()


def test_small_buffer_flushes_in_chunks_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "c.pcap"
    with PcapWriter(path, buffer_size=100) as w:
        for i in range(10):
            w.write(T0, b"x" * 70)
            assert w.packets_written == i + 1
        assert w.frame_bytes_written == 700
        assert w.bytes_written == 24 + 10 * (16 + 70)
    assert path.stat().st_size == 24 + 10 * (16 + 70)
    assert w.closed


def test_records_cut_by_their_builder_keep_their_real_length() -> None:
    out = io.BytesIO()
    with PcapWriter(out, snaplen=64) as w:
        assert w.snaplen == 64
        w.write_records([(T0, b"a" * 40, 65_054), (T0 + 1, b"b" * 100, 100), (T0 + 2, b"", 9)])
        assert w.packets_written == 3
    out.seek(0)
    with PcapReader(out) as reader:
        assert reader.header.snaplen == 64
        assert list(reader.records()) == [
            (T0, b"a" * 40, 65_054),
            (T0 + 1, b"b" * 64, 100),  # longer than the snapshot length: cut by the writer
            (T0 + 2, b"", 9),
        ]
    with PcapWriter(io.BytesIO()) as w, pytest.raises(ValueError, match="orig_len 3"):
        w.write_records([(T0, b"abcd", 3)])


def test_snaplen_truncates_and_keeps_original_length() -> None:
    data = pcap_bytes([(T0, b"y" * 100)], snaplen=64)
    _, _, caplen, origlen = struct.unpack_from("<IIII", data, 24)
    assert (caplen, origlen) == (64, 100)
    assert list(iter_pcap(io.BytesIO(data))) == [(T0, b"y" * 64)]


@pytest.mark.parametrize("ts", [-1, 2**32 * 10**9])
def test_timestamp_out_of_range(ts: int) -> None:
    with PcapWriter(io.BytesIO()) as w:
        with pytest.raises(ValueError, match="does not fit"):
            w.write(ts, b"z")
        with pytest.raises(ValueError, match="does not fit"):
            w.write_many([(ts, b"z")])
        assert w.packets_written == 0


def test_file_object_is_flushed_not_closed() -> None:
    out = io.BytesIO()
    with PcapWriter(out) as w:
        w.write(T0, b"abc")
    assert not out.closed
    assert len(out.getvalue()) == 24 + 16 + 3


def test_write_after_close_fails() -> None:
    w = PcapWriter(io.BytesIO())
    w.close()
    w.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        w.write(T0, b"")


def _classic(order: str, magic: int, records: list[tuple[int, int, bytes]]) -> bytes:
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    for sec, sub, frame in records:
        out += struct.pack(order + "IIII", sec, sub, len(frame), len(frame)) + frame
    return out


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize(("magic", "scale"), [(PCAP_MAGIC_US, 1000), (PCAP_MAGIC_NS, 1)])
def test_reader_handles_both_magics_and_byte_orders(order: str, magic: int, scale: int) -> None:
    data = _classic(order, magic, [(1_700_000_000, 999_999, b"a"), (1_700_000_001, 5, b"bc")])
    reader = PcapReader(io.BytesIO(data))
    assert reader.header.byte_order == order
    assert reader.header.nanosecond == (magic == PCAP_MAGIC_NS)
    assert reader.header.linktype == 1
    assert list(reader) == [
        (1_700_000_000 * 10**9 + 999_999 * scale, b"a"),
        (1_700_000_001 * 10**9 + 5 * scale, b"bc"),
    ]


def test_reader_reads_a_scapy_microsecond_file(tmp_path: Path) -> None:
    from scapy.utils import wrpcap

    pkt = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="10.0.0.1", dst="192.0.2.1")
        / TCP()
    )
    pkt.time = 1_700_000_000.25
    path = tmp_path / "us.pcap"
    wrpcap(str(path), [pkt])
    assert list(iter_pcap(path)) == [(1_700_000_000_250_000_000, bytes(pkt))]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x0a\x0d\x0d\x0a" + b"\x00" * 30, "pcapng"),
        (b"GIF89a" + b"\x00" * 30, "not a pcap file"),
        (struct.pack("<I", PCAP_MAGIC_NS) + b"\x00" * 5, "global header"),
        (pcap_bytes([(T0, b"abcdef")])[:-1], "truncated"),
        (pcap_bytes([(T0, b"abcdef")])[:30], "inside its header"),
        (_classic("<", PCAP_MAGIC_US, [(1, 1_000_000, b"x")]), "sub-second"),
    ],
)
def test_invalid_files_raise_input_errors(data: bytes, message: str) -> None:
    with pytest.raises(PcapFormatError, match=message) as info:
        list(iter_pcap(io.BytesIO(data)))
    assert isinstance(info.value, InputError)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(PcapFormatError, match="cannot open"):
        list(iter_pcap(tmp_path / "nope.pcap"))
