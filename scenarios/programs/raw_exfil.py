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
import dataclasses
import random
import socket
from dataclasses import dataclass

from scenarios.programs._common import (
    Deadline,
    ProgramError,
    Stats,
    base_parser,
    drain,
    gap,
    make_payload,
    run_id_prefix,
    run_program,
    size,
    tcp_connect,
    udp_socket,
)

__all__ = ["SendOptions", "main", "send"]

_BLOCK = 64 * 1024


# Not slots=True: the class attributes then keep the defaults, which the parser reuses, so a
# caller of send() and the command line cannot drift apart.
@dataclass(frozen=True, kw_only=True)
class SendOptions:
    """Where and how :func:`send` sends: the options of the command line, with its defaults."""

    host: str
    port: int
    run_id: str
    bind: str | None = None
    transport: str = "tcp"
    chunk: int = 4_000_000
    rate: int = 5_000_000
    interval: float = 1.0
    jitter: float = 0.3
    datagram: int = 1_200

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SendOptions:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def _parser() -> argparse.ArgumentParser:
    p = base_parser("raw_exfil", "Raw TCP/UDP bulk send to a custom port")
    p.add_argument("--transport", choices=("tcp", "udp"), default=SendOptions.transport)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bytes", type=size, default=20_000_000)
    p.add_argument(
        "--chunk", type=size, default=SendOptions.chunk, help="bytes per connection/burst"
    )
    p.add_argument(
        "--rate", type=size, default=SendOptions.rate, help="bytes per second (0: no limit)"
    )
    p.add_argument(
        "--interval", type=float, default=SendOptions.interval, help="seconds between chunks"
    )
    p.add_argument("--jitter", type=float, default=SendOptions.jitter)
    p.add_argument("--datagram", type=size, default=SendOptions.datagram, help="UDP payload size")
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
    options: SendOptions, chunk: bytes, pacer: _Pacer, deadline: Deadline
) -> tuple[int, int]:
    sock = tcp_connect(options.host, options.port, options.bind, timeout_s=10.0)
    sent = received = 0
    try:
        sock.sendall(run_id_prefix(options.run_id))
        for i in range(0, len(chunk), _BLOCK):
            block = chunk[i : i + _BLOCK]
            sock.sendall(block)
            sent += len(block)
            if not pacer.account(len(block)):
                break
        sock.shutdown(socket.SHUT_WR)
        received = drain(sock, deadline.timeout(2.0, floor=0.1))
    finally:
        sock.close()
    return sent, received


def send(
    data: bytes,
    options: SendOptions,
    *,
    stats: Stats,
    deadline: Deadline,
    rng: random.Random,
) -> None:
    """Send ``data`` over ``options.transport`` to ``options.host:options.port`` in
    ``options.chunk`` pieces (see the module docstring); counts go into ``stats``."""
    if options.chunk < 1 or options.datagram < 64:
        raise ProgramError("--chunk must be >= 1 and --datagram >= 64 bytes")
    pacer = _Pacer(options.rate, deadline)
    sent = received = chunks = 0
    stats.update(transport=options.transport, port=options.port, bytes_sent=0, chunks=0)
    udp = udp_socket(options.bind, 1.0) if options.transport == "udp" else None
    seq = 0
    try:
        for start in range(0, len(data), options.chunk):
            if deadline.expired():
                break
            chunk = data[start : start + options.chunk]
            if udp is None:
                s, r = _tcp_chunk(options, chunk, pacer, deadline)
                sent += s
                received += r
            else:
                i = 0
                while i < len(chunk):
                    header = f"eh-run={options.run_id} seq={seq}\n".encode("ascii")
                    piece = chunk[i : i + options.datagram - len(header)]
                    i += len(piece)
                    try:
                        udp.sendto(header + piece, (options.host, options.port))
                    except OSError as exc:
                        if sent == 0:
                            raise ProgramError(
                                f"cannot send to {options.host}:{options.port}/udp: "
                                f"{exc.strerror or exc}"
                            ) from exc
                        continue  # ICMP unreachable from an earlier datagram: keep going
                    seq += 1
                    sent += len(piece)
                    if not pacer.account(len(header) + len(piece)):
                        break
            chunks += 1
            stats.update(bytes_sent=sent, bytes_received=received, chunks=chunks, datagrams=seq)
            if start + options.chunk < len(data) and not pacer.pause(
                gap(rng, options.interval, options.jitter)
            ):
                break
    finally:
        if udp is not None:
            udp.close()
        stats.update(bytes_sent=sent, bytes_received=received, chunks=chunks, datagrams=seq)


def _body(args: argparse.Namespace, stats: Stats) -> None:
    rng = random.Random(args.seed)
    data = make_payload(args.run_id, args.bytes, rng)
    send(data, SendOptions.from_args(args), stats=stats, deadline=Deadline(args.duration), rng=rng)


def main(argv: list[str] | None = None) -> int:
    return run_program("raw_exfil", _parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
