"""The lab's authoritative DNS answers (:func:`answer_dns`; the zone's rules are in
:mod:`harness.lab.sinks`), independent of the transport that carries them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from harness.lab.backend import LabPlan, Service
from harness.pcap import dnswire

__all__ = ["DnsAnswer", "answer_dns", "looks_like_dns"]

_ZONE_SERVICES = {s.value: s for s in Service}


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsAnswer:
    """The response to one DNS message and what the logs say about it."""

    response: bytes | None
    txid: int | None
    query: str | None
    qtype: int | None
    rcode: int
    answers: tuple[str, ...]
    ttls: tuple[int, ...]
    error: str | None = None


def _downstream(name: str, size: int) -> bytes:
    """``size`` bytes derived from the query name: what a tunnel server would send back."""
    out = b""
    seed = name.encode()
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return out[:size]


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def _in_zone(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def answer_dns(data: bytes, plan: LabPlan) -> DnsAnswer:
    """The lab's authoritative answer to the DNS message ``data`` (see the module docstring)."""
    try:
        msg = dnswire.parse_message(data)
    except dnswire.DnsWireError as exc:
        if len(data) < 2:
            return DnsAnswer(
                response=None, txid=None, query=None, qtype=None, rcode=1, answers=(), ttls=(),
                error=f"unparsable message of {len(data)} bytes",
            )  # fmt: skip
        txid = int.from_bytes(data[:2], "big")
        # Header only: QR set, opcode of the request kept when readable, FORMERR.
        opcode_bits = (data[2] & 0x78) << 8 if len(data) >= 3 else 0
        response = txid.to_bytes(2, "big") + (0x8000 | opcode_bits | 1).to_bytes(2, "big")
        response += bytes(8)
        return DnsAnswer(
            response=response, txid=txid, query=None, qtype=None, rcode=1, answers=(), ttls=(),
            error=str(exc),
        )  # fmt: skip
    first = msg.questions[0] if msg.questions else None
    # As sent (tunnels put case-sensitive data in labels); matched in lower case.
    sent = first.name.rstrip(".") if first is not None else None
    qname = sent.lower() if sent is not None else None
    qtype = first.qtype if first is not None else None

    def reply(
        rcode: str, records: Sequence[dnswire.DnsRecord] = (), error: str | None = None
    ) -> DnsAnswer:
        try:
            response = dnswire.build_response(
                msg, records, rcode=rcode, authoritative=rcode != "FORMERR",
                recursion_available=False,
            )  # fmt: skip
        except dnswire.DnsValueError as exc:  # pragma: no cover - records are built valid
            response, records, rcode, error = None, (), "SERVFAIL", str(exc)
        return DnsAnswer(
            response=response, txid=msg.txid, query=sent, qtype=qtype,
            rcode=dnswire.rcode_code(rcode),
            answers=tuple(_answer_text(r) for r in records),
            ttls=tuple(r.ttl for r in records), error=error,
        )  # fmt: skip

    if msg.is_response:
        return reply("FORMERR", error="a response sent to the server")
    if msg.opcode != 0:
        return reply("NOTIMP", error=f"opcode {msg.opcode}")
    if first is None or len(msg.questions) != 1 or qname is None:
        return reply("FORMERR", error=f"{len(msg.questions)} questions")
    zone = plan.zone.lower()
    if not _in_zone(qname, zone):
        return reply("NXDOMAIN")
    name = first.name
    ttl = 0 if qname != zone and qname.count(".") > zone.count(".") + 1 else 60
    code = first.qtype
    records: list[dnswire.DnsRecord] = []
    if code == dnswire.QTYPES["A"]:
        records.append(dnswire.make_record(name, "A", _a_address(qname, plan), ttl=ttl))
    elif code == dnswire.QTYPES["TXT"]:
        records.append(dnswire.make_record(name, "TXT", _b32(_downstream(qname, 120)), ttl=ttl))
    elif code == dnswire.QTYPES["NULL"]:
        records.append(dnswire.make_record(name, "NULL", _downstream(qname, 180), ttl=ttl))
    elif code == dnswire.QTYPES["CNAME"]:
        target = f"{_b32(_downstream(qname, 35))}.{zone}"
        records.append(dnswire.make_record(name, "CNAME", target, ttl=ttl))
    elif code == dnswire.QTYPES["MX"]:
        target = f"{_b32(_downstream(qname, 35))}.{zone}"
        records.append(dnswire.make_record(name, "MX", (10, target), ttl=ttl))
    elif code == dnswire.QTYPES["NS"] and qname == zone:
        records.append(dnswire.make_record(name, "NS", f"ns.{zone}", ttl=ttl))
    return reply("NOERROR", records)


def _a_address(qname: str, plan: LabPlan) -> str:
    zone = plan.zone.lower()
    label = qname[: -len(zone) - 1] if qname != zone else ""
    if label == "ns":
        return plan.endpoint(Service.DNS).address
    service = _ZONE_SERVICES.get(label)
    if service is not None:
        try:
            return plan.endpoint(service).address
        except KeyError:
            pass
    return plan.endpoint(Service.HTTPS).address


def _answer_text(record: dnswire.DnsRecord) -> str:
    """An answer as Zeek's ``dns.log`` shows it."""
    value = dnswire.record_value(record)
    name = dnswire.qtype_name(record.rtype)
    if name == "TXT" and isinstance(value, tuple):
        text = b"".join(v for v in value if isinstance(v, bytes)).decode("latin-1")
        return f"TXT {len(text)} {text}"
    if name == "MX" and isinstance(value, tuple):
        return str(value[1])
    if isinstance(value, str):
        return value
    return f"<unknown type={record.rtype}>"


def looks_like_dns(data: bytes) -> bool:
    try:
        msg = dnswire.parse_message(data)
    except dnswire.DnsWireError:
        return False
    return bool(msg.questions)
