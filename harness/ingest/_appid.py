"""Application protocol from the first payload of a flow direction, never from the port.

:func:`identify` looks at one payload and says which protocol it is (an internal label, finer
than :class:`~harness.events.AppProtocol`: ``ssh`` has no AppProtocol member but matters for
"SSH on port 80") and, when the payload names it, the server: the TLS ClientHello's SNI or the
HTTP request's Host. Checks, cheapest first: TLS record header (handshake or alert, version
3.x, with a ClientHello or ServerHello inside), HTTP request line or status line, SSH banner,
SMB/SMB2 magic behind a NetBIOS session header, QUIC long header (UDP), DNS (the message parses,
exactly one question), RTP (version 2, plausible payload type, UDP).

:data:`PORT_PROTOCOLS` says which labels belong on a server port, for the port/protocol mismatch
check; a port absent from it accepts anything.
"""

from __future__ import annotations

import struct

from harness.events import AppProtocol
from harness.pcap.dnswire import DnsMessage, DnsWireError, parse_message

__all__ = [
    "APP_OF_LABEL",
    "CLIENT_FIRST_PORTS",
    "DNS_PORTS",
    "PORT_PROTOCOLS",
    "identify",
    "parse_dns",
]

APP_OF_LABEL: dict[str, AppProtocol] = {
    "dns": AppProtocol.DNS,
    "http": AppProtocol.HTTP,
    "tls": AppProtocol.TLS,
    "smb": AppProtocol.SMB,
    "quic": AppProtocol.QUIC,
    "rtp": AppProtocol.RTP,
}

#: Ports whose service expects DNS wire format (DNS, mDNS, LLMNR, NetBIOS name service).
DNS_PORTS = frozenset({53, 5353, 5355, 137})

#: Labels expected on well-known server ports; identification outside them is a mismatch.
PORT_PROTOCOLS: dict[tuple[int, int], frozenset[str]] = {
    (6, 53): frozenset({"dns"}),
    (17, 53): frozenset({"dns"}),
    (6, 80): frozenset({"http"}),
    (6, 8080): frozenset({"http"}),
    (6, 443): frozenset({"tls"}),
    (6, 8443): frozenset({"tls"}),
    (6, 853): frozenset({"tls"}),
    (17, 443): frozenset({"quic"}),
    (6, 22): frozenset({"ssh"}),
    (6, 445): frozenset({"smb"}),
    (6, 139): frozenset({"smb"}),
}

#: Server ports of protocols in which the client always speaks first.
CLIENT_FIRST_PORTS = frozenset({80, 443, 8080, 8443, 853})

_HTTP_METHODS = (
    b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ",
    b"TRACE ", b"PROPFIND ",
)  # fmt: skip


#: The last payload given to :func:`parse_dns` and its result: the first DNS payload of a
#: direction is parsed to identify it and then again to read it, as the same ``bytes`` object.
_last_dns: list[tuple[bytes, DnsMessage | None]] = [(b"", None)]


def parse_dns(payload: bytes) -> DnsMessage | None:
    """The DNS message in ``payload``, or None when it does not parse (messages are immutable,
    so asking twice in a row about the same bytes object returns the first answer)."""
    last, msg = _last_dns[0]
    if payload is last:
        return msg
    try:
        msg = parse_message(payload)
    except DnsWireError:
        msg = None
    _last_dns[0] = (payload, msg)
    return msg


def _sni(payload: bytes) -> str | None:
    """The server name of a TLS ClientHello record (first record only), if present."""
    try:
        if len(payload) < 43 or payload[5] != 1:
            return None
        p = 9 + 2 + 32  # record header 5, handshake header 4, version 2, random 32
        p += 1 + payload[p]  # session id
        p += 2 + struct.unpack_from("!H", payload, p)[0]  # cipher suites
        p += 1 + payload[p]  # compression methods
        ext_end = p + 2 + struct.unpack_from("!H", payload, p)[0]
        p += 2
        ext_end = min(ext_end, len(payload))
        while p + 4 <= ext_end:
            etype, elen = struct.unpack_from("!HH", payload, p)
            p += 4
            if etype == 0 and p + 5 <= ext_end:
                name_len = struct.unpack_from("!H", payload, p + 3)[0]
                if payload[p + 2] == 0:
                    raw = payload[p + 5 : p + 5 + name_len]
                    return raw.decode("ascii", "replace").lower().rstrip(".") or None
            p += elen
    except (IndexError, struct.error):
        return None
    return None


