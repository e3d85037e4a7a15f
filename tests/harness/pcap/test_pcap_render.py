"""Flow rendering: payload bytes per direction are exact, TCP state is consistent, output is
deterministic, and scapy agrees on every checksum."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import random
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from harness.errors import InvalidParameterError
from harness.events import AppProtocol, Direction, NetworkFlow, Transport
from harness.pcap.dnswire import QTYPES, DnsRecord, encode_name, parse_message, record_value
from harness.pcap.packets import TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN
from harness.pcap.render import (
    MSS_V4,
    MSS_V6,
    UDP_MAX_V4,
    FlowSpec,
    RenderedFlow,
    dns_flow,
    merge_flows,
    plan_flow,
    render_dns,
    render_flow,
    write_flows,
)
from harness.pcap.writer import PcapWriter, iter_pcap, pcap_bytes

REPO = Path(__file__).resolve().parents[3]
T0 = 1_700_000_000_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Seen:
    """One frame decoded by a small struct-based parser, independent of the code under test."""

    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    payload: bytes
    seq: int = 0
    ack: int = 0
    flags: int = 0


def decode(frame: bytes) -> Seen:
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == 0x0800:
        ihl = (frame[14] & 0x0F) * 4
        total = struct.unpack_from("!H", frame, 16)[0]
        proto = frame[23]
        src, dst = ipaddress.ip_address(frame[26:30]), ipaddress.ip_address(frame[30:34])
        l4, end = 14 + ihl, 14 + total
    else:
        assert ethertype == 0x86DD
        plen = struct.unpack_from("!H", frame, 18)[0]
        proto = frame[20]
        src, dst = ipaddress.ip_address(frame[22:38]), ipaddress.ip_address(frame[38:54])
        l4, end = 54, 54 + plen
    assert end == len(frame)
    sport, dport = struct.unpack_from("!HH", frame, l4)
    if proto == 6:
        seq, ack, off_flags = struct.unpack_from("!IIH", frame, l4 + 4)
        payload = frame[l4 + (off_flags >> 12) * 4 : end]
        return Seen(
            src=str(src),
            dst=str(dst),
            sport=sport,
            dport=dport,
            proto=proto,
            payload=payload,
            seq=seq,
            ack=ack,
            flags=off_flags & 0x3F,
        )
    assert proto == 17
    udp_len = struct.unpack_from("!H", frame, l4 + 4)[0]
    assert l4 + udp_len == end
    return Seen(
        src=str(src),
        dst=str(dst),
        sport=sport,
        dport=dport,
        proto=proto,
        payload=frame[l4 + 8 : end],
    )


def check_flow(spec: FlowSpec, rendered: RenderedFlow) -> None:
    """Every invariant a rendered flow must satisfy."""
    packets = rendered.packets
    times = [ts for ts, _ in packets]
    assert times == sorted(times)
    assert packets, "a flow has at least one packet"
    assert times[0] == spec.start_ns
    if len(packets) > 1:
        assert times[-1] == spec.end_ns
    seen = [decode(frame) for _, frame in packets]
    out = [
        s
        for s in seen
        if (s.src, s.sport) == (str(ipaddress.ip_address(spec.src_ip)), spec.src_port)
    ]
    inn = [s for s in seen if s not in out]
    for s in out:
        assert (s.dst, s.dport) == (str(ipaddress.ip_address(spec.dst_ip)), spec.dst_port)
    for s in inn:
        assert (s.src, s.sport, s.dport) == (
            str(ipaddress.ip_address(spec.dst_ip)),
            spec.dst_port,
            spec.src_port,
        )
    # The invariant: payload bytes per direction are exactly the flow's bytes.
    stream_out = b"".join(s.payload for s in out)
    stream_in = b"".join(s.payload for s in inn)
    assert len(stream_out) == spec.bytes_out == rendered.bytes_out
    assert len(stream_in) == spec.bytes_in == rendered.bytes_in
    assert (len(out), len(inn)) == (rendered.packets_out, rendered.packets_in)
    # Explicit messages come first on each side's stream.
    assert stream_out.startswith(b"".join(spec.messages_out))
    assert stream_in.startswith(b"".join(spec.messages_in))
    if spec.transport == Transport.TCP:
        check_tcp(spec, seen, out)
    else:
        assert all(s.proto == 17 for s in seen)
        limit = UDP_MAX_V4 if ":" not in spec.src_ip else UDP_MAX_V4 - 20
        explicit = list(spec.messages_out) + list(spec.messages_in)
        for s in seen:
            assert len(s.payload) <= limit or s.payload in explicit


def check_tcp(spec: FlowSpec, seen: list[Seen], out: list[Seen]) -> None:
    mss = MSS_V4 if ":" not in spec.src_ip else MSS_V6
    flags = [s.flags for s in seen]
    if spec.handshake:
        assert flags[:3] == [TCP_SYN, TCP_SYN | TCP_ACK, TCP_ACK]
    if spec.teardown:
        assert flags[-3:] == [TCP_FIN | TCP_ACK, TCP_FIN | TCP_ACK, TCP_ACK]
    next_seq: dict[bool, int] = {}
    for s in seen:
        outbound = s in out
        assert len(s.payload) <= mss
        if outbound in next_seq:
            assert s.seq == next_seq[outbound], "sequence gap or overlap"
        step = len(s.payload) + bool(s.flags & TCP_SYN) + bool(s.flags & TCP_FIN)
        next_seq[outbound] = (s.seq + step) & 0xFFFFFFFF
        if s.flags & TCP_ACK:
            # Never acknowledges anything the peer has not sent yet, nor less than all of it
            # (the receiver's view is complete at every point, since nothing is lost). Without
            # a handshake the first ACK fixes where the peer's stream must start.
            assert s.ack == next_seq.setdefault(not outbound, s.ack)
        else:
            assert s.flags == TCP_SYN
        if s.payload:
            assert s.flags & TCP_ACK
    # PSH marks exactly the last segment of each message.
    pushes = [s for s in seen if s.flags & TCP_PSH]
    assert all(s.payload for s in pushes)


@st.composite
def flow_specs(draw: st.DrawFn) -> FlowSpec:
    transport = draw(st.sampled_from([Transport.TCP, Transport.UDP]))
    v6 = draw(st.booleans())
    if v6:
        src, dst = "2001:db8::10", draw(st.sampled_from(["2001:db8:1::443", "fd00::53"]))
    else:
        src, dst = "10.0.0.10", draw(st.sampled_from(["93.184.216.34", "10.0.0.53"]))
    msg = st.binary(min_size=0, max_size=3000)
    messages_out = tuple(draw(st.lists(msg, max_size=2)))
    messages_in = tuple(draw(st.lists(msg, max_size=2)))
    extra = st.one_of(st.integers(0, 3000), st.integers(0, 150_000))
    start = draw(st.integers(0, 2**62))
    tcp = transport == Transport.TCP
    return FlowSpec(
        transport=transport,
        src_ip=src,
        src_port=draw(st.integers(1024, 65535)),
        dst_ip=dst,
        dst_port=draw(st.sampled_from([53, 80, 443, 8443])),
        start_ns=start,
        end_ns=start + draw(st.integers(0, 10**12)),
        bytes_out=sum(map(len, messages_out)) + draw(extra),
        bytes_in=sum(map(len, messages_in)) + draw(extra),
        messages_out=messages_out,
        messages_in=messages_in,
        exchanges=draw(st.integers(1, 6)),
        handshake=draw(st.booleans()) if tcp else True,
        teardown=draw(st.booleans()) if tcp else True,
    )


@settings(max_examples=150, deadline=None)
@given(flow_specs())
def test_rendered_flows_keep_every_invariant(spec: FlowSpec) -> None:
    check_flow(spec, render_flow(spec))


@settings(max_examples=40, deadline=None)
@given(flow_specs(), st.integers(0, 2**32))
def test_rendering_with_an_rng_keeps_invariants_and_is_repeatable(
    spec: FlowSpec, seed: int
) -> None:
    first = render_flow(spec, rng=random.Random(seed))
    check_flow(spec, first)
    assert render_flow(spec, rng=random.Random(seed)) == first


@settings(max_examples=30, deadline=None)
@given(flow_specs())
def test_plan_matches_rendered_frames(spec: FlowSpec) -> None:
    planned = plan_flow(spec)
    rendered = render_flow(spec)
    assert [p.ts_ns for p in planned] == [ts for ts, _ in rendered.packets]
    for p, (_, frame) in zip(planned, rendered.packets, strict=True):
        seen = decode(frame)
        assert seen.payload == p.payload
        assert (seen.seq, seen.ack, seen.flags) == (p.seq, p.ack, p.flags)


def _mixed_flows() -> list[RenderedFlow]:
    def tcp(
        src: str, dst: str, sport: int, dport: int, out: int, inn: int, **kw: object
    ) -> RenderedFlow:
        return render_flow(
            FlowSpec(
                transport=Transport.TCP,
                src_ip=src,
                src_port=sport,
                dst_ip=dst,
                dst_port=dport,
                start_ns=T0 + sport * 1_000_000,
                end_ns=T0 + sport * 1_000_000 + 3_000_000_000,
                bytes_out=out,
                bytes_in=inn,
                **kw,  # type: ignore[arg-type]
            )
        )

    return [
        tcp("10.0.0.5", "93.184.216.34", 50000, 443, 25_000, 4_000, exchanges=3),
        tcp("10.0.0.5", "198.51.100.9", 50001, 8080, 0, 90_000),
        tcp("2001:db8::5", "2001:db8:1::34", 50002, 9000, 7_777, 333),
        tcp("10.0.0.5", "198.51.100.9", 50003, 9001, 0, 0),
        render_flow(
            FlowSpec(
                transport=Transport.UDP,
                src_ip="10.0.0.5",
                src_port=50004,
                dst_ip="198.51.100.9",
                dst_port=4500,
                start_ns=T0,
                end_ns=T0 + 10**9,
                bytes_out=5000,
                bytes_in=100,
            )
        ),
        render_dns(
            src_ip="10.0.0.5",
            src_port=50005,
            resolver_ip="10.0.0.53",
            ts_ns=T0 + 7,
            qname="c2.example.com",
            qtype="TXT",
            answers=["payload"],
        ),
        render_dns(
            src_ip="2001:db8::5",
            src_port=50006,
            resolver_ip="2001:db8::53",
            ts_ns=T0 + 7,
            qname="v6.example.com",
            qtype="AAAA",
            answers=["2001:db8::1"],
            edns_payload=1232,
        ),
    ]


def test_scapy_agrees_on_every_checksum_of_rendered_flows() -> None:
    for flow in _mixed_flows():
        for _, frame in flow.packets:
            pkt = Ether(frame)
            if IP in pkt:
                del pkt[IP].chksum
            l4 = TCP if TCP in pkt else UDP
            del pkt[l4].chksum
            assert bytes(pkt) == frame
            assert IP in pkt or IPv6 in pkt


def test_dns_pair_parses_in_scapy_and_ours() -> None:
    flow = render_dns(
        src_ip="10.0.0.5",
        src_port=53124,
        resolver_ip="10.0.0.53",
        ts_ns=T0,
        qname="aGVsbG8.t.example.com",
        qtype="A",
        answers=["192.0.2.1", "192.0.2.2"],
        rtt_ns=5_000_000,
    )
    assert (flow.packets_out, flow.packets_in) == (1, 1)
    (t_query, query), (t_resp, resp) = flow.packets
    assert (t_query, t_resp) == (T0, T0 + 5_000_000)
    q, r = Ether(query), Ether(resp)
    assert (q[UDP].sport, q[UDP].dport, r[UDP].sport, r[UDP].dport) == (53124, 53, 53, 53124)
    assert q[DNS].id == r[DNS].id
    assert q[DNS].qr == 0
    assert r[DNS].qr == 1
    assert r[DNS].qd[0].qname == b"aGVsbG8.t.example.com."
    assert [r[DNS].an[i].rdata for i in range(2)] == ["192.0.2.1", "192.0.2.2"]
    assert flow.bytes_out == len(bytes(q[UDP].payload))
    msg = parse_message(bytes(r[UDP].payload))
    assert [record_value(a) for a in msg.answers] == ["192.0.2.1", "192.0.2.2"]


def test_dns_flow_takes_records_and_private_types() -> None:
    cname = DnsRecord(
        name="a.example.com", rtype=QTYPES["CNAME"], ttl=5, rdata=encode_name("b.example.com")
    )
    spec = dns_flow(
        src_ip="10.0.0.5",
        src_port=5000,
        resolver_ip="10.0.0.53",
        ts_ns=T0,
        qname="a.example.com",
        qtype=65399,
        answers=[cname, b"\x00raw"],
        txid=77,
    )
    assert spec.transport == Transport.UDP
    assert spec.dst_port == 53
    response = parse_message(spec.messages_in[0])
    assert response.txid == 77
    assert [a.rtype for a in response.answers] == [QTYPES["CNAME"], 65399]
    check_flow(spec, render_flow(spec))


def test_merge_orders_by_time_and_keeps_flow_order_on_ties() -> None:
    flows = _mixed_flows()
    merged = merge_flows(flows)
    assert [ts for ts, _ in merged] == sorted(ts for f in flows for ts, _ in f.packets)
    # The two DNS flows start at the same instant: the first listed comes first.
    at = [frame for ts, frame in merged if ts == T0 + 7]
    assert decode(at[0]).sport == 50005
    with PcapWriter(Path(os.devnull)) as writer:
        assert write_flows(writer, flows) == sum(len(f.packets) for f in flows)


def test_same_input_gives_byte_identical_pcap(tmp_path: Path) -> None:
    paths = [tmp_path / "a.pcap", tmp_path / "b.pcap"]
    for path in paths:
        with PcapWriter(path) as writer:
            write_flows(writer, _mixed_flows())
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert len(list(iter_pcap(paths[0]))) == sum(len(f.packets) for f in _mixed_flows())


_DIGEST_SCRIPT = """
import hashlib, sys
sys.path.insert(0, {tests!r})
from test_pcap_render import _mixed_flows
from harness.pcap.render import merge_flows
from harness.pcap.writer import pcap_bytes
sys.stdout.write(hashlib.sha256(pcap_bytes(merge_flows(_mixed_flows()))).hexdigest())
"""


@pytest.mark.parametrize("hash_seed", ["0", "4242"])
def test_output_does_not_depend_on_the_process(hash_seed: str) -> None:
    here = hashlib.sha256(pcap_bytes(merge_flows(_mixed_flows()))).hexdigest()
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
    script = _DIGEST_SCRIPT.format(tests=str(Path(__file__).parent))
    there = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert there == here


def test_from_network_flow() -> None:
    event = NetworkFlow(
        event_id="e1",
        ts_ns=T0,
        flow_id="f1",
        host="ws1",
        process_guid=None,
        transport=Transport.TCP,
        src_ip="10.0.0.5",
        src_port=51000,
        dst_ip="93.184.216.34",
        dst_port=443,
        direction=Direction.OUTBOUND,
        app_protocol=AppProtocol.TLS,
        start_ns=T0,
        end_ns=T0 + 10**9,
        bytes_out=1234,
        bytes_in=5678,
        packets_out=9,
        packets_in=9,
        is_final=False,
    )
    spec = FlowSpec.from_network_flow(event, handshake=False)
    assert (spec.bytes_out, spec.bytes_in, spec.handshake, spec.teardown) == (
        1234,
        5678,
        False,
        False,
    )
    check_flow(spec, render_flow(spec))


@pytest.mark.parametrize(
    "changes",
    [
        {"bytes_out": 3, "messages_out": (b"four",)},
        {"end_ns": T0 - 1},
        {"dst_ip": "2001:db8::1"},
        {"src_port": 70000},
        {"exchanges": 0},
        {"transport": "sctp"},
        {"transport": Transport.UDP, "handshake": False},
    ],
)
def test_invalid_specs(changes: dict[str, object]) -> None:
    base: dict[str, object] = {
        "transport": Transport.TCP,
        "src_ip": "10.0.0.5",
        "src_port": 5000,
        "dst_ip": "10.0.0.6",
        "dst_port": 80,
        "start_ns": T0,
        "end_ns": T0 + 10,
        "bytes_out": 10,
        "bytes_in": 10,
    }
    with pytest.raises(InvalidParameterError):
        FlowSpec(**{**base, **changes})  # type: ignore[arg-type]


def test_exchanges_alternate_directions() -> None:
    spec = FlowSpec(
        transport=Transport.TCP,
        src_ip="10.0.0.5",
        src_port=5000,
        dst_ip="10.0.0.6",
        dst_port=80,
        start_ns=T0,
        end_ns=T0 + 10**9,
        bytes_out=300,
        bytes_in=3000,
        exchanges=3,
    )
    order = [p.outbound for p in plan_flow(spec) if p.payload]
    # Three rounds of request (one segment) then response (one segment).
    assert order == [True, False, True, False, True, False]
