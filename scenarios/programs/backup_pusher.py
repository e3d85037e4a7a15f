"""A backup agent (benign): pushes large volumes to an off-site service on a custom TCP port, on
a schedule, the same way in the baseline and the attack phase.

Every ``--every`` seconds a job starts: one TCP connection to ``--host:--port`` carrying the
run-id prefix line and ``--bytes`` of backup data (random bytes: backups are compressed and
encrypted) at ``--rate`` bytes/s, then a half-close and the server's acknowledgement. Defaults:
20 MB jobs at 10 MB/s every 30 s, first job after ``--offset`` seconds. Stops after
``--duration``; a refused connection is exit 1.
"""

from __future__ import annotations

import argparse
import random

from scenarios.programs import raw_exfil
from scenarios.programs._common import (
    Deadline,
    Stats,
    base_parser,
    make_payload,
    positive_float,
    run_program,
    size,
)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = base_parser("backup_pusher", "Scheduled large TCP backup uploads (benign)")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bytes", type=size, default=20_000_000, help="bytes per job")
    p.add_argument("--rate", type=size, default=10_000_000, help="bytes per second")
    p.add_argument("--every", type=positive_float, default=30.0, help="seconds between jobs")
    p.add_argument("--offset", type=float, default=0.0, help="seconds before the first job")
    return p


def _body(args: argparse.Namespace, stats: Stats) -> None:
    rng = random.Random(args.seed)
    deadline = Deadline(args.duration)
    # One job is one chunk, so one TCP connection.
    job = raw_exfil.SendOptions(
        host=args.host,
        port=args.port,
        run_id=args.run_id,
        bind=args.bind,
        chunk=args.bytes,
        rate=args.rate,
        interval=0.0,
        jitter=0.0,
    )
    jobs = total = 0
    stats.update(jobs=0, bytes_sent=0)
    start_at = args.offset
    while deadline.wait_until(start_at):
        job_stats: Stats = {}
        data = make_payload(args.run_id, args.bytes, rng)
        raw_exfil.send(data, job, stats=job_stats, deadline=deadline, rng=rng)
        jobs += 1
        sent = job_stats.get("bytes_sent", 0)
        total += sent if isinstance(sent, int) else 0
        stats.update(jobs=jobs, bytes_sent=total)
        start_at += args.every


def main(argv: list[str] | None = None) -> int:
    return run_program("backup_pusher", _parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
