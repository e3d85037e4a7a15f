"""An HTTP(S) command-and-control beacon that stuffs junk data into its check-ins (T1001.001).

Every ``--interval`` seconds (± ``--jitter``) it opens a fresh connection and POSTs a check-in:
``--base-bytes`` of beacon data (the run id, a counter, a random task result) plus a ``pad``
form field of junk letters, ``--padding-bytes`` long every time (``constant``) or uniform from 0
to twice that (``random``). The server's answer is small, so the conversation sends far more
than it receives. Defaults: plain HTTP to port 80, 400 bytes of data, 20 kB of constant
padding, every 5 s (an operator's interactive sleep; implants default to 60 s), until
``--duration`` or ``--count`` check-ins. ``--scheme https`` with ``--ca`` and ``--server-name``
beacons over TLS. The run id is in the ``X-Lab-Run`` header and the body.
"""

from __future__ import annotations

import argparse
import base64
import random
import string

from scenarios.programs import _http
from scenarios.programs._common import (
    Deadline,
    ProgramError,
    Stats,
    base_parser,
    gap,
    positive_float,
    run_program,
    size,
)

__all__ = ["check_in_body", "main"]

_JUNK = string.ascii_letters + string.digits


def check_in_body(
    run_id: str, n: int, *, base_bytes: int, padding_bytes: int, rng: random.Random
) -> bytes:
    """One check-in: URL-encoded form fields ``id``, ``n``, ``data`` (base64 of random bytes,
    about ``base_bytes`` long in all) and ``pad`` (``padding_bytes`` junk letters)."""
    head = f"id={run_id}&n={n}&data="
    raw = rng.randbytes(max(0, (base_bytes - len(head)) * 3 // 4))
    data = base64.urlsafe_b64encode(raw).decode("ascii")
    pad = "".join(rng.choices(_JUNK, k=padding_bytes))
    return f"{head}{data}&pad={pad}".encode("ascii")


def _parser() -> argparse.ArgumentParser:
    p = base_parser("beacon", "HTTP(S) C2 beacon with junk padding")
    p.add_argument("--host", required=True, help="address of the C2 (HTTP or HTTPS sink)")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--scheme", choices=("http", "https"), default="http")
    p.add_argument("--server-name", default=None, help="SNI and Host")
    p.add_argument("--ca", default=None, help="CA bundle (https)")
    p.add_argument("--path", default="/api/v2/poll")
    p.add_argument("--interval", type=positive_float, default=5.0, help="seconds")
    p.add_argument("--jitter", type=float, default=0.2)
    p.add_argument("--padding", choices=("constant", "random"), default="constant")
    p.add_argument("--padding-bytes", type=size, default=20_000)
    p.add_argument("--base-bytes", type=size, default=400)
    p.add_argument("--count", type=int, default=0, help="stop after this many (0: no limit)")
    p.add_argument("--timeout", type=positive_float, default=10.0)
    p.add_argument(
        "--user-agent",
        default="Mozilla/5.0 (Windows NT 10.0; Win64; x64; Trident/7.0; rv:11.0) like Gecko",
    )
    return p


def _body(args: argparse.Namespace, stats: Stats) -> None:
    rng = random.Random(args.seed)
    deadline = Deadline(args.duration)
    url = _http.base_url(args.scheme, args.host, args.port) + args.path
    sent = received = n = failures = 0
    stats.update(check_ins=0, bytes_sent=0, bytes_received=0, padding=args.padding)
    next_at = 0.0
    while deadline.wait_until(next_at) and (args.count <= 0 or n < args.count):
        pad = (
            rng.randint(0, 2 * args.padding_bytes)
            if args.padding == "random"
            else args.padding_bytes
        )
        body = check_in_body(args.run_id, n, base_bytes=args.base_bytes, padding_bytes=pad, rng=rng)
        session = _http.session(
            run_id=args.run_id,
            bind=args.bind,
            ca=args.ca,
            server_name=args.server_name,
            user_agent=args.user_agent,
        )
        try:
            response = _http.request(
                session,
                "POST",
                url,
                data=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Connection": "close",
                },
                timeout_s=deadline.timeout(args.timeout),
            )
        except ProgramError:
            failures += 1
            if _http.gives_up(n, failures):
                raise
        else:
            failures = 0
            n += 1
            sent += len(body)
            received += len(response.content)
            stats.update(check_ins=n, bytes_sent=sent, bytes_received=received)
        finally:
            session.close()
        next_at += gap(rng, args.interval, args.jitter)


def main(argv: list[str] | None = None) -> int:
    return run_program("beacon", _parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