def _http_host(payload: bytes) -> str | None:
    head = payload[:4096]
    for line in head.split(b"\r\n")[1:]:
        if not line:
            break
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"host":
            host = value.strip().decode("ascii", "replace").lower()
            if host.startswith("["):
                return host[1:].partition("]")[0] or None
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else (host or None)
    return None


def _tls(payload: bytes) -> bool:
    # Record: content type (handshake 22, alert 21, change cipher spec 20), version 3.0-3.4.
    if len(payload) < 5 or payload[0] not in (20, 21, 22) or payload[1] != 3 or payload[2] > 4:
        return False
    length = (payload[3] << 8) | payload[4]
    if payload[0] == 22:
        return 4 <= length <= 18_432 and (len(payload) < 6 or payload[5] in (1, 2, 11, 14, 16))
    return 0 < length <= 18_432


def _smb(payload: bytes) -> bool:
    return len(payload) >= 8 and payload[0] == 0 and payload[4:8] in (b"\xffSMB", b"\xfeSMB")


def _quic(payload: bytes) -> bool:
    # Long header: form and fixed bits set, known version, connection id lengths <= 20.
    if len(payload) < 7 or payload[0] & 0xC0 != 0xC0:
        return False
    version = int.from_bytes(payload[1:5], "big")
    if version not in (0x00000001, 0x6B3343CF, 0xFF00001D) and version & 0xFFFFFF00 != 0xFF000000:
        return False
    return payload[5] <= 20


def _rtp(payload: bytes) -> bool:
    if len(payload) < 12 or payload[0] >> 6 != 2:
        return False
    pt = payload[1] & 0x7F
    # Audio/video payload types (RFC 3551) or dynamic ones; 72-76 would be RTCP.
    return pt <= 34 or 96 <= pt <= 127


def _dns_like(payload: bytes) -> bool:
    # Header sanity before a full parse: one question, opcode query/notify/update.
    if len(payload) < 17:
        return False
    qd = (payload[4] << 8) | payload[5]
    return qd == 1 and ((payload[2] >> 3) & 0xF) in (0, 4, 5)


def identify(
    payload: bytes, *, tcp: bool, truncated: bool = False
) -> tuple[str | None, str | None]:
    """``(label, server_name)`` for one payload; label None when nothing matched.

    ``truncated``: the capture's snapshot length cut the payload. A DNS message cut short no
    longer parses, so then a sane DNS header alone (one question, a query/notify/update opcode:
    about one random payload in 350,000 passes) identifies DNS, before any weaker heuristic
    such as RTP's (whose first byte a DNS transaction id can share)."""
    if not payload:
        return None, None
    first = payload[0]
    if first in (20, 21, 22) and _tls(payload):
        return "tls", _sni(payload) if first == 22 else None
    if first in b"GHPDOCTPR" and payload.startswith(_HTTP_METHODS):
        return "http", _http_host(payload)
    if payload.startswith((b"HTTP/1.", b"HTTP/2")):
        return "http", None
    if payload.startswith(b"SSH-"):
        return "ssh", None
    if tcp:
        if _smb(payload):
            return "smb", None
        # DNS over TCP: a two-byte length prefix that covers the message.
        if len(payload) >= 19 and (
            ((payload[0] << 8) | payload[1]) == len(payload) - 2
            or (truncated and ((payload[0] << 8) | payload[1]) > len(payload) - 2)
        ):
            msg = payload[2:]
            if _dns_like(msg) and (truncated or parse_dns(msg) is not None):
                return "dns", None
        return None, None
    if _quic(payload):
        return "quic", None
    if _dns_like(payload) and (truncated or parse_dns(payload) is not None):
        return "dns", None
    if _rtp(payload):
        return "rtp", None
    return None, None
