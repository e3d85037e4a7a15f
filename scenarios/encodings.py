"""DNS tunnelling tool encodings: query names in the style of real tools, and exact decoders.

Responsibility: turn bytes into DNS query names the way real tunnelling and exfiltration tools do
(alphabet, header, label layout, length limits), and turn such names back into the bytes, so that
scenario generators can synthesize tool-like DNS tunnel traffic and a property test can check that
every tunnel payload decodes back to the data it carried. Pure and deterministic: no I/O, no global
random state; equal arguments give equal names. Names are returned without the trailing root dot;
their length in characters equals their wire length in octets minus two, so the 253-character limit
is the 255-octet limit of RFC 1035 (iodine-base128 names hold characters U+00BC..U+00FD, one octet
each when written as Latin-1 on the wire).

What each encoding copies from its tool, and where it simplifies
-----------------------------------------------------------------

``iodine-base32`` / ``iodine-base64`` / ``iodine-base128`` (iodine, protocol 0x00000502,
``doc/proto_00000502.txt``, ``src/encoding.c``, ``src/base{32,64,128}.c``, ``client.c:send_chunk``):
an upstream data query is one hex character (the user id), three base32 characters holding the
header bits ``SSS FFFF DDD GGGG L`` (upstream packet seqno, upstream fragment, downstream seqno,
downstream fragment, last-fragment flag), one cache-miss-counter character from ``a-z0-9``, then the
payload in the negotiated codec; ``build_hostname`` puts a dot after every 57 payload characters, so
the first label is 5 + 57 = 62 characters, then the topdomain follows. Codecs, exactly iodine's
alphabets and bit order (MSB first, no padding): base32 ``a-z0-5`` (case-insensitive on decode, as
iodine's reverse table is), base64 ``a-zA-Z-0-9+`` (the client only selects it after its upstream
codec check shows the relay preserves case and ``+``), base128 ``a-zA-Z0-9`` then the octets
0xBC..0xFD (selected only when high octets survive). Simplifications: ``session`` is the 4-bit user
id; ``seq`` is the 7-bit ``seqno << 4 | fragment``; the downstream fields and the last-fragment flag
are sent as zero; the cache-miss counter is ``seq % 36`` (iodine increments it per data query); the
payload is arbitrary bytes, whereas iodine sends zlib-compressed IP packets; the 0x00000800 protocol
of iodine's development branch and the Base64u codec are not modelled.

``dnscat2-hex`` (dnscat2, ``doc/protocol.md``, ``client/tunnel_drivers/driver_dns.c``): the whole
dnscat2 packet is lowercase hex, a dot after every 60 hex characters, followed by ``.<domain>``,
or, with no authoritative domain (``domain=""`` here), preceded by the tag ``dnscat.``. The packet
is an unencrypted MSG: ``packet_id`` (u16), type 0x01, ``session_id`` (u16), ``seq`` (u16),
``ack`` (u16), data, all big-endian. ``seq`` is a byte offset, as in dnscat2, so :func:`next_seq`
advances it by the bytes sent. Simplifications: the ``packet_id`` (random or incrementing in
dnscat2) is a fixed hash of session and seq; ``ack`` is a constant per session (no downstream data
is modelled, so it never moves); dnscat2's default encryption (ENC packets) and SYN/FIN packets are
not modelled.

``dns2tcp-base64`` (dns2tcp 0.5, ``common/includes/packet.h``, ``client/requests.c``,
``common/base64.c``, ``common/dns.c``): a 7-byte ``t_packet`` (``session_id``, ``ack_seq``,
``seq``, u16 each, then ``type``: DATA 0x08, or NOP 0x04 when there is no data) followed by the
data, base64 with the standard ``A-Za-z0-9+/`` alphabet and no padding (dns2tcp writes ``/`` and
``+`` into labels), cut into 63-character labels by ``dns_encode``. Simplifications: ``ack_seq`` is
a constant per session; 16-bit fields are big-endian; the client's own name budget
(``MAX_HOST_NAME_ENCODED`` 200) is not applied by :func:`capacity` (see :func:`tool_chunk_size`);
compression is not modelled.

``det-hex`` (DET, SensePost Data Exfiltration Toolkit, ``det.py`` and ``plugins/dns.py``): DET sends
``"<jobid>|!|<packet index>|!|<hex of the file chunk>"`` through its DNS plugin, which hex-encodes
that whole string again and prefixes the 7-character job id in clear, then cuts the result into
63-character labels before the configured domain; a payload byte therefore costs four characters.
Simplifications: ``session`` maps to a 7-character job id in base 62 over DET's alphabet
(``ascii_letters + digits``; DET draws seven distinct random characters); ``seq`` is the packet
index, capped at 999 999; one message fits one query (DET spreads a long message over several
queries and detects the end by a short one); AES and zlib, REGISTER and DONE messages are not
modelled.

``words`` (no real tool; a synthetic evasive encoding): every byte becomes one of 256 common
four-letter English words (:data:`WORD_LIST`), concatenated 15 words (60 characters) per label, with
a 4-byte header (session, seq; u16 each) encoded the same way. The names contain no digits and
read like concatenated dictionary words, in the manner of dictionary-based DGAs; the point is to
exercise lexical features (character classes, n-grams, pronounceability). Measured honestly: the
unigram character entropy of these names (about 4.2 bits per character for long payloads, the
letter entropy of English) is lower than that of base32/base64/base128 names but *not* lower than
that of hex names (at most 4 bits per character); what is far lower than hex is the information
carried per character (2 bits instead of 4). For comparison, DET's double hex gives names of only
about 2.9 bits per character, from a handful of digits and letters.

Downstream data (the answers the tools send back) is exposed as data only: :data:`TOOL_QTYPES` and
:data:`DOWNSTREAM`. No wire-format records are built here.
"""

