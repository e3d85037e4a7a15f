"""A DNS tunnel client in the style of iodine, dnscat2, dns2tcp or DET.

Like the real tools it builds its own DNS packets and sends them straight to the resolver on
UDP/53 from ONE long-lived socket (no resolver API), one query name per chunk of data in the
tool's encoding (:mod:`scenarios.encodings`: the project's own implementation of each tool's
alphabet, header and label layout), and reads every answer (the tools' downstream channel).

Styles (``--style``) and what each sends by default:

* ``iodine``: Base32 names (``--codec base64|base128`` after iodine's codec checks), NULL
  records (``--record``: NULL, PRIVATE/TYPE65399, TXT, SRV, MX, CNAME, A), EDNS0 with a 4096-byte
  payload, and a ping query (``p<hex>``) every ``--ping-interval`` seconds, iodine's keep-alive;
  20 queries/s (iodine keeps a query outstanding at all times, so it moves data continuously).
* ``dnscat2``: hex names of unencrypted MSG packets, TXT (or CNAME, MX, A, AAAA), 10 queries/s.
* ``dns2tcp``: Base64 names, TXT (or KEY), 10 queries/s.
* ``det``: DET's double hex in full 63-character labels, A queries, 5 queries/s.

The tunnel's domain is ``<run id>.<zone>``: the run id is a DNS label of every query, and the
data decodes back with :func:`scenarios.encodings.decode_name` under :func:`tunnel_domain`.
Data comes from ``--file`` or is ``--bytes`` of random bytes after the run-id prefix; the client
stops when it is sent or after ``--duration``. A query unanswered within ``--timeout`` is sent
again (``--retries`` times, new transaction id), as the tools retransmit. No answer at all to
the first queries means the resolver is unreachable: exit 1.
"""

from __future__ import annotations

import argparse
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.pcap.dnswire import DnsMessage, DnsWireError, build_query, parse_message
from scenarios.encodings import (
    SPECS,
    TOOL_QTYPES,
    TunnelEncoding,
    chunk_stream,
    tool_chunk_size,
)
from scenarios.programs._common import (
    Deadline,
    ProgramError,
    Stats,
    base_parser,
    gap,
    make_payload,
    positive_float,
    read_input,
    run_program,
    size,
    udp_socket,
)

__all__ = [
    "DEFAULT_RATES",
    "STYLES",
    "DnsClient",
    "encode_names",
    "encoding_of",
    "main",
    "send_names",
    "tunnel_domain",
    "wire_name",
]

STYLES = ("iodine", "dnscat2", "dns2tcp", "det")
_IODINE_CODECS = {
    "base32": TunnelEncoding.IODINE_BASE32,
    "base64": TunnelEncoding.IODINE_BASE64,
    "base128": TunnelEncoding.IODINE_BASE128,
}
#: Queries per second of each style unless ``--rate`` says otherwise.
DEFAULT_RATES = {"iodine": 20.0, "dnscat2": 10.0, "dns2tcp": 10.0, "det": 5.0}
#: Consecutive unanswered queries at the start after which the resolver counts as unreachable.
_UNREACHABLE_AFTER = 5


def encoding_of(style: str, codec: str = "base32") -> TunnelEncoding:
    """The :class:`TunnelEncoding` of a style (and iodine codec)."""
    if style == "iodine":
        return _IODINE_CODECS[codec]
    return {
        "dnscat2": TunnelEncoding.DNSCAT2_HEX,
        "dns2tcp": TunnelEncoding.DNS2TCP_BASE64,
        "det": TunnelEncoding.DET_HEX,
    }[style]


def tunnel_domain(run_id: str, zone: str) -> str:
    """The domain a tunnel of run ``run_id`` writes its data under: ``<run id>.<zone>``."""
    return f"{run_id.lower()}.{zone.rstrip('.').lower()}"


def encode_names(
    data: bytes, *, encoding: TunnelEncoding, domain: str, session: int
) -> tuple[list[str], int]:
    """``data`` as the query names the tool sends under ``domain``, in its own chunk size
    (:func:`~scenarios.encodings.tool_chunk_size`): the names, and that size in bytes.
    :class:`ProgramError` when the domain leaves no room or the session is out of range."""
    try:
        chunk = tool_chunk_size(encoding, domain)
        names = chunk_stream(
            data, encoding=encoding, domain=domain, session=session, chunk_size=chunk
        )
    except HarnessError as exc:
        raise ProgramError(f"cannot encode under {domain}: {exc}") from exc
    return names, chunk


