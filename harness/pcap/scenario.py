"""Render the telemetry of a scenario as a packet capture (the ``network-only`` view).

:func:`write_scenario_pcap` turns events into a classic pcap, streaming, in time order:

* :class:`~harness.events.NetworkFlow` interim records are stitched by ``flow_id`` into one flow
  (:func:`stitch_flows`) carrying the records' summed bytes; each flow is rendered as a TCP
  connection (handshake, MSS segments, delayed ACKs, teardown when its last record is final) or
  as UDP datagrams, with the payload of its application protocol, whatever its port
  (:mod:`harness.pcap.payloads`): a UDP/53 flow carries the query and response of the
  :class:`~harness.events.DnsQuery` it belongs to, so a tunnel's payload is in the capture.
* :class:`~harness.events.ProtocolAnomaly` events become the packets that cause them, crafted
  with scapy (:mod:`harness.pcap.anomalies`); a port/protocol mismatch is the flow itself.

How the capture is taken is a :class:`CaptureOptions`. The default, :data:`COMPACT`, is what a
capture on a host with segmentation/receive offload and ``tcpdump -s 384`` shows: TCP segments
of up to 65,000 bytes, bulk UDP (media, filler) in datagrams of up to 65,000 bytes after the
first 16 real-size ones, every frame stored cut to 384 bytes with its real length in the record
header. Headers always describe the whole packet, checksums included (computed from cached
filler sums, never from built payloads), so a default office's four days of ~140 GB fit in
under 3 million records and about a gigabyte, 86% of it Teams media. :data:`FULL` is the
capture on the wire: 1500-byte-MTU packets, stored whole.

The invariant: per flow, the TCP/UDP payload bytes of the originator's packets sum to the
flow's ``bytes_out`` and the responder's to its ``bytes_in``, exactly, as the headers (IP
lengths, sequence numbers) say, whatever the snapshot length. Packet counts are the
rendering's own (the events' counts are a sensor's estimate). Bulk frames come from the fast
builders of :mod:`harness.pcap.packets`: filler runs are sliced from a cache with their
checksums, so only segments that start an application record are summed byte by byte.

Everything is a function of the events: sequence numbers, IP ids and payload seeds come from
hashes of the flow, so the same events always give the same file.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from harness.errors import InvalidParameterError
from harness.events import (
    AnomalyKind,
    AppProtocol,
    DnsQuery,
    Event,
    NetworkFlow,
    ProtocolAnomaly,
    Transport,
)
from harness.pcap.anomalies import anomaly_frames
from harness.pcap.packets import (
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_SYN,
    PacketPath,
    filler,
    filler_sum,
    filler_with_sum,
    ones_complement_sum,
    tcp_header_fast,
    udp_header,
)
from harness.pcap.payloads import (
    Message,
    Part,
    dns_exchange,
    dns_stream,
    http_exchange,
    part_length,
    rtp_datagrams,
    smb_exchange,
    tls_exchange,
)
from harness.pcap.writer import DEFAULT_SNAPLEN, PcapReader, PcapWriter

__all__ = [
    "COMPACT",
    "FULL",
    "CaptureOptions",
    "Conversation",
    "PcapSummary",
    "Record",
    "StitchedFlow",
    "estimate_capture_bytes",
    "flow_messages",
    "pcap_conversations",
    "render_stitched",
    "stitch_flows",
    "write_scenario_pcap",
]

MSS_V4, MSS_V6 = 1460, 1440
UDP_MAX_V4, UDP_MAX_V6 = 1472, 1452
_WINDOW_ORIG, _WINDOW_RESP = 64_240, 65_535
#: Window scale of a compact capture's handshakes, and the window field after them (2 MiB).
_WSCALE = 7
_WINDOW_SCALED = 16_384
_TTL_ORIG, _TTL_RESP = 64, 54
_U32 = 0xFFFFFFFF
#: Bulk is exchanged in at most this many request/response rounds per flow.
_MAX_ROUNDS = 64
#: Largest TCP payload in an IPv4 packet without options (65,535 - 20 - 20).
MAX_SEGMENT_LIMIT = 65_495
#: Largest UDP payload in an IPv4 packet (65,535 - 20 - 8).
MAX_UDP_LIMIT = 65_507
#: Real-size datagrams a bulk UDP message keeps before a compact capture coalesces the rest.
_UDP_HEAD_DATAGRAMS = 16
#: Ethernet + IP + UDP, and Ethernet + IP + TCP without options, per IP version.
_UDP_HEADERS = {4: 42, 6: 62}
_TCP_HEADERS = {4: 54, 6: 74}
#: Records larger than this are never cut when no snapshot length is set.
_NO_CUT = 1 << 30


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureOptions:
    """How the capture is taken.

    The default is a compact capture, what ``tcpdump -s 384`` shows on a host with TCP
    segmentation and receive offload: TCP segments of up to ``max_segment`` payload bytes (the
    handshake still advertises the wire MSS, plus window scaling), bulk UDP media and filler as
    datagrams of up to ``udp_bulk_datagram`` bytes after the first few real-size ones, and
    every frame stored cut to ``snaplen`` bytes with its real length in the record header.
    Headers are those of the whole packet (lengths, sequence numbers, checksums over the full
    payload), so a compact capture keeps every flow's byte counts. :data:`FULL` is the capture
    on the wire: MTU-sized segments and datagrams, whole frames.
    """

    #: Largest TCP payload per segment; ``None``: the MSS of a 1500-byte MTU (1460/1440).
    max_segment: int | None = 65_000
    #: Bytes stored per frame; ``None`` or 0: whole frames.
    #: 384 keeps the heads whole: DNS queries (tunnels' included, up to about 345 bytes with
    #: IPv6), TLS ClientHellos (up to about 360), HTTP heads, SMB NEGOTIATE.
    snaplen: int | None = 384
    #: Largest bulk UDP datagram payload; ``None``: every datagram at its real size.
    udp_bulk_datagram: int | None = 65_000

    def __post_init__(self) -> None:
        if self.max_segment is not None and not 1 <= self.max_segment <= MAX_SEGMENT_LIMIT:
            raise InvalidParameterError(
                "max_segment", self.max_segment, f"1..{MAX_SEGMENT_LIMIT} bytes, or None"
            )
        if self.snaplen is not None and not 0 <= self.snaplen <= DEFAULT_SNAPLEN:
            raise InvalidParameterError(
                "snaplen", self.snaplen, f"0..{DEFAULT_SNAPLEN} bytes (0 or None: whole frames)"
            )
        if self.udp_bulk_datagram is not None and not (
            UDP_MAX_V4 <= self.udp_bulk_datagram <= MAX_UDP_LIMIT
        ):
            raise InvalidParameterError(
                "udp_bulk_datagram",
                self.udp_bulk_datagram,
                f"{UDP_MAX_V4}..{MAX_UDP_LIMIT} bytes, or None",
            )

    @property
    def file_snaplen(self) -> int:
        """The snapshot length written in the pcap file header."""
        return self.snaplen or DEFAULT_SNAPLEN

    @property
    def offload(self) -> bool:
        """Whether TCP segments exceed the wire MSS (the handshake then scales windows)."""
        return self.max_segment is not None

    def segment_size(self, version: int) -> int:
        if self.max_segment is not None:
            return self.max_segment
        return MSS_V6 if version == 6 else MSS_V4

    def keep(self, headers: int) -> int:
        """Payload bytes stored of a packet whose headers take ``headers`` bytes."""
        return max(0, self.snaplen - headers) if self.snaplen else _NO_CUT


#: A compact capture (the default for scenarios): offloaded segments, 384-byte snapshots.
COMPACT = CaptureOptions()
#: The capture on the wire: 1500-byte-MTU packets, stored whole.
FULL = CaptureOptions(max_segment=None, snaplen=None, udp_bulk_datagram=None)


def _syn_options(mss: int, wscale: int | None = None) -> bytes:
    # MSS, NOP NOP SACK-permitted, and with offload NOP window-scale: a modern SYN's options.
    options = b"\x02\x04" + mss.to_bytes(2, "big") + b"\x01\x01\x04\x02"
    if wscale is not None:
        options += b"\x01\x03\x03" + bytes((wscale,))
    return options


# -- stitching ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StitchedFlow:
    """All records of one ``flow_id``: the whole flow as a packet capture shows it."""

    flow_id: str
    transport: Transport
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    app_protocol: AppProtocol
    start_ns: int
    end_ns: int
    bytes_out: int
    bytes_in: int
    packets_out: int
    packets_in: int
    records: int
    is_final: bool
    server_name: str | None


def stitch_flows(events: Iterable[Event]) -> list[StitchedFlow]:
    """One :class:`StitchedFlow` per ``flow_id``, ordered by start time then first record."""
    groups: dict[str, list[NetworkFlow]] = {}
    for e in events:
        if isinstance(e, NetworkFlow):
            groups.setdefault(e.flow_id, []).append(e)
    flows: list[StitchedFlow] = []
    for flow_id, records in groups.items():
        first, last = records[0], max(records, key=lambda r: r.ts_ns)
        flows.append(
            StitchedFlow(
                flow_id=flow_id,
                transport=first.transport,
                src_ip=first.src_ip,
                src_port=first.src_port,
                dst_ip=first.dst_ip,
                dst_port=first.dst_port,
                app_protocol=first.app_protocol,
                start_ns=min(r.start_ns for r in records),
                end_ns=max(r.end_ns for r in records) if last.is_final else last.ts_ns,
                bytes_out=sum(r.bytes_out for r in records),
                bytes_in=sum(r.bytes_in for r in records),
                packets_out=sum(r.packets_out for r in records),
                packets_in=sum(r.packets_in for r in records),
                records=len(records),
                is_final=last.is_final,
                server_name=next((r.server_name for r in records if r.server_name), None),
            )
        )
    flows.sort(key=lambda f: f.start_ns)  # stable: ties keep first-record order
    return flows


# -- payloads -------------------------------------------------------------------------------


def _txid(flow: StitchedFlow) -> int:
    key = f"{flow.src_ip}|{flow.src_port}|{flow.dst_ip}|{flow.start_ns}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=2).digest(), "big")


def _filler_messages(flow: StitchedFlow, rounds: int) -> list[Message]:
    msgs: list[Message] = []
    out, inn = flow.bytes_out, flow.bytes_in
    for i in range(rounds):
        o = out // rounds + (1 if i < out % rounds else 0)
        n = inn // rounds + (1 if i < inn % rounds else 0)
        if o:
            msgs.append((True, (o,)))
        if n:
            msgs.append((False, (n,)))
    return msgs


def flow_messages(
    flow: StitchedFlow, dns: DnsQuery | None = None, *, options: CaptureOptions = COMPACT
) -> tuple[list[Message], bool]:
    """The application messages of ``flow`` and whether they are well-formed for its protocol
    (``False`` when a budget was too small for any head, or a DNS size had to be padded).
    ``options`` decides the size of bulk RTP datagrams."""
    rounds = max(1, min(flow.records, _MAX_ROUNDS))
    key = (flow.flow_id, flow.src_ip, flow.src_port, flow.start_ns)
    app, out, inn = flow.app_protocol, flow.bytes_out, flow.bytes_in
    if app is AppProtocol.DNS and flow.transport is Transport.UDP:
        if dns is not None:
            query, response = dns_exchange(
                qname=dns.query,
                qtype=dns.qtype,
                rcode=dns.rcode,
                answers=dns.answers,
                txid=_txid(flow),
                query_bytes=out,
                response_bytes=inn,
            )
            if response is not None:
                return [(True, (query,)), (False, (response,))], True
            return [(True, (query,)), (False, (inn,))], False
        stream = dns_stream(flow.server_name or "relay.example", out, inn, key=key)
        if stream is not None:
            return stream, True
        return _filler_messages(flow, 1), False
    if app is AppProtocol.TLS and flow.transport is Transport.TCP:
        msgs = tls_exchange(flow.server_name, out, inn, rounds=rounds, key=key)
        return msgs, not out or isinstance(msgs[0][1][0], bytes)
    if app is AppProtocol.HTTP and flow.transport is Transport.TCP:
        msgs = http_exchange(flow.server_name, out, inn, key=key)
        return msgs, all(isinstance(m[1][0], bytes) for m in msgs)
    if app is AppProtocol.SMB and flow.transport is Transport.TCP:
        msgs = smb_exchange(out, inn, rounds=rounds, key=key)
        return msgs, not msgs or isinstance(msgs[0][1][0], bytes)
    if app is AppProtocol.RTP and flow.transport is Transport.UDP:
        bulk, head = options.udp_bulk_datagram, _UDP_HEAD_DATAGRAMS
        outs = rtp_datagrams(out, outbound=True, key=key, bulk_datagram=bulk, head_datagrams=head)
        ins = rtp_datagrams(inn, outbound=False, key=key, bulk_datagram=bulk, head_datagrams=head)
        merged: list[Message] = []
        for i in range(max(len(outs), len(ins))):
            merged += outs[i : i + 1] + ins[i : i + 1]
        return merged, True
    return _filler_messages(flow, rounds), True


# -- packets --------------------------------------------------------------------------------


class _Side:
    __slots__ = ("ip_id", "offset", "seq", "ttl", "window")

    def __init__(self, seq: int, ip_id: int, ttl: int, window: int) -> None:
        self.seq, self.ip_id, self.ttl, self.window = seq, ip_id, ttl, window
        self.offset = 0


def _sides(flow: StitchedFlow) -> tuple[_Side, _Side, int, int]:
    key = f"{flow.flow_id}|{flow.src_ip}|{flow.src_port}|{flow.dst_ip}|{flow.start_ns}".encode()
    d = hashlib.blake2b(key, digest_size=16).digest()
    orig = _Side(int.from_bytes(d[0:4], "big"), int.from_bytes(d[8:10], "big"), _TTL_ORIG, 0)
    resp = _Side(int.from_bytes(d[4:8], "big"), int.from_bytes(d[10:12], "big"), _TTL_RESP, 0)
    orig.window, resp.window = _WINDOW_ORIG, _WINDOW_RESP
    label_o = int.from_bytes(d[12:15], "big") >> 4
    label_r = int.from_bytes(d[13:16], "big") >> 4
    return orig, resp, label_o, label_r


#: A record as the capture stores it: (ts_ns, captured bytes, original frame length).
Record = tuple[int, bytes, int]


def _segments(
    parts: tuple[Part, ...], size: int, side: _Side, keep: int
) -> Iterator[tuple[bytes, int, int]]:
    """The payload of one message cut into segments of ``size``: for each, its first ``keep``
    bytes (what the capture stores), its length and its checksum sum.

    Filler sums come from :func:`~harness.pcap.packets.filler_sum` in constant time and filler
    bytes are built only as far as they are kept; explicit bytes are summed once. A segment's
    sum is combined from its pieces' sums without joining their bytes: a piece at an odd offset
    contributes its sum times 256 (RFC 1071 byte-order independence, residues modulo 0xFFFF).
    """
    kept: list[bytes] = []
    got = acc = filled = 0
    for part in parts:
        data, total = (None, part) if isinstance(part, int) else (part, len(part))
        pos = 0
        while pos < total:
            take = min(total - pos, size - filled)
            want = keep - got
            if data is not None:
                piece = data[pos : pos + take]
                piece_sum = ones_complement_sum(piece)
                if want > 0:
                    kept.append(piece if want >= take else piece[:want])
            elif want >= take:
                # Kept whole: the cache has the bytes and their sum (1460-byte steady state).
                piece, piece_sum = filler_with_sum(side.offset, take)
                if not filled and take == size:
                    side.offset += take
                    pos += take
                    yield piece, take, piece_sum
                    continue
                kept.append(piece)
            else:
                piece_sum = filler_sum(side.offset, take)
                if want > 0:
                    kept.append(filler(side.offset, want))
            got += min(take, want) if want > 0 else 0
            acc += piece_sum << 8 if filled & 1 else piece_sum
            pos += take
            side.offset += take
            filled += take
            if filled == size:
                yield (kept[0] if len(kept) == 1 else b"".join(kept)), size, acc % 0xFFFF
                kept, got, acc, filled = [], 0, 0, 0
    if filled:
        yield (kept[0] if len(kept) == 1 else b"".join(kept)), filled, acc % 0xFFFF


def _datagram(parts: tuple[Part, ...], side: _Side, keep: int) -> tuple[bytes, int, int]:
    """One datagram's kept bytes, length and checksum sum (see :func:`_segments`, of which
    this is the one-segment case, unrolled: every RTP datagram comes through here)."""
    kept: list[bytes] = []
    acc = pos = 0
    for part in parts:
        room = keep - pos
        if isinstance(part, int):
            if room >= part:
                piece, piece_sum = filler_with_sum(side.offset, part)
                kept.append(piece)
            else:
                piece_sum = filler_sum(side.offset, part)
                if room > 0:
                    kept.append(filler(side.offset, room))
            size = part
        else:
            size = len(part)
            piece_sum = ones_complement_sum(part)
            if room > 0:
                kept.append(part if room >= size else part[:room])
        acc += piece_sum << 8 if pos & 1 else piece_sum
        pos += size
        side.offset += size
    return (kept[0] if len(kept) == 1 else b"".join(kept)), pos, acc % 0xFFFF


def _tcp_count(lengths: Sequence[tuple[bool, int]], mss: int, handshake: bool, fin: bool) -> int:
    count = (3 if handshake else 0) + (3 if fin else 0)
    for i, (outbound, length) in enumerate(lengths):
        segs = -(-length // mss)
        replies = i + 1 < len(lengths) and lengths[i + 1][0] != outbound
        count += segs + (segs - 1) // 2 + (0 if replies else 1)
    return count or 1


def _times(start: int, end: int, count: int) -> Iterator[int]:
    if count == 1:
        yield start
        return
    span, last = end - start, count - 1
    for i in range(count):
        yield start + span * i // last


def render_stitched(
    flow: StitchedFlow, messages: Sequence[Message], *, options: CaptureOptions = COMPACT
) -> Iterator[Record]:
    """The records of ``flow`` carrying ``messages``, in time order, built lazily.

    Each record is ``(ts_ns, captured, orig_len)``: the frame's first bytes as ``options``
    keeps them and the frame's real length.
    """
    fwd = PacketPath.between(flow.src_ip, flow.dst_ip)
    rev = fwd.reverse()
    v6 = fwd.version == 6
    orig, resp, label_o, label_r = _sides(flow)
    sport, dport = flow.src_port, flow.dst_port
    msgs = [(o, p) for o, p in messages if sum(map(part_length, p))]
    if flow.transport is Transport.UDP:
        yield from _udp_records(flow, msgs, fwd, rev, orig, resp, (label_o, label_r), options)
        return
    size = options.segment_size(fwd.version)
    keep = options.keep(_TCP_HEADERS[fwd.version])
    wire_mss = MSS_V6 if v6 else MSS_V4
    wscale = _WSCALE if options.offload else None
    lengths = [(o, sum(map(part_length, p))) for o, p in msgs]
    times = _times(flow.start_ns, flow.end_ns, _tcp_count(lengths, size, True, flow.is_final))

    def record(side: _Side, outbound: bool, kept: bytes, length: int, psum: int, flags: int,
               ack: int, options: bytes = b"") -> Record:  # fmt: skip
        path, a, b, label = (fwd, sport, dport, label_o) if outbound else (rev, dport, sport,
                                                                           label_r)  # fmt: skip
        ip_id = side.ip_id
        side.ip_id = (ip_id + 1) & 0xFFFF
        head = tcp_header_fast(
            path, a, b, side.seq, ack, flags, length, psum, side.window, options, ip_id,
            side.ttl, label,
        )  # fmt: skip
        return next(times), head + kept, len(head) + length

    syn_options = _syn_options(wire_mss, wscale)
    yield record(orig, True, b"", 0, 0, TCP_SYN, 0, syn_options)
    orig.seq = (orig.seq + 1) & _U32
    yield record(resp, False, b"", 0, 0, TCP_SYN | TCP_ACK, orig.seq, syn_options)
    resp.seq = (resp.seq + 1) & _U32
    if wscale is not None:
        # Windows after the handshake are scaled: room for the offloaded segments in flight.
        orig.window = resp.window = _WINDOW_SCALED
    yield record(orig, True, b"", 0, 0, TCP_ACK, resp.seq)
    for index, (outbound, parts) in enumerate(msgs):
        sender, receiver = (orig, resp) if outbound else (resp, orig)
        remaining = lengths[index][1]
        unacked = 0
        for kept, length, psum in _segments(parts, size, sender, keep):
            remaining -= length
            flags = TCP_ACK | (TCP_PSH if remaining == 0 else 0)
            yield record(sender, outbound, kept, length, psum, flags, receiver.seq)
            sender.seq = (sender.seq + length) & _U32
            unacked += 1
            if unacked == 2 and remaining:
                yield record(receiver, not outbound, b"", 0, 0, TCP_ACK, sender.seq)
                unacked = 0
        replies = index + 1 < len(msgs) and msgs[index + 1][0] != outbound
        if not replies:
            yield record(receiver, not outbound, b"", 0, 0, TCP_ACK, sender.seq)
    if flow.is_final:
        yield record(orig, True, b"", 0, 0, TCP_FIN | TCP_ACK, resp.seq)
        orig.seq = (orig.seq + 1) & _U32
        yield record(resp, False, b"", 0, 0, TCP_FIN | TCP_ACK, orig.seq)
        resp.seq = (resp.seq + 1) & _U32
        yield record(orig, True, b"", 0, 0, TCP_ACK, resp.seq)


def _udp_records(
    flow: StitchedFlow,
    msgs: list[Message],
    fwd: PacketPath,
    rev: PacketPath,
    orig: _Side,
    resp: _Side,
    labels: tuple[int, int],
    options: CaptureOptions,
) -> Iterator[Record]:
    limit = UDP_MAX_V6 if fwd.version == 6 else UDP_MAX_V4
    bulk = options.udp_bulk_datagram
    keep = options.keep(_UDP_HEADERS[fwd.version])
    datagrams: list[tuple[bool, tuple[Part, ...]]] = []
    for outbound, parts in msgs:
        if len(parts) == 1 and isinstance(parts[0], int):
            left = parts[0]
            count = 0
            while left:
                size = limit if bulk is None or count < _UDP_HEAD_DATAGRAMS else bulk
                take = min(left, size)
                datagrams.append((outbound, (take,)))
                left -= take
                count += 1
        else:
            datagrams.append((outbound, parts))
    if not datagrams or not datagrams[0][0]:
        # A flow is seen from its first packet: the originator's, even if it carries nothing.
        datagrams.insert(0, (True, ()))
    times = _times(flow.start_ns, flow.end_ns, len(datagrams))
    for (outbound, parts), ts in zip(datagrams, times, strict=True):
        side = orig if outbound else resp
        kept, length, psum = _datagram(parts, side, keep)
        path, a, b = (fwd, flow.src_port, flow.dst_port) if outbound else (
            rev, flow.dst_port, flow.src_port)  # fmt: skip
        ip_id = side.ip_id
        side.ip_id = (ip_id + 1) & 0xFFFF
        head = udp_header(
            path, a, b, length, psum, ip_id=ip_id, ttl=side.ttl,
            flow_label=labels[0] if outbound else labels[1],
        )  # fmt: skip
        yield ts, head + kept, len(head) + length


# -- the whole capture ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PcapSummary:
    """What :func:`write_scenario_pcap` wrote."""

    packets: int
    flows: int
    anomaly_packets: int
    #: Flows whose budget was too small for a well-formed head of their protocol (filler sent).
    degraded_flows: int
    seconds: float
    #: Size of the file written, headers included.
    file_bytes: int = 0

    @property
    def packets_per_s(self) -> float:
        return self.packets / self.seconds if self.seconds > 0 else 0.0


def _dns_index(events: Iterable[Event]) -> dict[tuple[str, str, int], deque[DnsQuery]]:
    index: dict[tuple[str, str, int], deque[DnsQuery]] = defaultdict(deque)
    for e in events:
        if isinstance(e, DnsQuery):
            index[(e.src_ip, e.resolver_ip, e.ts_ns)].append(e)
    return index


def _stored_bytes(payload: int, size: int, headers: int, cut: int) -> int:
    """File bytes of ``payload`` sent in packets of ``size`` (the last one shorter)."""
    if payload <= 0:
        return 0
    full, last = divmod(payload, size)
    stored = full * (16 + min(cut, headers + size))
    return stored + (16 + min(cut, headers + last) if last else 0)


def estimate_capture_bytes(events: Iterable[Event], *, options: CaptureOptions = COMPACT) -> int:
    """A generous estimate of the size of :func:`write_scenario_pcap`'s file for ``events``.

    Counts every record of every flow event as if it were a connection of its own (handshake,
    teardown, an ACK per data segment), every packet with IPv6 headers.
    """
    cut = options.snaplen or _NO_CUT
    total = 24
    for e in events:
        if isinstance(e, ProtocolAnomaly):
            total += 5 * (16 + min(cut, 200))
        if not isinstance(e, NetworkFlow):
            continue
        if e.transport is Transport.TCP:
            size = options.segment_size(6)
            segs = -(-e.bytes_out // size) + -(-e.bytes_in // size)
            total += _stored_bytes(e.bytes_out, size, 74, cut)
            total += _stored_bytes(e.bytes_in, size, 74, cut)
            total += (segs + 8) * (16 + 86)  # ACKs, handshake, teardown (with options)
            continue
        # RTP datagrams are 1,200 bytes, others up to an MTU: count the smaller.
        first, head = 1_200, _UDP_HEAD_DATAGRAMS
        for payload in (e.bytes_out, e.bytes_in):
            bulk = options.udp_bulk_datagram
            if bulk is None or payload <= first * head:
                total += _stored_bytes(payload, first, 62, cut)
            else:
                total += head * (16 + min(cut, 62 + first))
                total += _stored_bytes(payload - first * head, bulk, 62, cut)
        total += 16 + 62
    return total


def write_scenario_pcap(
    events: Sequence[Event],
    target: str | os.PathLike[str] | BinaryIO,
    *,
    options: CaptureOptions = COMPACT,
    progress: Callable[[int, int, str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> PcapSummary:
    """Write the capture of ``events`` (flows, DNS and anomalies; other kinds are ignored),
    taken as ``options`` says (a compact capture by default)."""
    t0 = clock()
    flows = stitch_flows(events)
    dns_index = _dns_index(events)
    anomalies = [
        e
        for e in events
        if isinstance(e, ProtocolAnomaly) and e.anomaly is not AnomalyKind.PORT_PROTOCOL_MISMATCH
    ]
    # Sources of packets, in order of their first packet: flows and anomalies.
    sources: list[tuple[int, int, StitchedFlow | ProtocolAnomaly]] = [
        (f.start_ns, i, f) for i, f in enumerate(flows)
    ]
    sources += [(a.ts_ns, len(flows) + i, a) for i, a in enumerate(anomalies)]
    sources.sort(key=lambda s: (s[0], s[1]))
    degraded = 0
    anomaly_packets = 0

    def open_source(item: StitchedFlow | ProtocolAnomaly) -> Iterator[Record]:
        nonlocal degraded, anomaly_packets
        if isinstance(item, ProtocolAnomaly):
            frames = anomaly_frames(item)
            anomaly_packets += len(frames)
            return ((ts, frame, len(frame)) for ts, frame in frames)
        dns = None
        if item.app_protocol is AppProtocol.DNS and item.transport is Transport.UDP:
            queue = dns_index.get((item.src_ip, item.dst_ip, item.start_ns))
            dns = queue.popleft() if queue else None
        messages, ok = flow_messages(item, dns, options=options)
        degraded += not ok
        return render_stitched(item, messages, options=options)

    def merged() -> Iterator[Record]:
        heap: list[tuple[int, int, bytes, int, Iterator[Record]]] = []
        total = len(sources)
        nxt = 0
        while nxt < total or heap:
            while nxt < total and (not heap or sources[nxt][0] <= heap[0][0]):
                gen = open_source(sources[nxt][2])
                first = next(gen, None)
                if first is not None:
                    heapq.heappush(heap, (first[0], sources[nxt][1], first[1], first[2], gen))
                nxt += 1
                if progress is not None and nxt % 2000 == 0:
                    progress(nxt, total, "flows")
            ts, order, frame, orig_len, gen = heap[0]
            yield ts, frame, orig_len
            after = next(gen, None)
            if after is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (after[0], order, after[1], after[2], gen))
        if progress is not None:
            progress(total, total, "flows")

    with PcapWriter(target, snaplen=options.file_snaplen) as writer:
        writer.write_records(merged())
        packets = writer.packets_written
        size = writer.bytes_written
    return PcapSummary(
        packets=packets,
        flows=len(flows),
        anomaly_packets=anomaly_packets,
        degraded_flows=degraded,
        seconds=clock() - t0,
        file_bytes=size,
    )


# -- reading back ---------------------------------------------------------------------------


@dataclass(slots=True)
class Conversation:
    """Payload bytes and packets per direction of one 5-tuple in a capture; the originator is
    the sender of its first packet (of its SYN, for TCP)."""

    transport: Transport
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    bytes_out: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    packets_in: int = 0


ConversationKey = tuple[Transport, str, int, str, int]


def _parse_frame(frame: bytes) -> tuple[Transport, str, int, str, int, int, int] | None:
    """(transport, src, sport, dst, dport, payload length, tcp flags) of an Ethernet frame."""
    import ipaddress

    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == 0x0800:
        ihl = (frame[14] & 0x0F) * 4
        proto = frame[23]
        total = int.from_bytes(frame[16:18], "big")
        src, dst = (
            str(ipaddress.IPv4Address(frame[26:30])),
            str(ipaddress.IPv4Address(frame[30:34])),
        )
        l4, end = 14 + ihl, 14 + total
    elif ethertype == 0x86DD:
        proto = frame[20]
        src = str(ipaddress.IPv6Address(frame[22:38]))
        dst = str(ipaddress.IPv6Address(frame[38:54]))
        l4, end = 54, 54 + int.from_bytes(frame[18:20], "big")
    else:
        return None
    sport, dport = (
        int.from_bytes(frame[l4 : l4 + 2], "big"),
        int.from_bytes(frame[l4 + 2 : l4 + 4], "big"),
    )
    if proto == 6:
        header = (frame[l4 + 12] >> 4) * 4
        return Transport.TCP, src, sport, dst, dport, end - l4 - header, frame[l4 + 13]
    if proto == 17:
        return Transport.UDP, src, sport, dst, dport, end - l4 - 8, 0
    return None


def pcap_conversations(
    source: str | os.PathLike[str] | BinaryIO,
) -> dict[ConversationKey, Conversation]:
    """Per-5-tuple payload totals of a capture, keyed by the originator's view of the tuple."""
    convs: dict[ConversationKey, Conversation] = {}
    with PcapReader(source) as reader:
        for _, frame in reader:
            parsed = _parse_frame(frame)
            if parsed is None:
                continue
            transport, src, sport, dst, dport, length, _flags = parsed
            fwd = (transport, src, sport, dst, dport)
            conv = convs.get(fwd)
            if conv is not None:
                conv.bytes_out += length
                conv.packets_out += 1
                continue
            rev = (transport, dst, dport, src, sport)
            conv = convs.get(rev)
            if conv is not None:
                conv.bytes_in += length
                conv.packets_in += 1
                continue
            convs[fwd] = Conversation(transport, src, sport, dst, dport, length, 0, 1, 0)
    return convs
