"""A browser-like fetcher (benign): looks names up, then downloads pages and assets over HTTPS.

Each "page visit" picks one of ``--names`` (host names under the lab zone), resolves it the way
a browser does, through the C library (``socket.getaddrinfo``: in a lab namespace or container
``/etc/resolv.conf`` points at the lab resolver), and fetches 1 to 4 resources from it over
HTTPS with SNI and ``Host`` set to the name, on one kept-alive connection: a page of tens of kB
and assets of a few hundred kB to a few MB (``GET ?size=N`` on the lab sink), so traffic is
receive-heavy like browsing. Visits come ``--interval`` s apart (± 50 %).

Names are only ever sent to the lab resolver: when ``/etc/resolv.conf`` does not name
``--resolver`` (the loopback lab, which shares the host's resolver configuration), the fetcher
asks ``--resolver`` itself with an A query instead of the C library, so no lookup leaves the
lab; like the C library's stub resolver it opens a fresh socket (a new source port) for each
lookup and closes it after the answer, so its DNS looks on the wire as a browser's does.
"""

from __future__ import annotations

import argparse
import random
import socket
from pathlib import Path

from harness.pcap.dnswire import QTYPES, record_value
from scenarios.programs import _http
from scenarios.programs._common import (
    Deadline,
    ProgramError,
    Stats,
    base_parser,
    gap,
    positive_float,
    run_program,
)
from scenarios.programs.dns_tunnel import DnsClient

__all__ = ["main", "resolv_conf_nameservers"]

_RESOLV_CONF = Path("/etc/resolv.conf")
_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def resolv_conf_nameservers(path: Path = _RESOLV_CONF) -> tuple[str, ...]:
    """The ``nameserver`` addresses of a resolv.conf (empty when it cannot be read)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ()
    return tuple(
        parts[1]
        for parts in (line.split() for line in lines)
        if len(parts) >= 2 and parts[0] == "nameserver"
    )


def _resolve_libc(name: str) -> str:
    try:
        infos = socket.getaddrinfo(name, 443, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ProgramError(f"cannot resolve {name}: {exc.strerror}") from exc
    return str(infos[0][4][0])


def _resolve_direct(
    args: argparse.Namespace, rng: random.Random, name: str, deadline: Deadline
) -> str:
    """The A record of ``name`` from ``--resolver``, asked from a fresh socket as the C
    library's stub resolver does."""
    client = DnsClient.open(
        bind=args.bind,
        resolver=args.resolver,
        port=args.resolver_port,
        rng=rng,
        timeout_s=2.0,
        retries=0,
    )
    try:
        if not client.ask(name, "A", deadline) or client.last_answer is None:
            raise ProgramError(f"no answer from {args.resolver} for {name}")
        for record in client.last_answer.answers:
            if record.rtype == QTYPES["A"]:
                return str(record_value(record))
        raise ProgramError(f"{name} has no A record at {args.resolver}")
    finally:
        client.close()


def _parser() -> argparse.ArgumentParser:
    p = base_parser("fetcher", "Browser-like HTTPS fetcher (benign)")
    p.add_argument("--names", required=True, help="comma-separated host names to visit")
    p.add_argument("--resolver", required=True, help="the lab resolver")
    p.add_argument("--resolver-port", type=int, default=53)
    p.add_argument("--ca", default=None, help="CA bundle of the lab")
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--interval", type=positive_float, default=2.0, help="seconds between visits")
    p.add_argument("--visits", type=int, default=0, help="stop after this many (0: no limit)")
    p.add_argument("--timeout", type=positive_float, default=15.0)
    return p


def _body(args: argparse.Namespace, stats: Stats) -> None:
    rng = random.Random(args.seed)
    deadline = Deadline(args.duration)
    names = [n.strip() for n in args.names.split(",") if n.strip()]
    if not names:
        raise ProgramError("--names lists no host name")
    via_libc = args.resolver in resolv_conf_nameservers()
    stats.update(resolution="libc" if via_libc else "direct", visits=0, requests=0)
    received = visits = n_requests = dns_queries = 0
    next_at = 0.0
    try:
        while deadline.wait_until(next_at) and (args.visits <= 0 or visits < args.visits):
            name = rng.choice(names)
            if via_libc:
                address = _resolve_libc(name)
            else:
                address = _resolve_direct(args, rng, name, deadline)
                dns_queries += 1
            session = _http.session(
                run_id=args.run_id,
                bind=args.bind,
                ca=args.ca,
                server_name=name,
                user_agent=_USER_AGENT,
            )
            url = _http.base_url("https", address, args.port)
            try:
                for k in range(rng.randint(1, 4)):
                    size = (
                        int(rng.lognormvariate(10.5, 0.6))
                        if k == 0
                        else min(4_000_000, int(rng.lognormvariate(12.0, 1.0)))
                    )
                    path = "/" if k == 0 else f"/assets/{rng.randbytes(6).hex()}.js"
                    response = _http.request(
                        session,
                        "GET",
                        f"{url}{path}?size={size}",
                        timeout_s=deadline.timeout(args.timeout),
                    )
                    n_requests += 1
                    received += len(response.content)
            finally:
                session.close()
            visits += 1
            stats.update(visits=visits, requests=n_requests, bytes_received=received)
            next_at += gap(rng, args.interval, 0.5)
    finally:
        if not via_libc:
            stats.update(dns_queries=dns_queries)


def main(argv: list[str] | None = None) -> int:
    return run_program("fetcher", _parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
