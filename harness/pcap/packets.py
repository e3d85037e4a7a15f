"""Build Ethernet + IPv4/IPv6 + TCP/UDP frames fast, with every checksum correct.

The builders pack each frame's headers with one precompiled :mod:`struct` call and compute the
IPv4 header checksum and the TCP/UDP checksum (pseudo-header included) arithmetically from the
header fields, so no header is ever summed byte by byte. A payload is summed with one
``int.from_bytes`` and one modulo: because ``2**16 ≡ 1 (mod 0xFFFF)``, a big-endian integer is
congruent to the sum of its 16-bit words modulo ``0xFFFF``, which is the ones' complement sum.

Per-direction material (Ethernet header, packed addresses, the address part of the
pseudo-header sum) is computed once in a :class:`PacketPath` and reused for every packet.

For compact captures (segments of up to 64 KiB, stored cut to a snapshot length) the header
builders :func:`tcp_header_fast` and :func:`udp_header` take the payload's length and sum instead
of its bytes, and :func:`filler_sum` gives the sum of any run of filler in constant time, so a
huge segment's checksum is right without its bytes ever being built.

Filler payloads are inert and deterministic: slices of one fixed pseudo-random block (the output
of SHAKE-256 over a constant), repeating with a period of one Ethernet MSS so that full-size
segments keep hitting the same cached slice and its precomputed sum. MAC addresses are derived
from the IP address, locally administered, so the same host always has the same MAC.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from dataclasses import dataclass
from functools import lru_cache

from harness.errors import InvalidParameterError

__all__ = [
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "FILLER_PERIOD",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "TCP_ACK",
    "TCP_FIN",
    "TCP_PSH",
    "TCP_RST",
    "TCP_SYN",
    "TCP_URG",
    "PacketPath",
    "filler",
    "filler_sum",
    "filler_with_sum",
    "format_mac",
    "internet_checksum",
    "mac_for_ip",
    "ones_complement_sum",
    "pack_ip",
    "tcp_frame",
    "tcp_frame_fast",
    "tcp_header_fast",
    "tcp_packet",
    "udp_frame",
    "udp_header",
    "udp_packet",
]

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
IPPROTO_TCP = 6
IPPROTO_UDP = 17

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20

_FIELD_RANGES = (
    "ports, window, ip_id and IP lengths in 0..65535, seq/ack in 0..2**32-1, ttl in 0..255"
)
_IPV4_DF = 0x4000  # "don't fragment", set by every modern stack doing path-MTU discovery
_MOD = 0xFFFF

#: Ethernet (14) + IPv4 (20) + TCP (20, options follow) in network byte order. The TCP data
#: offset and flags share one 16-bit field (``doff << 12 | flags``).
_V4_TCP = struct.Struct("!14sBBHHHBBH4s4sHHIIHHHH")
_V4_UDP = struct.Struct("!14sBBHHHBBH4s4sHHHH")
#: Ethernet + IPv6 (40) + TCP/UDP; the first IPv6 word packs version, traffic class and label.
_V6_TCP = struct.Struct("!14sIHBB16s16sHHIIHHHH")
_V6_UDP = struct.Struct("!14sIHBB16s16sHHHH")
_V4_TCP_PACK = _V4_TCP.pack

#: Filler repeats with this period, the IPv4 Ethernet MSS, so full segments share a slice.
FILLER_PERIOD = 1460
_FILLER_SEED = b"egress-harness inert filler v1"
_FILLER_BLOCK = hashlib.shake_256(_FILLER_SEED).digest(FILLER_PERIOD)
# Long enough that any slice of up to one period starting anywhere in the period is contiguous.
_FILLER_DOUBLE = _FILLER_BLOCK * 2


def _parity_prefix(parity: int) -> tuple[int, ...]:
    """Running sums of the filler block's bytes at positions of one parity (``[k]``: below k)."""
    sums = [0]
    for i, byte in enumerate(_FILLER_BLOCK):
        sums.append(sums[-1] + (byte if i & 1 == parity else 0))
    return tuple(sums)


