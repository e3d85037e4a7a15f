"""DNS messages in wire format (RFC 1035): build queries and responses, and parse them back.

Names are handled in presentation form (``"www.example.com"``, a trailing dot optional), with
RFC 1035 §5.1 escapes (``\\.`` and ``\\DDD``) for label bytes that are not plain printable ASCII,
so any label a tunnel puts on the wire survives a parse/encode round trip. Label (≤ 63 octets)
and name (≤ 255 octets on the wire) limits are enforced when building and checked when parsing.

Record data is kept in canonical form: the wire bytes with every embedded domain name
uncompressed. The encoder compresses owner names, and the names inside NS/CNAME/PTR/MX/SOA data
(the types RFC 3597 allows), against names already written; the parser undoes it. Query types are
accepted by mnemonic (``"A"``, ``"TXT"``, ``"NULL"``, ``"KEY"`` …), as ``"TYPE65399"`` (RFC 3597)
or as a number, so private-use types work like any other.

Errors: a bad name or value raises :class:`DnsNameError` / :class:`DnsValueError` (usage
errors); bytes that are not a DNS message raise :class:`DnsWireError` (an input error).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from harness.errors import InputError, InvalidParameterError

__all__ = [
    "QCLASS_IN",
    "QTYPES",
    "RCODES",
    "DnsMessage",
    "DnsNameError",
    "DnsQuestion",
    "DnsRecord",
    "DnsValueError",
    "DnsWireError",
    "build_query",
    "build_response",
    "encode_message",
    "encode_name",
    "make_record",
    "parse_message",
    "qtype_code",
    "qtype_name",
    "rcode_code",
    "rcode_name",
    "record_value",
]

QCLASS_IN = 1

#: Record types by mnemonic (IANA "Resource Record (RR) TYPEs").
QTYPES: dict[str, int] = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "NULL": 10,
    "PTR": 12,
    "HINFO": 13,
    "MX": 15,
    "TXT": 16,
    "KEY": 25,
    "AAAA": 28,
    "SRV": 33,
    "NAPTR": 35,
    "OPT": 41,
    "DS": 43,
    "RRSIG": 46,
    "NSEC": 47,
    "DNSKEY": 48,
    "SVCB": 64,
    "HTTPS": 65,
    "ANY": 255,
    "CAA": 257,
}
_QTYPE_NAMES = {code: name for name, code in QTYPES.items()}

RCODES: dict[str, int] = {
    "NOERROR": 0,
    "FORMERR": 1,
    "SERVFAIL": 2,
    "NXDOMAIN": 3,
    "NOTIMP": 4,
    "REFUSED": 5,
    "YXDOMAIN": 6,
    "YXRRSET": 7,
    "NXRRSET": 8,
    "NOTAUTH": 9,
    "NOTZONE": 10,
}
_RCODE_NAMES = {code: name for name, code in RCODES.items()}

_MAX_LABEL = 63
_MAX_NAME = 255
_MAX_POINTER_TARGET = 0x3FFF
_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")

# Header flag bits.
_QR = 0x8000
_AA = 0x0400
_TC = 0x0200
_RD = 0x0100
_RA = 0x0080

# Types whose RDATA holds domain names that may be compressed (RFC 3597 §4), and their layout.
_NAME_RDATA = {QTYPES["NS"], QTYPES["CNAME"], QTYPES["PTR"]}
_MX = QTYPES["MX"]
_SOA = QTYPES["SOA"]


class DnsWireError(InputError):
    """Bytes that are not a well-formed DNS message."""


class DnsNameError(InvalidParameterError):
    """A domain name that breaks the label or length rules, or has a bad escape."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__("DNS name", name, reason)


class DnsValueError(InvalidParameterError):
    """A record value, query type or response code that cannot be encoded."""


# -- types and codes ------------------------------------------------------------------------


