"""A normally quiet process that reads many documents, then sends them out (AN0988, T1041).

It first makes its documents (once) under ``--workdir``: ``--files`` files spread over
``Documents``, ``Desktop`` and ``Downloads``, .docx/.xlsx/.pdf of 30 kB to 250 kB of random
bytes (office documents are compressed, so they look random). Then it reads each one in full,
``--read-gap`` seconds apart, and appends every read to ``--audit`` as one JSON line
``{"ts_ns": ..., "path": ..., "bytes": ..., "pid": ...}`` (the lab has no EDR: this is the
file-access telemetry the harness turns into events). Then it sends what it read (the run-id
prefix, then the documents' bytes, at most ``--bytes`` when given) over ``--channel``:

* ``none``: nothing (the quiet work of the baseline phase, and the benign quiet desktop);
* ``tls``: an HTTPS upload with requests (``--https``, ``--ca``, ``--server-name``), in
  ``--chunk`` requests ``--interval`` s apart;
* ``dns``: a dnscat2-style hex tunnel of TXT queries to ``--resolver`` at ``--rate`` q/s under
  ``<run id>.<zone>``, from its own UDP socket;
* ``tcp`` / ``udp``: a raw send to ``--host:--port``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from scenarios.encodings import TunnelEncoding
from scenarios.programs import https_upload, raw_exfil
from scenarios.programs._common import (
    Deadline,
    ProgramError,
    Stats,
    base_parser,
    positive_float,
    run_id_prefix,
    run_program,
    size,
)
from scenarios.programs.dns_tunnel import DnsClient, encode_names, send_names, tunnel_domain

__all__ = ["CHANNELS", "audit_line", "main", "make_documents"]

CHANNELS = ("none", "tls", "dns", "tcp", "udp")
_FOLDERS = ("Documents", "Desktop", "Downloads")
_KINDS = (".docx", ".xlsx", ".pdf")


def make_documents(workdir: Path, count: int, rng: random.Random) -> list[Path]:
    """``count`` documents under ``workdir`` (kept if already there with the right size)."""
    paths = []
    for i in range(count):
        folder = workdir / _FOLDERS[i % len(_FOLDERS)]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"file-{i:04d}{_KINDS[i % len(_KINDS)]}"
        n_bytes = min(250_000, max(30_000, int(rng.lognormvariate(11.3, 0.5))))
        content = rng.randbytes(n_bytes)
        if not path.exists() or path.stat().st_size != n_bytes:
            path.write_bytes(content)
        paths.append(path)
    return paths


def audit_line(path: Path, n_bytes: int) -> str:
    """One audit record: when (ns since the epoch), what, how much, by which process."""
    return json.dumps(
        {"ts_ns": time.time_ns(), "path": str(path), "bytes": n_bytes, "pid": os.getpid()},
        sort_keys=True,
    )


def _parser() -> argparse.ArgumentParser:
    p = base_parser("quiet_reader", "Read many documents, then send them out")
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--audit", type=Path, required=True, help="JSON-lines file of its reads")
    p.add_argument("--files", type=int, default=60)
    p.add_argument("--read-gap", type=float, default=0.02, help="seconds between reads")
    p.add_argument("--channel", choices=CHANNELS, default="none")
    p.add_argument("--bytes", type=size, default=0, help="send at most this much (0: all)")
    # tls
    p.add_argument("--https", default=None)
    p.add_argument("--server-name", default=None)
    p.add_argument("--ca", default=None)
    # tcp / udp
    p.add_argument("--host", default=None)
    # dns
    p.add_argument("--resolver", default=None)
    p.add_argument("--zone", default=None)
    p.add_argument("--rate", type=positive_float, default=20.0, help="dns: queries per second")
    # shared
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--chunk", type=size, default=500_000, help="tls/tcp/udp: bytes per send")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between sends")
    p.add_argument("--jitter", type=float, default=0.3)
    return p


def _need(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is None]
    if missing:
        raise ProgramError(f"--channel {args.channel} needs {', '.join(missing)}")


def _read_all(args: argparse.Namespace, paths: list[Path], stats: Stats) -> bytes:
    collected = bytearray(run_id_prefix(args.run_id))
    args.audit.parent.mkdir(parents=True, exist_ok=True)
    with open(args.audit, "a", encoding="utf-8") as audit:
        for i, path in enumerate(paths):
            with open(path, "rb") as f:
                content = f.read()
            audit.write(audit_line(path, len(content)) + "\n")
            audit.flush()
            collected += content
            stats.update(files_read=i + 1, bytes_read=len(collected))
            if args.read_gap > 0:
                time.sleep(args.read_gap)
    return bytes(collected)


def _send_dns(
    args: argparse.Namespace, data: bytes, stats: Stats, deadline: Deadline, rng: random.Random
) -> None:
    _need(args, "resolver", "zone")
    domain = tunnel_domain(args.run_id, args.zone)
    names, _ = encode_names(
        data,
        encoding=TunnelEncoding.DNSCAT2_HEX,
        domain=domain,
        session=rng.randrange(0x10000),
    )
    client = DnsClient.open(
        bind=args.bind,
        resolver=args.resolver,
        port=args.port or 53,
        rng=rng,
        timeout_s=1.0,
        retries=1,
    )
    try:
        send_names(
            client,
            names,
            qtype="TXT",
            rate=args.rate,
            jitter=args.jitter,
            deadline=deadline,
            rng=rng,
        )
    finally:
        stats.update(client.summary(), domain=domain)
        client.close()


def _body(args: argparse.Namespace, stats: Stats) -> None:
    rng = random.Random(args.seed)
    deadline = Deadline(args.duration)
    paths = make_documents(args.workdir, args.files, rng)
    data = _read_all(args, paths, stats)
    if args.bytes > 0:
        data = data[: args.bytes]
    stats["channel"] = args.channel
    if args.channel == "none":
        return
    if args.channel == "dns":
        _send_dns(args, data, stats, deadline, rng)
    elif args.channel == "tls":
        _need(args, "https")
        upload = https_upload.UploadOptions(
            https=args.https,
            run_id=args.run_id,
            bind=args.bind,
            port=args.port or 443,
            server_name=args.server_name,
            ca=args.ca,
            chunk=args.chunk,
            interval=args.interval,
            jitter=args.jitter,
        )
        https_upload.upload(data, upload, stats=stats, deadline=deadline, rng=rng)
    else:
        _need(args, "host", "port")
        raw = raw_exfil.SendOptions(
            host=args.host,
            port=args.port,
            run_id=args.run_id,
            bind=args.bind,
            transport=args.channel,
            chunk=args.chunk,
            interval=args.interval,
            jitter=args.jitter,
        )
        raw_exfil.send(data, raw, stats=stats, deadline=deadline, rng=rng)


def main(argv: list[str] | None = None) -> int:
    return run_program("quiet_reader", _parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
