"""HTTPS upload of N bytes in chunks, with requests, trusting the lab's CA only.

Two uses in the lab cast: exfiltration (a never-seen process, or a copy named like a browser
running from an unusual path, posting megabytes in a few large requests, a fresh TLS connection
for each, as curl-style tools and most implants do), and the benign sync uploader (the same
program under a sync client's name: smaller chunks at a steadier pace on one kept-alive
connection, in the baseline as well as the attack phase).

Defaults: 8 MB in 1 MB POSTs to ``https://<https>/upload/<run id>/<n>`` every 0.5 s
(± 30 %), each on a new connection (``--keep-alive`` reuses one). ``--server-name`` is sent as
SNI and ``Host`` and the certificate is checked against it with ``--ca``; the run id rides in the
``X-Lab-Run`` header and the body starts with the run-id prefix. ``--file`` uploads a file
instead of random bytes. Stops when the data is sent or after ``--duration``; the first request
failing (sink unreachable, certificate refused) is exit 1, as are three failures in a row later.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import requests

from scenarios.programs import _http
from scenarios.programs._common import (
    Deadline,
    ProgramError,
    Stats,
    base_parser,
    gap,
    make_payload,
    positive_float,
    run_id_prefix,
    run_program,
    size,
)

__all__ = ["main", "upload"]

_MAX_FAILURES = 3


def _parser() -> argparse.ArgumentParser:
    p = base_parser("https_upload", "Upload data over HTTPS in chunks")
    p.add_argument("--https", required=True, help="address of the HTTPS sink")
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--scheme", choices=("https", "http"), default="https")
    p.add_argument("--server-name", default=None, help="SNI and Host (default: the address)")
    p.add_argument("--ca", default=None, help="CA bundle to verify the sink with")
    p.add_argument("--bytes", type=size, default=8_000_000, help="data to upload")
    p.add_argument("--file", type=Path, default=None, help="upload this file instead")
    p.add_argument("--chunk", type=size, default=1_000_000, help="bytes per request")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between requests")
    p.add_argument("--jitter", type=float, default=0.3)
    p.add_argument("--method", choices=("POST", "PUT"), default="POST")
    p.add_argument("--path", default="/upload", help="URL path prefix")
    p.add_argument("--keep-alive", action="store_true", help="reuse one connection")
    p.add_argument("--user-agent", default=None)
    p.add_argument("--timeout", type=positive_float, default=15.0)
    return p


def upload(
    data: bytes,
    *,
    args: argparse.Namespace,
    stats: Stats,
    deadline: Deadline,
    rng: random.Random,
) -> None:
    """Upload ``data`` in ``args.chunk``-byte requests until sent or the deadline; counts go
    into ``stats`` (``requests``, ``bytes_sent``, ``bytes_received``, ``statuses``)."""
    url = _http.base_url(args.scheme, args.https, args.port)
    stats.update(requests=0, bytes_sent=0, bytes_received=0, failures=0, statuses={})
    statuses: dict[str, int] = {}
    session: requests.Session | None = None
    failures = 0
    offset = 0
    received = 0
    n = 0
    next_at = deadline.elapsed()
    try:
        while offset < len(data) and deadline.wait_until(next_at):
            if session is None or not args.keep_alive:
                if session is not None:
                    session.close()
                session = _http.session(
                    run_id=args.run_id,
                    bind=args.bind,
                    ca=args.ca,
                    server_name=args.server_name,
                    user_agent=args.user_agent,
                )
            body = data[offset : offset + args.chunk]
            headers = {"Content-Type": "application/octet-stream"}
            if not args.keep_alive:
                headers["Connection"] = "close"
            try:
                response = _http.request(
                    session,
                    args.method,
                    f"{url}{args.path.rstrip('/')}/{args.run_id}/{n}",
                    data=body,
                    headers=headers,
                    timeout_s=min(args.timeout, max(1.0, deadline.remaining())),
                )
            except ProgramError:
                failures += 1
                stats["failures"] = failures
                if n == 0 or failures >= _MAX_FAILURES:
                    raise
                next_at += gap(rng, args.interval, args.jitter)
                continue
            failures = 0
            n += 1
            offset += len(body)
            stats["requests"] = n
            stats["bytes_sent"] = offset
            received += len(response.content)
            stats["bytes_received"] = received
            key = str(response.status_code)
            statuses[key] = statuses.get(key, 0) + 1
            stats["statuses"] = dict(statuses)
            next_at += gap(rng, args.interval, args.jitter)
    finally:
        if session is not None:
            session.close()


def _body(args: argparse.Namespace, stats: Stats) -> None:
    rng = random.Random(args.seed)
    if args.file is not None:
        try:
            data = run_id_prefix(args.run_id) + args.file.read_bytes()
        except OSError as exc:
            raise ProgramError(f"cannot read --file {args.file}: {exc.strerror}") from exc
    else:
        data = make_payload(args.run_id, args.bytes, rng)
    if args.chunk < 1:
        raise ProgramError(f"--chunk {args.chunk}: must be at least 1 byte")
    stats.update(data_bytes=len(data), server_name=args.server_name)
    upload(data, args=args, stats=stats, deadline=Deadline(args.duration), rng=rng)


def main(argv: list[str] | None = None) -> int:
    return run_program("https_upload", _parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