def wire_name(name: str) -> str:
    """``name`` in the presentation form :mod:`harness.pcap.dnswire` takes: characters above
    U+007F (iodine's Base128 octets 0xBC..0xFD) as ``\\DDD`` escapes of the same octet."""
    if name.isascii():
        return name
    return "".join(c if ord(c) < 0x80 else f"\\{ord(c):03d}" for c in name)


def _qtype(record: str) -> str:
    return "TYPE65399" if record.upper() == "PRIVATE" else record.upper()


@dataclass(slots=True)
class DnsClient:
    """One UDP socket to one resolver, kept for the whole run, with counters."""

    sock: socket.socket
    resolver: tuple[str, int]
    rng: random.Random
    timeout_s: float
    retries: int
    edns_payload: int | None = None
    queries: int = 0
    answered: int = 0
    unanswered: int = 0
    unparsed: int = 0
    wire_out: int = 0
    wire_in: int = 0
    downstream: int = 0
    pings: int = 0
    names_sent: int = 0
    #: The last answer received (its records: what a look-up resolved to).
    last_answer: DnsMessage | None = None

    @classmethod
    def open(
        cls,
        *,
        bind: str | None,
        resolver: str,
        port: int,
        rng: random.Random,
        timeout_s: float,
        retries: int,
        edns_payload: int | None = None,
    ) -> DnsClient:
        sock = udp_socket(bind, timeout_s)
        return cls(
            sock=sock,
            resolver=(resolver, port),
            rng=rng,
            timeout_s=timeout_s,
            retries=retries,
            edns_payload=edns_payload,
        )

    def close(self) -> None:
        self.sock.close()

    def ask(self, name: str, qtype: str, deadline: Deadline) -> bool:
        """Send the query (again on timeout, up to ``retries`` times); True when answered."""
        for _ in range(1 + self.retries):
            txid = self.rng.randrange(0x10000)
            packet = build_query(wire_name(name), qtype, txid=txid, edns_payload=self.edns_payload)
            try:
                self.sock.sendto(packet, self.resolver)
            except OSError as exc:
                raise ProgramError(
                    f"cannot send to resolver {self.resolver[0]}:{self.resolver[1]}: "
                    f"{exc.strerror or exc}"
                ) from exc
            self.queries += 1
            self.wire_out += len(packet)
            if self._await(txid, deadline):
                self.answered += 1
                return True
            if deadline.expired():
                break
        self.unanswered += 1
        if self.answered == 0 and self.unanswered >= _UNREACHABLE_AFTER:
            raise ProgramError(
                f"resolver {self.resolver[0]}:{self.resolver[1]} did not answer "
                f"{self.unanswered} queries: unreachable"
            )
        return False

    def _await(self, txid: int, deadline: Deadline) -> bool:
        self.sock.settimeout(deadline.timeout(self.timeout_s, floor=0.05))
        while True:
            try:
                data, peer = self.sock.recvfrom(65_535)
            except OSError:  # timeout, ICMP port unreachable...: no answer to this try
                return False
            if peer[0] != self.resolver[0]:
                continue  # not from our resolver: ignore, as a stub does
            self.wire_in += len(data)
            try:
                message = parse_message(data)
            except (DnsWireError, HarnessError):
                self.unparsed += 1
                continue
            if message.txid != txid:
                continue  # a late answer to an earlier try
            self.downstream += sum(len(r.rdata) for r in message.answers)
            self.last_answer = message
            return True

    def summary(self) -> Stats:
        return {
            "queries": self.queries,
            "answered": self.answered,
            "unanswered": self.unanswered,
            "unparsed_answers": self.unparsed,
            "wire_bytes_out": self.wire_out,
            "wire_bytes_in": self.wire_in,
            "downstream_bytes": self.downstream,
            "pings": self.pings,
            "names_sent": self.names_sent,
        }


