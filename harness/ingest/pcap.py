"""Read pcap and pcapng captures as the project's events, fast, in event-time order.

:class:`PcapEventReader` (or :func:`read_pcap`) turns a capture into
:class:`~harness.events.NetworkFlow`, :class:`~harness.events.DnsQuery` and
:class:`~harness.events.ProtocolAnomaly` events, streaming with bounded memory.

Semantics (identical in the fast path and the reference path, ``fast=False``):

* **Flows** are bidirectional 5-tuples. The originator is the SYN's sender (the SYN-ACK's
  receiver when only that was seen); without a handshake (UDP, or TCP seen mid-connection) it is
  the first sender unless the other side's port is "more ephemeral" (ranks: below 1024, below
  32768, above), in which case the other side is the client. Bytes are transport payload bytes
  per direction: for TCP the growth of the sequence high-water mark (retransmissions count once,
  like Zeek's ``orig_bytes``; gaps in the capture count as sent), for UDP the payload lengths
  from the IP header, so a short snapshot length does not shrink them. Packets count every
  packet. A record is cut at ``start + k * active_timeout`` (``is_final=False``, ``ts_ns`` = the
  boundary); the last record has ``ts_ns`` = the last packet. A flow ends after
  ``tcp_idle_timeout_s``/``udp_idle_timeout_s`` of quiet, ``tcp_closed_timeout_s`` after RST or
  FIN both ways, or on a new SYN after it closed. ``flow_id`` is ``pcap-flow:<index of the
  flow's first packet>``.
* ``app_protocol`` comes from the first payload of each direction (:mod:`._appid`), never from
  the port; ``server_name`` from the TLS SNI or HTTP Host, else (except for DNS flows, whose
  names are their queries) the name whose DNS answer to the originator (seen earlier in the
  capture) resolved the responder's address.
* ``direction`` and ``host`` follow the address plan (:class:`AddressPlan`): outbound when only
  the originator is internal (host: the originator), inbound when only the responder is (host:
  the responder), internal when both are; a flow between two external addresses is reported as
  outbound from its originator.
* **DNS**: over UDP and TCP (length-prefixed), on any port where the payload parses as DNS.
  Queries pair with responses on transaction id, 5-tuple and name; ``ts_ns`` is the query's
  time. A query unanswered after ``dns_timeout_s`` (or at the end of the capture) gets rcode
  ``NOANSWER`` and ``response_bytes=0``; a response whose query was not captured gets
  ``query_bytes=0`` and its own time.
* **Anomalies** (at most one of each kind per flow): ``no_handshake`` (TCP data on a connection
  whose first packet came at least ``no_handshake_grace_s`` after the capture began, with no
  handshake, that the peer did not acknowledge within ``no_handshake_wait_s`` or answered with
  RST: connections already running when the capture started are never flagged, nor are
  long-idle ones the peer acknowledges); ``out_of_window`` (a data segment starting more than
  twice the receiver's largest advertised window, and at least 128 KiB, from the sender's high-
  water mark; window scale from the handshake, assumed 7 without one); ``injected_reset`` (RST
  whose sequence number is more than one from the sender's next one and not within its
  unacknowledged data, or an RST within 1 s of data whose TTL differs by more than one from the
  same sender's other packets); ``malformed_dns`` (a port-53 payload that does not parse;
  payloads cut by the snapshot length are not judged); ``port_protocol_mismatch`` (a protocol
  identified on a well-known server port of another, e.g. TLS on 53, HTTP on 443, SSH on 80, or
  DNS on a port that is not a DNS port); ``wrong_direction_first_data`` (after a seen handshake,
  the server sends the first payload and it is HTTP or TLS, or the port is one of a client-first
  protocol).

Bad input: a file that is not a capture raises :class:`PcapInputError`; damage inside it (bad
record headers, pcapng blocks with inconsistent lengths, a truncated tail) is reported to
``on_warning`` (default: kept in :attr:`PcapEventReader.warnings`) with the byte offset, the
reader resynchronises, and :attr:`PcapEventReader.stats` counts what was skipped. Frames too
short or malformed to decode are counted per reason, never raised.

Speed: the file is memory-mapped and never copied (:mod:`._container`); per batch of records
(a window of ``chunk_bytes``), header fields are decoded with NumPy for every packet at once
(pcapng packet blocks are read the same way); packets are grouped by flow with one sort; a
flow whose packets in the batch are plain in-window ACK/data segments of a known, established
flow (or UDP datagrams of a non-DNS flow whose payload directions were already identified),
without crossing a timeout, is updated in one step from the group's aggregates. Only the rest
(handshakes, teardowns, resets, first payloads, DNS, new flows, fragments, odd link layers)
goes through the per-packet engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np

from harness.events import Event
from harness.ingest._bulk import bulk_batch
from harness.ingest._container import PcapInputError, RecordBatch, RecordSource
from harness.ingest._decode import (
    FAST,
    IGNORE,
    SLOW,
    Decoded,
    Fragment,
    Packet,
    Reassembler,
    decode_batch,
    decode_frame,
)
from harness.ingest._flows import AddressPlan, FlowEngine, IngestConfig

__all__ = [
    "AddressPlan",
    "IngestConfig",
    "PcapEventReader",
    "PcapInputError",
    "ReadStats",
    "read_pcap",
]

_MAX_KEPT_WARNINGS = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadStats:
    """What a read saw and what it had to skip."""

    path: str
    format: str
    linktypes: tuple[int, ...]
    records: int
    #: TCP/UDP packets that reached the flow engine (in bulk or one by one).
    transport_packets: int
    #: Of those, packets accounted for in bulk by the fast path.
    bulk_packets: int
    #: Records carrying neither TCP nor UDP over IP (ARP, ICMP, …): not an error.
    other_packets: int
    #: Frames too short or malformed to decode, by reason.
    malformed: dict[str, int]
    fragments_dropped: int
    damaged_regions: int
    skipped_bytes: int
    truncated_tail: bool
    dns_unparsed: int
    flows: int
    events: dict[str, int]
    warnings: int

    @property
    def skipped_records(self) -> int:
        """Records lost to damage: damaged regions, a truncated tail and malformed frames."""
        return (
            self.damaged_regions
            + int(self.truncated_tail)
            + sum(self.malformed.values())
            + self.fragments_dropped
        )


class PcapEventReader:
    """Iterate over the events of one capture file (classic pcap or pcapng).

    ``fast=False`` selects the reference path (every packet through the per-packet decoder and
    engine); the output is the same. Iterate once; :attr:`stats` is complete after iteration.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        config: IngestConfig | None = None,
        fast: bool = True,
        on_warning: Callable[[PcapInputError], None] | None = None,
        chunk_bytes: int = 16 << 20,
    ) -> None:
        self.path = os.fspath(path)
        self.config = config or IngestConfig()
        self.fast = fast
        self.warnings: list[PcapInputError] = []
        self._on_warning = on_warning
        self._warning_count = 0
        self._engine = FlowEngine(self.config)
        self._reasm = Reassembler()
        self._malformed: dict[str, int] = {}
        self._other = 0
        self._bulk = 0
        # Opening checks the format at once, so a non-capture fails here, not mid-iteration.
        self._source = RecordSource(self.path, warn=self._warn, chunk_bytes=chunk_bytes)

    def _warn(self, err: PcapInputError) -> None:
        self._warning_count += 1
        if self._on_warning is not None:
            self._on_warning(err)
        elif len(self.warnings) < _MAX_KEPT_WARNINGS:
            self.warnings.append(err)

    @property
    def stats(self) -> ReadStats:
        c = self._source.counters
        e = self._engine.counters
        return ReadStats(
            path=self.path,
            format=c.fmt,
            linktypes=tuple(sorted(c.linktypes)),
            records=c.records,
            transport_packets=e.packets + self._bulk,
            bulk_packets=self._bulk,
            other_packets=self._other,
            malformed=dict(self._malformed),
            fragments_dropped=self._reasm.dropped,
            damaged_regions=c.damaged_regions,
            skipped_bytes=c.skipped_bytes,
            truncated_tail=c.truncated_tail,
            dns_unparsed=e.dns_unparsed,
            flows=e.flows,
            events=dict(e.kinds),
            warnings=self._warning_count,
        )

    def __iter__(self) -> Iterator[Event]:
        engine = self._engine
        try:
            for batch in self._source:
                if engine.start is None and len(batch):
                    engine.start = int(batch.ts_ns[0])  # "the capture began": its first record
                if self.fast:
                    self._fast_batch(batch)
                else:
                    self._reference_batch(batch)
                if len(batch):
                    engine.now = max(engine.now, int(batch.ts_ns.max()))
                yield from engine.drain(engine.now)
            yield from engine.close()
        finally:
            self._source.close()

    # -- decoding one record at a time ----------------------------------------------------

    def _decode_records(self, b: RecordBatch, indices: Iterable[int]) -> list[Packet]:
        """Decode records ``indices`` of ``b`` with the reference decoder, in order."""
        data = b.data
        fo = b.frame_off
        cap = b.caplen
        orig = b.origlen
        ts_a = b.ts_ns
        lt = b.linktype
        first = b.first_index
        out: list[Packet] = []
        for i in indices:
            start = int(fo[i])
            frame = data[start : start + int(cap[i])]
            res = decode_frame(frame, int(orig[i]), int(lt[i]))
            self._collect(first + i, int(ts_a[i]), res, out)
        return out

    def _collect(
        self, idx: int, ts: int, res: Decoded | Fragment | str | None, out: list[Packet]
    ) -> None:
        if res is None:
            self._other += 1
        elif isinstance(res, str):
            self._malformed[res] = self._malformed.get(res, 0) + 1
        elif len(res) == 9:
            whole = self._reasm.add(ts, cast(Fragment, res))
            if whole is not None:
                self._collect(idx, ts, whole, out)
        else:
            out.append(cast(Packet, (idx, ts, *res)))

    def _reference_batch(self, b: RecordBatch) -> None:
        packet = self._engine.packet
        for p in self._decode_records(b, range(len(b))):
            packet(p)

    # -- the fast path --------------------------------------------------------------------

    def _fast_batch(self, b: RecordBatch) -> None:
        v = decode_batch(b)
        st = v.status
        self._other += int(np.count_nonzero(st == IGNORE))
        fast_idx = np.flatnonzero(st == FAST)
        slow = self._decode_records(b, np.flatnonzero(st == SLOW).tolist())
        packet = self._engine.packet

        def feed(packets: list[Packet]) -> None:
            for p in packets:
                packet(p)

        if not len(fast_idx):
            feed(slow)
            return
        self._bulk += bulk_batch(b, v, fast_idx, slow, self._engine, feed)


def read_pcap(
    path: str | os.PathLike[str],
    *,
    config: IngestConfig | None = None,
    fast: bool = True,
    on_warning: Callable[[PcapInputError], None] | None = None,
) -> Iterator[Event]:
    """The events of the capture at ``path`` (see :class:`PcapEventReader`)."""
    yield from PcapEventReader(path, config=config, fast=fast, on_warning=on_warning)
