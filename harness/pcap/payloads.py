"""Application payloads for rendered flows: what the first bytes of each protocol look like.

Every builder takes exact byte budgets and returns :data:`Message` lists whose lengths add up to
them, so the flow's byte counts survive rendering unchanged. A message is a direction and a
tuple of parts; a part is explicit ``bytes`` or an ``int``, a run of inert filler of that length
(see :mod:`harness.pcap.packets`), which the renderer slices from a cache instead of building.

* TLS: a ClientHello with the SNI, a ServerHello with ChangeCipherSpec, then application-data
  records (at most 16 KiB of plaintext plus AEAD overhead each).
* HTTP/1.1: a request head (``Host`` = server name, ``Content-Length`` = body) and a response head.
* SMB2: a NEGOTIATE request and response over NetBIOS session framing, then SMB3 encrypted
  (transform-header) messages.
* DNS: real query and response messages (:func:`dns_exchange`), padded with EDNS(0) Padding
  (RFC 7830) to the exact sizes the events report.
* RTP: datagrams with a version-2 RTP header (in a compact capture, bulk media as large
  offloaded datagrams after the first few real-size ones).

When a budget is smaller than a realistic head the head shrinks (fewer extensions, fewer
headers); below the smallest well-formed head the bytes go out as filler.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from harness.pcap.dnswire import (
    QTYPES,
    DnsMessage,
    DnsQuestion,
    DnsRecord,
    DnsValueError,
    encode_message,
    make_record,
    qtype_code,
    rcode_code,
)

__all__ = [
    "Message",
    "Part",
    "dns_exchange",
    "dns_message_of_size",
    "dns_stream",
    "http_exchange",
    "part_length",
    "rtp_datagrams",
    "smb_exchange",
    "tls_exchange",
]

Part = bytes | int
#: (sent by the originator?, parts)
Message = tuple[bool, tuple[Part, ...]]

#: Largest TLS 1.3 record on the wire: 16 KiB of plaintext, 256 bytes of AEAD expansion, header.
_TLS_RECORD_MAX = 5 + 16_384 + 256
_TLS_FULL_HEADER = b"\x17\x03\x03" + (16_384 + 256).to_bytes(2, "big")
#: NetBIOS session message of an SMB3 encrypted message: at most 8 MiB per message here.
_SMB_CHUNK = 1 << 16
_RD, _RA, _QR, _TC = 0x0100, 0x0080, 0x8000, 0x0200
_OPT = QTYPES["OPT"]
_EDNS_PAYLOAD = 1232


def part_length(part: Part) -> int:
    return part if isinstance(part, int) else len(part)


def _seeded(*key: object) -> bytes:
    return hashlib.blake2b("|".join(map(str, key)).encode(), digest_size=32).digest()


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + 1 if i < extra else base for i in range(parts)]


def _filler_rounds(out_bytes: int, in_bytes: int, rounds: int) -> list[Message]:
    msgs: list[Message] = []
    for o, i in zip(_split(out_bytes, rounds), _split(in_bytes, rounds), strict=True):
        if o:
            msgs.append((True, (o,)))
        if i:
            msgs.append((False, (i,)))
    return msgs


# -- TLS ------------------------------------------------------------------------------------


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def _client_hello(server_name: str | None, seed: bytes, budget: int) -> bytes:
    """A TLS 1.3 ClientHello (record included) of at most ``budget`` bytes, or ``b""``."""
    random, session = seed[:32], seed[:32][::-1]
    suites = b"\x13\x01\x13\x02\x13\x03\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30"
    sni = b""
    if server_name:
        name = server_name.encode("idna")
        sni = _ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
    key_share = _ext(51, struct.pack("!HHH", 36, 29, 32) + seed[::-1])
    full = [
        sni,
        _ext(23, b""),  # extended master secret
        _ext(65281, b"\x00"),  # renegotiation info
        _ext(10, b"\x00\x06\x00\x1d\x00\x17\x00\x18"),  # supported groups
        _ext(11, b"\x01\x00"),  # EC point formats
        _ext(16, b"\x00\x0c\x02h2\x08http/1.1"),  # ALPN
        _ext(13, b"\x00\x08\x04\x03\x08\x04\x04\x01\x05\x03"),  # signature algorithms
        key_share,
        _ext(45, b"\x01\x01"),  # PSK key exchange modes
        _ext(43, b"\x04\x03\x04\x03\x03"),  # supported versions: TLS 1.3, 1.2
    ]
    minimal = [sni, _ext(43, b"\x02\x03\x04"), key_share]
    for extensions, sid in ((full, session), (minimal, session), (minimal, b""), ([sni], b"")):
        ext = b"".join(extensions)
        body = (
            b"\x03\x03"
            + random
            + bytes((len(sid),))
            + sid
            + struct.pack("!H", len(suites))
            + suites
            + b"\x01\x00"
            + struct.pack("!H", len(ext))
            + ext
        )
        handshake = b"\x01" + len(body).to_bytes(3, "big") + body
        record = b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake
        if len(record) <= budget:
            return record
    return b""


def _server_hello(client_hello: bytes, seed: bytes, budget: int) -> bytes:
    """ServerHello and ChangeCipherSpec records answering ``client_hello``, or ``b""``."""
    sid_len = client_hello[43]
    sid = client_hello[44 : 44 + sid_len]
    ext = _ext(43, b"\x03\x04") + _ext(51, struct.pack("!HH", 29, 32) + seed)
    body = (
        b"\x03\x03"
        + seed[::-1]
        + bytes((len(sid),))
        + sid
        + b"\x13\x01\x00"
        + struct.pack("!H", len(ext))
        + ext
    )
    handshake = b"\x02" + len(body).to_bytes(3, "big") + body
    hello = b"\x16\x03\x03" + struct.pack("!H", len(handshake)) + handshake
    ccs = b"\x14\x03\x03\x00\x01\x01"
    for candidate in (hello + ccs, hello):
        if len(candidate) <= budget:
            return candidate
    return b""


def _tls_records(total: int) -> list[Part]:
    """Application-data records filling exactly ``total`` bytes (filler below one record)."""
    if total < 6:
        return [total] if total else []
    parts: list[Part] = []
    full, rest = divmod(total, _TLS_RECORD_MAX)
    if 0 < rest < 6:  # a record needs a header and a byte: borrow from the last full record
        full -= 1
        rest += _TLS_RECORD_MAX
    for _ in range(full):
        parts += (_TLS_FULL_HEADER, _TLS_RECORD_MAX - 5)
    while rest:
        size = min(rest, _TLS_RECORD_MAX)
        if 0 < rest - size < 6:
            size = rest - 6
        parts += (b"\x17\x03\x03" + (size - 5).to_bytes(2, "big"), size - 5)
        rest -= size
    return parts


def tls_exchange(
    server_name: str | None, bytes_out: int, bytes_in: int, *, rounds: int, key: object
) -> list[Message]:
    """ClientHello, ServerHello, then application-data records over ``rounds`` exchanges."""
    seed = _seeded("tls", key)
    hello = _client_hello(server_name, seed, bytes_out)
    reply = _server_hello(hello, seed, bytes_in) if hello else b""
    msgs: list[Message] = []
    if hello:
        msgs.append((True, (hello,)))
    if reply:
        msgs.append((False, (reply,)))
    rest_out, rest_in = bytes_out - len(hello), bytes_in - len(reply)
    for o, i in zip(_split(rest_out, rounds), _split(rest_in, rounds), strict=True):
        if o:
            msgs.append((True, tuple(_tls_records(o))))
        if i:
            msgs.append((False, tuple(_tls_records(i))))
    return msgs


# -- HTTP -----------------------------------------------------------------------------------


def _http_head(lines: Sequence[str], body: int | None) -> bytes:
    extra = [] if body is None else [f"Content-Length: {body}"]
    return ("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode("ascii", "replace")


def _sized_http(heads: Sequence[Sequence[str]], total: int) -> tuple[bytes, int] | None:
    """The first head that fits ``total`` with a body of the rest, Content-Length matching."""
    for lines in heads:
        body = total - len(_http_head(lines, 0))
        for _ in range(4):  # the length of the Content-Length value converges in a few steps
            head = _http_head(lines, body)
            if total - len(head) == body:
                break
            body = total - len(head)
        if body >= 0 and len(head) + body == total:
            return head, body
    return None


def http_exchange(
    server_name: str | None, bytes_out: int, bytes_in: int, *, key: object
) -> list[Message]:
    """One HTTP/1.1 request (``Host`` = server name) and its response, bodies of filler."""
    host = server_name or "server.example"
    path = "/" + _seeded("http", key).hex()[:16]
    request = _sized_http(
        (
            [
                f"POST {path} HTTP/1.1",
                f"Host: {host}",
                "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                "Accept: */*",
                "Content-Type: application/octet-stream",
                "Connection: close",
            ],
            [f"POST {path} HTTP/1.1", f"Host: {host}"],
            ["POST / HTTP/1.1", f"Host: {host}"],
            ["POST / HTTP/1.0"],
        ),
        bytes_out,
    )
    response = _sized_http(
        (
            [
                "HTTP/1.1 200 OK",
                "Content-Type: application/octet-stream",
                "Cache-Control: no-store",
                "Connection: close",
            ],
            ["HTTP/1.1 200 OK"],
            ["HTTP/1.0 200 OK"],
        ),
        bytes_in,
    )
    msgs: list[Message] = []
    for outbound, total, fitted in ((True, bytes_out, request), (False, bytes_in, response)):
        if fitted is not None:
            head, body = fitted
            msgs.append((outbound, (head, body) if body else (head,)))
        elif total:
            msgs.append((outbound, (total,)))
    return msgs


# -- SMB2 -----------------------------------------------------------------------------------


def _smb2_header(command: int, response: bool, message_id: int) -> bytes:
    flags = 0x00000001 if response else 0
    return (
        b"\xfeSMB"
        + struct.pack("<HHIHHIIQIIQ", 64, 1, 0, command, 1, flags, 0, message_id, 0xFEFF, 0, 0)
        + bytes(16)
    )


def _nbss(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(3, "big") + payload


def _negotiate(seed: bytes) -> tuple[bytes, bytes]:
    dialects = (0x0202, 0x0210, 0x0300, 0x0302, 0x0311)
    req_body = (
        struct.pack("<HHHHI", 36, len(dialects), 1, 0, 0x7F)
        + seed[:16]
        + bytes(8)
        + b"".join(struct.pack("<H", d) for d in dialects)
    )
    request = _nbss(_smb2_header(0, False, 0) + req_body)
    resp_body = (
        struct.pack("<HHHH", 65, 1, 0x0302, 0)
        + seed[16:32]
        + struct.pack("<IIII", 0x2F, 8 << 20, 8 << 20, 8 << 20)
        + bytes(16)  # system time and server start time
        + struct.pack("<HHI", 128, 0, 0)  # no security buffer
    )
    response = _nbss(_smb2_header(0, True, 0) + resp_body)
    return request, response


def _smb_encrypted(total: int, session: bytes) -> list[Part]:
    """SMB3 transform-header messages (encrypted SMB2) over NetBIOS framing, ``total`` bytes."""
    overhead = 4 + 52
    if total <= overhead:
        return [total] if total else []
    parts: list[Part] = []
    while total:
        size = min(total, _SMB_CHUNK)
        if 0 < total - size <= overhead:
            size = total - overhead - 1
        body = size - overhead
        header = (
            b"\x00"
            + (size - 4).to_bytes(3, "big")
            + b"\xfdSMB"
            + bytes(16)  # signature: opaque here
            + session[:16]  # nonce
            + struct.pack("<IHH", body, 0, 1)
            + session[16:24]
        )
        parts += (header, body)
        total -= size
    return parts


def smb_exchange(bytes_out: int, bytes_in: int, *, rounds: int, key: object) -> list[Message]:
    """SMB2 NEGOTIATE, then encrypted SMB3 messages over ``rounds`` exchanges."""
    seed = _seeded("smb", key)
    request, response = _negotiate(seed)
    if len(request) > bytes_out or len(response) > bytes_in:
        return _filler_rounds(bytes_out, bytes_in, rounds)
    msgs: list[Message] = [(True, (request,)), (False, (response,))]
    rest_out, rest_in = bytes_out - len(request), bytes_in - len(response)
    for o, i in zip(_split(rest_out, rounds), _split(rest_in, rounds), strict=True):
        if o:
            msgs.append((True, tuple(_smb_encrypted(o, seed))))
        if i:
            msgs.append((False, tuple(_smb_encrypted(i, seed[::-1]))))
    return msgs


# -- RTP ------------------------------------------------------------------------------------


def rtp_datagrams(
    total: int,
    *,
    outbound: bool,
    key: object,
    max_datagram: int = 1_200,
    bulk_datagram: int | None = None,
    head_datagrams: int = 16,
) -> list[Message]:
    """``total`` bytes as RTP datagrams (12-byte header, opaque media) in one direction.

    With ``bulk_datagram`` (a compact capture) the first ``head_datagrams`` keep the real size
    and the rest go out as datagrams of up to ``bulk_datagram`` bytes, as segmentation offload
    shows them to a capture on the host: each starts with the RTP header of the first packet it
    stands for, and sequence number and timestamp advance by the number of packets it carries.
    """
    if total <= 0:
        return []
    seed = _seeded("rtp", key, outbound)
    ssrc = seed[:4]
    if bulk_datagram is not None and total > head_datagrams * max_datagram:
        rest = total - head_datagrams * max_datagram
        sizes = [max_datagram] * head_datagrams
        if rest < 12:  # too little for a datagram of its own: the last real-size one takes it
            sizes[-1] += rest
        else:
            sizes += _split(rest, -(-rest // bulk_datagram))
    else:
        sizes = _split(total, -(-total // max_datagram))
    if sizes[-1] < 12:
        return [(outbound, (total,))] if len(sizes) == 1 else [(outbound, (s,)) for s in sizes]
    seq0 = int.from_bytes(seed[4:6], "big")
    ts0 = int.from_bytes(seed[6:10], "big")
    msgs: list[Message] = []
    packet = 0  # index of the real-size packet a datagram starts with
    for size in sizes:
        header = struct.pack(
            "!BBHI", 0x80, 111, (seq0 + packet) & 0xFFFF, (ts0 + 960 * packet) & 0xFFFFFFFF
        )
        msgs.append((outbound, (header + ssrc, size - 12)))
        packet += -(-size // max_datagram)
    return msgs


# -- DNS ------------------------------------------------------------------------------------


def _opt(payload: int, padding: int | None) -> DnsRecord:
    rdata = b"" if padding is None else struct.pack("!HH", 12, padding) + bytes(padding)
    return DnsRecord(name=".", rtype=_OPT, ttl=0, rdata=rdata, rclass=payload)


def dns_message_of_size(message: DnsMessage, target: int, *, edns: bool) -> bytes | None:
    """``message`` (which must carry no OPT record) encoded at exactly ``target`` bytes.

    With ``edns`` an OPT record may be added, and EDNS(0) Padding (RFC 7830) fills the rest;
    without, only the bare message fits. ``None`` when ``target`` cannot be reached.
    """
    bare = encode_message(message)
    gap = target - len(bare)
    if gap == 0:
        return bare
    if not edns or gap < 11 or 11 < gap < 15:
        return None
    padding = None if gap == 11 else gap - 15
    padded = DnsMessage(
        txid=message.txid,
        flags=message.flags,
        questions=message.questions,
        answers=message.answers,
        authorities=message.authorities,
        additionals=(*message.additionals, _opt(_EDNS_PAYLOAD, padding)),
    )
    return encode_message(padded)


def _answer_record(name: str, qtype: str, value: str) -> DnsRecord:
    """A record of ``qtype`` for ``value``; a value that is not of the type's form becomes
    deterministic data of that type (an address in a documentation range, the text's bytes)."""
    try:
        return make_record(name, qtype, value)
    except DnsValueError:
        pass
    digest = hashlib.blake2b(value.encode(), digest_size=8).digest()
    code = qtype_code(qtype)
    if code == QTYPES["A"]:
        return make_record(name, qtype, f"203.0.113.{1 + digest[0] % 254}")
    if code == QTYPES["AAAA"]:
        return make_record(name, qtype, "2001:db8::" + digest[:2].hex())
    return make_record(name, qtype, value.encode("utf-8", "replace"))


def _txt_split(record: DnsRecord, extra: int) -> DnsRecord | None:
    """A TXT record with the same text in ``extra`` more character-strings (1 byte each)."""
    strings: list[bytes] = []
    i = 0
    while i < len(record.rdata):
        n = record.rdata[i]
        strings.append(record.rdata[i + 1 : i + 1 + n])
        i += 1 + n
    text = b"".join(strings)
    count = len(strings) + extra
    if len(text) < count or -(-len(text) // 255) > count:
        return None
    sizes = _split(len(text), count)
    if max(sizes) > 255:
        return None
    out, pos = bytearray(), 0
    for size in sizes:
        out += bytes((size,)) + text[pos : pos + size]
        pos += size
    return DnsRecord(
        name=record.name, rtype=record.rtype, ttl=record.ttl, rdata=bytes(out), rclass=record.rclass
    )


def dns_exchange(
    *,
    qname: str,
    qtype: str,
    rcode: str,
    answers: Sequence[str],
    txid: int,
    query_bytes: int,
    response_bytes: int,
) -> tuple[bytes, bytes | None]:
    """A DNS query and response of exactly ``query_bytes`` and ``response_bytes``.

    Tries, in order: the answers as they are; TXT answers spread over more character-strings
    (one byte each); the answers dropped with the TC bit set (a truncated response, as a
    resolver sends when the answer does not fit). Returns ``None`` for the response (and a
    query of the right size regardless) when no well-formed message fits; the caller then
    pads the last resort itself.
    """
    question = DnsQuestion(name=qname, qtype=qtype_code(qtype))
    query_msg = DnsMessage(txid=txid, flags=_RD, questions=(question,))
    query = dns_message_of_size(query_msg, query_bytes, edns=True)
    if query is None:
        raise DnsValueError("DNS query size", query_bytes, f"a size that fits a query for {qname}")
    records = [_answer_record(qname, qtype, a) for a in answers]
    flags = _QR | _RD | _RA | rcode_code(rcode)
    variants: list[tuple[int, tuple[DnsRecord, ...]]] = [(flags, tuple(records))]
    for extra in (1, 2, 3):
        split = [
            (_txt_split(r, extra) if r.rtype == QTYPES["TXT"] else r) if i == 0 else r
            for i, r in enumerate(records)
        ]
        if records and all(r is not None for r in split):
            variants.append((flags, tuple(r for r in split if r is not None)))
    variants.append((flags | _TC, ()))
    for var_flags, var_answers in variants:
        msg = DnsMessage(txid=txid, flags=var_flags, questions=(question,), answers=var_answers)
        response = dns_message_of_size(msg, response_bytes, edns=True)
        if response is not None:
            return query, response
    return query, None


def dns_stream(
    domain: str, bytes_out: int, bytes_in: int, *, key: object, max_message: int = 1_200
) -> list[Message] | None:
    """DNS queries under ``domain`` and TXT responses filling exactly the given budgets, one
    message per datagram; ``None`` when the budgets are too small for one query."""
    seed = _seeded("dns", key)
    suffix = domain.strip(".") or "example"
    # As many queries as responses, so every response answers its own query.
    n = max(1, -(-bytes_out // max_message), -(-bytes_in // max_message))
    n = max(1, min(n, bytes_out // 64))
    n_in = min(n, bytes_in // 40) if bytes_in else 0
    if bytes_in and not n_in:
        return None  # too small for a response
    queries: list[bytes] = []
    names: list[str] = []
    for i, size in enumerate(_split(bytes_out, n)):
        label_seed = hashlib.blake2b(seed + i.to_bytes(4, "big"), digest_size=32).hexdigest()
        fitted = None
        for length in range(min(63, len(label_seed)), 0, -1):
            name = f"{label_seed[:length]}.{suffix}"
            msg = DnsMessage(
                txid=(int.from_bytes(seed[:2], "big") + i) & 0xFFFF,
                flags=_RD,
                questions=(DnsQuestion(name=name, qtype=QTYPES["TXT"]),),
            )
            fitted = dns_message_of_size(msg, size, edns=True)
            if fitted is not None:
                names.append(name)
                break
        if fitted is None:
            return None
        queries.append(fitted)
    responses: list[bytes] = []
    for i, size in enumerate(_split(bytes_in, n_in) if n_in else []):
        j = i
        question = DnsQuestion(name=names[j], qtype=QTYPES["TXT"])
        head = DnsMessage(
            txid=int.from_bytes(queries[j][:2], "big"), flags=_QR | _RD | _RA, questions=(question,)
        )
        rdata_len = size - len(encode_message(head)) - 12
        if rdata_len < 1:
            fitted = dns_message_of_size(head, size, edns=True)
            if fitted is None:
                return None
            responses.append(fitted)
            continue
        count = -(-rdata_len // 256)
        text = seed.hex().encode() * (rdata_len // 64 + 1)
        rdata, pos = bytearray(), 0
        for chunk in _split(rdata_len - count, count):
            rdata += bytes((chunk,)) + text[pos : pos + chunk]
            pos += chunk
        answer = DnsRecord(name=names[j], rtype=QTYPES["TXT"], ttl=0, rdata=bytes(rdata))
        msg = DnsMessage(txid=head.txid, flags=head.flags, questions=(question,), answers=(answer,))
        responses.append(encode_message(msg))
    msgs: list[Message] = []
    for i in range(max(len(queries), len(responses))):
        if i < len(queries):
            msgs.append((True, (queries[i],)))
        if i < len(responses):
            msgs.append((False, (responses[i],)))
    return msgs
