"""The flow engine: transport packets in, NetworkFlow / DnsQuery / ProtocolAnomaly events out.

:class:`FlowEngine` keeps one :class:`Flow` per bidirectional 5-tuple and applies, per packet,
the semantics documented in :mod:`harness.ingest.pcap`: originator choice, per-direction bytes
(TCP: growth of the sequence high-water mark, so retransmissions are not counted twice, like
Zeek's ``orig_bytes``; UDP: payload lengths), active-timeout interval records, idle and
closed-connection expiry, application identification from the first payload of each direction,
DNS query/response pairing, and the anomaly checks. The fast path in
:mod:`harness.ingest.pcap` updates the same :class:`Flow` objects in bulk for packets that
provably change nothing but counters; everything else comes here one packet at a time.

Events are not emitted when created but pushed on a heap keyed by ``(ts_ns, rank, packet index,
sub)``; :meth:`FlowEngine.drain` releases those that no later packet can precede (older than
the longest timeout) and numbers them ``pcap:<n>`` in that order, so the output is in event-time
order and its ids do not depend on how packets were batched.
"""

from __future__ import annotations

import heapq
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InvalidParameterError
from harness.events import (
    AnomalyKind,
    AppProtocol,
    Direction,
    DnsQuery,
    Event,
    NetworkFlow,
    ProtocolAnomaly,
    Transport,
)
from harness.ingest._appid import (
    APP_OF_LABEL,
    CLIENT_FIRST_PORTS,
    DNS_PORTS,
    PORT_PROTOCOLS,
    identify,
    parse_dns,
)
from harness.ingest._decode import Packet
from harness.pcap.dnswire import DnsMessage, qtype_name, rcode_name, record_value

__all__ = ["DEFAULT_INTERNAL_NETWORKS", "AddressPlan", "Flow", "FlowEngine", "IngestConfig"]

NS = 1_000_000_000
M32 = 0xFFFFFFFF
SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10
#: Window scale assumed when the handshake was not seen (Linux's default for large buffers).
UNKNOWN_WSCALE = 7
#: An out-of-window segment is at least this far outside whatever window was advertised.
MIN_WINDOW_LIMIT = 1 << 17

#: Internal by default: RFC 1918, loopback, link-local, CGNAT shared space, ULA, and
#: 192.0.2.0/24 (TEST-NET-1), which is the project's synthetic organisation; the other
#: documentation ranges (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) play the internet
#: in synthetic scenarios, so they are external unless configured otherwise.
DEFAULT_INTERNAL_NETWORKS: tuple[str, ...] = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "192.0.2.0/24",
    "fc00::/7",
    "fe80::/10",
    "::1/128",
)


def _signed(x: int) -> int:
    x &= M32
    return x - (1 << 32) if x & 0x80000000 else x