from __future__ import annotations

import base64
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from harness.errors import InvalidParameterError

__all__ = [
    "DOWNSTREAM",
    "IODINE_PRIVATE_QTYPE",
    "MAX_LABEL_LEN",
    "MAX_NAME_LEN",
    "SPECS",
    "TOOL_QTYPES",
    "WORD_LIST",
    "DecodedChunk",
    "EncodingSpec",
    "TunnelEncoding",
    "capacity",
    "chunk_stream",
    "decode_name",
    "encode_chunk",
    "next_seq",
    "reassemble",
    "tool_chunk_size",
    "tunnel_labels",
]

#: RFC 1035 limits, in the text form without the root dot (253 characters = 255 wire octets).
MAX_NAME_LEN = 253
MAX_LABEL_LEN = 63

#: iodine's PRIVATE query type (``-T PRIVATE``), from the private-use range.
IODINE_PRIVATE_QTYPE = 65399


class TunnelEncoding(StrEnum):
    IODINE_BASE32 = "iodine-base32"
    IODINE_BASE64 = "iodine-base64"
    IODINE_BASE128 = "iodine-base128"
    DNSCAT2_HEX = "dnscat2-hex"
    DNS2TCP_BASE64 = "dns2tcp-base64"
    DET_HEX = "det-hex"
    WORDS = "words"


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodedChunk:
    """What one query name carried: the tool's session and sequence number, and the data."""

    session: int
    seq: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodingSpec:
    """Static facts about one encoding, for generators and tests."""

    encoding: TunnelEncoding
    #: The tool imitated ("synthetic" for ``words``).
    tool: str
    #: Every character the tool itself may write into the name (header and payload labels; the
    #: domain and dnscat2's ``dnscat`` tag excluded).
    alphabet: frozenset[str]
    #: Whether the payload survives a resolver that changes letter case (DNS 0x20 randomisation).
    case_insensitive: bool
    max_session: int
    max_seq: int
    #: True when ``seq`` counts bytes (dnscat2) rather than queries.
    seq_counts_bytes: bool


# --- alphabets ------------------------------------------------------------------------------

_HEX = "0123456789abcdef"
_IODINE_B32 = "abcdefghijklmnopqrstuvwxyz012345"
_IODINE_B64 = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789+"
_IODINE_B128 = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + "".join(
    chr(c) for c in range(0xBC, 0xFE)
)
_IODINE_CMC = "abcdefghijklmnopqrstuvwxyz0123456789"
_IODINE_HEADER_LEN = 5
_IODINE_LABEL = 57
_DNSCAT2_TAG = "dnscat"
_DNSCAT2_LABEL = 60
_DNSCAT2_MSG = 0x01
_DNSCAT2_HEADER_LEN = 9
_DNS2TCP_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DNS2TCP_DATA = 0x08
_DNS2TCP_NOP = 0x04
_DNS2TCP_HEADER_LEN = 7
_DET_JOBID_ALPHABET = string.ascii_letters + string.digits
_DET_JOBID_LEN = 7
_DET_SEP = "|!|"
_DET_MAX_SEQ = 999_999
_WORDS_PER_LABEL = 15

_WORDS_TEXT = """
    able acid also army baby back band base bear been beer belt bird blue body bond book born
    both bulk burn busy call came card care cash cell chip club coal code come cool copy core
    crew dark date days deal deep dial disc does done dose draw drop dust duty earn east edge
    even ever face fail fall fast fate feed feet felt fill film fine firm five flat food form
    four from fuel fund game gave gift girl glad goes golf good gray grow hair hall hang hard
    head heat help hero high hire hole home host hour hung idea into item join just keep kind
    knee knew lack laid land last late left life like link list load lock long lord lose lost
    luck mail make male mark meal meat meet mere milk mind miss mode moon most much name navy
    neck news nice none nose okay only open over pace page pain palm part pass path pick pipe
    play plot plus pool port pull pure race rain rare read real rely rest rich ring rise rock
    roll room rose rule safe sake salt sand save seed seem self send sent shop show side sign
    size slip snow soil sold some soon soul star stay stop suit take talk tall tape team tend
    test text that then thin thus till tiny tone tour tree trip tune twin unit used user vast
    view wage wake walk want wash ways wear week went west when wife wild wind wing wise with
    wood work year zero
"""
#: 256 common four-letter English words; byte ``b`` is ``WORD_LIST[b]``. Equal length makes the
#: concatenation parseable without separators. Chosen by spacing evenly through an alphabetical list
#: of common four-letter words, not by letter frequency.
WORD_LIST: tuple[str, ...] = tuple(_WORDS_TEXT.split())
_WORD_INDEX: Mapping[str, int] = MappingProxyType({w: i for i, w in enumerate(WORD_LIST)})
_WORD_LEN = 4

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _ascii_lower(text: str) -> str:
    """Lower-case A-Z only: DNS case-insensitivity covers ASCII letters, never octets >= 0x80."""
    return text.translate(_ASCII_LOWER)


