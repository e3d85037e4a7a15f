"""Render flows as realistic packet sequences for a network-only (pcap) view of a scenario.

A :class:`FlowSpec` says what a flow exchanged; :func:`render_flow` turns it into timestamped
Ethernet frames:

* TCP: three-way handshake (SYN with MSS and SACK-permitted options), then the data as
  request/response exchanges, each message cut into MSS-sized segments (1460 bytes over IPv4,
  1440 over IPv6) with PSH on a message's last segment; the receiver ACKs every second segment
  and the end of a message unless its own reply carries the ACK; then a FIN/ACK teardown.
  Sequence and acknowledgement numbers stay consistent throughout.
* UDP: one datagram per message (at most an unfragmented Ethernet payload each).

The invariant callers rely on: the transport payload bytes of the originator's packets sum to
``bytes_out`` and the responder's to ``bytes_in``, exactly (flow bytes are payload bytes, like
Zeek's ``orig_bytes``/``resp_bytes``).

Message order: the explicit messages come first, alternating per index (``messages_out[0]``,
``messages_in[0]``, ``messages_out[1]`` …), and count toward the byte totals; then the rest of
each side's bytes follows as inert filler (see :mod:`harness.pcap.packets`) over ``exchanges``
request/response rounds. A message that is a header followed by a body (HTTP) is one explicit
message: ``head + filler(len(head), body_len)``.

Timestamps are spread evenly over ``[start_ns, end_ns]``: the first packet at ``start_ns``, the
last at ``end_ns`` (a lone packet at ``start_ns``). A UDP flow without a byte either way is one
empty datagram from the originator, since a flow record implies a packet was seen; likewise a TCP
interval record with no data, handshake or teardown is one bare ACK.

Everything is a function of the inputs: initial sequence numbers, IP ids and IPv6 flow labels
come from a hash of the flow, unless a ``random.Random`` is passed to draw them (and jittered
timestamps) from.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import NamedTuple

from harness.errors import InvalidParameterError
from harness.events import NetworkFlow, Transport
from harness.pcap.dnswire import (
    DnsRecord,
    RecordValue,
    build_query,
    build_response,
    make_record,
)
from harness.pcap.packets import (
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_SYN,
    PacketPath,
    filler_with_sum,
    ones_complement_sum,
    tcp_frame_fast,
    udp_frame,
)
from harness.pcap.writer import PcapWriter

__all__ = [
    "FlowSpec",
    "PlannedPacket",
    "RenderedFlow",
    "dns_flow",
    "merge_flows",
    "plan_flow",
    "render_dns",
    "render_flow",
    "write_flows",
]

#: Largest TCP payload per segment: a 1500-byte MTU less the IP and TCP headers.
MSS_V4 = 1460
MSS_V6 = 1440
#: Largest UDP payload that fits one unfragmented 1500-byte-MTU packet.
UDP_MAX_V4 = 1472
UDP_MAX_V6 = 1452
#: Receive windows: a common client SYN value, and the unscaled maximum for the server.
WINDOW_ORIGINATOR = 64_240
WINDOW_RESPONDER = 65_535
#: The capture is taken at the originator: its packets leave with the stack default of 64,
#: the responder's arrive some hops away.
TTL_ORIGINATOR = 64
TTL_RESPONDER = 54
#: A DNS answer's usual time after its query on a healthy network.
DEFAULT_DNS_RTT_NS = 12_000_000

_U32 = 0xFFFFFFFF


def _syn_options(mss: int) -> bytes:
    # MSS (kind 2), then NOP NOP SACK-permitted (kind 4): what a minimal modern SYN carries.
    return b"\x02\x04" + mss.to_bytes(2, "big") + b"\x01\x01\x04\x02"


class PlannedPacket(NamedTuple):
    """Every header field that varies per packet of a flow.

    A named tuple rather than a dataclass: one is made per packet on the hot path, where a frozen
    dataclass's construction would cost several times more.
    """

    ts_ns: int
    outbound: bool
    payload: bytes
    payload_sum: int
    ip_id: int
    ttl: int
    flow_label: int
    # TCP only; zero/empty for UDP.
    flags: int = 0
    seq: int = 0
    ack: int = 0
    window: int = 0
    options: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowSpec:
    """What one flow exchanged, as a scenario generator knows it.

    ``messages_out``/``messages_in`` are explicit payloads sent first, alternating originator
    then responder per exchange; they count toward ``bytes_out``/``bytes_in``. The remaining
    bytes of each side are split over ``exchanges`` request/response rounds of filler.
    ``handshake``/``teardown`` (TCP) can be switched off to render one interval record of a
    longer flow.
    """

    transport: Transport
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    start_ns: int
    end_ns: int
    bytes_out: int
    bytes_in: int
    messages_out: tuple[bytes, ...] = ()
    messages_in: tuple[bytes, ...] = ()
    exchanges: int = 1
    handshake: bool = True
    teardown: bool = True

    def __post_init__(self) -> None:
        if self.transport not in (Transport.TCP, Transport.UDP):
            raise InvalidParameterError("transport", self.transport, "'tcp' or 'udp'")
        for name, port in (("src_port", self.src_port), ("dst_port", self.dst_port)):
            if not 0 <= port <= 0xFFFF:
                raise InvalidParameterError(name, port, "a port number in 0..65535")
        if not 0 <= self.start_ns <= self.end_ns:
            raise InvalidParameterError(
                "flow time span", (self.start_ns, self.end_ns), "0 <= start_ns <= end_ns"
            )
        if self.exchanges < 1:
            raise InvalidParameterError("exchanges", self.exchanges, "at least 1")
        for side, total, messages in (
            ("bytes_out", self.bytes_out, self.messages_out),
            ("bytes_in", self.bytes_in, self.messages_in),
        ):
            explicit = sum(len(m) for m in messages)
            if total < explicit:
                raise InvalidParameterError(
                    side, total, f"at least the {explicit} bytes of the explicit messages"
                )
        if self.transport == Transport.UDP and (not self.handshake or not self.teardown):
            raise InvalidParameterError("handshake/teardown", False, "True for UDP flows")
        # Resolve addresses now so a bad or mixed-family pair fails at construction.
        PacketPath.between(self.src_ip, self.dst_ip)

    @classmethod
    def from_network_flow(
        cls,
        flow: NetworkFlow,
        *,
        messages_out: tuple[bytes, ...] = (),
        messages_in: tuple[bytes, ...] = (),
        exchanges: int = 1,
        handshake: bool = True,
    ) -> FlowSpec:
        """The spec of one :class:`~harness.events.NetworkFlow` record.

        A record that is not final gets no teardown; pass ``handshake=False`` for records after
        the first of a flow.
        """
        tcp = flow.transport == Transport.TCP
        return cls(
            transport=flow.transport,
            src_ip=flow.src_ip,
            src_port=flow.src_port,
            dst_ip=flow.dst_ip,
            dst_port=flow.dst_port,
            start_ns=flow.start_ns,
            end_ns=flow.end_ns,
            bytes_out=flow.bytes_out,
            bytes_in=flow.bytes_in,
            messages_out=messages_out,
            messages_in=messages_in,
            exchanges=exchanges,
            handshake=handshake if tcp else True,
            teardown=flow.is_final if tcp else True,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedFlow:
    """The frames of one flow in time order, with per-direction packet and payload totals."""

    packets: tuple[tuple[int, bytes], ...]
    packets_out: int
    packets_in: int
    bytes_out: int
    bytes_in: int


# -- planning -------------------------------------------------------------------------------


def _flow_seed(spec: FlowSpec) -> bytes:
    key = (
        f"{spec.transport}|{spec.src_ip}|{spec.src_port}|{spec.dst_ip}|{spec.dst_port}|"
        f"{spec.start_ns}"
    ).encode()
    return hashlib.blake2b(key, digest_size=16).digest()


def _split(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal non-negative sizes, larger ones first."""
    base, extra = divmod(total, parts)
    return [base + 1 if i < extra else base for i in range(parts)]