# The sum of a filler run needs only how much of it sits at even and at odd stream positions:
# the period is even, so a position's parity within the block is its parity in the stream.
_EVEN_PREFIX = _parity_prefix(0)
_ODD_PREFIX = _parity_prefix(1)


# -- checksums ------------------------------------------------------------------------------


def ones_complement_sum(data: bytes | bytearray | memoryview) -> int:
    """The 16-bit ones' complement sum of ``data`` as a residue modulo ``0xFFFF``.

    The value is congruent to the real sum; :func:`internet_checksum` and the frame builders
    fold several such residues together before taking the complement. An odd trailing byte is
    padded with a zero byte, as RFC 1071 prescribes.
    """
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    return value % _MOD


def internet_checksum(data: bytes | bytearray | memoryview) -> int:
    """The RFC 1071 Internet checksum of ``data`` (the value to store in a checksum field)."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    if value == 0:
        return 0xFFFF  # the sum of all-zero words is +0, whose complement is 0xFFFF
    # A non-zero sum of words never folds to +0: end-around carry gives 0xFFFF (-0) instead.
    return _MOD - (value % _MOD or _MOD)


def _complement(total: int) -> int:
    """Checksum field value for a non-zero total of 16-bit words (see internet_checksum)."""
    return _MOD - (total % _MOD or _MOD)


# -- addresses ------------------------------------------------------------------------------


@lru_cache(maxsize=65_536)
def pack_ip(ip: str) -> bytes:
    """The packed form of an IPv4 (4 bytes) or IPv6 (16 bytes) address."""
    try:
        return ipaddress.ip_address(ip).packed
    except ValueError as exc:
        raise InvalidParameterError("IP address", ip, "an IPv4 or IPv6 address") from exc


@lru_cache(maxsize=65_536)
def mac_for_ip(ip: str) -> bytes:
    """A deterministic, locally administered unicast MAC address for ``ip``.

    IPv4 addresses map readably to ``02:00:a.b.c.d`` in hex; IPv6 addresses to ``02:`` and five
    bytes of a BLAKE2b hash, since sixteen bytes do not fit in six.
    """
    packed = pack_ip(ip)
    if len(packed) == 4:
        return b"\x02\x00" + packed
    return b"\x02" + hashlib.blake2b(packed, digest_size=5).digest()


def format_mac(mac: bytes) -> str:
    """``aa:bb:cc:dd:ee:ff`` for a six-byte MAC address."""
    return ":".join(f"{b:02x}" for b in mac)


def _word_sum(packed: bytes) -> int:
    return sum(struct.unpack(f"!{len(packed) // 2}H", packed))


@dataclass(frozen=True, slots=True, kw_only=True)
class PacketPath:
    """Header material for packets from ``src_ip`` to ``dst_ip``, computed once per direction.

    Build one with :meth:`between`; it is cached, so asking again for the same pair is cheap.
    """

    src_ip: str
    dst_ip: str
    version: int
    #: The 14-byte Ethernet header: destination MAC, source MAC, EtherType.
    eth: bytes
    src: bytes
    dst: bytes
    #: Sum of the 16-bit words of both addresses (part of the pseudo-header and IPv4 header).
    addr_sum: int

    @staticmethod
    def between(
        src_ip: str,
        dst_ip: str,
        *,
        src_mac: bytes | None = None,
        dst_mac: bytes | None = None,
    ) -> PacketPath:
        """The path from ``src_ip`` to ``dst_ip``; MACs default to :func:`mac_for_ip`."""
        return _path(src_ip, dst_ip, src_mac, dst_mac)

    def reverse(self) -> PacketPath:
        """The path back, with the MAC addresses swapped."""
        return _path(self.dst_ip, self.src_ip, self.eth[0:6], self.eth[6:12])


@lru_cache(maxsize=16_384)
def _path(src_ip: str, dst_ip: str, src_mac: bytes | None, dst_mac: bytes | None) -> PacketPath:
    src = pack_ip(src_ip)
    dst = pack_ip(dst_ip)
    if len(src) != len(dst):
        raise InvalidParameterError(
            "address pair", (src_ip, dst_ip), "two addresses of the same IP version"
        )
    for label, mac in (("source MAC", src_mac), ("destination MAC", dst_mac)):
        if mac is not None and len(mac) != 6:
            raise InvalidParameterError(label, mac, "6 bytes")
    version = 4 if len(src) == 4 else 6
    ethertype = ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6
    eth = (
        (dst_mac or mac_for_ip(dst_ip))
        + (src_mac or mac_for_ip(src_ip))
        + ethertype.to_bytes(2, "big")
    )
    return PacketPath(
        src_ip=src_ip,
        dst_ip=dst_ip,
        version=version,
        eth=eth,
        src=src,
        dst=dst,
        addr_sum=_word_sum(src) + _word_sum(dst),
    )


# -- filler ---------------------------------------------------------------------------------


def filler_with_sum(offset: int, length: int) -> tuple[bytes, int]:
    """``length`` filler bytes starting at stream ``offset``, and their ones' complement sum.

    The slice depends only on ``offset % FILLER_PERIOD`` and ``length``; the cache makes the
    common case (full segments at a steady phase) a dictionary look-up.
    """
    if length < 0 or offset < 0:
        raise ValueError(f"filler offset and length must be >= 0, got {offset}, {length}")
    return _filler_slice(offset % FILLER_PERIOD, length)


@lru_cache(maxsize=8_192)
def _filler_slice(phase: int, length: int) -> tuple[bytes, int]:
    if phase + length <= len(_FILLER_DOUBLE):
        data = _FILLER_DOUBLE[phase : phase + length]
    else:
        reps = (phase + length) // FILLER_PERIOD + 1
        data = (_FILLER_BLOCK * reps)[phase : phase + length]
    return data, ones_complement_sum(data)


def filler(offset: int, length: int) -> bytes:
    """``length`` bytes of the deterministic inert filler stream, starting at ``offset``."""
    if 0 <= length <= FILLER_PERIOD and offset >= 0:
        phase = offset % FILLER_PERIOD  # a short slice: cheaper than a cache look-up
        return _FILLER_DOUBLE[phase : phase + length]
    return filler_with_sum(offset, length)[0]


def filler_sum(offset: int, length: int) -> int:
    """The ones' complement sum (residue modulo ``0xFFFF``) of :func:`filler` ``(offset,
    length)``, in constant time whatever ``length``, without building the bytes.

    Equal to ``ones_complement_sum(filler(offset, length))``: the run's first byte is a high
    byte, so bytes at the stream positions of ``offset``'s parity weigh 256 and the others 1.
    """
    if length < 0 or offset < 0:
        raise ValueError(f"filler offset and length must be >= 0, got {offset}, {length}")
    phase = offset % FILLER_PERIOD
    periods, rest = divmod(length, FILLER_PERIOD)
    even = periods * _EVEN_PREFIX[FILLER_PERIOD]
    odd = periods * _ODD_PREFIX[FILLER_PERIOD]
    end = phase + rest
    if end <= FILLER_PERIOD:
        even += _EVEN_PREFIX[end] - _EVEN_PREFIX[phase]
        odd += _ODD_PREFIX[end] - _ODD_PREFIX[phase]
    else:
        end -= FILLER_PERIOD
        even += _EVEN_PREFIX[FILLER_PERIOD] - _EVEN_PREFIX[phase] + _EVEN_PREFIX[end]
        odd += _ODD_PREFIX[FILLER_PERIOD] - _ODD_PREFIX[phase] + _ODD_PREFIX[end]
    high, low = (odd, even) if phase & 1 else (even, odd)
    return ((high << 8) + low) % _MOD


# -- frames ---------------------------------------------------------------------------------


def tcp_frame(
    path: PacketPath,
    sport: int,
    dport: int,
    *,
    seq: int,
    ack: int = 0,
    flags: int = TCP_ACK,
    payload: bytes = b"",
    window: int = 65_535,
    options: bytes = b"",
    ip_id: int = 0,
    ttl: int = 64,
    flow_label: int = 0,
    payload_sum: int | None = None,
) -> bytes:
    """One Ethernet frame carrying a TCP segment along ``path``.

    ``options`` must already be padded to a multiple of four bytes. ``payload_sum`` may pass
    :func:`ones_complement_sum` of ``payload`` when the caller has it cached. IPv4 packets set
    DF; ``ip_id`` applies to IPv4 and ``flow_label`` to IPv6.
    """
    if len(options) & 3 or len(options) > 40:
        raise InvalidParameterError(
            "TCP options length", len(options), "a multiple of 4, at most 40"
        )
    # Fields that share a word with others must be checked here; struct checks the rest.
    if not 0 <= flags <= 0x1FF:
        raise InvalidParameterError("TCP flags", flags, "0..0x1ff")
    if not 0 <= flow_label <= 0xFFFFF:
        raise InvalidParameterError("IPv6 flow label", flow_label, "0..0xfffff (20 bits)")
    try:
        return tcp_frame_fast(
            path, sport, dport, seq, ack, flags, payload,
            ones_complement_sum(payload) if payload_sum is None else payload_sum,
            window, options, ip_id, ttl, flow_label,
        )  # fmt: skip
    except struct.error as exc:
        raise InvalidParameterError("TCP/IP header field", str(exc), _FIELD_RANGES) from exc


def tcp_frame_fast(
    path: PacketPath,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes,
    payload_sum: int,
    window: int,
    options: bytes,
    ip_id: int,
    ttl: int,
    flow_label: int,
) -> bytes:
    """:func:`tcp_frame` for bulk callers: positional, unchecked options, sum required.

    Positional arguments because keyword passing is a measurable share of the per-packet cost.
    """
    return tcp_header_fast(
        path, sport, dport, seq, ack, flags, len(payload), payload_sum, window, options, ip_id,
        ttl, flow_label,
    ) + payload  # fmt: skip


def tcp_header_fast(
    path: PacketPath,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    payload_len: int,
    payload_sum: int,
    window: int,
    options: bytes,
    ip_id: int,
    ttl: int,
    flow_label: int,
) -> bytes:
    """The Ethernet, IP and TCP headers (options included) of a segment of ``payload_len``
    bytes whose payload sums to ``payload_sum``: the frame less its payload.

    Lengths and checksums are those of the whole segment, so header plus the first bytes of the
    payload is exactly what a capture cut to a snapshot length stores.
    """
    opt_len = len(options)
    tcp_len = 20 + opt_len + payload_len
    offset_flags = ((5 + (opt_len >> 2)) << 12) | flags
    total = (
        path.addr_sum + IPPROTO_TCP + tcp_len + sport + dport
        + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
        + offset_flags + window + payload_sum
    )  # fmt: skip
    if opt_len:
        total += _word_sum(options)
    tcp_sum = _MOD - (total % _MOD or _MOD)  # _complement, inlined on the hot path
    if path.version == 4:
        ip_len = 20 + tcp_len
        ip_total = 0x4500 + ip_len + ip_id + _IPV4_DF + ((ttl << 8) | IPPROTO_TCP) + path.addr_sum
        header = _V4_TCP_PACK(
            path.eth, 0x45, 0, ip_len, ip_id, _IPV4_DF, ttl, IPPROTO_TCP,
            _MOD - (ip_total % _MOD or _MOD),
            path.src, path.dst, sport, dport, seq, ack, offset_flags, window, tcp_sum, 0,
        )  # fmt: skip
    else:
        header = _V6_TCP.pack(
            path.eth, 0x60000000 | flow_label, tcp_len, IPPROTO_TCP, ttl,
            path.src, path.dst, sport, dport, seq, ack, offset_flags, window, tcp_sum, 0,
        )  # fmt: skip
    if opt_len:
        return header + options
    return header


def udp_frame(
    path: PacketPath,
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    ip_id: int = 0,
    ttl: int = 64,
    flow_label: int = 0,
    payload_sum: int | None = None,
) -> bytes:
    """One Ethernet frame carrying a UDP datagram along ``path`` (checksum always set)."""
    return udp_header(
        path, sport, dport, len(payload),
        ones_complement_sum(payload) if payload_sum is None else payload_sum,
        ip_id=ip_id, ttl=ttl, flow_label=flow_label,
    ) + payload  # fmt: skip


def udp_header(
    path: PacketPath,
    sport: int,
    dport: int,
    payload_len: int,
    payload_sum: int,
    *,
    ip_id: int = 0,
    ttl: int = 64,
    flow_label: int = 0,
) -> bytes:
    """The Ethernet, IP and UDP headers of a datagram of ``payload_len`` bytes summing to
    ``payload_sum`` (see :func:`tcp_header_fast`)."""
    udp_len = 8 + payload_len
    limit = 0xFFFF - (8 if path.version == 6 else 28)
    if payload_len > limit:
        raise InvalidParameterError("UDP payload length", payload_len, f"at most {limit} bytes")
    if not 0 <= flow_label <= 0xFFFFF:
        raise InvalidParameterError("IPv6 flow label", flow_label, "0..0xfffff (20 bits)")
    # The UDP length appears twice in the sum: once in the pseudo-header, once in the header.
    total = path.addr_sum + IPPROTO_UDP + udp_len + sport + dport + udp_len + payload_sum
    # RFC 768: a computed zero is sent as all ones, since zero means "no checksum".
    udp_sum = _complement(total) or 0xFFFF
    try:
        if path.version == 4:
            ip_len = 20 + udp_len
            ip_sum = _complement(
                0x4500 + ip_len + ip_id + _IPV4_DF + ((ttl << 8) | IPPROTO_UDP) + path.addr_sum
            )
            return _V4_UDP.pack(
                path.eth, 0x45, 0, ip_len, ip_id, _IPV4_DF, ttl, IPPROTO_UDP, ip_sum,
                path.src, path.dst, sport, dport, udp_len, udp_sum,
            )  # fmt: skip
        return _V6_UDP.pack(
            path.eth, 0x60000000 | flow_label, udp_len, IPPROTO_UDP, ttl,
            path.src, path.dst, sport, dport, udp_len, udp_sum,
        )  # fmt: skip
    except struct.error as exc:
        raise InvalidParameterError("UDP/IP header field", str(exc), _FIELD_RANGES) from exc


def tcp_packet(
    src_ip: str,
    dst_ip: str,
    sport: int,
    dport: int,
    *,
    seq: int,
    ack: int = 0,
    flags: int = TCP_ACK,
    payload: bytes = b"",
    window: int = 65_535,
    options: bytes = b"",
    ip_id: int = 0,
    ttl: int = 64,
    flow_label: int = 0,
) -> bytes:
    """Convenience form of :func:`tcp_frame` taking addresses instead of a :class:`PacketPath`."""
    return tcp_frame(
        PacketPath.between(src_ip, dst_ip), sport, dport,
        seq=seq, ack=ack, flags=flags, payload=payload, window=window, options=options,
        ip_id=ip_id, ttl=ttl, flow_label=flow_label,
    )  # fmt: skip


def udp_packet(
    src_ip: str,
    dst_ip: str,
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    ip_id: int = 0,
    ttl: int = 64,
    flow_label: int = 0,
) -> bytes:
    """Convenience form of :func:`udp_frame` taking addresses instead of a :class:`PacketPath`."""
    return udp_frame(
        PacketPath.between(src_ip, dst_ip), sport, dport, payload,
        ip_id=ip_id, ttl=ttl, flow_label=flow_label,
    )  # fmt: skip
