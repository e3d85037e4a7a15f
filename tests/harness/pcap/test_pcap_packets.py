"""Frame builders: every checksum agrees with scapy's, headers are what scapy would build."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from harness.errors import InvalidParameterError
from harness.pcap.packets import (
    FILLER_PERIOD,
    TCP_ACK,
    TCP_SYN,
    PacketPath,
    filler,
    filler_sum,
    filler_with_sum,
    format_mac,
    internet_checksum,
    mac_for_ip,
    ones_complement_sum,
    tcp_frame,
    tcp_frame_fast,
    tcp_header_fast,
    tcp_packet,
    udp_frame,
    udp_header,
    udp_packet,
)

ipv4 = st.builds(lambda n: str(ipaddress.IPv4Address(n)), st.integers(0, 2**32 - 1))
ipv6 = st.builds(lambda n: str(ipaddress.IPv6Address(n)), st.integers(0, 2**128 - 1))
ports = st.integers(0, 65535)
u32 = st.integers(0, 2**32 - 1)
payloads = st.binary(max_size=1500)
tcp_options = st.sampled_from(
    [b"", b"\x02\x04\x05\xb4", b"\x02\x04\x05\xb4\x01\x01\x04\x02", b"\x01\x03\x03\x07" * 10]
)


def reference_checksum(data: bytes) -> int:
    """RFC 1071, the slow obvious way."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@given(st.binary(max_size=3000))
def test_internet_checksum_matches_reference(data: bytes) -> None:
    assert internet_checksum(data) == reference_checksum(data)


@pytest.mark.parametrize(
    "data", [b"", b"\x00", b"\x00\x00", b"\xff\xff", b"\xff\xff\xff\xff", b"\xff", b"\x01"]
)
def test_internet_checksum_edge_cases(data: bytes) -> None:
    assert internet_checksum(data) == reference_checksum(data)


@given(st.binary(max_size=600), st.binary(max_size=600))
def test_sums_of_even_length_parts_add_up(a: bytes, b: bytes) -> None:
    # What the frame builders rely on: residues of 16-bit-aligned parts can be added.
    if len(a) % 2:
        a += b"\x00"
    assert (ones_complement_sum(a) + ones_complement_sum(b)) % 0xFFFF == ones_complement_sum(a + b)


def _recomputed(frame: bytes, l3: type, l4: type) -> bytes:
    """``frame`` parsed by scapy with all checksums (and lengths) deleted, then rebuilt."""
    pkt = Ether(frame)
    if l3 is IP:
        del pkt[IP].chksum
        del pkt[IP].len
    else:
        del pkt[IPv6].plen
    del pkt[l4].chksum
    if l4 is UDP:
        del pkt[UDP].len
    return bytes(pkt)


@settings(max_examples=300)
@given(
    st.one_of(st.tuples(ipv4, ipv4), st.tuples(ipv6, ipv6)),
    ports,
    ports,
    u32,
    u32,
    st.integers(0, 255),
    st.integers(0, 65535),
    payloads,
    tcp_options,
    st.integers(0, 65535),
    st.integers(1, 255),
)
def test_tcp_checksums_match_scapy(
    addrs: tuple[str, str],
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    payload: bytes,
    options: bytes,
    ip_id: int,
    ttl: int,
) -> None:
    frame = tcp_packet(
        *addrs,
        sport,
        dport,
        seq=seq,
        ack=ack,
        flags=flags,
        payload=payload,
        window=window,
        options=options,
        ip_id=ip_id,
        ttl=ttl,
        flow_label=ip_id,
    )
    l3 = IP if ":" not in addrs[0] else IPv6
    assert _recomputed(frame, l3, TCP) == frame
    pkt = Ether(frame)
    assert (pkt[TCP].sport, pkt[TCP].dport, pkt[TCP].seq, pkt[TCP].ack) == (sport, dport, seq, ack)
    assert int(pkt[TCP].flags) == flags
    assert bytes(pkt[TCP].payload) == payload
    if l3 is IP:
        assert (pkt[IP].id, pkt[IP].ttl, str(pkt[IP].flags)) == (ip_id, ttl, "DF")
    else:
        assert (pkt[IPv6].fl, pkt[IPv6].hlim) == (ip_id, ttl)


@settings(max_examples=300)
@given(st.one_of(st.tuples(ipv4, ipv4), st.tuples(ipv6, ipv6)), ports, ports, payloads)
def test_udp_checksums_match_scapy(
    addrs: tuple[str, str], sport: int, dport: int, payload: bytes
) -> None:
    frame = udp_packet(*addrs, sport, dport, payload, ip_id=sport, ttl=64)
    l3 = IP if ":" not in addrs[0] else IPv6
    assert _recomputed(frame, l3, UDP) == frame
    assert Ether(frame)[UDP].chksum != 0  # zero would mean "no checksum"
    assert bytes(Ether(frame)[UDP].payload) == payload


