"""Protocol-misuse clients: C2 over a protocol on a port that belongs to another (T1571).

Modes (``--mode``), each a series of ``--sessions`` short sessions ``--interval`` s apart:

* ``http-on-443``: plain-text HTTP requests (``POST /c2/<run id>``, a ``Host`` and
  ``X-Lab-Run`` header, a few hundred bytes to a few kB of body) to TCP 443, where TLS belongs.
* ``tls-on-53``: a real TLS ClientHello (made by Python's ``ssl`` with SNI
  ``<run id>.<server name>``), then TLS application-data records, to TCP 53.
* ``tls-odd-port``: the same to a port that is neither TLS's nor any named protocol's.
* ``dns-odd-port``: DNS queries (TXT for ``<hex>.<run id>.<zone>``) over UDP to a port other
  than 53.

The other side is a lab sink that may not speak the protocol sent (a TLS server receiving HTTP,
a DNS server receiving TLS): every answer, reset or silence is tolerated and counted. A refused
first connection is exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import ssl

from harness.pcap.dnswire import build_query
from scenarios.programs._common import (
    RUN_ID_HEADER,
    Deadline,
    ProgramError,
    Stats,
    base_parser,
    drain,
    gap,
    positive_float,
    run_program,
    tcp_connect,
    udp_socket,
)
from scenarios.programs.dns_tunnel import tunnel_domain

__all__ = ["DEFAULT_PORTS", "MODES", "client_hello", "main"]

MODES = ("http-on-443", "tls-on-53", "tls-odd-port", "dns-odd-port")
DEFAULT_PORTS = {"http-on-443": 443, "tls-on-53": 53, "tls-odd-port": 9001, "dns-odd-port": 5000}


def client_hello(server_name: str) -> bytes:
    """The first flight of a TLS client (a ClientHello record) as Python's ``ssl`` writes it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def _http_session(args: argparse.Namespace, rng: random.Random, n: int) -> tuple[int, int]:
    sock = tcp_connect(args.host, args.port, args.bind, timeout_s=5.0)
    try:
        body = rng.randbytes(rng.randint(300, 3_000)).hex().encode("ascii")
        head = (
            f"POST /c2/{args.run_id}/{n} HTTP/1.1\r\n"
            f"Host: {args.server_name or args.host}\r\n"
            f"{RUN_ID_HEADER}: {args.run_id}\r\n"
            "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\n"
            "Content-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode("ascii")
        try:
            sock.sendall(head + body)
        except OSError:
            return 0, 0
        return len(head) + len(body), drain(sock, 2.0)
    finally:
        sock.close()


def _tls_session(args: argparse.Namespace, rng: random.Random) -> tuple[int, int]:
    sni = f"{args.run_id.lower()}.{args.server_name or args.zone}"
    sock = tcp_connect(args.host, args.port, args.bind, timeout_s=5.0)
    sent = received = 0
    try:
        hello = client_hello(sni)
        try:
            sock.sendall(hello)
            sent += len(hello)
            received += _drain_some(sock, 0.5)
            for _ in range(rng.randint(2, 6)):
                payload = rng.randbytes(rng.randint(100, 1_200))
                record = b"\x17\x03\x03" + len(payload).to_bytes(2, "big") + payload
                sock.sendall(record)
                sent += len(record)
            received += drain(sock, 1.0)
        except OSError:
            pass
    finally:
        sock.close()
    return sent, received


def _drain_some(sock: socket.socket, wait_s: float) -> int:
    """One read of at most what arrives within ``wait_s`` (the peer's first answer, if any)."""
    sock.settimeout(wait_s)
    try:
        return len(sock.recv(65_536))
    except OSError:
        return 0


def _dns_session(
    args: argparse.Namespace, rng: random.Random, sock: socket.socket
) -> tuple[int, int]:
    sent = received = 0
    for _ in range(rng.randint(2, 5)):
        name = f"{rng.randbytes(12).hex()}.{tunnel_domain(args.run_id, args.zone)}"
        query = build_query(name, "TXT", txid=rng.randrange(0x10000))
        try:
            sock.sendto(query, (args.host, args.port))
            sent += len(query)
            data, _ = sock.recvfrom(65_535)
            received += len(data)
        except OSError:
            continue
    return sent, received


def _parser() -> argparse.ArgumentParser:
    p = base_parser("misuse", "Protocol misuse: a protocol on a port that belongs to another")
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=None, help="default: per mode")
    p.add_argument("--server-name", default=None, help="HTTP Host / TLS SNI suffix")
    p.add_argument("--zone", default="lab.example", help="names under this zone (dns, SNI)")
    p.add_argument("--sessions", type=int, default=6)
    p.add_argument("--interval", type=positive_float, default=3.0, help="seconds")
    p.add_argument("--jitter", type=float, default=0.3)
    return p


def _body(args: argparse.Namespace, stats: Stats) -> None:
    rng = random.Random(args.seed)
    if args.port is None:
        args.port = DEFAULT_PORTS[args.mode]
    deadline = Deadline(args.duration)
    udp = udp_socket(args.bind, 1.0) if args.mode == "dns-odd-port" else None
    sent = received = done = failures = 0
    stats.update(mode=args.mode, port=args.port, sessions=0)
    next_at = 0.0
    try:
        while done < args.sessions and deadline.wait_until(next_at):
            try:
                if udp is not None:
                    s, r = _dns_session(args, rng, udp)
                elif args.mode == "http-on-443":
                    s, r = _http_session(args, rng, done)
                else:
                    s, r = _tls_session(args, rng)
            except ProgramError:
                if done == 0:
                    raise  # the first session could not connect: the sink is unreachable
                failures += 1
                stats["failures"] = failures
                s = r = 0
            done += 1
            sent += s
            received += r
            stats.update(sessions=done, bytes_sent=sent, bytes_received=received)
            next_at += gap(rng, args.interval, args.jitter)
    finally:
        if udp is not None:
            udp.close()


def main(argv: list[str] | None = None) -> int:
    return run_program("misuse", _parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