def qtype_code(qtype: str | int) -> int:
    """The numeric record type for a mnemonic, ``"TYPEnnn"``, a decimal string or a number."""
    if isinstance(qtype, int):
        code = qtype
    else:
        text = qtype.strip().upper()
        if text in QTYPES:
            return QTYPES[text]
        digits = text.removeprefix("TYPE")
        if not digits.isdecimal():
            known = ", ".join(QTYPES)
            raise DnsValueError("query type", qtype, f"one of {known}, TYPEnnn or a number")
        code = int(digits)
    if not 0 <= code <= 0xFFFF:
        raise DnsValueError("query type", qtype, "a number in 0..65535")
    return code


def qtype_name(code: int) -> str:
    """The mnemonic of a record type, or ``"TYPEnnn"`` for one without a mnemonic here."""
    return _QTYPE_NAMES.get(code, f"TYPE{code}")


def rcode_code(rcode: str | int) -> int:
    """The numeric response code for ``"NXDOMAIN"`` and friends, or a number in 0..15."""
    if isinstance(rcode, str):
        try:
            return RCODES[rcode.strip().upper()]
        except KeyError:
            raise DnsValueError("response code", rcode, "one of " + ", ".join(RCODES)) from None
    if not 0 <= rcode <= 15:
        raise DnsValueError("response code", rcode, "a number in 0..15 (no EDNS extended codes)")
    return rcode


def rcode_name(code: int) -> str:
    return _RCODE_NAMES.get(code, f"RCODE{code}")


# -- names ----------------------------------------------------------------------------------


def _labels(name: str) -> tuple[bytes, ...]:
    """Split a presentation-form name into raw labels, validating escapes and lengths."""
    if name in ("", "."):
        return ()
    labels: list[bytes] = []
    current = bytearray()
    i = 0
    n = len(name)
    while i < n:
        ch = name[i]
        if ch == ".":
            if not current:
                raise DnsNameError(name, "no empty labels (two dots in a row, or a leading dot)")
            labels.append(bytes(current))
            current = bytearray()
            i += 1
            continue
        if ch == "\\":
            digits = name[i + 1 : i + 4]
            if len(digits) == 3 and digits.isascii() and digits.isdecimal():
                if int(digits) > 255:
                    raise DnsNameError(name, f"escapes up to \\255, not \\{digits}")
                current.append(int(digits))
                i += 4
            elif i + 1 < n and name[i + 1].isascii() and not name[i + 1].isdigit():
                current.append(ord(name[i + 1]))
                i += 2
            else:
                raise DnsNameError(name, "escapes of the form \\DDD or \\ and one ASCII char")
            continue
        if not ch.isascii():
            raise DnsNameError(name, "ASCII only (IDNA-encode it, or use \\DDD escapes)")
        current.append(ord(ch))
        i += 1
    if current:
        labels.append(bytes(current))
    for label in labels:
        if len(label) > _MAX_LABEL:
            raise DnsNameError(name, f"labels of at most {_MAX_LABEL} octets, not {len(label)}")
    wire_len = sum(len(label) + 1 for label in labels) + 1
    if wire_len > _MAX_NAME:
        raise DnsNameError(name, f"at most {_MAX_NAME} octets on the wire, not {wire_len}")
    return tuple(labels)


def encode_name(name: str) -> bytes:
    """The uncompressed wire form of ``name`` (length-prefixed labels, then a zero octet)."""
    return b"".join(bytes((len(label),)) + label for label in _labels(name)) + b"\x00"


_PLAIN = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*+=/!#$%&'()<>?@[]^`{|}~,:"
)


