"""The packets behind each :class:`~harness.events.ProtocolAnomaly`, crafted with scapy.

Unusual packets are what scapy is for; the bulk of a capture comes from the fast builders in
:mod:`harness.pcap.packets`. Only the layers needed are imported (never ``scapy.all``), and
every field scapy would otherwise draw at random or look up on the host (IP id, sequence
numbers, DNS id, MAC addresses) is set explicitly from a hash of the event, so the frames are a
function of the event alone.

* ``no_handshake``: a data segment of a connection that never opened.
* ``out_of_window``: a handshake, then a segment whose sequence number is 2**30 past the window.
* ``injected_reset``: a handshake, then a reset arriving with a TTL no host on the path uses.
* ``malformed_dns``: a DNS response whose header announces an answer that is not there (the
  only packets of a rendered capture a dissector should call malformed).
* ``wrong_direction_first_data``: a handshake, then the responder speaks first on a
  client-speaks-first port.
* ``port_protocol_mismatch``: rendered by its flow, which carries the payload of its real
  protocol on the other protocol's port; no extra packets.
"""

from __future__ import annotations

import hashlib

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from harness.events import AnomalyKind, ProtocolAnomaly, Transport
from harness.pcap.packets import filler, format_mac, mac_for_ip, pack_ip

__all__ = ["anomaly_frames"]

#: Time between the packets of one anomaly.
_STEP_NS = 1_000_000
_INJECTED_TTL = 243
_HTTP_PORTS = frozenset({80, 8000, 8008, 8080})


class _Crafter:
    """Builds frames between the anomaly's two endpoints with every variable field pinned."""

    def __init__(self, event: ProtocolAnomaly) -> None:
        self.event = event
        key = (
            f"{event.event_id}|{event.src_ip}|{event.src_port}|{event.dst_ip}|{event.dst_port}|"
            f"{event.ts_ns}"
        ).encode()
        self.seed = hashlib.blake2b(key, digest_size=16).digest()
        self.v6 = len(pack_ip(event.src_ip)) == 16
        self.ip_ids = [
            int.from_bytes(self.seed[8:10], "big"),
            int.from_bytes(self.seed[10:12], "big"),
        ]
        self.frames: list[tuple[int, bytes]] = []

    def _ip(self, forward: bool, ttl: int) -> Packet:
        e = self.event
        src, dst = (e.src_ip, e.dst_ip) if forward else (e.dst_ip, e.src_ip)
        side = 0 if forward else 1
        ip_id = self.ip_ids[side]
        self.ip_ids[side] = (ip_id + 1) & 0xFFFF
        ether = Ether(src=format_mac(mac_for_ip(src)), dst=format_mac(mac_for_ip(dst)))
        if self.v6:
            return ether / IPv6(src=src, dst=dst, hlim=ttl, fl=ip_id, tc=0)
        return ether / IP(src=src, dst=dst, ttl=ttl, id=ip_id, flags="DF", tos=0)

    def tcp(
        self,
        forward: bool,
        flags: str,
        seq: int,
        ack: int = 0,
        payload: bytes = b"",
        *,
        ttl: int | None = None,
    ) -> None:
        e = self.event
        sport, dport = (e.src_port, e.dst_port) if forward else (e.dst_port, e.src_port)
        segment = TCP(
            sport=sport,
            dport=dport,
            seq=seq & 0xFFFFFFFF,
            ack=ack & 0xFFFFFFFF,
            flags=flags,
            window=64_240 if forward else 65_535,
            options=[],
            urgptr=0,
        )
        packet = self._ip(forward, ttl or (64 if forward else 54)) / segment
        if payload:
            packet = packet / Raw(load=payload)
        self.add(packet)

    def udp(self, forward: bool, payload: bytes) -> None:
        e = self.event
        sport, dport = (e.src_port, e.dst_port) if forward else (e.dst_port, e.src_port)
        self.add(self._ip(forward, 64 if forward else 54) / UDP(sport=sport, dport=dport) / payload)

    def add(self, packet: Packet) -> None:
        self.frames.append((self.event.ts_ns + _STEP_NS * len(self.frames), bytes(packet)))

    def handshake(self) -> tuple[int, int]:
        """SYN, SYN/ACK, ACK; returns the next sequence numbers of (originator, responder)."""
        isn_o = int.from_bytes(self.seed[0:4], "big")
        isn_r = int.from_bytes(self.seed[4:8], "big")
        self.tcp(True, "S", isn_o)
        self.tcp(False, "SA", isn_r, isn_o + 1)
        self.tcp(True, "A", isn_o + 1, isn_r + 1)
        return isn_o + 1, isn_r + 1


def _malformed_dns(crafter: _Crafter) -> bytes:
    txid = int.from_bytes(crafter.seed[12:14], "big")
    qname = f"x{crafter.seed[:6].hex()}.relay.example"
    # The header announces one answer; the message ends after the question.
    message = DNS(id=txid, qr=1, rd=1, ra=1, qd=DNSQR(qname=qname, qtype="A"), ancount=1)
    return bytes(message)


def anomaly_frames(event: ProtocolAnomaly) -> list[tuple[int, bytes]]:
    """The frames of ``event`` as ``(ts_ns, frame)`` pairs, from ``event.ts_ns`` on."""
    c = _Crafter(event)
    kind = event.anomaly
    if {event.src_port, event.dst_port} & _HTTP_PORTS:
        # A dissector reads these ports as HTTP: inert filler would be a malformed request.
        data = b"HTTP/1.1 204 No Content\r\nServer: inert\r\n\r\n"
    else:
        data = filler(int.from_bytes(c.seed[14:16], "big"), 64)
    if kind is AnomalyKind.PORT_PROTOCOL_MISMATCH:
        return []
    if kind is AnomalyKind.MALFORMED_DNS or event.transport is Transport.UDP:
        payload = _malformed_dns(c) if kind is AnomalyKind.MALFORMED_DNS else data
        c.udp(True, payload)
        return c.frames
    if kind is AnomalyKind.NO_HANDSHAKE:
        seq = int.from_bytes(c.seed[0:4], "big")
        c.tcp(True, "PA", seq, int.from_bytes(c.seed[4:8], "big"), data)
    elif kind is AnomalyKind.OUT_OF_WINDOW:
        seq, ack = c.handshake()
        c.tcp(True, "PA", seq + (1 << 30), ack, data)
    elif kind is AnomalyKind.INJECTED_RESET:
        seq, ack = c.handshake()
        c.tcp(True, "PA", seq, ack, data)
        c.tcp(False, "R", ack, 0, ttl=_INJECTED_TTL)
    elif kind is AnomalyKind.WRONG_DIRECTION_FIRST_DATA:
        seq, ack = c.handshake()
        c.tcp(False, "PA", ack, seq, data)
        c.tcp(True, "A", seq, ack + len(data))
    return c.frames