class AddressPlan:
    """Which addresses are internal; answers are cached per packed address."""

    __slots__ = ("_cache", "_nets", "networks")

    def __init__(self, networks: tuple[str, ...] = DEFAULT_INTERNAL_NETWORKS) -> None:
        nets = []
        for text in networks:
            try:
                nets.append(ipaddress.ip_network(text, strict=False))
            except ValueError as exc:
                raise InvalidParameterError(
                    "internal network", text, "a CIDR prefix such as 10.0.0.0/8"
                ) from exc
        self.networks = tuple(str(n) for n in nets)
        # Per packed length (4 or 16 bytes): (mask, network) pairs as integers.
        self._nets: dict[int, list[tuple[int, int]]] = {4: [], 16: []}
        for n in nets:
            self._nets[4 if n.version == 4 else 16].append((int(n.netmask), int(n.network_address)))
        self._cache: dict[bytes, bool] = {}

    def is_internal(self, packed: bytes) -> bool:
        hit = self._cache.get(packed)
        if hit is None:
            if len(self._cache) > 65_536:
                self._cache.clear()
            value = int.from_bytes(packed, "big")
            hit = any(value & mask == net for mask, net in self._nets.get(len(packed), ()))
            self._cache[packed] = hit
        return hit


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestConfig:
    """Timeouts and policies of the pcap reader (seconds unless named otherwise)."""

    #: Interim NetworkFlow records are cut at flow start + k * this (NetFlow's active timeout).
    active_timeout_s: float = 60.0
    tcp_idle_timeout_s: float = 120.0
    udp_idle_timeout_s: float = 60.0
    #: A TCP flow after RST, or FIN both ways, ends after this much quiet.
    tcp_closed_timeout_s: float = 5.0
    #: A DNS query without a response by then is reported with rcode ``NOANSWER``.
    dns_timeout_s: float = 10.0
    #: Connections whose first packet comes this soon after the capture began are taken to
    #: have been running already; only later ones can be ``no_handshake``.
    no_handshake_grace_s: float = 60.0
    #: How long the peer has to acknowledge handshake-less data before it is reported.
    no_handshake_wait_s: float = 5.0
    internal_networks: tuple[str, ...] = DEFAULT_INTERNAL_NETWORKS

    def __post_init__(self) -> None:
        for name in (
            "active_timeout_s", "tcp_idle_timeout_s", "udp_idle_timeout_s",
            "tcp_closed_timeout_s", "dns_timeout_s", "no_handshake_wait_s",
        ):  # fmt: skip
            value = getattr(self, name)
            if not value > 0:
                raise InvalidParameterError(name, value, "a positive number of seconds")
        if self.no_handshake_grace_s < 0:
            raise InvalidParameterError(
                "no_handshake_grace_s", self.no_handshake_grace_s, "zero or more seconds"
            )


def _port_rank(port: int) -> int:
    return 0 if port < 1024 else (1 if port < 32768 else 2)


def _wscale(opts: bytes) -> int:
    i = 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        if kind == 3 and opts[i + 1] == 3 and i + 2 < len(opts):
            return min(opts[i + 2], 14)
        i += opts[i + 1]
    return -1


class Flow:
    """Mutable state of one flow. Index 0 of each pair is the originator's side."""

    __slots__ = (
        "acked",
        "anoms",
        "app",
        "b",
        "direction",
        "dns_buf",
        "dns_next",
        "fin",
        "first_idx",
        "handshake",
        "hi",
        "host",
        "idle_ns",
        "is_dns",
        "key",
        "label",
        "last",
        "last_data",
        "maxwin",
        "nohs",
        "oip",
        "oport",
        "p",
        "paid",
        "proto",
        "rec_k",
        "rip",
        "rport",
        "rst",
        "server_name",
        "start",
        "synack",
        "ttl",
        "ws",
    )  # fmt: skip

    def __init__(self) -> None:
        self.b = [0, 0]
        self.p = [0, 0]
        self.hi: list[int | None] = [None, None]
        self.acked: list[int | None] = [None, None]
        self.maxwin = [0, 0]
        self.ttl = [-1, -1]
        self.ws = [-1, -1]
        self.last_data = [0, 0]
        self.fin = [False, False]
        self.paid = [False, False]
        self.rst = False
        self.synack = False
        self.handshake = False
        self.anoms: set[AnomalyKind] = set()
        self.label: str | None = None
        self.app = AppProtocol.UNKNOWN
        self.server_name: str | None = None
        self.is_dns = False
        self.dns_buf: list[bytearray] = [bytearray(), bytearray()]
        self.dns_next: list[int | None] = [None, None]
        self.nohs: tuple[int, int, int] | None = None  # (ts, packet index, sender side)
        self.rec_k = 0
        self.key: tuple[int, bytes, int, bytes, int] = (0, b"", 0, b"", 0)
        self.proto = 0
        self.oip = self.rip = b""
        self.oport = self.rport = 0
        self.first_idx = 0
        self.start = self.last = 0
        self.idle_ns = 0
        self.host = ""
        self.direction = Direction.OUTBOUND

    @property
    def closed(self) -> bool:
        return self.rst or (self.fin[0] and self.fin[1])

    def scale(self, d: int) -> int:
        """Window scale of side ``d``'s advertisements."""
        if self.synack:
            return self.ws[d] if self.ws[0] >= 0 and self.ws[1] >= 0 else 0
        return UNKNOWN_WSCALE

    def limit(self, receiver: int) -> int:
        """How far from the sender's high-water mark a segment may start."""
        window = self.maxwin[receiver] or (0xFFFF << self.scale(receiver))
        return max(2 * window, MIN_WINDOW_LIMIT)