def _label_text(label: bytes) -> str:
    if all(b in _PLAIN for b in label):
        return label.decode("ascii")
    out = []
    for b in label:
        if b in _PLAIN:
            out.append(chr(b))
        elif b in b'.\\"; ':
            out.append("\\" + chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def _name_text(labels: Iterable[bytes]) -> str:
    text = ".".join(_label_text(label) for label in labels)
    return text or "."


def _canonical_name(name: str) -> str:
    """``name`` as the parser would print it: no trailing dot, the root as ``"."``."""
    return _name_text(_labels(name))


# -- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsQuestion:
    name: str
    qtype: int
    qclass: int = QCLASS_IN


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsRecord:
    """A resource record; ``rdata`` is canonical (embedded names uncompressed).

    For an OPT pseudo-record (EDNS), ``rclass`` is the requester's UDP payload size and ``ttl``
    packs the extended rcode, version and flags, as on the wire.
    """

    name: str
    rtype: int
    ttl: int
    rdata: bytes
    rclass: int = QCLASS_IN


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsMessage:
    txid: int
    flags: int
    questions: tuple[DnsQuestion, ...] = ()
    answers: tuple[DnsRecord, ...] = ()
    authorities: tuple[DnsRecord, ...] = ()
    additionals: tuple[DnsRecord, ...] = ()

    @property
    def is_response(self) -> bool:
        return bool(self.flags & _QR)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rcode(self) -> int:
        return self.flags & 0xF

    @property
    def recursion_desired(self) -> bool:
        return bool(self.flags & _RD)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & _TC)


def _character_strings(value: str | bytes | Sequence[str | bytes]) -> bytes:
    """TXT data: one or more <length><bytes> strings; a long single value is split at 255."""
    if isinstance(value, str | bytes):
        raw = value.encode("utf-8") if isinstance(value, str) else value
        chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    else:
        chunks = []
        for part in value:
            raw = part.encode("utf-8") if isinstance(part, str) else part
            if len(raw) > 255:
                raise DnsValueError("TXT string", part, "at most 255 octets per string")
            chunks.append(raw)
    return b"".join(bytes((len(c),)) + c for c in chunks)


RecordValue = str | bytes | int | tuple[int, str] | Sequence[str | bytes]


def _is_text(value: object) -> bool:
    if isinstance(value, str | bytes):
        return True
    return isinstance(value, Sequence) and all(isinstance(part, str | bytes) for part in value)


def make_record(name: str, rtype: str | int, value: RecordValue, *, ttl: int = 300) -> DnsRecord:
    """A record of ``rtype`` for ``name`` from a friendly ``value``.

    A: ``"192.0.2.1"``; AAAA: ``"2001:db8::1"``; CNAME/NS/PTR: a name; MX: ``(10, "mx.host")``
    or ``"10 mx.host"``; TXT: a string/bytes (split into 255-octet strings) or a sequence of
    them; NULL and any other type: raw ``bytes``.
    """
    code = qtype_code(rtype)
    if not 0 <= ttl <= 0x7FFFFFFF:
        raise DnsValueError("TTL", ttl, "0..2**31-1 seconds")
    rdata: bytes
    try:
        if code == QTYPES["A"] and isinstance(value, str):
            rdata = ipaddress.IPv4Address(value).packed
        elif code == QTYPES["AAAA"] and isinstance(value, str):
            rdata = ipaddress.IPv6Address(value).packed
        elif code in _NAME_RDATA and isinstance(value, str):
            rdata = encode_name(value)
        elif code == _MX and isinstance(value, str | tuple):
            if isinstance(value, str):
                pref_text, _, exchange = value.strip().partition(" ")
                pref = int(pref_text)
            else:
                pref, exchange = value[0], str(value[1])
            rdata = struct.pack("!H", pref) + encode_name(exchange.strip())
        elif code == QTYPES["TXT"] and _is_text(value):
            rdata = _character_strings(cast("str | bytes | Sequence[str | bytes]", value))
        elif isinstance(value, bytes):
            rdata = value
        else:
            raise DnsValueError(f"{qtype_name(code)} record value", value, _VALUE_FORMS)
    except (ValueError, struct.error) as exc:
        if isinstance(exc, InvalidParameterError):
            raise
        raise DnsValueError(f"{qtype_name(code)} record value", value, _VALUE_FORMS) from exc
    if len(rdata) > 0xFFFF:
        raise DnsValueError("record data length", len(rdata), "at most 65535 octets")
    return DnsRecord(name=_canonical_name(name), rtype=code, ttl=ttl, rdata=rdata)


_VALUE_FORMS = (
    "A: dotted quad; AAAA: IPv6 text; CNAME/NS/PTR: a name; MX: (pref, name) or 'pref name'; "
    "TXT: text or a sequence of strings; other types: bytes"
)


