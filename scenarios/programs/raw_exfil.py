"""Bulk exfiltration over raw TCP or UDP to a custom port, with no application protocol a sensor
could name (T1048, T1571, T1095): a netcat-style pipe or a custom implant's channel.

TCP: every ``--chunk`` bytes go over a new connection (the run-id prefix line, then the data),
the client half-closes and reads whatever the sink answers. UDP: ``--datagram``-byte datagrams,
each starting with ``eh-run=<run id> seq=<n>\\n``. Sending is paced to ``--rate`` bytes/s (0:
as fast as the socket takes it), with ``--interval`` seconds (± ``--jitter``) between chunks.
Defaults: 20 MB in 4 MB chunks at 5 MB/s, 1 s apart. Stops when the data is sent or after
``--duration``; a refused first connection is exit 1.
"""

from __future__ import annotations

import argparse
import random
import socket

from scenarios.programs._common import (
    Deadline,
    ProgramError,
    Stats,
    base_parser,
    gap,
    make_payload,
    run_id_prefix,
    run_program,
    size,
    tcp_connect,
    udp_socket,
)

__all__ = ["main", "send"]

_BLOCK = 64 * 1024


def _parser() -> argparse.ArgumentParser:
    p = base_parser("raw_exfil", "Raw TCP/UDP bulk send to a custom port")
    p.add_argument("--transport", choices=("tcp", "udp"), default="tcp")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bytes", type=size, default=20_000_000)
    p.add_argument("--chunk", type=size, default=4_000_000, help="bytes per connection/burst")
    p.add_argument("--rate", type=size, default=5_000_000, help="bytes per second (0: no limit)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between chunks")
    p.add_argument("--jitter", type=float, default=0.3)
    p.add_argument("--datagram", type=size, default=1_200, help="UDP payload size")
    return p


class _Pacer:
    """Keeps the average send rate at ``rate`` bytes/s over the run."""

    def __init__(self, rate: int, deadline: Deadline) -> None:
        self.rate = rate
        self.deadline = deadline
        self.sent = 0
        self.t0 = deadline.elapsed()

    def account(self, n: int) -> bool:
        self.sent += n
        if self.rate <= 0:
            return not self.deadline.expired()
        return self.deadline.wait_until(self.t0 + self.sent / self.rate)

    def pause(self, seconds: float) -> bool:
        ok = self.deadline.wait(seconds)
        self.t0 += seconds
        return ok


def _tcp_chunk(
    args: argparse.Namespace, chunk: bytes, pacer: _Pacer, deadline: Deadline
) -> tuple[int, int]:
    sock = tcp_connect(args.host, args.port, args.bind, timeout_s=10.0)
    sent = received = 0
    try:
        sock.sendall(run_id_prefix(args.run_id))
        for i in range(0, len(chunk), _BLOCK):
            block = chunk[i : i + _BLOCK]
            sock.sendall(block)
            sent += len(block)
            if not pacer.account(len(block)):
                break
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(min(2.0, max(0.1, deadline.remaining())))
        while True:
            try:
                data = sock.recv(65_536)
            except OSError:
                break
            if not data:
                break
            received += len(data)
    finally:
        sock.close()
    return sent, received


def send(
    data: bytes,
    *,
    args: argparse.Namespace,
    stats: Stats,
    deadline: Deadline,
    rng: random.Random,
) -> None:
    """Send ``data`` over ``args.transport`` to ``args.host:args.port`` in ``args.chunk``
    pieces (see the module docstring); counts go into ``stats``."""
    if args.chunk < 1 or args.datagram < 64:
        raise ProgramError("--chunk must be >= 1 and --datagram >= 64 bytes")
    pacer = _Pacer(args.rate, deadline)
    sent = received = chunks = 0
    stats.update(transport=args.transport, port=args.port, bytes_sent=0, chunks=0)
    udp = udp_socket(args.bind, 1.0) if args.transport == "udp" else None
    seq = 0
    try:
        for start in range(0, len(data), args.chunk):
            if deadline.expired():
                break
            chunk = data[start : start + args.chunk]
            if udp is None:
                s, r = _tcp_chunk(args, chunk, pacer, deadline)
                sent += s
                received += r
            else:
                i = 0
                while i < len(chunk):
                    header = f"eh-run={args.run_id} seq={seq}\n".encode("ascii")
                    piece = chunk[i : i + args.datagram - len(header)]
                    i += len(piece)
                    try:
                        udp.sendto(header + piece, (args.host, args.port))
                    except OSError as exc:
                        if sent == 0:
                            raise ProgramError(
                                f"cannot send to {args.host}:{args.port}/udp: {exc.strerror or exc}"
                            ) from exc
                        continue  # ICMP unreachable from an earlier datagram: keep going
                    seq += 1
                    sent += len(piece)
                    if not pacer.account(len(header) + len(piece)):
                        break
            chunks += 1
            stats.update(bytes_sent=sent, bytes_received=received, chunks=chunks, datagrams=seq)
            if start + args.chunk < len(data) and not pacer.pause(
                gap(rng, args.interval, args.jitter)
            ):
                break
    finally:
        if udp is not None:
            udp.close()
        stats.update(bytes_sent=sent, bytes_received=received, chunks=chunks, datagrams=seq)


def _body(args: argparse.Namespace, stats: Stats) -> None:
    rng = random.Random(args.seed)
    data = make_payload(args.run_id, args.bytes, rng)
    send(data, args=args, stats=stats, deadline=Deadline(args.duration), rng=rng)


def main(argv: list[str] | None = None) -> int:
    return run_program("raw_exfil", _parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