# Heap entries: (ts, rank, packet index, sub, kind, payload). Ranks order kinds at equal times.
_R_FLOW, _R_DNS, _R_ANOM = 0, 1, 2
_ANOM_ORDER = {kind: i for i, kind in enumerate(AnomalyKind)}


@dataclass(slots=True)
class EngineCounters:
    packets: int = 0
    flows: int = 0
    dns_unparsed: int = 0
    released: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


class FlowEngine:
    """Per-packet flow, DNS and anomaly logic with a time-ordered event heap."""

    def __init__(self, config: IngestConfig) -> None:
        self.cfg = config
        self.plan = AddressPlan(config.internal_networks)
        self.active_ns = int(config.active_timeout_s * NS)
        self.tcp_idle = int(config.tcp_idle_timeout_s * NS)
        self.udp_idle = int(config.udp_idle_timeout_s * NS)
        self.closed_idle = int(config.tcp_closed_timeout_s * NS)
        self.dns_timeout = int(config.dns_timeout_s * NS)
        self.grace = int(config.no_handshake_grace_s * NS)
        self.nohs_wait = int(config.no_handshake_wait_s * NS)
        self.hold = (
            max(self.tcp_idle, self.udp_idle, self.closed_idle, self.dns_timeout, self.nohs_wait)
            + self.active_ns
        )
        self.flows: dict[tuple[int, bytes, int, bytes, int], Flow] = {}
        self.pending_dns: dict[tuple[Any, ...], tuple[int, int, str, str, int, str, str, str]] = {}
        #: (client, address) -> recent (packet index, name) answers that resolved the address
        #: for that client, oldest first
        self.resolved: dict[tuple[bytes, bytes], list[tuple[int, str]]] = {}
        self.events: list[tuple[Any, ...]] = []
        self.deadlines: list[tuple[int, int, int, tuple[Any, ...]]] = []
        self._dl_seq = 0
        self._dns_seq = 0
        self.start: int | None = None
        self.now = 0
        self.counters = EngineCounters()
        self._ip: dict[bytes, str] = {}

    # -- helpers --------------------------------------------------------------------------

    def ip(self, packed: bytes) -> str:
        text = self._ip.get(packed)
        if text is None:
            if len(self._ip) > 65_536:
                self._ip.clear()
            family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
            text = socket.inet_ntop(family, packed)
            self._ip[packed] = text
        return text

    def _deadline(self, when: int, kind: int, ref: tuple[Any, ...]) -> None:
        self._dl_seq += 1
        heapq.heappush(self.deadlines, (when, self._dl_seq, kind, ref))

    def idle_of(self, f: Flow) -> int:
        if f.proto == 6:
            return self.closed_idle if f.closed else self.tcp_idle
        return self.udp_idle

    # -- flows ----------------------------------------------------------------------------

    def new_flow(
        self, idx: int, ts: int, proto: int, src: bytes, sport: int, dst: bytes, dport: int,
        flags: int, key: tuple[int, bytes, int, bytes, int],
    ) -> Flow:  # fmt: skip
        f = Flow()
        f.key, f.proto, f.first_idx, f.start, f.last = key, proto, idx, ts, ts
        swap = False
        if proto == 6 and flags & SYN:
            f.handshake = True
            swap = bool(flags & ACK)
        elif _port_rank(sport) < _port_rank(dport):
            swap = True
        if swap:
            f.oip, f.oport, f.rip, f.rport = dst, dport, src, sport
        else:
            f.oip, f.oport, f.rip, f.rport = src, sport, dst, dport
        oi, ri = self.plan.is_internal(f.oip), self.plan.is_internal(f.rip)
        if ri and not oi:
            f.direction, f.host = Direction.INBOUND, self.ip(f.rip)
        else:
            f.direction = Direction.INTERNAL if (oi and ri) else Direction.OUTBOUND
            f.host = self.ip(f.oip)
        if (proto == 17 and (f.rport in DNS_PORTS or f.oport in DNS_PORTS)) or (
            proto == 6 and 53 in (f.rport, f.oport)
        ):
            f.is_dns = True
        f.idle_ns = self.idle_of(f)
        self.flows[key] = f
        self.counters.flows += 1
        self._deadline(ts + f.idle_ns, 0, (key, idx))
        return f

    def resolved_name(self, f: Flow) -> str | None:
        """The name of the last DNS answer that resolved the responder for the originator (the
        answer's recipient), seen before the flow began: another client's lookup of a shared
        address (a CDN, a hosting provider) does not name this flow."""
        for idx, name in reversed(self.resolved.get((f.oip, f.rip), ())):
            if idx < f.first_idx:
                return name
        return None

    def _record(self, f: Flow, ts: int, final: bool) -> None:
        # A DNS flow's names are its queries (DnsQuery events); whichever name last resolved to
        # the DNS server's address says nothing about it (and changes from query to query).
        name = f.server_name or (None if f.app is AppProtocol.DNS else self.resolved_name(f))
        rec = (
            f.first_idx, f.host, Transport.TCP if f.proto == 6 else Transport.UDP,
            self.ip(f.oip), f.oport, self.ip(f.rip), f.rport, f.direction, f.app, f.start,
            f.last, f.b[0], f.b[1], f.p[0], f.p[1], final, name,
        )  # fmt: skip
        heapq.heappush(self.events, (ts, _R_FLOW, f.first_idx, f.rec_k, 0, rec))

    def finish(self, f: Flow) -> None:
        """Emit the final record of ``f`` (and a pending no-handshake verdict) and forget it."""
        if f.nohs is not None:
            self._nohs_verdict(f)
        self._record(f, f.last, True)
        if self.flows.get(f.key) is f:
            del self.flows[f.key]

    def roll(self, f: Flow, k: int) -> None:
        """Close interval ``f.rec_k`` with an interim record; the flow is now in interval ``k``."""
        self._record(f, f.start + (f.rec_k + 1) * self.active_ns, False)
        f.rec_k = k
        f.b[0] = f.b[1] = f.p[0] = f.p[1] = 0

    def anomaly(self, f: Flow, kind: AnomalyKind, ts: int, idx: int, detail: str) -> None:
        if kind in f.anoms:
            return
        f.anoms.add(kind)
        host = f.host if (
            self.plan.is_internal(f.oip) or self.plan.is_internal(f.rip)
        ) else None  # fmt: skip
        rec = (
            host, Transport.TCP if f.proto == 6 else Transport.UDP, self.ip(f.oip), f.oport,
            self.ip(f.rip), f.rport, kind, detail, f.app,
        )  # fmt: skip
        heapq.heappush(self.events, (ts, _R_ANOM, idx, _ANOM_ORDER[kind], 2, rec))

    def _nohs_verdict(self, f: Flow) -> None:
        assert f.nohs is not None
        ts, idx, side = f.nohs
        f.nohs = None
        who = "originator" if side == 0 else "responder"
        self.anomaly(
            f, AnomalyKind.NO_HANDSHAKE, ts, idx,
            f"TCP payload from the {who} on a connection whose handshake was never seen, "
            f"{(ts - (self.start or ts)) / NS:.1f} s into the capture, never acknowledged by "
            "the peer",
        )  # fmt: skip

    # -- per packet -----------------------------------------------------------------------

    def packet(self, pkt: Packet) -> None:
        idx, ts, proto, src, sport, dst, dport, flags, seq, ack, win, ttl, paylen, payload, opts = (
            pkt
        )
        self.counters.packets += 1
        if ts > self.now:
            self.now = ts
        # The canonical key (harness.ingest._bulk.flow_key), inlined: a call per packet costs.
        key = (
            (proto, src, sport, dst, dport)
            if src < dst or (src == dst and sport <= dport)
            else (proto, dst, dport, src, sport)
        )
        f = self.flows.get(key)
        if f is not None and (
            ts - f.last >= f.idle_ns or (proto == 6 and flags & (SYN | ACK) == SYN and f.closed)
        ):
            self.finish(f)
            f = None
        if f is None:
            f = self.new_flow(idx, ts, proto, src, sport, dst, dport, flags, key)
        d = 0 if (sport == f.oport and src == f.oip) else 1
        k = (ts - f.start) // self.active_ns
        if k > f.rec_k:
            self.roll(f, k)
        if ts > f.last:
            f.last = ts
        f.p[d] += 1
        if proto == 6:
            self._tcp(f, d, idx, ts, flags, seq, ack, win, ttl, paylen, payload, opts)
        else:
            f.b[d] += paylen
            f.ttl[d] = ttl
            if paylen and not f.paid[d]:
                self._first_payload(f, d, idx, ts, payload, len(payload) < paylen)
            if f.is_dns:
                self._udp_dns(f, d, idx, ts, src, sport, dst, dport, payload, paylen)
        if f.closed and f.idle_ns != self.closed_idle:
            f.idle_ns = self.closed_idle
            self._deadline(f.last + f.idle_ns, 0, (key, f.first_idx))

    def _tcp(
        self, f: Flow, d: int, idx: int, ts: int, flags: int, seq: int, ack: int, win: int,
        ttl: int, paylen: int, payload: bytes, opts: bytes,
    ) -> None:  # fmt: skip
        e = 1 - d
        if flags & RST:
            self._rst(f, d, idx, ts, seq, ttl)
            return
        if f.nohs is not None and d != f.nohs[2] and flags & ACK:
            f.nohs = None  # the peer acknowledged: an established connection after all
        f.ttl[d] = ttl
        if flags & SYN:
            f.ws[d] = _wscale(opts)
            if flags & ACK:
                f.synack = True
            f.hi[d] = (seq + 1) & M32
            f.maxwin[d] = max(f.maxwin[d], win)
        else:
            f.maxwin[d] = max(f.maxwin[d], win << f.scale(d))
            if flags & ACK:
                f.acked[d] = ack
        if flags & FIN:
            f.fin[d] = True
        if paylen:
            f.last_data[d] = max(f.last_data[d], ts)
            hi = f.hi[d]
            start = seq + (1 if flags & SYN else 0)
            end = (start + paylen) & M32
            if hi is None:
                f.hi[d] = end
                f.b[d] += paylen
            else:
                off = _signed(start - hi)
                limit = f.limit(e)
                if off > limit or off < -limit:
                    self.anomaly(
                        f, AnomalyKind.OUT_OF_WINDOW, ts, idx,
                        f"segment starts {off:+d} bytes from the sender's next sequence number; "
                        f"the receiver's window allows about {limit // 2}",
                    )  # fmt: skip
                else:
                    grow = _signed(end - hi)
                    if grow > 0:
                        f.hi[d] = end
                        f.b[d] += grow
            if not f.paid[d]:
                self._first_payload(f, d, idx, ts, payload, len(payload) < paylen)
            if f.is_dns:
                self._tcp_dns(f, d, idx, ts, start, payload, paylen)

    def _rst(self, f: Flow, d: int, idx: int, ts: int, seq: int, ttl: int) -> None:
        e = 1 - d
        why: str | None = None
        hi = f.hi[d]
        if hi is not None:
            expected = (hi + (1 if f.fin[d] else 0)) & M32
            off = _signed(seq - expected)
            acked = f.acked[e]
            behind_ok = acked is not None and off < 0 and _signed(seq - acked) >= 0
            if abs(off) > 1 and not behind_ok:
                why = f"sequence number {seq} is {off:+d} from the expected {expected}"
        last_data = max(f.last_data)
        if (
            why is None
            and f.ttl[d] >= 0
            and abs(ttl - f.ttl[d]) > 1
            and last_data
            and ts - last_data <= NS
        ):
            why = (
                f"TTL {ttl} differs from the {f.ttl[d]} of the same sender's other packets, "
                f"{(ts - last_data) / 1e6:.1f} ms after data"
            )
        if why is not None:
            self.anomaly(f, AnomalyKind.INJECTED_RESET, ts, idx, why)
        if f.nohs is not None and d != f.nohs[2]:
            self._nohs_verdict(f)
        f.rst = True

    def _first_payload(
        self, f: Flow, d: int, idx: int, ts: int, payload: bytes, truncated: bool = False
    ) -> None:
        first_of_flow = not f.paid[1 - d]
        f.paid[d] = True
        label, name = identify(payload, tcp=f.proto == 6, truncated=truncated)
        if first_of_flow:
            if (
                d == 1
                and f.proto == 6
                and f.handshake
                and (label in ("http", "tls") or f.rport in CLIENT_FIRST_PORTS)
            ):
                self.anomaly(
                    f, AnomalyKind.WRONG_DIRECTION_FIRST_DATA, ts, idx,
                    f"the server (port {f.rport}) sent the first data"
                    + (f", identified as {label}" if label else "")
                    + " on a protocol where the client speaks first",
                )  # fmt: skip
            if (
                f.proto == 6
                and not f.handshake
                and self.start is not None
                and f.start - self.start >= self.grace
            ):
                f.nohs = (ts, idx, d)
                self._deadline(ts + self.nohs_wait, 1, (f.key, f.first_idx))
        if label is None:
            return
        if d == 0 or f.label is None:
            f.label = label
            f.app = APP_OF_LABEL.get(label, AppProtocol.UNKNOWN)
        if name and d == 0:
            f.server_name = name
        if label == "dns":
            f.is_dns = True
        expected = PORT_PROTOCOLS.get((f.proto, f.rport))
        if expected is not None and label not in expected:
            self.anomaly(
                f, AnomalyKind.PORT_PROTOCOL_MISMATCH, ts, idx,
                f"{label} on port {f.rport}, which belongs to {'/'.join(sorted(expected))}",
            )  # fmt: skip
        elif label == "dns" and f.rport not in DNS_PORTS and f.oport not in DNS_PORTS:
            self.anomaly(
                f, AnomalyKind.PORT_PROTOCOL_MISMATCH, ts, idx,
                f"DNS messages on port {f.rport}, which is not a DNS port",
            )  # fmt: skip

    # -- DNS ------------------------------------------------------------------------------

    def _udp_dns(
        self, f: Flow, d: int, idx: int, ts: int, src: bytes, sport: int, dst: bytes,
        dport: int, payload: bytes, paylen: int,
    ) -> None:  # fmt: skip
        if not paylen:
            return
        if len(payload) < paylen:
            self.counters.dns_unparsed += 1  # cut by the snapshot length: cannot judge
            return
        msg = parse_dns(payload)
        if msg is None:
            self.counters.dns_unparsed += 1
            if 53 in (f.rport, f.oport):
                self.anomaly(
                    f, AnomalyKind.MALFORMED_DNS, ts, idx,
                    f"{paylen}-byte UDP payload on port 53 is not a DNS message",
                )  # fmt: skip
            return
        self._dns_message(f, 17, idx, ts, src, sport, dst, dport, msg, paylen)

    def _tcp_dns(
        self, f: Flow, d: int, idx: int, ts: int, seq: int, payload: bytes, paylen: int
    ) -> None:
        nxt = f.dns_next[d]
        buf = f.dns_buf[d]
        if nxt is not None and seq != nxt:
            if _signed(seq - nxt) < 0:
                return  # retransmission of bytes already taken
            buf.clear()  # a gap: resynchronise on this segment
        if len(payload) < paylen:
            buf.clear()
            f.dns_next[d] = None
            return
        f.dns_next[d] = (seq + paylen) & M32
        buf += payload
        if len(buf) > 70_000:
            buf.clear()
            return
        src, sport, dst, dport = (
            (f.oip, f.oport, f.rip, f.rport) if d == 0 else (f.rip, f.rport, f.oip, f.oport)
        )
        while len(buf) >= 2:
            n = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + n:
                return
            raw = bytes(buf[2 : 2 + n])
            del buf[: 2 + n]
            msg = parse_dns(raw)
            if msg is None:
                self.counters.dns_unparsed += 1
                if 53 in (f.rport, f.oport):
                    self.anomaly(
                        f, AnomalyKind.MALFORMED_DNS, ts, idx,
                        f"{n}-byte length-prefixed message on TCP port 53 is not DNS",
                    )  # fmt: skip
                continue
            self._dns_message(f, 6, idx, ts, src, sport, dst, dport, msg, n)

    def _dns_message(
        self, f: Flow, proto: int, idx: int, ts: int, src: bytes, sport: int, dst: bytes,
        dport: int, msg: DnsMessage, size: int,
    ) -> None:  # fmt: skip
        if msg.opcode != 0:
            return
        q = msg.questions[0] if msg.questions else None
        qname = q.name if q else ""
        qtype = qtype_name(q.qtype) if q else ""
        if not msg.is_response:
            qkey = (proto, msg.txid, src, sport, dst, dport, qname)
            if qkey not in self.pending_dns:
                self.pending_dns[qkey] = (
                    ts, idx, qname, qtype, size, self._dns_host(src, dst), self.ip(src),
                    self.ip(dst),
                )  # fmt: skip
                self._deadline(ts + self.dns_timeout, 2, qkey)
            return
        answers = tuple(self._answer(r) for r in msg.answers if r.rtype != 41)
        for r in msg.answers:
            if r.rtype in (1, 28) and qname:
                if len(self.resolved) > 65_536:
                    self.resolved.clear()
                seen = self.resolved.setdefault((dst, r.rdata), [])
                seen.append((idx, qname))
                if len(seen) > 4:
                    del seen[0]
        rcode = rcode_name(msg.rcode)
        qkey = (proto, msg.txid, dst, dport, src, sport, qname)
        pend = self.pending_dns.pop(qkey, None)
        if pend is None:
            rec = (ts, self._dns_host(dst, src), self.ip(dst), self.ip(src), qname, qtype, rcode,
                   answers, 0, size)  # fmt: skip
            self._dns_seq += 1
            heapq.heappush(self.events, (ts, _R_DNS, idx, self._dns_seq, 1, rec))
            return
        qts, qidx, qname, qtype, qsize, host, client, server = pend
        rec = (qts, host, client, server, qname, qtype, rcode, answers, qsize, size)
        self._dns_seq += 1
        heapq.heappush(self.events, (qts, _R_DNS, qidx, self._dns_seq, 1, rec))

    def _dns_host(self, client: bytes, server: bytes) -> str:
        if self.plan.is_internal(client) or not self.plan.is_internal(server):
            return self.ip(client)
        return self.ip(server)

    @staticmethod
    def _answer(record: Any) -> str:
        value = record_value(record)
        if isinstance(value, str):
            return value
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int):
            return f"{value[0]} {value[1]}"
        if isinstance(value, tuple):
            return "".join(
                v.decode("utf-8", "backslashreplace") for v in value if isinstance(v, bytes)
            )
        return value.hex()

    def _dns_timeout(self, qkey: tuple[Any, ...]) -> None:
        pend = self.pending_dns.pop(qkey, None)
        if pend is None:
            return
        qts, qidx, qname, qtype, qsize, host, client, server = pend
        rec = (qts, host, client, server, qname, qtype, "NOANSWER", (), qsize, 0)
        self._dns_seq += 1
        heapq.heappush(self.events, (qts, _R_DNS, qidx, self._dns_seq, 1, rec))

    # -- time -----------------------------------------------------------------------------

    def sweep(self, now: int) -> None:
        """Act on every deadline at or before ``now``: idle flows, DNS timeouts, verdicts."""
        dl = self.deadlines
        while dl and dl[0][0] <= now:
            _, _, kind, ref = heapq.heappop(dl)
            if kind == 2:
                self._dns_timeout(ref)
                continue
            key, first_idx = ref
            f = self.flows.get(key)
            if f is None or f.first_idx != first_idx:
                continue
            if kind == 1:
                if f.nohs is not None and f.nohs[0] + self.nohs_wait <= now:
                    self._nohs_verdict(f)
                continue
            due = f.last + f.idle_ns
            if due <= now:
                self.finish(f)
            else:
                self._deadline(due, 0, ref)

    def drain(self, now: int) -> list[Event]:
        """Sweep to ``now`` and release every event no later packet can precede."""
        self.sweep(now)
        return self._release(now - self.hold)

    def close(self) -> list[Event]:
        """End of capture: finish every flow, time out every query, release everything."""
        for f in sorted(self.flows.values(), key=lambda fl: fl.first_idx):
            self.finish(f)
        for qkey in list(self.pending_dns):
            self._dns_timeout(qkey)
        return self._release(None)

    def _release(self, upto: int | None) -> list[Event]:
        out: list[Event] = []
        ev = self.events
        n = self.counters.released
        while ev and (upto is None or ev[0][0] <= upto):
            ts, _, _, _, kind, rec = heapq.heappop(ev)
            eid = f"pcap:{n}"
            n += 1
            if kind == 0:
                (first_idx, host, transport, sip, sport, dip, dport, direction, app, start, end,
                 bo, bi, po, pi, final, name) = rec  # fmt: skip
                out.append(
                    NetworkFlow(
                        event_id=eid, ts_ns=ts, flow_id=f"pcap-flow:{first_idx}", host=host,
                        process_guid=None, transport=transport, src_ip=sip, src_port=sport,
                        dst_ip=dip, dst_port=dport, direction=direction, app_protocol=app,
                        start_ns=start, end_ns=end, bytes_out=bo, bytes_in=bi, packets_out=po,
                        packets_in=pi, is_final=final, server_name=name,
                    )
                )  # fmt: skip
            elif kind == 1:
                _qts, host, client, server, qname, qtype, rcode, answers, qsize, rsize = rec
                out.append(
                    DnsQuery(
                        event_id=eid, ts_ns=ts, host=host, process_guid=None, src_ip=client,
                        resolver_ip=server, query=qname, qtype=qtype, rcode=rcode,
                        answers=answers, query_bytes=qsize, response_bytes=rsize,
                    )
                )  # fmt: skip
            else:
                host, transport, sip, sport, dip, dport, akind, detail, app = rec
                out.append(
                    ProtocolAnomaly(
                        event_id=eid, ts_ns=ts, host=host, transport=transport, src_ip=sip,
                        src_port=sport, dst_ip=dip, dst_port=dport, anomaly=akind,
                        detail=detail, app_protocol=app,
                    )
                )  # fmt: skip
            kinds = self.counters.kinds
            name_k = out[-1].kind.value
            kinds[name_k] = kinds.get(name_k, 0) + 1
        self.counters.released = n
        return out