def record_value(record: DnsRecord) -> str | bytes | tuple[int, str] | tuple[bytes, ...]:
    """The friendly value of ``record`` (the inverse of :func:`make_record`'s ``value``).

    TXT gives a tuple of the raw strings; types without a decoder give the raw bytes.
    """
    rtype, rdata = record.rtype, record.rdata
    try:
        if rtype == QTYPES["A"] and len(rdata) == 4:
            return str(ipaddress.IPv4Address(rdata))
        if rtype == QTYPES["AAAA"] and len(rdata) == 16:
            return str(ipaddress.IPv6Address(rdata))
        if rtype in _NAME_RDATA:
            return _read_name(rdata, 0, allow_pointers=False)[0]
        if rtype == _MX:
            return struct.unpack_from("!H", rdata)[0], _read_name(rdata, 2, allow_pointers=False)[0]
        if rtype == QTYPES["TXT"]:
            strings: list[bytes] = []
            i = 0
            while i < len(rdata):
                n = rdata[i]
                if i + 1 + n > len(rdata):
                    raise DnsWireError("TXT record data is truncated")
                strings.append(rdata[i + 1 : i + 1 + n])
                i += 1 + n
            return tuple(strings)
    except struct.error as exc:
        raise DnsWireError(f"{qtype_name(rtype)} record data is truncated") from exc
    return rdata


# -- encoding -------------------------------------------------------------------------------


class _Encoder:
    """Writes a message, remembering where each name suffix was written for compression."""

    __slots__ = ("buf", "compress", "offsets")

    def __init__(self, *, compress: bool) -> None:
        self.buf = bytearray()
        self.compress = compress
        self.offsets: dict[tuple[bytes, ...], int] = {}

    def name(self, labels: tuple[bytes, ...]) -> None:
        for i in range(len(labels)):
            suffix = labels[i:]
            if self.compress:
                target = self.offsets.get(suffix)
                if target is not None:
                    self.buf += struct.pack("!H", 0xC000 | target)
                    return
                if len(self.buf) <= _MAX_POINTER_TARGET:
                    self.offsets[suffix] = len(self.buf)
            self.buf.append(len(labels[i]))
            self.buf += labels[i]
        self.buf.append(0)

    def rdata(self, rtype: int, rdata: bytes) -> None:
        """Write RDLENGTH and RDATA, compressing embedded names of the types that allow it."""
        length_at = len(self.buf)
        self.buf += b"\x00\x00"
        try:
            if rtype in _NAME_RDATA:
                self.name(_wire_labels(rdata, 0, whole=True)[0])
            elif rtype == _MX:
                self.buf += rdata[:2]
                self.name(_wire_labels(rdata, 2, whole=True)[0])
            elif rtype == _SOA:
                mname, end = _wire_labels(rdata, 0, whole=False)
                rname, end = _wire_labels(rdata, end, whole=False)
                if len(rdata) - end != 20:
                    raise DnsValueError("SOA record data", rdata, "two names and five integers")
                self.name(mname)
                self.name(rname)
                self.buf += rdata[end:]
            else:
                self.buf += rdata
        except DnsWireError as exc:
            raise DnsValueError(
                f"{qtype_name(rtype)} record data", rdata, "canonical wire form"
            ) from exc
        rdlength = len(self.buf) - length_at - 2
        if rdlength > 0xFFFF:
            raise DnsValueError("record data length", rdlength, "at most 65535 octets")
        struct.pack_into("!H", self.buf, length_at, rdlength)

    def record(self, record: DnsRecord) -> None:
        self.name(_labels(record.name))
        self.buf += struct.pack("!HHI", record.rtype, record.rclass, record.ttl)
        self.rdata(record.rtype, record.rdata)


def _wire_labels(data: bytes, offset: int, *, whole: bool) -> tuple[tuple[bytes, ...], int]:
    """Labels of an uncompressed wire name at ``offset`` and the offset after it."""
    labels: list[bytes] = []
    while True:
        if offset >= len(data):
            raise DnsWireError("name runs past the end of the data")
        n = data[offset]
        if n == 0:
            offset += 1
            break
        if n > _MAX_LABEL:
            raise DnsWireError(f"label length {n} in uncompressed data")
        labels.append(data[offset + 1 : offset + 1 + n])
        offset += 1 + n
    if whole and offset != len(data):
        raise DnsWireError("trailing bytes after the name")
    return tuple(labels), offset


