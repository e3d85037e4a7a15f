"""Flows and DNS queries read back from rendered captures, across containers and link layers.

Captures are rendered with harness.pcap and converted with Wireshark's own tools (``editcap``,
``mergecap``) where a real tool can make the variant: pcapng, microsecond resolution, a short
snapshot length, several interfaces with different link types.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.events import AppProtocol, Direction, Transport
from harness.ingest import IngestConfig
from harness.pcap.packets import filler
from harness.pcap.render import FlowSpec, dns_flow, render_flow
from tests.harness.ingest.conftest import (
    T0,
    S,
    anomalies,
    client_hello,
    dns,
    flows,
    read,
    swap_endianness,
    write,
)

EDITCAP = shutil.which("editcap")
MERGECAP = shutil.which("mergecap")
needs_wireshark = pytest.mark.skipif(
    EDITCAP is None or MERGECAP is None, reason="Wireshark command-line tools not installed"
)

HTTP_REQ = b"GET /index.html HTTP/1.1\r\nHost: www.shop.example\r\nAccept: */*\r\n\r\n"
HTTP_RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"


def _specs() -> list[FlowSpec]:
    specs = [
        FlowSpec(
            transport=Transport.TCP, src_ip="192.0.2.101", src_port=50_001,
            dst_ip="203.0.113.10", dst_port=443, start_ns=T0 + 1 * S, end_ns=T0 + 9 * S,
            bytes_out=30_000, bytes_in=250_000, exchanges=3,
            messages_out=(client_hello("api.cloud.example"),),
        ),
        FlowSpec(
            transport=Transport.TCP, src_ip="192.0.2.102", src_port=50_002,
            dst_ip="198.51.100.20", dst_port=80, start_ns=T0 + 2 * S, end_ns=T0 + 3 * S,
            bytes_out=len(HTTP_REQ), bytes_in=len(HTTP_RESP) + 5000,
            messages_out=(HTTP_REQ,), messages_in=(HTTP_RESP + filler(0, 5000),),
        ),
        # A long flow: interim records at the 60 s active timeout.
        FlowSpec(
            transport=Transport.TCP, src_ip="2001:db8::5", src_port=50_003,
            dst_ip="2001:db8:1::9", dst_port=443, start_ns=T0 + 3 * S, end_ns=T0 + 150 * S,
            bytes_out=900_000, bytes_in=40_000, exchanges=40,
            messages_out=(client_hello("v6.cloud.example"),),
        ),
        FlowSpec(
            transport=Transport.UDP, src_ip="192.0.2.103", src_port=40_000,
            dst_ip="203.0.113.40", dst_port=4500, start_ns=T0 + 4 * S, end_ns=T0 + 6 * S,
            bytes_out=9_000, bytes_in=3_000, exchanges=3,
        ),
        FlowSpec(
            transport=Transport.TCP, src_ip="192.0.2.104", src_port=50_004,
            dst_ip="192.0.2.20", dst_port=445, start_ns=T0 + 5 * S, end_ns=T0 + 7 * S,
            bytes_out=6_000, bytes_in=90_000,
            messages_out=(b"\x00\x00\x00\x40\xfeSMB" + bytes(60),),
        ),
    ]  # fmt: skip
    specs.append(
        dns_flow(src_ip="192.0.2.101", src_port=33_000, resolver_ip="192.0.2.10",
                 ts_ns=T0 + S // 2, qname="api.cloud.example", answers=["203.0.113.10"])
    )  # fmt: skip
    specs.append(
        dns_flow(src_ip="192.0.2.102", src_port=33_001, resolver_ip="192.0.2.10",
                 ts_ns=T0 + S, qname="c2.evil.example", qtype="TXT",
                 answers=["aGVsbG8gd29ybGQ="], rcode="NOERROR")
    )  # fmt: skip
    specs.append(
        dns_flow(src_ip="192.0.2.102", src_port=33_002, resolver_ip="192.0.2.10",
                 ts_ns=T0 + 2 * S, qname="www.shop.example", answers=["198.51.100.20"])
    )  # fmt: skip
    specs.append(
        dns_flow(src_ip="192.0.2.105", src_port=33_003, resolver_ip="192.0.2.10",
                 ts_ns=T0 + 3 * S, qname="nope.example", rcode="NXDOMAIN")
    )  # fmt: skip
    # The responder to the DNS flow above resolves the address the first TLS flow uses; the
    # same client's plain DNS lookup names its flow without SNI through the resolved-name cache.
    specs.append(
        FlowSpec(
            transport=Transport.TCP, src_ip="192.0.2.101", src_port=50_005,
            dst_ip="203.0.113.10", dst_port=8_000, start_ns=T0 + 8 * S, end_ns=T0 + 8 * S + S,
            bytes_out=100, bytes_in=100,
        )
    )  # fmt: skip
    return specs


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    specs = _specs()
    packets = [p for s in specs for p in render_flow(s).packets]
    return write(tmp_path_factory.mktemp("pcap") / "mixed.pcap", packets)


def _totals(events: list) -> dict[tuple[str, str, int, str, int], tuple[int, int, int, int]]:
    out: dict[tuple[str, str, int, str, int], list[int]] = {}
    for f in flows(events):
        key = (f.transport.value, f.src_ip, f.src_port, f.dst_ip, f.dst_port)
        acc = out.setdefault(key, [0, 0, 0, 0])
        acc[0] += f.bytes_out
        acc[1] += f.bytes_in
        acc[2] += f.packets_out
        acc[3] += f.packets_in
    return {k: (a, b, c, d) for k, (a, b, c, d) in out.items()}


def test_flows_match_what_was_rendered(capture: Path) -> None:
    events, reader = read(capture)
    totals = _totals(events)
    for spec in _specs():
        rendered = render_flow(spec)
        key = (spec.transport.value, spec.src_ip, spec.src_port, spec.dst_ip, spec.dst_port)
        assert totals[key] == (
            rendered.bytes_out,
            rendered.bytes_in,
            rendered.packets_out,
            rendered.packets_in,
        ), key
    assert reader.stats.records == sum(len(render_flow(s).packets) for s in _specs())
    assert reader.stats.skipped_records == 0
    assert not anomalies(events)


def test_app_protocol_server_name_direction(capture: Path) -> None:
    by_port = {f.src_port: f for f in flows(read(capture)[0]) if f.is_final}
    assert by_port[50_001].app_protocol == AppProtocol.TLS
    assert by_port[50_001].server_name == "api.cloud.example"
    assert by_port[50_001].direction == Direction.OUTBOUND
    assert by_port[50_001].host == "192.0.2.101"
    assert by_port[50_001].process_guid is None
    assert by_port[50_002].app_protocol == AppProtocol.HTTP
    assert by_port[50_002].server_name == "www.shop.example"
    assert by_port[50_003].server_name == "v6.cloud.example"
    assert by_port[40_000].app_protocol == AppProtocol.UNKNOWN
    assert by_port[50_004].app_protocol == AppProtocol.SMB
    assert by_port[50_004].direction == Direction.INTERNAL
    assert by_port[33_000].app_protocol == AppProtocol.DNS
    # No SNI, no Host: the name comes from the DNS answer that resolved the address for the
    # same client.
    assert by_port[50_005].server_name == "api.cloud.example"


def test_interim_records_on_active_timeout(capture: Path) -> None:
    recs = [f for f in flows(read(capture)[0]) if f.src_port == 50_003]
    assert [r.is_final for r in recs] == [False, False, True]
    start = T0 + 3 * S
    assert [r.ts_ns for r in recs[:2]] == [start + 60 * S, start + 120 * S]
    assert len({r.flow_id for r in recs}) == 1
    assert all(r.start_ns == start for r in recs)
    assert recs[-1].end_ns == T0 + 150 * S


def test_dns_queries(capture: Path) -> None:
    qs = {q.query: q for q in dns(read(capture)[0])}
    assert set(qs) == {"api.cloud.example", "c2.evil.example", "www.shop.example", "nope.example"}
    a = qs["api.cloud.example"]
    assert (a.qtype, a.rcode, a.answers) == ("A", "NOERROR", ("203.0.113.10",))
    assert (a.src_ip, a.resolver_ip, a.host) == ("192.0.2.101", "192.0.2.10", "192.0.2.101")
    assert a.ts_ns == T0 + S // 2
    assert a.query_bytes > 0
    assert a.response_bytes > a.query_bytes
    assert qs["c2.evil.example"].answers == ("aGVsbG8gd29ybGQ=",)
    assert qs["c2.evil.example"].qtype == "TXT"
    assert qs["nope.example"].rcode == "NXDOMAIN"


def test_events_ordered_with_stable_unique_ids(capture: Path) -> None:
    events, _ = read(capture)
    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)
    assert [e.event_id for e in events] == [f"pcap:{i}" for i in range(len(events))]
    assert read(capture)[0] == events


@pytest.mark.parametrize("chunk", [4096, 1 << 16])
def test_fast_path_equals_reference_path(capture: Path, chunk: int) -> None:
    ref, _ = read(capture, fast=False)
    fast, reader = read(capture, chunk_bytes=chunk)
    assert fast == ref
    assert reader.stats.bulk_packets > 0


def test_unanswered_query_gets_noanswer(tmp_path: Path) -> None:
    spec = dns_flow(src_ip="192.0.2.101", src_port=33_010, resolver_ip="192.0.2.10",
                    ts_ns=T0, qname="lost.example")  # fmt: skip
    query_only = render_flow(spec).packets[:1]
    later = render_flow(
        FlowSpec(transport=Transport.UDP, src_ip="192.0.2.101", src_port=40_001,
                 dst_ip="203.0.113.1", dst_port=4500, start_ns=T0 + 30 * S,
                 end_ns=T0 + 31 * S, bytes_out=10, bytes_in=10)
    ).packets  # fmt: skip
    events, _ = read(write(tmp_path / "q.pcap", [*query_only, *later]))
    (q,) = dns(events)
    assert (q.query, q.rcode, q.answers, q.response_bytes) == ("lost.example", "NOANSWER", (), 0)


def test_big_endian_and_microsecond_files_read_the_same(capture: Path, tmp_path: Path) -> None:
    ref, _ = read(capture)
    be = tmp_path / "be.pcap"
    be.write_bytes(swap_endianness(capture.read_bytes()))
    assert read(be)[0] == ref


@needs_wireshark
def test_pcapng_and_microsecond_made_by_editcap(capture: Path, tmp_path: Path) -> None:
    ref, _ = read(capture)
    ng = tmp_path / "mixed.pcapng"
    subprocess.run([EDITCAP, "-F", "pcapng", str(capture), str(ng)], check=True)
    events, reader = read(ng)
    assert reader.stats.format == "pcapng"
    assert events == ref
    us = tmp_path / "mixed_us.pcap"
    subprocess.run([EDITCAP, "-F", "pcap", str(capture), str(us)], check=True)
    assert _totals(read(us)[0]) == _totals(ref)


@needs_wireshark
def test_short_snaplen_keeps_wire_byte_counts(capture: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    subprocess.run([EDITCAP, "-s", "96", str(capture), str(cut)], check=True)
    ref, _ = read(capture)
    events, reader = read(cut)
    assert _totals(events) == _totals(ref)
    assert not anomalies(events)  # cut DNS payloads are not judged malformed
    assert reader.stats.dns_unparsed > 0
    assert read(cut, fast=False)[0] == events


def _relink(frame: bytes, linktype: int) -> bytes:
    """An Ethernet frame rewritten for another link type (VLAN tags, SLL, SLL2, raw IP)."""
    eth, rest = frame[:12], frame[12:]
    if linktype == -1:  # one 802.1Q tag
        return eth + b"\x81\x00\x00\x64" + rest
    if linktype == -2:  # QinQ: 802.1ad outer, 802.1Q inner
        return eth + b"\x88\xa8\x00\x0a\x81\x00\x00\x64" + rest
    if linktype == -3:  # three tags: beyond the fast path
        return eth + b"\x88\xa8\x00\x0a\x81\x00\x00\x64\x81\x00\x00\x65" + rest
    if linktype == 113:
        return b"\x00\x04\x00\x01\x00\x06" + frame[6:12] + b"\x00\x00" + frame[12:14] + frame[14:]
    if linktype == 276:
        return frame[12:14] + b"\x00\x00" + b"\x00\x00\x00\x02" + b"\x00\x01\x04\x06" + \
            frame[6:12] + b"\x00\x00" + frame[14:]  # fmt: skip
    return frame[14:]


@pytest.mark.parametrize(
    ("variant", "linktype"),
    [("vlan", 1), ("qinq", 1), ("three-tags", 1), ("sll", 113), ("sll2", 276), ("raw", 101)],
)
def test_link_layers(capture: Path, tmp_path: Path, variant: str, linktype: int) -> None:
    from harness.pcap.writer import iter_pcap

    code = {"vlan": -1, "qinq": -2, "three-tags": -3}.get(variant, linktype)
    frames = [(ts, _relink(f, code)) for ts, f in iter_pcap(capture)]
    path = write(tmp_path / f"{variant}.pcap", frames, linktype=linktype)
    ref, _ = read(capture)
    events, reader = read(path)
    assert events == ref
    assert read(path, fast=False)[0] == events
    if variant == "three-tags":
        assert reader.stats.bulk_packets == 0
    else:
        assert reader.stats.bulk_packets > 0


@needs_wireshark
def test_pcapng_with_several_interfaces_by_mergecap(capture: Path, tmp_path: Path) -> None:
    from harness.pcap.writer import iter_pcap

    frames = list(iter_pcap(capture))
    eth = write(tmp_path / "eth.pcap", frames[::2])
    sll = write(tmp_path / "sll.pcap", [(t, _relink(f, 113)) for t, f in frames[1::2]],
                linktype=113)  # fmt: skip
    merged = tmp_path / "merged.pcapng"
    subprocess.run([MERGECAP, "-F", "pcapng", "-w", str(merged), str(eth), str(sll)], check=True)
    events, reader = read(merged)
    assert set(reader.stats.linktypes) == {1, 113}
    ref = read(capture)[0]
    # mergecap may order packets with equal timestamps differently, which renumbers flow ids.
    assert _totals(events) == _totals(ref)
    assert [(q.query, q.answers) for q in dns(events)] == [(q.query, q.answers) for q in dns(ref)]
    assert read(merged, fast=False)[0] == events


def test_config_changes_timeouts_and_plan(capture: Path) -> None:
    cfg = IngestConfig(active_timeout_s=30.0, internal_networks=("2001:db8::/32",))
    recs = [f for f in flows(read(capture, config=cfg)[0]) if f.src_port == 50_003]
    assert len(recs) == 5
    assert all(r.direction == Direction.INTERNAL for r in recs)
    v4 = [f for f in flows(read(capture, config=cfg)[0]) if f.src_port == 50_001]
    assert v4[0].direction == Direction.OUTBOUND
    assert v4[0].host == "192.0.2.101"


def test_ipv6_extension_headers_and_ip_fragments(tmp_path: Path) -> None:
    """DNS answers too big for one packet, fragmented over IPv4 and IPv6 (crafted with scapy),
    and a TCP segment behind an IPv6 hop-by-hop header: reassembled and decoded."""
    from scapy.layers.inet import IP, TCP, UDP, fragment
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, fragment6
    from scapy.layers.l2 import Ether

    from harness.pcap.dnswire import build_query, build_response, make_record

    query = build_query("big.example", "TXT", txid=7)
    answer = build_response(query, [make_record("big.example", "TXT", ["a" * 250] * 12)])
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    q4 = eth / IP(src="192.0.2.101", dst="192.0.2.10") / UDP(sport=33_100, dport=53) / query
    r4 = eth / IP(src="192.0.2.10", dst="192.0.2.101", id=99) / UDP(sport=53, dport=33_100)
    r4 = r4 / answer
    frags4 = [eth / f for f in fragment(r4[IP], fragsize=1000)]
    q6 = eth / IPv6(src="fd00::5", dst="fd00::53") / UDP(sport=33_101, dport=53) / query
    r6 = IPv6(src="fd00::53", dst="fd00::5") / IPv6ExtHdrFragment(id=5) / UDP(
        sport=53, dport=33_101
    ) / answer  # fmt: skip
    frags6 = [eth / f for f in fragment6(r6, 1200)]
    hbh = eth / IPv6(src="fd00::5", dst="2001:db8::80") / IPv6ExtHdrHopByHop() / TCP(
        sport=50_100, dport=80, flags="S", seq=1
    )  # fmt: skip
    frames = [q4, *reversed(frags4), q6, *frags6, hbh]
    assert len(frags4) > 1
    assert len(frags6) > 1
    packets = [(T0 + i * 1_000_000, bytes(f)) for i, f in enumerate(frames)]
    path = write(tmp_path / "frag.pcap", packets)
    events, reader = read(path)
    qs = dns(events)
    assert [(q.query, q.rcode, len(q.answers[0])) for q in qs] == [
        ("big.example", "NOERROR", 3000)
    ] * 2
    assert {q.resolver_ip for q in qs} == {"192.0.2.10", "fd00::53"}
    by_port = {f.src_port: f for f in flows(events)}
    assert by_port[33_100].bytes_in == len(answer)
    assert by_port[50_100].dst_ip == "2001:db8::80"
    assert reader.stats.fragments_dropped == 0
    assert read(path, fast=False)[0] == events
