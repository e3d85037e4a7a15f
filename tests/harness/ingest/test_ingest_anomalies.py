"""Every anomaly kind on a crafted example, and none on clean traffic seen mid-connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.events import AnomalyKind, Transport
from harness.pcap.packets import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, tcp_packet, udp_packet
from harness.pcap.render import FlowSpec, dns_flow, render_flow
from tests.harness.ingest.conftest import T0, S, anomalies, client_hello, read, write

C, SRV = "192.0.2.101", "203.0.113.50"
MS = 1_000_000


class Conn:
    """A hand-driven TCP connection between C:sport and SRV:dport."""

    def __init__(self, sport: int, dport: int, t: int, *, handshake: bool = True) -> None:
        self.sport, self.dport, self.t = sport, dport, t
        self.cseq, self.sseq = 1_000, 900_000
        self.packets: list[tuple[int, bytes]] = []
        if handshake:
            self.send(True, b"", TCP_SYN)
            self.cseq += 1
            self.send(False, b"", TCP_SYN | TCP_ACK)
            self.sseq += 1
            self.send(True, b"", TCP_ACK)

    def send(
        self, client: bool, payload: bytes, flags: int = TCP_ACK | TCP_PSH, *,
        seq: int | None = None, ttl: int | None = None,
    ) -> None:  # fmt: skip
        self.t += MS
        if client:
            pkt = tcp_packet(C, SRV, self.sport, self.dport, seq=self.cseq if seq is None else seq,
                             ack=self.sseq if flags & TCP_ACK else 0, flags=flags,
                             payload=payload, ttl=ttl or 64)  # fmt: skip
            if seq is None:
                self.cseq += len(payload)
        else:
            pkt = tcp_packet(SRV, C, self.dport, self.sport,
                             seq=self.sseq if seq is None else seq, ack=self.cseq, flags=flags,
                             payload=payload, ttl=ttl or 54)  # fmt: skip
            if seq is None:
                self.sseq += len(payload)
        self.packets.append((self.t, pkt))

    def exchange(self, n: int = 3) -> None:
        for _ in range(n):
            self.send(True, b"x" * 500)
            self.send(False, b"y" * 1400)

    def close(self) -> None:
        self.send(True, b"", TCP_FIN | TCP_ACK)
        self.cseq += 1
        self.send(False, b"", TCP_FIN | TCP_ACK)
        self.sseq += 1
        self.send(True, b"", TCP_ACK)


def _opener() -> list[tuple[int, bytes]]:
    # Something at T0 so the capture's start is T0.
    return list(
        render_flow(dns_flow(src_ip=C, src_port=30_000, resolver_ip="192.0.2.10", ts_ns=T0,
                             qname="start.example", answers=["203.0.113.50"])).packets
    )  # fmt: skip


def _kinds(tmp_path: Path, packets: list[tuple[int, bytes]]) -> list[AnomalyKind]:
    path = write(tmp_path / "a.pcap", _opener() + packets)
    events, _ = read(path)
    assert read(path, fast=False)[0] == events
    return [a.anomaly for a in anomalies(events)]


def test_no_handshake_late_and_unacknowledged(tmp_path: Path) -> None:
    c = Conn(41_000, 443, T0 + 120 * S, handshake=False)
    c.send(True, b"z" * 300)
    c.send(False, b"", TCP_RST)
    assert _kinds(tmp_path, c.packets) == [AnomalyKind.NO_HANDSHAKE]
    silent = Conn(41_001, 443, T0 + 120 * S, handshake=False)
    silent.send(True, b"z" * 300)
    silent.send(True, b"z" * 300)
    assert _kinds(tmp_path, silent.packets) == [AnomalyKind.NO_HANDSHAKE]


def test_no_handshake_not_for_running_or_acknowledged_connections(tmp_path: Path) -> None:
    early = Conn(41_002, 443, T0 + 5 * S, handshake=False)  # running when the capture began
    early.exchange()
    idle = Conn(41_003, 443, T0 + 300 * S, handshake=False)  # long idle, peer acknowledges
    idle.exchange()
    assert _kinds(tmp_path, early.packets + idle.packets) == []


def test_out_of_window_segment(tmp_path: Path) -> None:
    c = Conn(41_010, 443, T0 + S)
    c.send(True, client_hello("ok.example"))
    c.exchange()
    c.send(True, b"q" * 100, seq=c.cseq + 50_000_000)
    c.exchange()
    c.close()
    assert _kinds(tmp_path, c.packets) == [AnomalyKind.OUT_OF_WINDOW]


def test_injected_reset_bad_sequence(tmp_path: Path) -> None:
    c = Conn(41_020, 443, T0 + S)
    c.send(True, client_hello("ok.example"))
    c.exchange()
    c.send(False, b"", TCP_RST | TCP_ACK, seq=c.sseq + 3_000_000)
    assert _kinds(tmp_path, c.packets) == [AnomalyKind.INJECTED_RESET]


def test_injected_reset_ttl_after_data(tmp_path: Path) -> None:
    c = Conn(41_021, 443, T0 + S)
    c.send(True, client_hello("ok.example"))
    c.exchange()
    c.send(False, b"", TCP_RST | TCP_ACK, ttl=120)  # right sequence, wrong distance
    assert _kinds(tmp_path, c.packets) == [AnomalyKind.INJECTED_RESET]


def test_genuine_reset_is_not_injected(tmp_path: Path) -> None:
    c = Conn(41_022, 443, T0 + S)
    c.send(True, client_hello("ok.example"))
    c.exchange()
    c.send(True, b"", TCP_RST | TCP_ACK)
    assert _kinds(tmp_path, c.packets) == []


def test_malformed_dns(tmp_path: Path) -> None:
    pkts = [(T0 + S, udp_packet(C, "192.0.2.10", 30_001, 53, b"\x13\x37" + b"\xff" * 40))]
    assert _kinds(tmp_path, pkts) == [AnomalyKind.MALFORMED_DNS]


@pytest.mark.parametrize(
    ("dport", "payload"),
    [
        (53, client_hello("tunnel.example")),  # TLS on the DNS port (TCP)
        (443, b"GET / HTTP/1.1\r\nHost: plain.example\r\n\r\n"),  # plain HTTP on 443
        (80, b"SSH-2.0-OpenSSH_9.6\r\n"),  # SSH on 80
    ],
)
def test_port_protocol_mismatch_tcp(tmp_path: Path, dport: int, payload: bytes) -> None:
    c = Conn(41_030, dport, T0 + S)
    c.send(True, payload)
    c.exchange(1)
    c.close()
    assert _kinds(tmp_path, c.packets) == [AnomalyKind.PORT_PROTOCOL_MISMATCH]


def test_dns_on_a_non_dns_port(tmp_path: Path) -> None:
    flow = dns_flow(src_ip=C, src_port=30_002, resolver_ip=SRV, ts_ns=T0 + S,
                    qname="aGVsbG8.t.example", qtype="TXT", answers=["x"],
                    resolver_port=5000)  # fmt: skip
    path = write(tmp_path / "d.pcap", _opener() + list(render_flow(flow).packets))
    events, _ = read(path)
    assert [a.anomaly for a in anomalies(events)] == [AnomalyKind.PORT_PROTOCOL_MISMATCH]
    assert "aGVsbG8.t.example" in {e.query for e in events if e.kind.value == "dns_query"}


def test_wrong_direction_first_data(tmp_path: Path) -> None:
    c = Conn(41_040, 80, T0 + S)
    c.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    c.send(True, b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
    c.close()
    assert _kinds(tmp_path, c.packets) == [AnomalyKind.WRONG_DIRECTION_FIRST_DATA]


def test_server_first_protocols_are_fine(tmp_path: Path) -> None:
    c = Conn(41_041, 22, T0 + S)
    c.send(False, b"SSH-2.0-OpenSSH_9.6\r\n")
    c.send(True, b"SSH-2.0-OpenSSH_9.6\r\n")
    c.exchange()
    c.close()
    assert _kinds(tmp_path, c.packets) == []


def test_clean_traffic_starting_mid_connection_has_no_anomalies(tmp_path: Path) -> None:
    """Ordinary traffic, captured from a moment when many connections were already open."""
    specs = []
    for i in range(40):
        start = T0 + i * 2 * S
        specs.append(
            FlowSpec(transport=Transport.TCP, src_ip=f"192.0.2.{100 + i % 50}",
                     src_port=50_000 + i, dst_ip=f"203.0.113.{1 + i}", dst_port=443,
                     start_ns=start, end_ns=start + 40 * S, bytes_out=20_000 + 1000 * i,
                     bytes_in=200_000, exchanges=4,
                     messages_out=(client_hello(f"s{i}.example"),))
        )  # fmt: skip
        specs.append(
            dns_flow(src_ip=f"192.0.2.{100 + i % 50}", src_port=30_000 + i,
                     resolver_ip="192.0.2.10", ts_ns=start - S // 10,
                     qname=f"s{i}.example", answers=[f"203.0.113.{1 + i}"])
        )  # fmt: skip
    cut = T0 + 30 * S  # the capture starts here: half the connections are mid-stream
    packets = [p for s in specs for p in render_flow(s).packets if p[0] >= cut]
    path = write(tmp_path / "clean.pcap", packets)
    events, reader = read(path)
    assert anomalies(events) == []
    assert reader.stats.flows > 40
    assert read(path, fast=False)[0] == events


def test_retransmissions_count_once_and_raise_nothing(tmp_path: Path) -> None:
    c = Conn(41_050, 443, T0 + S)
    c.send(True, client_hello("ok.example"))
    c.exchange(2)
    c.send(True, b"r" * 700)
    c.packets.append((c.t + MS, c.packets[-1][1]))  # the same segment again
    c.t += 2 * MS
    c.exchange(2)
    c.close()
    path = write(tmp_path / "r.pcap", c.packets)
    events, _ = read(path)
    assert anomalies(events) == []
    (flow,) = [e for e in events if e.kind.value == "network_flow"]
    assert flow.bytes_out == len(client_hello("ok.example")) + 4 * 500 + 700
    assert flow.packets_out == sum(1 for _, p in c.packets if p[26:30] == bytes([192, 0, 2, 101]))
    assert read(path, fast=False)[0] == events