def encode_message(message: DnsMessage, *, compress: bool = True) -> bytes:
    """The wire form of ``message``; names are compressed unless ``compress`` is false."""
    enc = _Encoder(compress=compress)
    for count, what in (
        (len(message.questions), "questions"),
        (len(message.answers), "answers"),
        (len(message.authorities), "authority records"),
        (len(message.additionals), "additional records"),
    ):
        if count > 0xFFFF:
            raise DnsValueError(f"number of {what}", count, "at most 65535")
    enc.buf += _HEADER.pack(
        message.txid,
        message.flags,
        len(message.questions),
        len(message.answers),
        len(message.authorities),
        len(message.additionals),
    )
    for q in message.questions:
        enc.name(_labels(q.name))
        enc.buf += struct.pack("!HH", q.qtype, q.qclass)
    for section in (message.answers, message.authorities, message.additionals):
        for record in section:
            enc.record(record)
    return bytes(enc.buf)


def _opt_record(payload_size: int) -> DnsRecord:
    return DnsRecord(name=".", rtype=QTYPES["OPT"], ttl=0, rdata=b"", rclass=payload_size)


def build_query(
    name: str,
    qtype: str | int = "A",
    *,
    txid: int,
    recursion_desired: bool = True,
    edns_payload: int | None = None,
) -> bytes:
    """A standard query for ``name``/``qtype`` (class IN).

    ``edns_payload`` adds an EDNS(0) OPT record advertising that UDP payload size, as stub
    resolvers commonly do (1232 is today's usual value).
    """
    if not 0 <= txid <= 0xFFFF:
        raise DnsValueError("transaction id", txid, "0..65535")
    message = DnsMessage(
        txid=txid,
        flags=_RD if recursion_desired else 0,
        questions=(DnsQuestion(name=_canonical_name(name), qtype=qtype_code(qtype)),),
        additionals=() if edns_payload is None else (_opt_record(edns_payload),),
    )
    return encode_message(message)


def build_response(
    query: bytes | DnsMessage,
    answers: Sequence[DnsRecord] = (),
    *,
    rcode: str | int = "NOERROR",
    authorities: Sequence[DnsRecord] = (),
    authoritative: bool = False,
    recursion_available: bool = True,
    compress: bool = True,
) -> bytes:
    """The response to ``query``: same id, question, opcode and RD bit, plus ``answers``.

    An EDNS OPT record in the query is answered with one advertising the same payload size.
    """
    q = parse_message(query) if isinstance(query, bytes) else query
    flags = _QR | (q.flags & (0x7800 | _RD)) | rcode_code(rcode)
    if authoritative:
        flags |= _AA
    if recursion_available:
        flags |= _RA
    opt = [r for r in q.additionals if r.rtype == QTYPES["OPT"]]
    message = DnsMessage(
        txid=q.txid,
        flags=flags,
        questions=q.questions,
        answers=tuple(answers),
        authorities=tuple(authorities),
        additionals=(_opt_record(opt[0].rclass),) if opt else (),
    )
    return encode_message(message, compress=compress)


# -- parsing --------------------------------------------------------------------------------


def _read_name(data: bytes, offset: int, *, allow_pointers: bool = True) -> tuple[str, int]:
    labels, end = _read_labels(data, offset, allow_pointers=allow_pointers)
    return _name_text(labels), end


