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
import dataclasses
import random
from dataclasses import dataclass
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
    read_input,
    run_id_prefix,
    run_program,
    size,
)

__all__ = ["UploadOptions", "main", "upload"]


# Not slots=True: the class attributes then keep the defaults, which the parser reuses, so a
# caller of upload() and the command line cannot drift apart.
@dataclass(frozen=True, kw_only=True)
class UploadOptions:
    """Where and how :func:`upload` sends: the options of the command line, with its defaults."""

    https: str
    run_id: str
    bind: str | None = None
    port: int = 443
    scheme: str = "https"
    server_name: str | None = None
    ca: str | None = None
    chunk: int = 1_000_000
    interval: float = 0.5
    jitter: float = 0.3
    method: str = "POST"
    path: str = "/upload"
    keep_alive: bool = False
    user_agent: str | None = None
    timeout: float = 15.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> UploadOptions:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def _parser() -> argparse.ArgumentParser:
    p = base_parser("https_upload", "Upload data over HTTPS in chunks")
    p.add_argument("--https", required=True, help="address of the HTTPS sink")
    p.add_argument("--port", type=int, default=UploadOptions.port)
    p.add_argument("--scheme", choices=("https", "http"), default=UploadOptions.scheme)
    p.add_argument("--server-name", default=None, help="SNI and Host (default: the address)")
    p.add_argument("--ca", default=None, help="CA bundle to verify the sink with")
    p.add_argument("--bytes", type=size, default=8_000_000, help="data to upload")
    p.add_argument("--file", type=Path, default=None, help="upload this file instead")
    p.add_argument("--chunk", type=size, default=UploadOptions.chunk, help="bytes per request")
    p.add_argument(
        "--interval", type=float, default=UploadOptions.interval, help="seconds between requests"
    )
    p.add_argument("--jitter", type=float, default=UploadOptions.jitter)
    p.add_argument("--method", choices=("POST", "PUT"), default=UploadOptions.method)
    p.add_argument("--path", default=UploadOptions.path, help="URL path prefix")
    p.add_argument("--keep-alive", action="store_true", help="reuse one connection")
    p.add_argument("--user-agent", default=None)
    p.add_argument("--timeout", type=positive_float, default=UploadOptions.timeout)
    return p


def upload(
    data: bytes,
    options: UploadOptions,
    *,
    stats: Stats,
    deadline: Deadline,
    rng: random.Random,
) -> None:
    """Upload ``data`` in ``options.chunk``-byte requests until sent or the deadline; counts go
    into ``stats`` (``requests``, ``bytes_sent``, ``bytes_received``, ``statuses``)."""
    url = _http.base_url(options.scheme, options.https, options.port)
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
            if session is None or not options.keep_alive:
                if session is not None:
                    session.close()
                session = _http.session(
                    run_id=options.run_id,
                    bind=options.bind,
                    ca=options.ca,
                    server_name=options.server_name,
                    user_agent=options.user_agent,
                )
            body = data[offset : offset + options.chunk]
            headers = {"Content-Type": "application/octet-stream"}
            if not options.keep_alive:
                headers["Connection"] = "close"
            try:
                response = _http.request(
                    session,
                    options.method,
                    f"{url}{options.path.rstrip('/')}/{options.run_id}/{n}",
                    data=body,
                    headers=headers,
                    timeout_s=deadline.timeout(options.timeout),
                )
            except ProgramError:
                failures += 1
                stats["failures"] = failures
                if _http.gives_up(n, failures):
                    raise
                next_at += gap(rng, options.interval, options.jitter)
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
            next_at += gap(rng, options.interval, options.jitter)
    finally:
        if session is not None:
            session.close()


def _body(args: argparse.Namespace, stats: Stats) -> None:
    rng = random.Random(args.seed)
    if args.file is not None:
        data = run_id_prefix(args.run_id) + read_input(args.file)
    else:
        data = make_payload(args.run_id, args.bytes, rng)
    if args.chunk < 1:
        raise ProgramError(f"--chunk {args.chunk}: must be at least 1 byte")
    stats.update(data_bytes=len(data), server_name=args.server_name)
    upload(
        data, UploadOptions.from_args(args), stats=stats, deadline=Deadline(args.duration), rng=rng
    )


def main(argv: list[str] | None = None) -> int:
    return run_program("https_upload", _parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
