"""Link, network and transport headers: decoded for a whole batch at once, or one frame at a time.

:func:`decode_batch` is the fast path. It gathers fixed-size header windows for every record of a
:class:`~harness.ingest._container.RecordBatch` with NumPy fancy indexing and computes, per
record, the IP version, addresses, ports, TCP fields and payload position and *wire* length
(from the IP length fields, so a short snapshot length does not shrink byte counts). It handles
the common shapes only: Ethernet with up to two VLAN tags, Linux cooked capture v1 and v2, and
raw IP link types, carrying unfragmented IPv4, or IPv6 whose first next-header is TCP or UDP.
Every other record is marked ``SLOW`` and goes through :func:`decode_frame`, the reference
decoder, which also handles deeper VLAN stacks, PPPoE, MPLS, BSD loopback link types, IPv6
extension headers and IP fragments (with :class:`Reassembler`). For the shapes both accept, the
two give identical values; a test holds them to it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from harness.ingest._container import RecordBatch, take_rows

__all__ = [
    "FAST",
    "IGNORE",
    "SLOW",
    "Decoded",
    "Packet",
    "Reassembler",
    "VecDecoded",
    "decode_batch",
    "decode_frame",
]

FAST, SLOW, IGNORE = 0, 1, 2
M32 = 0xFFFFFFFF

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

LT_NULL, LT_ETHERNET, LT_RAW, LT_LOOP, LT_SLL, LT_IPV4, LT_IPV6, LT_SLL2 = (
    0, 1, 101, 108, 113, 228, 229, 276,
)  # fmt: skip
_RAW_TYPES = (LT_RAW, 12, 14, LT_IPV4, LT_IPV6)
_VECTOR_TYPES = (LT_ETHERNET, LT_SLL, LT_SLL2, *_RAW_TYPES)
_VLAN = (0x8100, 0x88A8, 0x9100)
_V6_EXT = (0, 43, 44, 51, 60, 135)

#: A transport packet: proto, src, sport, dst, dport, flags, seq, ack, window, ttl,
#: payload wire length, captured payload, TCP options (captured part).
Decoded = tuple[int, bytes, int, bytes, int, int, int, int, int, int, int, bytes, bytes]
#: The same with the record index and timestamp in front, as the flow engine takes it.
Packet = tuple[int, int, int, bytes, int, bytes, int, int, int, int, int, int, int, bytes, bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class VecDecoded:
    """Per-record header fields of a batch; valid where ``status == FAST``."""

    status: npt.NDArray[np.int8]
    v6: npt.NDArray[np.bool_]
    proto: I64
    l3: I64
    #: Addresses as two 64-bit words each (IPv4: high word 0, low word the address).
    src_hi: U64
    src_lo: U64
    dst_hi: U64
    dst_lo: U64
    sport: I64
    dport: I64
    flags: I64
    seq: I64
    ack: I64
    win: I64
    ttl: I64
    l4: I64
    pay_off: I64
    #: End (exclusive) of captured bytes that belong to the IP datagram.
    cap_end: I64
    paylen: I64
    #: Captured payload bytes available from ``pay_off``.
    paycap: I64


def _take(arr: npt.NDArray[np.uint8], start: I64, width: int) -> npt.NDArray[np.uint8]:
    """``width`` bytes from each offset in ``start`` as rows; bytes past the end read as 0."""
    if len(arr) < width:
        arr = np.concatenate([arr, np.zeros(width - len(arr), dtype=np.uint8)])
    last = len(arr) - width
    out = take_rows(arr, np.minimum(np.maximum(start, 0), last), width)
    over = start > last
    if over.any():
        # Rows near the end of the buffer: shift the window back, then realign with zeros.
        for i in np.flatnonzero(over).tolist():
            s = int(start[i])
            row = np.zeros(width, dtype=np.uint8)
            if s < len(arr):
                row[: len(arr) - s] = arr[s:]
            out[i] = row
    return out


def _cols(w: npt.NDArray[np.uint8], dtype: str) -> npt.NDArray[np.int64]:
    """The rows of ``w`` read as big-endian words of ``dtype`` (``>u2``, ``>u4``): column
    ``j`` is the word at byte ``j * size`` of each row."""
    out: npt.NDArray[np.int64] = w.view(dtype).astype(np.int64)
    return out


def decode_batch(b: RecordBatch) -> VecDecoded:
    """Decode every record of ``b`` that has a common shape; mark the rest SLOW or IGNORE."""
    arr, fo, cap, lt = b.arr, b.frame_off, b.caplen, b.linktype
    n = len(fo)
    w2 = _take(arr, fo, 24)
    h2 = _cols(w2, ">u2")  # 16-bit words at bytes 0, 2, .., 22 of the frame
    eth = lt == LT_ETHERNET
    sll = lt == LT_SLL
    sll2 = lt == LT_SLL2
    raw = np.isin(lt, _RAW_TYPES)
    et = np.zeros(n, dtype=np.int64)
    rel3 = np.zeros(n, dtype=np.int64)
    # Ethernet, with up to two VLAN tags.
    et_e = h2[:, 6]
    rel_e = np.full(n, 14, dtype=np.int64)
    tag1 = np.isin(et_e, _VLAN)
    et_e = np.where(tag1, h2[:, 8], et_e)
    rel_e += 4 * tag1
    tag2 = tag1 & np.isin(et_e, _VLAN)
    et_e = np.where(tag2, h2[:, 10], et_e)
    rel_e += 4 * tag2
    np.copyto(et, et_e, where=eth)
    np.copyto(rel3, rel_e, where=eth)
    np.copyto(et, h2[:, 7], where=sll)
    np.copyto(rel3, 16, where=sll)
    np.copyto(et, h2[:, 0], where=sll2)
    np.copyto(rel3, 20, where=sll2)
    nib = w2[:, 0] >> 4
    np.copyto(et, np.where(nib == 4, 0x0800, np.where(nib == 6, 0x86DD, 0)), where=raw)
    vector = eth | sll | sll2 | raw

    w3 = _take(arr, fo + rel3, 40)
    h3 = _cols(w3, ">u2")
    q3 = w3.view(">u8").astype(np.uint64)  # 64-bit words at bytes 0, 8, .., 32 of the header
    ver = w3[:, 0] >> 4
    is4 = (et == 0x0800) & (ver == 4)
    is6 = (et == 0x86DD) & (ver == 6)
    ihl = np.where(is6, 40, (w3[:, 0] & 15).astype(np.int64) * 4)
    frag = (h3[:, 3] & 0x3FFF) != 0
    proto = np.where(is6, w3[:, 6], w3[:, 9]).astype(np.int64)
    ttl = np.where(is6, w3[:, 7], w3[:, 8]).astype(np.int64)
    iplen = np.where(is6, h3[:, 2] + 40, h3[:, 1])
    orig_avail = b.origlen - rel3
    ip_wire = np.minimum(np.where(iplen == 0, orig_avail, iplen), orig_avail)
    # IPv4 addresses: bytes 12-15 (low half of word 1) and 16-19 (high half of word 2).
    zero = np.uint64(0)
    src_hi = np.where(is6, q3[:, 1], zero)
    src_lo = np.where(is6, q3[:, 2], q3[:, 1] & np.uint64(M32))
    dst_hi = np.where(is6, q3[:, 3], zero)
    dst_lo = np.where(is6, q3[:, 4], q3[:, 2] >> np.uint64(32))

    l4rel = rel3 + ihl
    w4 = _take(arr, fo + l4rel, 20)
    h4 = _cols(w4, ">u2")
    tcp = proto == 6
    udp = proto == 17
    doff = np.where(tcp, (w4[:, 12] >> 4).astype(np.int64) * 4, 8)
    hdr_need = np.where(tcp, 20, 8)
    paylen = ip_wire - ihl - doff
    pay_rel = l4rel + doff
    paycap = np.maximum(np.minimum(cap, rel3 + ip_wire) - pay_rel, 0)
    paycap = np.minimum(paycap, np.maximum(paylen, 0))

    ip_ok = (is4 & (ihl >= 20) & ~frag) | (is6 & (h3[:, 2] > 0))
    l4_ok = (
        (tcp | udp)
        & (cap >= l4rel + hdr_need)
        & (cap >= rel3 + np.where(is6, 40, 20))
        & (paylen >= 0)
        & (ip_wire >= ihl + hdr_need)
        & (~tcp | (doff >= 20))
    )
    fast = vector & ip_ok & l4_ok
    # What the fast path can tell is not for us: non-IP EtherTypes, and IP carrying neither
    # TCP nor UDP (nor, for IPv6, an extension header). Everything else is left to the slow path.
    other_l3 = vector & ~(is4 | is6) & ~np.isin(et, (0x0800, 0x86DD, 0x8864, 0x8847, *_VLAN))
    other_l4 = vector & (
        (is4 & (ihl >= 20) & ~frag & ~tcp & ~udp & (cap >= rel3 + 20))
        | (is6 & ~tcp & ~udp & ~np.isin(proto, _V6_EXT) & (cap >= rel3 + 40))
    )
    status = np.full(n, SLOW, dtype=np.int8)
    status[other_l3 | other_l4] = IGNORE
    status[fast] = FAST
    u4 = _cols(w4, ">u4")  # 32-bit words at bytes 0, 4, .., 16 of the transport header
    return VecDecoded(
        status=status,
        v6=is6,
        proto=proto,
        l3=fo + rel3,
        src_hi=src_hi,
        src_lo=src_lo,
        dst_hi=dst_hi,
        dst_lo=dst_lo,
        sport=h4[:, 0],
        dport=h4[:, 1],
        flags=np.where(tcp, h4[:, 6] & 0x1FF, 0),
        seq=np.where(tcp, u4[:, 1], 0),
        ack=np.where(tcp, u4[:, 2], 0),
        win=np.where(tcp, h4[:, 7], 0),
        ttl=ttl,
        l4=fo + l4rel,
        pay_off=fo + pay_rel,
        cap_end=fo + np.minimum(cap, rel3 + ip_wire),
        paylen=paylen,
        paycap=paycap,
    )


# -- the reference decoder ------------------------------------------------------------------

_TCP = struct.Struct("!HHIIBBH")
_FRAG_TIMEOUT_NS = 30 * 1_000_000_000
_FRAG_MAX_DATAGRAMS = 1024
_FRAG_MAX_BYTES = 65_535


def parse_l4(
    proto: int, src: bytes, dst: bytes, ttl: int, l4: bytes, l4_wire: int
) -> Decoded | None:
    """Transport fields from captured transport bytes ``l4`` of wire length ``l4_wire``."""
    if proto == 6:
        if len(l4) < 20 or l4_wire < 20:
            return None
        sport, dport, seq, ack, off_byte, flag_byte, win = _TCP.unpack_from(l4)
        doff = (off_byte >> 4) * 4
        if doff < 20 or l4_wire < doff:
            return None
        flags = ((off_byte & 1) << 8) | flag_byte
        paylen = l4_wire - doff
        payload = l4[doff : doff + paylen]
        return (proto, src, sport, dst, dport, flags, seq, ack, win, ttl, paylen, payload,
                l4[20:doff])  # fmt: skip
    if proto == 17:
        if len(l4) < 8 or l4_wire < 8:
            return None
        sport, dport = struct.unpack_from("!HH", l4)
        paylen = l4_wire - 8
        return (proto, src, sport, dst, dport, 0, 0, 0, 0, ttl, paylen, l4[8 : 8 + paylen], b"")
    return None


#: A fragment: (key, offset, more, data, proto, src, dst, ttl, complete_data_captured).
Fragment = tuple[tuple[int, bytes, bytes, int], int, bool, bytes, int, bytes, bytes, int, bool]


def _l3(frame: bytes, lt: int) -> tuple[int, int] | None:
    """(offset of the IP header, IP version) or None for frames that carry no IP."""
    if lt == LT_ETHERNET:
        if len(frame) < 14:
            return None
        et = int.from_bytes(frame[12:14], "big")
        off = 14
        while et in _VLAN and len(frame) >= off + 4:
            et = int.from_bytes(frame[off + 2 : off + 4], "big")
            off += 4
        if et == 0x8864 and len(frame) >= off + 8:  # PPPoE session: 6-byte header, PPP proto
            ppp = int.from_bytes(frame[off + 6 : off + 8], "big")
            et = {0x0021: 0x0800, 0x0057: 0x86DD}.get(ppp, 0)
            off += 8
        elif et == 0x8847:  # MPLS unicast: pop labels to the bottom of the stack
            while len(frame) >= off + 4:
                bottom = frame[off + 2] & 1
                off += 4
                if bottom:
                    break
            if len(frame) <= off:
                return None
            et = {4: 0x0800, 6: 0x86DD}.get(frame[off] >> 4, 0)
    elif lt == LT_SLL:
        if len(frame) < 16:
            return None
        et, off = int.from_bytes(frame[14:16], "big"), 16
    elif lt == LT_SLL2:
        if len(frame) < 20:
            return None
        et, off = int.from_bytes(frame[0:2], "big"), 20
    elif lt in _RAW_TYPES:
        if not frame:
            return None
        et, off = {4: 0x0800, 6: 0x86DD}.get(frame[0] >> 4, 0), 0
    elif lt in (LT_NULL, LT_LOOP):
        if len(frame) < 4:
            return None
        fam_le = int.from_bytes(frame[0:4], "little")
        fam_be = int.from_bytes(frame[0:4], "big")
        fam = fam_le if fam_le < 0x10000 else fam_be
        et = 0x0800 if fam == 2 else (0x86DD if fam in (10, 24, 28, 30) else 0)
        off = 4
    else:
        return None
    if et == 0x0800:
        return off, 4
    if et == 0x86DD:
        return off, 6
    return None


def decode_frame(frame: bytes, orig_len: int, linktype: int) -> Decoded | Fragment | str | None:
    """Decode one captured frame.

    Returns the transport packet, a :data:`Fragment` for the reassembler, ``None`` for frames
    that carry neither TCP nor UDP over IP, or a short reason string for a frame too short or
    malformed to decode.
    """
    where = _l3(frame, linktype)
    if where is None:
        return None
    rel3, ver = where
    orig_avail = orig_len - rel3
    ip = frame[rel3:]
    if ver == 4:
        if len(ip) < 20:
            return "truncated IPv4 header"
        if ip[0] >> 4 != 4:
            return "bad IPv4 version"
        ihl = (ip[0] & 15) * 4
        if ihl < 20:
            return "bad IPv4 header length"
        iplen = int.from_bytes(ip[2:4], "big")
        ip_wire = min(iplen if iplen else orig_avail, orig_avail)
        ttl, proto = ip[8], ip[9]
        src, dst = bytes(ip[12:16]), bytes(ip[16:20])
        frag_field = int.from_bytes(ip[6:8], "big")
        if frag_field & 0x3FFF:
            if ip_wire < ihl:
                return "bad IPv4 fragment length"
            data = bytes(ip[ihl:ip_wire])
            ident = int.from_bytes(ip[4:6], "big")
            return ((4, src, dst, ident << 8 | proto), (frag_field & 0x1FFF) * 8,
                    bool(frag_field & 0x2000), data, proto, src, dst, ttl,
                    len(data) == ip_wire - ihl)  # fmt: skip
        if proto not in (6, 17):
            return None
        if ip_wire < ihl:
            return "IPv4 total length shorter than its header"
        return parse_l4(proto, src, dst, ttl, bytes(ip[ihl:ip_wire]), ip_wire - ihl) or (
            "truncated or malformed transport header"
        )
    if len(ip) < 40:
        return "truncated IPv6 header"
    if ip[0] >> 4 != 6:
        return "bad IPv6 version"
    plen = int.from_bytes(ip[4:6], "big")
    if plen == 0:
        return "IPv6 jumbogram or zero payload length"
    ip_wire = min(plen + 40, orig_avail)
    nh, ttl = ip[6], ip[7]
    src, dst = bytes(ip[8:24]), bytes(ip[24:40])
    off = 40
    while nh in _V6_EXT:
        if len(ip) < off + 8:
            return "truncated IPv6 extension header"
        if nh == 44:
            field = int.from_bytes(ip[off + 2 : off + 4], "big")
            ident = int.from_bytes(ip[off + 4 : off + 8], "big")
            inner = ip[off]
            data = bytes(ip[off + 8 : ip_wire])
            return ((6, src, dst, ident), field & 0xFFF8, bool(field & 1), data, inner, src,
                    dst, ttl, len(data) == ip_wire - off - 8)  # fmt: skip
        size = (ip[off + 1] + 2) * 4 if nh == 51 else (ip[off + 1] + 1) * 8
        nh = ip[off]
        off += size
    if nh not in (6, 17):
        return None
    if ip_wire < off:
        return "IPv6 payload length shorter than its extension headers"
    return parse_l4(nh, src, dst, ttl, bytes(ip[off:ip_wire]), ip_wire - off) or (
        "truncated or malformed transport header"
    )


class Reassembler:
    """IPv4 and IPv6 fragment reassembly with bounded memory (first copy of a byte wins)."""

    __slots__ = ("_pending", "dropped")

    def __init__(self) -> None:
        # key -> (first ts, {offset: data}, total length or -1, proto, src, dst, ttl, ok)
        self._pending: dict[
            tuple[int, bytes, bytes, int],
            tuple[int, dict[int, bytes], list[int], int, bytes, bytes, int, list[bool]],
        ] = {}
        self.dropped = 0

    def add(self, ts: int, frag: Fragment) -> Decoded | str | None:
        """Add one fragment; returns the transport packet once the datagram is complete."""
        key, offset, more, data, proto, src, dst, ttl, whole = frag
        self._expire(ts)
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= _FRAG_MAX_DATAGRAMS:
                self._pending.pop(next(iter(self._pending)))
                self.dropped += 1
            entry = (ts, {}, [-1], proto, src, dst, ttl, [True])
            self._pending[key] = entry
        _, parts, total, _, _, _, _, ok = entry
        if not whole:
            ok[0] = False
        if offset + len(data) > _FRAG_MAX_BYTES:
            self._pending.pop(key, None)
            self.dropped += 1
            return "fragmented datagram larger than 65535 bytes"
        parts.setdefault(offset, data)
        if not more:
            total[0] = offset + len(data)
        if total[0] < 0:
            return None
        have = 0
        for off in sorted(parts):
            if off > have:
                return None
            have = max(have, off + len(parts[off]))
        if have < total[0]:
            return None
        del self._pending[key]
        if not ok[0]:
            self.dropped += 1
            return "fragment cut by the snapshot length; datagram not reassembled"
        buf = bytearray(total[0])
        for off in sorted(parts, reverse=True):  # lower offsets last: first copy wins
            piece = parts[off][: total[0] - off]
            buf[off : off + len(piece)] = piece
        return parse_l4(proto, src, dst, entry[6], bytes(buf), total[0]) or (
            "truncated or malformed transport header in a reassembled datagram"
        )

    def _expire(self, now: int) -> None:
        while self._pending:
            key = next(iter(self._pending))
            if now - self._pending[key][0] < _FRAG_TIMEOUT_NS:
                return
            del self._pending[key]
            self.dropped += 1