# --- bit packing ----------------------------------------------------------------------------


def _radix_len(n_bytes: int, bits: int) -> int:
    return (8 * n_bytes + bits - 1) // bits


def _radix_encode(data: bytes, alphabet: str, bits: int) -> str:
    """MSB-first packing into ``bits``-bit characters, last character zero-filled, no padding."""
    if bits == 5 and len(data) >= 32:
        # base32 is pure Python in CPython 3.11 (about 150 ns a byte): unpack the bits with
        # NumPy instead, five at a time.
        return _radix5(data, alphabet)
    if bits in _STD_RADIX:
        # RFC 4648 base32 and base64 pack the same way; only the alphabet and the padding
        # differ, and the C implementation is far faster than the loop below.
        encode, standard = _STD_RADIX[bits]
        return encode(data).rstrip(b"=").decode("ascii").translate(_table(standard, alphabet))
    mask = (1 << bits) - 1
    out: list[str] = []
    acc = 0
    held = 0
    for byte in data:
        acc = (acc << 8) | byte
        held += 8
        while held >= bits:
            held -= bits
            out.append(alphabet[(acc >> held) & mask])
        acc &= (1 << held) - 1
    if held:
        out.append(alphabet[(acc << (bits - held)) & mask])
    return "".join(out)


_FIVE_BITS = np.array([16, 8, 4, 2, 1], dtype=np.uint8)


def _radix5(data: bytes, alphabet: str) -> str:
    """:func:`_radix_encode` with 5-bit characters (as base32, without padding)."""
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    pad = -len(bits) % 5
    if pad:
        bits = np.concatenate((bits, np.zeros(pad, dtype=np.uint8)))
    values = bits.reshape(-1, 5) @ _FIVE_BITS
    text: str = _ascii_table(alphabet)[values].tobytes().decode("ascii")
    return text


@lru_cache(maxsize=16)
def _ascii_table(alphabet: str) -> npt.NDArray[np.uint8]:
    return np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)


_STD_RADIX: Mapping[int, tuple[Callable[[bytes], bytes], str]] = MappingProxyType(
    {
        5: (base64.b32encode, string.ascii_uppercase + "234567"),
        6: (
            base64.b64encode,
            string.ascii_letters[26:] + string.ascii_letters[:26] + "0123456789+/",
        ),
    }
)


@lru_cache(maxsize=16)
def _table(standard: str, alphabet: str) -> dict[int, int]:
    return str.maketrans(standard, alphabet)


def _radix_decode(text: str, reverse: Mapping[str, int], bits: int) -> bytes | None:
    """Inverse of :func:`_radix_encode`; ``None`` unless ``text`` is exactly what it writes."""
    n_bytes = len(text) * bits // 8
    if _radix_len(n_bytes, bits) != len(text):
        return None
    out = bytearray()
    acc = 0
    held = 0
    for char in text:
        value = reverse.get(char)
        if value is None:
            return None
        acc = (acc << bits) | value
        held += bits
        if held >= 8:
            held -= 8
            out.append((acc >> held) & 0xFF)
            acc &= (1 << held) - 1
    if acc:
        return None
    return bytes(out)


def _reverse(alphabet: str) -> Mapping[str, int]:
    return MappingProxyType({c: i for i, c in enumerate(alphabet)})


def _split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _mix16(first: int, second: int) -> int:
    """A fixed 16-bit hash (FNV-1a over both values' 8 big-endian bytes, folded) for
    cache-busting fields the decoder ignores."""
    h = _fnv(0x811C9DC5, first)  # the first value is a session id: the same for a whole stream
    if 0 <= second < 0x10000:  # a sequence number: six zero bytes (cached), then two
        h = _fnv_zeros(h)
        h = ((h ^ (second >> 8)) * 0x01000193) & 0xFFFFFFFF
        h = ((h ^ (second & 0xFF)) * 0x01000193) & 0xFFFFFFFF
    else:
        for byte in second.to_bytes(8, "big"):
            h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return (h ^ (h >> 16)) & 0xFFFF


@lru_cache(maxsize=1_024)
def _fnv_zeros(h: int) -> int:
    for _ in range(6):
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