def test_frame_equals_scapy_built_frame() -> None:
    path = PacketPath.between("10.0.0.5", "93.184.216.34")
    options = b"\x02\x04\x05\xb4\x01\x01\x04\x02"
    ours = tcp_frame(
        path, 50000, 443, seq=123, flags=TCP_SYN, options=options, ip_id=7, window=64240
    )
    theirs = (
        Ether(src=format_mac(mac_for_ip("10.0.0.5")), dst=format_mac(mac_for_ip("93.184.216.34")))
        / IP(src="10.0.0.5", dst="93.184.216.34", id=7, flags="DF", ttl=64)
        / TCP(
            sport=50000,
            dport=443,
            seq=123,
            flags="S",
            window=64240,
            options=[("MSS", 1460), ("NOP", None), ("NOP", None), ("SAckOK", b"")],
        )
    )
    assert ours == bytes(theirs)
    data = tcp_frame(path, 50000, 443, seq=124, ack=9, flags=TCP_ACK, payload=b"hi")
    assert data == bytes(
        Ether(src="02:00:0a:00:00:05", dst="02:00:5d:b8:d8:22")
        / IP(src="10.0.0.5", dst="93.184.216.34", id=0, flags="DF")
        / TCP(sport=50000, dport=443, seq=124, ack=9, flags="A", window=65535)
        / Raw(b"hi")
    )


def test_macs_are_deterministic_and_locally_administered() -> None:
    assert mac_for_ip("192.168.1.10") == bytes.fromhex("0200c0a8010a")
    v6 = mac_for_ip("2001:db8::1")
    assert v6 == mac_for_ip("2001:db8::1")
    assert len(v6) == 6
    assert v6 != mac_for_ip("2001:db8::2")
    for mac in (mac_for_ip("10.0.0.1"), v6):
        assert mac[0] & 0x02
        assert not mac[0] & 0x01
    path = PacketPath.between("10.0.0.1", "10.0.0.2")
    assert path.eth[:6] == mac_for_ip("10.0.0.2")
    assert path.eth[6:12] == mac_for_ip("10.0.0.1")
    assert path.reverse().eth[:12] == path.eth[6:12] + path.eth[:6]


def test_explicit_macs() -> None:
    path = PacketPath.between("10.0.0.1", "10.0.0.2", src_mac=b"\x00" * 6, dst_mac=b"\x11" * 6)
    assert path.eth == b"\x11" * 6 + b"\x00" * 6 + b"\x08\x00"
    with pytest.raises(InvalidParameterError):
        PacketPath.between("10.0.0.1", "10.0.0.2", src_mac=b"\x00")


@pytest.mark.parametrize(("src", "dst"), [("10.0.0.1", "::1"), ("10.0.0.300", "10.0.0.1")])
def test_bad_address_pairs(src: str, dst: str) -> None:
    with pytest.raises(InvalidParameterError):
        PacketPath.between(src, dst)


def test_bad_tcp_options_length() -> None:
    with pytest.raises(InvalidParameterError, match="options"):
        tcp_packet("10.0.0.1", "10.0.0.2", 1, 2, seq=0, options=b"\x01")


@given(st.integers(0, 10**7), st.integers(0, 5000))
def test_filler_is_a_fixed_periodic_stream(offset: int, length: int) -> None:
    data, total = filler_with_sum(offset, length)
    assert len(data) == length
    assert total == ones_complement_sum(data)
    assert data == filler(offset % FILLER_PERIOD, length)
    # Contiguous: a slice of the stream equals the concatenation of its parts.
    cut = length // 3
    assert data == filler(offset, cut) + filler(offset + cut, length - cut)


@given(st.integers(0, 10**9), st.integers(0, 200_000))
def test_filler_sum_is_the_sum_of_the_bytes_without_them(offset: int, length: int) -> None:
    assert filler_sum(offset, length) == ones_complement_sum(filler(offset, length))


@settings(max_examples=50)
@given(
    st.sampled_from([("192.0.2.1", "198.51.100.2"), ("2001:db8::1", "2001:db8:1::2")]),
    st.integers(0, 65_495),
    st.integers(0, 10**6),
    tcp_options,
)
def test_headers_from_length_and_sum_are_the_frames_headers(
    pair: tuple[str, str], length: int, offset: int, options: bytes
) -> None:
    """A compact capture's headers are the whole frame's, though the payload is never built."""
    # The largest segment: a 65,535-byte IPv4 packet less the IP and TCP headers and options.
    length = min(length, 65_495 - len(options))
    path = PacketPath.between(*pair)
    payload = filler(offset, length)
    psum = filler_sum(offset, length)
    args = (path, 40_000, 443, 7, 9, TCP_ACK)
    tail = (65_535, options, 5, 64, 3)
    frame = tcp_frame_fast(*args, payload, ones_complement_sum(payload), *tail)
    head = tcp_header_fast(*args, length, psum, *tail)
    assert frame == head + payload
    datagram = udp_frame(path, 5_000, 3_478, payload)
    assert datagram == udp_header(path, 5_000, 3_478, length, psum) + payload


def test_udp_payload_limits_per_ip_version() -> None:
    v4 = PacketPath.between("192.0.2.1", "198.51.100.2")
    v6 = PacketPath.between("2001:db8::1", "2001:db8:1::2")
    assert len(udp_header(v4, 1, 2, 65_507, 0)) == 42
    assert len(udp_header(v6, 1, 2, 65_527, 0)) == 62
    for path, limit in ((v4, 65_507), (v6, 65_527)):
        with pytest.raises(InvalidParameterError, match=f"at most {limit}"):
            udp_header(path, 1, 2, limit + 1, 0)