def send_names(
    client: DnsClient,
    names: Sequence[str],
    *,
    qtype: str,
    rate: float,
    jitter: float,
    deadline: Deadline,
    rng: random.Random,
    ping_domain: str | None = None,
    ping_interval_s: float = 0.0,
) -> int:
    """Send ``names`` at ``rate`` queries/s (± ``jitter``), with iodine-style pings under
    ``ping_domain`` every ``ping_interval_s``; the number of names sent before the deadline."""
    sent = 0
    next_at = deadline.elapsed()
    next_ping = ping_interval_s if ping_interval_s > 0 else None
    for name in names:
        if not deadline.wait_until(next_at):
            break
        while next_ping is not None and ping_domain and deadline.elapsed() >= next_ping:
            client.ask(f"p{rng.randrange(16**7):07x}.{ping_domain}", qtype, deadline)
            client.pings += 1
            next_ping += ping_interval_s
        client.ask(name, qtype, deadline)
        sent += 1
        client.names_sent += 1
        next_at += gap(rng, 1.0 / rate, jitter)
    return sent


def _parser() -> argparse.ArgumentParser:
    p = base_parser("dns_tunnel", "DNS tunnel client in the style of iodine/dnscat2/dns2tcp/DET")
    p.add_argument("--style", choices=STYLES, default="iodine")
    p.add_argument("--codec", choices=tuple(_IODINE_CODECS), default="base32", help="iodine")
    p.add_argument("--record", default=None, help="query type (default: the tool's first)")
    p.add_argument("--rate", type=positive_float, default=None, help="queries per second")
    p.add_argument("--jitter", type=float, default=0.3, help="fraction of the query gap")
    p.add_argument("--bytes", type=size, default=200_000, help="data to send (no --file)")
    p.add_argument("--file", type=Path, default=None, help="send this file instead")
    p.add_argument("--resolver", required=True, help="resolver address (UDP)")
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--zone", required=True, help="the lab zone; data goes under <run id>.<zone>")
    p.add_argument("--session", type=int, default=None, help="tool session id (default: random)")
    p.add_argument("--ping-interval", type=float, default=1.0, help="iodine pings, s (0: off)")
    p.add_argument("--timeout", type=positive_float, default=1.0, help="answer timeout, s")
    p.add_argument("--retries", type=int, default=1)
    return p


def _body(args: argparse.Namespace, stats: Stats) -> None:
    rng = random.Random(args.seed)
    encoding = encoding_of(args.style, args.codec)
    record = _qtype(args.record or TOOL_QTYPES[encoding][0])
    allowed = {_qtype(q) for q in TOOL_QTYPES[encoding]}
    if record not in allowed:
        raise ProgramError(
            f"--record {args.record}: {args.style} uses {', '.join(sorted(allowed))}"
        )
    domain = tunnel_domain(args.run_id, args.zone)
    if args.file is not None:
        data = read_input(args.file)
    else:
        data = make_payload(args.run_id, args.bytes, rng)
    spec = SPECS[encoding]
    session = args.session if args.session is not None else rng.randrange(spec.max_session + 1)
    names, chunk = encode_names(data, encoding=encoding, domain=domain, session=session)
    deadline = Deadline(args.duration)
    client = DnsClient.open(
        bind=args.bind,
        resolver=args.resolver,
        port=args.port,
        rng=rng,
        timeout_s=args.timeout,
        retries=max(0, args.retries),
        edns_payload=4096 if args.style == "iodine" else None,
    )
    stats.update(
        style=args.style,
        encoding=encoding.value,
        qtype=record,
        domain=domain,
        session=session,
        chunk_bytes=chunk,
        names_total=len(names),
    )
    try:
        send_names(
            client,
            names,
            qtype=record,
            rate=args.rate or DEFAULT_RATES[args.style],
            jitter=args.jitter,
            deadline=deadline,
            rng=rng,
            ping_domain=domain if args.style == "iodine" else None,
            ping_interval_s=args.ping_interval if args.style == "iodine" else 0.0,
        )
    finally:
        stats.update(client.summary())
        stats["data_bytes_sent"] = min(len(data), client.names_sent * chunk)
        client.close()


def main(argv: list[str] | None = None) -> int:
    return run_program("dns_tunnel", _parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