@lru_cache(maxsize=1_024)
def _fnv(h: int, value: int) -> int:
    for byte in value.to_bytes(8, "big"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def _malformed(name: str, encoding: TunnelEncoding, why: str) -> InvalidParameterError:
    return InvalidParameterError("name", name, f"a {encoding} query name ({why})")


# --- per-tool layouts -----------------------------------------------------------------------


class _Codec:
    """One tool's layout: payload labels from (data, session, seq), and back from their text."""

    encoding: TunnelEncoding

    def labels(self, data: bytes, session: int, seq: int) -> list[str]:
        raise NotImplementedError

    def parse(self, text: str, name: str) -> DecodedChunk:
        """Decode the payload labels joined without dots (every tool here ignores dots)."""
        raise NotImplementedError


class _Iodine(_Codec):
    def __init__(self, encoding: TunnelEncoding, alphabet: str, bits: int) -> None:
        self.encoding = encoding
        self.alphabet = alphabet
        self.bits = bits
        self.case_insensitive = bits == 5
        self.reverse = _reverse(alphabet)

    def labels(self, data: bytes, session: int, seq: int) -> list[str]:
        seqno, fragment = seq >> 4, seq & 0xF
        header = (
            _HEX[session]
            + _IODINE_B32[(seqno << 2) | (fragment >> 2)]
            + _IODINE_B32[(fragment & 0x3) << 3]  # low fragment bits, downstream seqno 0
            + _IODINE_B32[0]  # downstream fragment 0, last-fragment flag 0
            + _IODINE_CMC[seq % len(_IODINE_CMC)]
        )
        parts = _split(_radix_encode(data, self.alphabet, self.bits), _IODINE_LABEL) or [""]
        parts[0] = header + parts[0]
        return parts

    def parse(self, text: str, name: str) -> DecodedChunk:
        if len(text) < _IODINE_HEADER_LEN:
            raise _malformed(name, self.encoding, "shorter than iodine's 5-character header")
        header = _ascii_lower(text[:_IODINE_HEADER_LEN])
        b32 = _B32_REVERSE
        if (
            header[0] not in _HEX
            or any(c not in b32 for c in header[1:4])
            or header[4] not in _IODINE_CMC
        ):
            raise _malformed(name, self.encoding, "bad iodine data header")
        code1, code2 = b32[header[1]], b32[header[2]]
        seqno, fragment = code1 >> 2, ((code1 & 0x3) << 2) | (code2 >> 3)
        payload = text[_IODINE_HEADER_LEN:]
        if self.case_insensitive:
            payload = _ascii_lower(payload)
        data = _radix_decode(payload, self.reverse, self.bits)
        if data is None:
            raise _malformed(name, self.encoding, f"payload is not iodine {self.bits}-bit text")
        return DecodedChunk(session=_HEX.index(header[0]), seq=(seqno << 4) | fragment, data=data)


_B32_REVERSE = _reverse(_IODINE_B32)


class _Dnscat2(_Codec):
    encoding = TunnelEncoding.DNSCAT2_HEX

    def labels(self, data: bytes, session: int, seq: int) -> list[str]:
        packet = (
            _mix16(session, seq).to_bytes(2, "big")
            + bytes([_DNSCAT2_MSG])
            + session.to_bytes(2, "big")
            + seq.to_bytes(2, "big")
            + _mix16(session, 0x10000).to_bytes(2, "big")
            + data
        )
        return _split(packet.hex(), _DNSCAT2_LABEL)

    def parse(self, text: str, name: str) -> DecodedChunk:
        hex_text = _ascii_lower(text)
        if len(hex_text) % 2 or any(c not in _HEX for c in hex_text):
            raise _malformed(name, self.encoding, "payload is not hex")
        packet = bytes.fromhex(hex_text)
        if len(packet) < _DNSCAT2_HEADER_LEN or packet[2] != _DNSCAT2_MSG:
            raise _malformed(name, self.encoding, "not a dnscat2 MSG packet")
        return DecodedChunk(
            session=int.from_bytes(packet[3:5], "big"),
            seq=int.from_bytes(packet[5:7], "big"),
            data=packet[_DNSCAT2_HEADER_LEN:],
        )


class _Dns2tcp(_Codec):
    encoding = TunnelEncoding.DNS2TCP_BASE64
    reverse = _reverse(_DNS2TCP_B64)

    def labels(self, data: bytes, session: int, seq: int) -> list[str]:
        packet = (
            session.to_bytes(2, "big")
            + _mix16(session, 0x10000).to_bytes(2, "big")
            + seq.to_bytes(2, "big")
            + bytes([_DNS2TCP_DATA if data else _DNS2TCP_NOP])
            + data
        )
        return _split(_radix_encode(packet, _DNS2TCP_B64, 6), MAX_LABEL_LEN)

    def parse(self, text: str, name: str) -> DecodedChunk:
        packet = _radix_decode(text, self.reverse, 6)
        if packet is None:
            raise _malformed(name, self.encoding, "payload is not dns2tcp base64")
        if len(packet) < _DNS2TCP_HEADER_LEN:
            raise _malformed(name, self.encoding, "shorter than dns2tcp's 7-byte header")
        kind, data = packet[6], packet[_DNS2TCP_HEADER_LEN:]
        if kind != (_DNS2TCP_DATA if data else _DNS2TCP_NOP):
            raise _malformed(name, self.encoding, "not a dns2tcp DATA or NOP packet")
        return DecodedChunk(
            session=int.from_bytes(packet[0:2], "big"),
            seq=int.from_bytes(packet[4:6], "big"),
            data=data,
        )


class _Det(_Codec):
    encoding = TunnelEncoding.DET_HEX
    reverse = _reverse(_DET_JOBID_ALPHABET)

    @staticmethod
    @lru_cache(maxsize=256)
    def jobid(session: int) -> str:
        chars = []
        for _ in range(_DET_JOBID_LEN):
            session, digit = divmod(session, len(_DET_JOBID_ALPHABET))
            chars.append(_DET_JOBID_ALPHABET[digit])
        return "".join(reversed(chars))

    def labels(self, data: bytes, session: int, seq: int) -> list[str]:
        jobid = self.jobid(session)
        message = f"{jobid}{_DET_SEP}{seq}{_DET_SEP}{data.hex()}"
        return _split(jobid + message.encode("ascii").hex(), MAX_LABEL_LEN)

    def parse(self, text: str, name: str) -> DecodedChunk:
        jobid, outer = text[:_DET_JOBID_LEN], _ascii_lower(text[_DET_JOBID_LEN:])
        if len(jobid) < _DET_JOBID_LEN or any(c not in self.reverse for c in jobid):
            raise _malformed(name, self.encoding, "no 7-character DET job id")
        if len(outer) % 2 or any(c not in _HEX for c in outer):
            raise _malformed(name, self.encoding, "payload after the job id is not hex")
        try:
            message = bytes.fromhex(outer).decode("ascii")
        except UnicodeDecodeError:
            raise _malformed(name, self.encoding, "message is not ASCII") from None
        fields = message.split(_DET_SEP)
        if len(fields) != 3 or fields[0] != jobid:
            raise _malformed(name, self.encoding, "message is not 'jobid|!|index|!|hex'")
        index, inner = fields[1], fields[2]
        if (
            not index
            or any(c not in string.digits for c in index)
            or (index[0] == "0" and index != "0")
            or int(index) > _DET_MAX_SEQ
        ):
            raise _malformed(name, self.encoding, "packet index is not a decimal in range")
        if len(inner) % 2 or any(c not in _HEX for c in inner):
            raise _malformed(name, self.encoding, "file chunk is not lowercase hex")
        session = 0
        for char in jobid:
            session = session * len(_DET_JOBID_ALPHABET) + self.reverse[char]
        return DecodedChunk(session=session, seq=int(index), data=bytes.fromhex(inner))


class _Words(_Codec):
    encoding = TunnelEncoding.WORDS

    def labels(self, data: bytes, session: int, seq: int) -> list[str]:
        stream = session.to_bytes(2, "big") + seq.to_bytes(2, "big") + data
        return _split("".join(WORD_LIST[b] for b in stream), _WORDS_PER_LABEL * _WORD_LEN)

    def parse(self, text: str, name: str) -> DecodedChunk:
        text = _ascii_lower(text)
        words = _split(text, _WORD_LEN)
        if len(text) % _WORD_LEN or len(words) < 4 or any(w not in _WORD_INDEX for w in words):
            raise _malformed(name, self.encoding, "not a run of words from WORD_LIST")
        stream = bytes(_WORD_INDEX[w] for w in words)
        return DecodedChunk(
            session=int.from_bytes(stream[0:2], "big"),
            seq=int.from_bytes(stream[2:4], "big"),
            data=stream[4:],
        )


_CODECS: Mapping[TunnelEncoding, _Codec] = MappingProxyType(
    {
        TunnelEncoding.IODINE_BASE32: _Iodine(TunnelEncoding.IODINE_BASE32, _IODINE_B32, 5),
        TunnelEncoding.IODINE_BASE64: _Iodine(TunnelEncoding.IODINE_BASE64, _IODINE_B64, 6),
        TunnelEncoding.IODINE_BASE128: _Iodine(TunnelEncoding.IODINE_BASE128, _IODINE_B128, 7),
        TunnelEncoding.DNSCAT2_HEX: _Dnscat2(),
        TunnelEncoding.DNS2TCP_BASE64: _Dns2tcp(),
        TunnelEncoding.DET_HEX: _Det(),
        TunnelEncoding.WORDS: _Words(),
    }
)

_IODINE_HEADER_CHARS = frozenset(_HEX + _IODINE_B32 + _IODINE_CMC)

#: Static facts per encoding.
SPECS: Mapping[TunnelEncoding, EncodingSpec] = MappingProxyType(
    {
        TunnelEncoding.IODINE_BASE32: EncodingSpec(
            encoding=TunnelEncoding.IODINE_BASE32,
            tool="iodine",
            alphabet=_IODINE_HEADER_CHARS | frozenset(_IODINE_B32),
            case_insensitive=True,
            max_session=0xF,
            max_seq=0x7F,
            seq_counts_bytes=False,
        ),
        TunnelEncoding.IODINE_BASE64: EncodingSpec(
            encoding=TunnelEncoding.IODINE_BASE64,
            tool="iodine",
            alphabet=_IODINE_HEADER_CHARS | frozenset(_IODINE_B64),
            case_insensitive=False,
            max_session=0xF,
            max_seq=0x7F,
            seq_counts_bytes=False,
        ),
        TunnelEncoding.IODINE_BASE128: EncodingSpec(
            encoding=TunnelEncoding.IODINE_BASE128,
            tool="iodine",
            alphabet=_IODINE_HEADER_CHARS | frozenset(_IODINE_B128),
            case_insensitive=False,
            max_session=0xF,
            max_seq=0x7F,
            seq_counts_bytes=False,
        ),
        TunnelEncoding.DNSCAT2_HEX: EncodingSpec(
            encoding=TunnelEncoding.DNSCAT2_HEX,
            tool="dnscat2",
            alphabet=frozenset(_HEX),
            case_insensitive=True,
            max_session=0xFFFF,
            max_seq=0xFFFF,
            seq_counts_bytes=True,
        ),
        TunnelEncoding.DNS2TCP_BASE64: EncodingSpec(
            encoding=TunnelEncoding.DNS2TCP_BASE64,
            tool="dns2tcp",
            alphabet=frozenset(_DNS2TCP_B64),
            case_insensitive=False,
            max_session=0xFFFF,
            max_seq=0xFFFF,
            seq_counts_bytes=False,
        ),
        TunnelEncoding.DET_HEX: EncodingSpec(
            encoding=TunnelEncoding.DET_HEX,
            tool="DET",
            alphabet=frozenset(_DET_JOBID_ALPHABET),
            case_insensitive=False,
            max_session=len(_DET_JOBID_ALPHABET) ** _DET_JOBID_LEN - 1,
            max_seq=_DET_MAX_SEQ,
            seq_counts_bytes=False,
        ),
        TunnelEncoding.WORDS: EncodingSpec(
            encoding=TunnelEncoding.WORDS,
            tool="synthetic",
            alphabet=frozenset("".join(WORD_LIST)),
            case_insensitive=True,
            max_session=0xFFFF,
            max_seq=0xFFFF,
            seq_counts_bytes=False,
        ),
    }
)

#: Query types each tool uses, the one it favours (or autodetects first) first. iodine: NULL and
#: PRIVATE (``TYPE65399``, RFC 3597 form) carry raw downstream data, then TXT, SRV, MX, CNAME, A in
#: decreasing bandwidth (README, "Operational info"). dnscat2: picks at random among its selected
#: types, default TXT, CNAME, MX; A and AAAA supported. dns2tcp: TXT (default) or KEY. DET: its DNS
#: plugin sends dnslib's default question, A, and gets no data back. words: synthetic, A.
TOOL_QTYPES: Mapping[TunnelEncoding, tuple[str, ...]] = MappingProxyType(
    {
        TunnelEncoding.IODINE_BASE32: ("NULL", "TYPE65399", "TXT", "SRV", "MX", "CNAME", "A"),
        TunnelEncoding.IODINE_BASE64: ("NULL", "TYPE65399", "TXT", "SRV", "MX", "CNAME", "A"),
        TunnelEncoding.IODINE_BASE128: ("NULL", "TYPE65399", "TXT", "SRV", "MX", "CNAME", "A"),
        TunnelEncoding.DNSCAT2_HEX: ("TXT", "CNAME", "MX", "A", "AAAA"),
        TunnelEncoding.DNS2TCP_BASE64: ("TXT", "KEY"),
        TunnelEncoding.DET_HEX: ("A",),
        TunnelEncoding.WORDS: ("A",),
    }
)

_IODINE_DOWNSTREAM: Mapping[str, str] = MappingProxyType(
    {
        "NULL": "raw bytes after iodine's 2-byte downstream header",
        "TYPE65399": "raw bytes after iodine's 2-byte downstream header, as NULL",
        "TXT": "codec char t/s/u/v/r (base32/base64/base64u/base128/raw), then the data, "
        "chopped into strings of at most 255 bytes",
        "SRV": "hostname(s) under the topdomain: codec char h/i/j/k (base32/base64/base64u/"
        "base128) then the data; several targets ordered by priority 10, 20, ...",
        "MX": "hostname(s) as for SRV, ordered by preference 10, 20, ...",
        "CNAME": "one hostname: codec char h/i/j/k then the encoded data",
        "A": "answered with a CNAME hostname encoded as for CNAME",
    }
)

#: How each tool's answers carry downstream data, per query type (descriptive; no records built).
DOWNSTREAM: Mapping[TunnelEncoding, Mapping[str, str]] = MappingProxyType(
    {
        TunnelEncoding.IODINE_BASE32: _IODINE_DOWNSTREAM,
        TunnelEncoding.IODINE_BASE64: _IODINE_DOWNSTREAM,
        TunnelEncoding.IODINE_BASE128: _IODINE_DOWNSTREAM,
        TunnelEncoding.DNSCAT2_HEX: MappingProxyType(
            {
                "TXT": "the hex-encoded dnscat2 packet",
                "CNAME": "the hex packet as a name under the domain (or after the dnscat. tag)",
                "MX": "as CNAME; the preference is random and ignored",
                "A": "several records, each first byte a sequence number for re-ordering, "
                "3 data bytes each; the first data byte is the length",
                "AAAA": "as A, with 15 data bytes per record",
            }
        ),
        TunnelEncoding.DNS2TCP_BASE64: MappingProxyType(
            {
                "TXT": "several answers, each an index char ('A' + n) then base64 text",
                "KEY": "the same index char and base64 text directly in the KEY RDATA",
            }
        ),
        TunnelEncoding.DET_HEX: MappingProxyType(
            {"A": "none: DET's DNS listener only records query names (exfiltration only)"}
        ),
        TunnelEncoding.WORDS: MappingProxyType({"A": "none modelled (synthetic encoding)"}),
    }
)


# --- argument checking ----------------------------------------------------------------------


def _encoding(value: object) -> TunnelEncoding:
    if isinstance(value, TunnelEncoding):
        return value
    if isinstance(value, str):
        try:
            return TunnelEncoding(value)
        except ValueError:
            pass
    raise InvalidParameterError("encoding", value, "one of " + ", ".join(TunnelEncoding))


def _domain(value: object, encoding: TunnelEncoding) -> str:
    """Lower-cased domain without the root dot; ``""`` only for dnscat2's tag form."""
    if not isinstance(value, str):
        raise InvalidParameterError("domain", value, "a DNS domain as a string")
    domain = _ascii_lower(value[:-1] if value.endswith(".") else value)
    if domain == "":
        if encoding is TunnelEncoding.DNSCAT2_HEX:
            return domain
        raise InvalidParameterError(
            "domain", value, f"a domain such as 't.example' ({encoding} needs one)"
        )
    if len(domain) > MAX_NAME_LEN - 2 or not all(
        _DOMAIN_LABEL.fullmatch(label) for label in domain.split(".")
    ):
        raise InvalidParameterError(
            "domain", value, "letters, digits and inner hyphens in labels of 1-63 characters"
        )
    return domain


def _int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameterError(name, value, f"an integer from {low} to {high}")
    return value


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise InvalidParameterError("data", type(value).__name__, "bytes")


def _max_name_len(value: object) -> int:
    return _int("max_name_len", value, 1, MAX_NAME_LEN)


# --- public API -----------------------------------------------------------------------------


def _build(encoding: TunnelEncoding, data: bytes, domain: str, session: int, seq: int) -> str:
    labels = _CODECS[encoding].labels(data, session, seq)
    if domain == "":  # dnscat2 without an authoritative domain
        return ".".join([_DNSCAT2_TAG, *labels])
    return ".".join([*labels, domain])


@lru_cache(maxsize=512)
def _capacity(encoding: TunnelEncoding, domain: str, max_name_len: int, seq: int) -> int:
    session = SPECS[encoding].max_session

    def length(n_bytes: int) -> int:
        return len(_build(encoding, bytes(n_bytes), domain, session, seq))

    if length(0) > max_name_len:
        where = domain or f"the {_DNSCAT2_TAG}. tag"
        raise InvalidParameterError(
            "max_name_len",
            max_name_len,
            f"at least {length(0)}: the {encoding} header under {where} needs that much",
        )
    # Every encoding spends more than one character per byte, so max_name_len + 1 never fits.
    low, high = 0, max_name_len + 1
    while high - low > 1:
        middle = (low + high) // 2
        if length(middle) <= max_name_len:
            low = middle
        else:
            high = middle
    return low


def capacity(
    encoding: TunnelEncoding | str,
    domain: str,
    max_name_len: int = MAX_NAME_LEN,
    *,
    seq: int | None = None,
) -> int:
    """The most data bytes one query name can carry for ``encoding`` under ``domain``.

    Exact: ``capacity`` bytes fit in a name of at most ``max_name_len`` characters, one more do
    not. Only ``det-hex`` depends on ``seq`` (its packet index is written in decimal); without
    ``seq`` the answer holds for every sequence number (it is the one for ``max_seq``). Raises
    :class:`InvalidParameterError` when not even the header fits.
    """
    enc = _encoding(encoding)
    spec = SPECS[enc]
    seq_value = spec.max_seq if seq is None else _int("seq", seq, 0, spec.max_seq)
    return _capacity(enc, _domain(domain, enc), _max_name_len(max_name_len), seq_value)


def encode_chunk(
    data: bytes,
    *,
    encoding: TunnelEncoding | str,
    domain: str,
    session: int,
    seq: int,
    max_name_len: int = MAX_NAME_LEN,
) -> str:
    """One query name carrying ``data`` with the tool's header (session id, sequence number).

    Labels are at most 63 characters and the name at most ``max_name_len`` (without the root dot);
    more data than :func:`capacity` raises :class:`InvalidParameterError`.
    """
    enc = _encoding(encoding)
    spec = SPECS[enc]
    dom = _domain(domain, enc)
    payload = _bytes(data)
    limit = _max_name_len(max_name_len)
    session = _int("session", session, 0, spec.max_session)
    seq = _int("seq", seq, 0, spec.max_seq)
    name = _build(enc, payload, dom, session, seq)
    if len(name) > limit:
        most = _capacity(enc, dom, limit, seq)
        raise InvalidParameterError(
            "data", f"<{len(payload)} bytes>", f"at most {most} bytes per {enc} name here"
        )
    return name


def tunnel_labels(name: str, *, encoding: TunnelEncoding | str, domain: str) -> tuple[str, ...]:
    """The labels of ``name`` the tool wrote: without the domain (and dnscat2's ``dnscat`` tag)."""
    enc = _encoding(encoding)
    dom = _domain(domain, enc)
    if not isinstance(name, str):
        raise InvalidParameterError("name", name, "a query name as a string")
    text = name[:-1] if name.endswith(".") else name
    labels = text.split(".")
    if len(text) > MAX_NAME_LEN or not all(0 < len(label) <= MAX_LABEL_LEN for label in labels):
        raise _malformed(name, enc, "labels of 1-63 characters, at most 253 in all")
    if dom == "":
        if len(labels) < 2 or _ascii_lower(labels[0]) != _DNSCAT2_TAG:
            raise _malformed(name, enc, f"starts with the {_DNSCAT2_TAG}. tag")
        return tuple(labels[1:])
    suffix = dom.split(".")
    if len(labels) <= len(suffix) or [_ascii_lower(x) for x in labels[-len(suffix) :]] != suffix:
        raise _malformed(name, enc, f"payload labels under {dom}")
    return tuple(labels[: -len(suffix)])


def decode_name(name: str, *, encoding: TunnelEncoding | str, domain: str) -> DecodedChunk:
    """Exact inverse of :func:`encode_chunk`; anything it cannot have written raises
    :class:`InvalidParameterError`. Like the tools, it ignores where the dots fall, and folds
    letter case where the tool's codec is case-insensitive (base32, hex, words)."""
    enc = _encoding(encoding)
    labels = tunnel_labels(name, encoding=enc, domain=domain)
    return _CODECS[enc].parse("".join(labels), name)


def next_seq(encoding: TunnelEncoding | str, seq: int, sent: int) -> int:
    """The sequence number after a name with ``seq`` that carried ``sent`` bytes.

    dnscat2 counts bytes (mod 2**16); the others count queries, wrapping after ``max_seq``.
    """
    spec = SPECS[_encoding(encoding)]
    seq = _int("seq", seq, 0, spec.max_seq)
    sent = _int("sent", sent, 0, MAX_NAME_LEN)
    step = sent if spec.seq_counts_bytes else 1
    return (seq + step) % (spec.max_seq + 1)


def chunk_stream(
    data: bytes,
    *,
    encoding: TunnelEncoding | str,
    domain: str,
    session: int,
    chunk_size: int | None = None,
    first_seq: int = 0,
    max_name_len: int = MAX_NAME_LEN,
) -> list[str]:
    """Split ``data`` into query names, ``chunk_size`` bytes each (default :func:`capacity`).

    Sequence numbers start at ``first_seq`` and follow :func:`next_seq`. Empty data gives no names.
    """
    enc = _encoding(encoding)
    spec = SPECS[enc]
    payload = _bytes(data)
    most = capacity(enc, domain, max_name_len)
    session = _int("session", session, 0, spec.max_session)
    seq = _int("first_seq", first_seq, 0, spec.max_seq)
    if not payload:
        return []
    if most == 0:
        raise InvalidParameterError(
            "max_name_len", max_name_len, f"room for at least one data byte per {enc} name"
        )
    size = most if chunk_size is None else _int("chunk_size", chunk_size, 1, most)
    # encode_chunk and next_seq without their per-call checks: everything was checked above,
    # and no chunk is larger than capacity (so every name fits).
    dom = _domain(domain, enc)
    wrap = spec.max_seq + 1
    names: list[str] = []
    for start in range(0, len(payload), size):
        chunk = payload[start : start + size]
        names.append(_build(enc, chunk, dom, session, seq))
        seq = (seq + (len(chunk) if spec.seq_counts_bytes else 1)) % wrap
    return names


def reassemble(
    names: Sequence[str],
    *,
    encoding: TunnelEncoding | str,
    domain: str,
    session: int | None = None,
) -> bytes:
    """The data carried by ``names``, in order; inverse of :func:`chunk_stream`.

    Every name must belong to one session (``session`` if given, else the first name's) and the
    sequence numbers must follow :func:`next_seq`; a gap, duplicate or reordering raises
    :class:`InvalidParameterError`.
    """
    enc = _encoding(encoding)
    if isinstance(names, str):
        raise InvalidParameterError("names", names, "a sequence of query names, not one name")
    chunks = [decode_name(n, encoding=enc, domain=domain) for n in names]
    if not chunks:
        return b""
    want_session = chunks[0].session if session is None else session
    expected_seq = chunks[0].seq
    for name, chunk in zip(names, chunks, strict=True):
        if chunk.session != want_session:
            raise InvalidParameterError(
                "names", name, f"a name of session {want_session} (got {chunk.session})"
            )
        if chunk.seq != expected_seq:
            raise InvalidParameterError(
                "names", name, f"seq {expected_seq} next (got {chunk.seq}: gap, repeat or reorder)"
            )
        expected_seq = next_seq(enc, chunk.seq, len(chunk.data))
    return b"".join(chunk.data for chunk in chunks)


def tool_chunk_size(encoding: TunnelEncoding | str, domain: str) -> int:
    """Data bytes per query the real client puts in one name by default, at most :func:`capacity`.

    iodine (``build_hostname``, hostname limit 255): ``space = 255 - len(topdomain) - 8``, less one
    character per 57 for dots, filled with whole payload bytes. dnscat2 (``MAX_DNSCAT_LENGTH``):
    ``127 - len(domain or "dnscat") - 6`` packet bytes less the 9-byte MSG header. dns2tcp
    (``queue_get_tcp_data``: ``MAX_QNAME_DATA(domain) - PACKET_LEN - 3``, names kept near 200
    octets to leave room for the reply): whole base64 quanta of ``195 - len(domain)`` characters,
    less the 7-byte header and 3 reserved octets. DET fills its names to 252 characters; ``words``
    fills the name.
    """
    enc = _encoding(encoding)
    dom = _domain(domain, enc)
    most = capacity(enc, dom)
    codec = _CODECS[enc]
    if isinstance(codec, _Iodine):
        space = 255 - len(dom) - 8
        space -= space // _IODINE_LABEL
        tool = space * codec.bits // 8
    elif enc is TunnelEncoding.DNSCAT2_HEX:
        tool = 255 // 2 - len(dom or _DNSCAT2_TAG) - 1 - (255 // 62 + 1) - _DNSCAT2_HEADER_LEN
    elif enc is TunnelEncoding.DNS2TCP_BASE64:
        tool = (200 - (200 // 63 + 1) - len(dom) - 1) // 4 * 3 - _DNS2TCP_HEADER_LEN - 3
    elif enc is TunnelEncoding.DET_HEX:
        tool = capacity(enc, dom, MAX_NAME_LEN - 1)
    else:
        tool = most
    return max(0, min(tool, most))