def _read_labels(
    data: bytes, offset: int, *, allow_pointers: bool = True
) -> tuple[tuple[bytes, ...], int]:
    """Labels of the (possibly compressed) name at ``offset`` and the offset after it.

    Pointers must point strictly backwards, which rules out loops without a jump counter.
    """
    labels: list[bytes] = []
    end: int | None = None
    wire_len = 1
    floor = offset  # a pointer must land before the start of the name part it ends
    while True:
        if offset >= len(data):
            raise DnsWireError(f"name at offset {offset} runs past the end of the message")
        n = data[offset]
        if n & 0xC0 == 0xC0:
            if not allow_pointers:
                raise DnsWireError("compression pointer inside canonical record data")
            if offset + 1 >= len(data):
                raise DnsWireError(f"compression pointer at offset {offset} is truncated")
            target = ((n & 0x3F) << 8) | data[offset + 1]
            if target >= floor:
                raise DnsWireError(f"compression pointer at offset {offset} does not point back")
            if end is None:
                end = offset + 2
            offset = floor = target
            continue
        if n & 0xC0:
            raise DnsWireError(f"unsupported label type 0x{n & 0xC0:02x} at offset {offset}")
        if n == 0:
            offset += 1
            break
        if offset + 1 + n > len(data):
            raise DnsWireError(f"label at offset {offset} runs past the end of the message")
        labels.append(data[offset + 1 : offset + 1 + n])
        wire_len += 1 + n
        if wire_len > _MAX_NAME:
            raise DnsWireError(f"name at offset {offset} is longer than {_MAX_NAME} octets")
        offset += 1 + n
    return tuple(labels), (offset if end is None else end)


def _uncompressed(labels: tuple[bytes, ...]) -> bytes:
    return b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"


def _canonical_rdata(data: bytes, rtype: int, start: int, end: int) -> bytes:
    """RDATA at ``data[start:end]`` with embedded names decompressed."""
    if rtype in _NAME_RDATA:
        labels, stop = _read_labels(data, start)
        if stop != end:
            raise DnsWireError(f"{qtype_name(rtype)} record data has bytes after the name")
        return _uncompressed(labels)
    if rtype == _MX:
        if end - start < 3:
            raise DnsWireError("MX record data is too short")
        labels, stop = _read_labels(data, start + 2)
        if stop != end:
            raise DnsWireError("MX record data has bytes after the name")
        return data[start : start + 2] + _uncompressed(labels)
    if rtype == _SOA:
        mname, stop = _read_labels(data, start)
        rname, stop = _read_labels(data, stop)
        if end - stop != 20:
            raise DnsWireError("SOA record data does not end with five 32-bit integers")
        return _uncompressed(mname) + _uncompressed(rname) + data[stop:end]
    return data[start:end]


def parse_message(data: bytes) -> DnsMessage:
    """Parse a DNS message; raises :class:`DnsWireError` if it is malformed or truncated."""
    if len(data) < _HEADER.size:
        raise DnsWireError(f"a DNS message has a 12-octet header; got {len(data)} octets")
    txid, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    offset = _HEADER.size
    questions: list[DnsQuestion] = []
    for _ in range(qd):
        name, offset = _read_name(data, offset)
        if offset + 4 > len(data):
            raise DnsWireError("question is truncated")
        qtype, qclass = struct.unpack_from("!HH", data, offset)
        offset += 4
        questions.append(DnsQuestion(name=name, qtype=qtype, qclass=qclass))
    sections: list[tuple[DnsRecord, ...]] = []
    for count in (an, ns, ar):
        records: list[DnsRecord] = []
        for _ in range(count):
            name, offset = _read_name(data, offset)
            if offset + _RR_FIXED.size > len(data):
                raise DnsWireError("resource record header is truncated")
            rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(data, offset)
            offset += _RR_FIXED.size
            end = offset + rdlength
            if end > len(data):
                raise DnsWireError(f"{qtype_name(rtype)} record data is truncated")
            rdata = _canonical_rdata(data, rtype, offset, end)
            offset = end
            records.append(DnsRecord(name=name, rtype=rtype, ttl=ttl, rdata=rdata, rclass=rclass))
        sections.append(tuple(records))
    if offset != len(data):
        raise DnsWireError(f"{len(data) - offset} trailing octets after the last record")
    return DnsMessage(
        txid=txid,
        flags=flags,
        questions=tuple(questions),
        answers=sections[0],
        authorities=sections[1],
        additionals=sections[2],
    )