#: A message: (outbound, explicit payload or None for filler, length).
_Message = tuple[bool, bytes | None, int]


def _messages(spec: FlowSpec) -> list[_Message]:
    out: list[_Message] = []
    explicit = max(len(spec.messages_out), len(spec.messages_in))
    for i in range(explicit):
        if i < len(spec.messages_out):
            out.append((True, spec.messages_out[i], len(spec.messages_out[i])))
        if i < len(spec.messages_in):
            out.append((False, spec.messages_in[i], len(spec.messages_in[i])))
    rest_out = spec.bytes_out - sum(len(m) for m in spec.messages_out)
    rest_in = spec.bytes_in - sum(len(m) for m in spec.messages_in)
    for n_out, n_in in zip(
        _split(rest_out, spec.exchanges), _split(rest_in, spec.exchanges), strict=True
    ):
        if n_out:
            out.append((True, None, n_out))
        if n_in:
            out.append((False, None, n_in))
    return out


def _timestamps(spec: FlowSpec, count: int, rng: random.Random | None) -> list[int]:
    start, span = spec.start_ns, spec.end_ns - spec.start_ns
    if count == 1:
        return [start]
    if rng is None:
        last = count - 1
        return [start + span * i // last for i in range(count)]
    inner = sorted(start + rng.randint(0, span) for _ in range(count - 2))
    return [start, *inner, spec.end_ns]


class _Side:
    """Per-direction counters while planning: stream offset, IP id, TTL, flow label."""

    __slots__ = ("flow_label", "ip_id", "offset", "seq", "ttl", "window")

    def __init__(self, *, seq: int, ip_id: int, ttl: int, flow_label: int, window: int) -> None:
        self.seq = seq
        self.ip_id = ip_id
        self.ttl = ttl
        self.flow_label = flow_label
        self.window = window
        self.offset = 0  # filler stream position


def _sides(spec: FlowSpec, rng: random.Random | None) -> tuple[_Side, _Side]:
    if rng is None:
        seed = _flow_seed(spec)
        isn_o, isn_r = int.from_bytes(seed[0:4], "big"), int.from_bytes(seed[4:8], "big")
        id_o, id_r = int.from_bytes(seed[8:10], "big"), int.from_bytes(seed[10:12], "big")
        fl_o = int.from_bytes(seed[12:14], "big") << 4 | seed[14] >> 4
        fl_r = int.from_bytes(seed[13:15], "big") << 4 | seed[15] >> 4
    else:
        isn_o, isn_r = rng.getrandbits(32), rng.getrandbits(32)
        id_o, id_r = rng.getrandbits(16), rng.getrandbits(16)
        fl_o, fl_r = rng.getrandbits(20), rng.getrandbits(20)
    return (
        _Side(seq=isn_o, ip_id=id_o, ttl=TTL_ORIGINATOR, flow_label=fl_o, window=WINDOW_ORIGINATOR),
        _Side(seq=isn_r, ip_id=id_r, ttl=TTL_RESPONDER, flow_label=fl_r, window=WINDOW_RESPONDER),
    )


# A planned packet before its timestamp is known: PlannedPacket's fields from payload on.
_Pending = tuple[bool, bytes, int, int, int, int, int, int, int, int, bytes]


def _emit(
    pending: list[_Pending],
    side: _Side,
    outbound: bool,
    payload: bytes,
    payload_sum: int,
    flags: int = 0,
    ack: int = 0,
    options: bytes = b"",
) -> None:
    pending.append(
        (
            outbound, payload, payload_sum, side.ip_id, side.ttl, side.flow_label,
            flags, side.seq, ack, side.window, options,
        )
    )  # fmt: skip
    side.ip_id = (side.ip_id + 1) & 0xFFFF


def _chunks(side: _Side, data: bytes | None, length: int, size: int) -> Iterator[tuple[bytes, int]]:
    """A message's payload cut into pieces of at most ``size``, each with its checksum sum."""
    for start in range(0, length, size):
        n = min(size, length - start)
        if data is None:
            yield filler_with_sum(side.offset, n)
        else:
            piece = data[start : start + n]
            yield piece, ones_complement_sum(piece)
        side.offset += n


def _plan_tcp(spec: FlowSpec, orig: _Side, resp: _Side, v6: bool) -> list[_Pending]:
    mss = MSS_V6 if v6 else MSS_V4
    pending: list[_Pending] = []
    if spec.handshake:
        _emit(pending, orig, True, b"", 0, TCP_SYN, 0, _syn_options(mss))
        orig.seq = (orig.seq + 1) & _U32
        _emit(pending, resp, False, b"", 0, TCP_SYN | TCP_ACK, orig.seq, _syn_options(mss))
        resp.seq = (resp.seq + 1) & _U32
        _emit(pending, orig, True, b"", 0, TCP_ACK, resp.seq)
    messages = _messages(spec)
    for index, (outbound, data, length) in enumerate(messages):
        sender, receiver = (orig, resp) if outbound else (resp, orig)
        unacked = 0
        remaining = length
        for piece, piece_sum in _chunks(sender, data, length, mss):
            remaining -= len(piece)
            flags = TCP_ACK | (TCP_PSH if remaining == 0 else 0)
            _emit(pending, sender, outbound, piece, piece_sum, flags, receiver.seq)
            sender.seq = (sender.seq + len(piece)) & _U32
            unacked += 1
            if unacked == 2 and remaining:
                # Delayed ACK (RFC 1122/5681): at least every second full-sized segment.
                _emit(pending, receiver, not outbound, b"", 0, TCP_ACK, sender.seq)
                unacked = 0
        replies = index + 1 < len(messages) and messages[index + 1][0] != outbound
        if unacked and not replies:
            # Nothing to piggyback the ACK on: the receiver sends a pure one.
            _emit(pending, receiver, not outbound, b"", 0, TCP_ACK, sender.seq)
    if spec.teardown:
        _emit(pending, orig, True, b"", 0, TCP_FIN | TCP_ACK, resp.seq)
        orig.seq = (orig.seq + 1) & _U32
        _emit(pending, resp, False, b"", 0, TCP_FIN | TCP_ACK, orig.seq)
        resp.seq = (resp.seq + 1) & _U32
        _emit(pending, orig, True, b"", 0, TCP_ACK, resp.seq)
    if not pending:
        # An idle interval record of a longer flow: one bare ACK shows the flow was alive.
        _emit(pending, orig, True, b"", 0, TCP_ACK, resp.seq)
    return pending


def _plan_udp(spec: FlowSpec, orig: _Side, resp: _Side, v6: bool) -> list[_Pending]:
    limit = UDP_MAX_V6 if v6 else UDP_MAX_V4
    orig.seq = resp.seq = 0  # no sequence numbers in UDP: planned packets carry zero
    pending: list[_Pending] = []
    for outbound, data, length in _messages(spec):
        side = orig if outbound else resp
        if data is not None:
            # An explicit message is one datagram whatever its size, as an application sends it.
            _emit(pending, side, outbound, data, ones_complement_sum(data))
            side.offset += length
            continue
        for piece, piece_sum in _chunks(side, None, length, limit):
            _emit(pending, side, outbound, piece, piece_sum)
    if not pending:
        # A flow record means at least one packet was seen: an empty datagram, then.
        _emit(pending, orig, True, b"", 0)
    return pending


def _plan(spec: FlowSpec, rng: random.Random | None) -> tuple[list[int], list[_Pending]]:
    orig, resp = _sides(spec, rng)
    v6 = PacketPath.between(spec.src_ip, spec.dst_ip).version == 6
    if spec.transport == Transport.TCP:
        pending = _plan_tcp(spec, orig, resp, v6)
    else:
        pending = _plan_udp(spec, orig, resp, v6)
    return (_timestamps(spec, len(pending), rng) if pending else []), pending


def plan_flow(spec: FlowSpec, *, rng: random.Random | None = None) -> list[PlannedPacket]:
    """The packets of ``spec`` as header fields, in order, without building frames."""
    times, pending = _plan(spec, rng)
    return [PlannedPacket(ts, *fields) for ts, fields in zip(times, pending, strict=True)]


# -- rendering ------------------------------------------------------------------------------


def render_flow(spec: FlowSpec, *, rng: random.Random | None = None) -> RenderedFlow:
    """Plan ``spec`` and build its Ethernet frames."""
    times, pending = _plan(spec, rng)
    fwd = PacketPath.between(spec.src_ip, spec.dst_ip)
    rev = fwd.reverse()
    sport, dport = spec.src_port, spec.dst_port
    frames: list[tuple[int, bytes]] = []
    append = frames.append
    packets_out = bytes_out = bytes_in = 0
    tcp = spec.transport == Transport.TCP
    # The loop unpacks the pending tuples directly: building PlannedPackets only to read them
    # back would cost more than the frames themselves.
    for ts, (outbound, payload, psum, ip_id, ttl, label, flags, seq, ack, window, options) in zip(
        times, pending, strict=True
    ):
        if outbound:
            packets_out += 1
            bytes_out += len(payload)
            path, a, b = fwd, sport, dport
        else:
            bytes_in += len(payload)
            path, a, b = rev, dport, sport
        if tcp:
            frame = tcp_frame_fast(
                path, a, b, seq, ack, flags, payload, psum, window, options, ip_id, ttl, label
            )
        else:
            frame = udp_frame(
                path, a, b, payload, ip_id=ip_id, ttl=ttl, flow_label=label, payload_sum=psum
            )
        append((ts, frame))
    return RenderedFlow(
        packets=tuple(frames),
        packets_out=packets_out,
        packets_in=len(frames) - packets_out,
        bytes_out=bytes_out,
        bytes_in=bytes_in,
    )


def dns_flow(
    *,
    src_ip: str,
    src_port: int,
    resolver_ip: str,
    ts_ns: int,
    qname: str,
    qtype: str | int = "A",
    answers: Sequence[DnsRecord | RecordValue] = (),
    rcode: str | int = "NOERROR",
    txid: int | None = None,
    rtt_ns: int = DEFAULT_DNS_RTT_NS,
    resolver_port: int = 53,
    answer_ttl: int = 300,
    edns_payload: int | None = None,
) -> FlowSpec:
    """The UDP flow of one DNS query and its response.

    ``answers`` are records, or values for records of ``qtype`` owned by ``qname`` (see
    :func:`~harness.pcap.dnswire.make_record`). The transaction id defaults to one derived from
    the query, so the result stays deterministic.
    """
    if txid is None:
        key = f"{src_ip}|{src_port}|{resolver_ip}|{ts_ns}|{qname}|{qtype}".encode()
        txid = int.from_bytes(hashlib.blake2b(key, digest_size=2).digest(), "big")
    query = build_query(qname, qtype, txid=txid, edns_payload=edns_payload)
    records = [
        a if isinstance(a, DnsRecord) else make_record(qname, qtype, a, ttl=answer_ttl)
        for a in answers
    ]
    response = build_response(query, records, rcode=rcode)
    return FlowSpec(
        transport=Transport.UDP,
        src_ip=src_ip,
        src_port=src_port,
        dst_ip=resolver_ip,
        dst_port=resolver_port,
        start_ns=ts_ns,
        end_ns=ts_ns + rtt_ns,
        bytes_out=len(query),
        bytes_in=len(response),
        messages_out=(query,),
        messages_in=(response,),
    )


def render_dns(
    *,
    src_ip: str,
    src_port: int,
    resolver_ip: str,
    ts_ns: int,
    qname: str,
    qtype: str | int = "A",
    answers: Sequence[DnsRecord | RecordValue] = (),
    rcode: str | int = "NOERROR",
    txid: int | None = None,
    rtt_ns: int = DEFAULT_DNS_RTT_NS,
    resolver_port: int = 53,
    answer_ttl: int = 300,
    edns_payload: int | None = None,
) -> RenderedFlow:
    """Render a DNS query/response pair over UDP as one flow (see :func:`dns_flow`)."""
    return render_flow(
        dns_flow(
            src_ip=src_ip, src_port=src_port, resolver_ip=resolver_ip, ts_ns=ts_ns,
            qname=qname, qtype=qtype, answers=answers, rcode=rcode, txid=txid, rtt_ns=rtt_ns,
            resolver_port=resolver_port, answer_ttl=answer_ttl, edns_payload=edns_payload,
        )
    )  # fmt: skip


def merge_flows(flows: Iterable[RenderedFlow]) -> list[tuple[int, bytes]]:
    """All packets of ``flows`` in timestamp order; ties keep the order the flows came in.

    One stable sort of the concatenation: each flow is already in order, and C's timsort
    merges such runs far faster than :func:`heapq.merge` does in Python.
    """
    return sorted(chain.from_iterable(f.packets for f in flows), key=itemgetter(0))


def write_flows(writer: PcapWriter, flows: Iterable[RenderedFlow]) -> int:
    """Write ``flows`` interleaved in time order; returns the number of packets written."""
    before = writer.packets_written
    writer.write_many(merge_flows(flows))
    return writer.packets_written - before
