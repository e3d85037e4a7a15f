"""Plumbing every lab program shares: the common options, pacing against a deadline, the run-id
prefix, sockets bound to the client's address, the one-line failure and the JSON summary.

A program's body fills a ``stats`` dict as it goes; :func:`run_program` parses the arguments,
turns SIGTERM/SIGINT into a normal stop (the lab stops actors at the end of a phase), writes the
stats as one JSON line to stdout, and maps failures to exit status 1 with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

from harness.errors import HarnessError, LabError
from harness.lab import RUN_ID_HEADER

__all__ = [
    "RUN_ID_HEADER",
    "Deadline",
    "ProgramError",
    "Stats",
    "Stopped",
    "base_parser",
    "drain",
    "emit",
    "gap",
    "make_payload",
    "positive_float",
    "read_input",
    "run_id_prefix",
    "run_program",
    "size",
    "tcp_connect",
    "udp_socket",
]

#: HTTP header carrying the run id in every request a program sends.

Stats = dict[str, object]

_SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([kKmMgG]?)")
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}
_RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")


class ProgramError(LabError):
    """A program cannot do its job: the sink is unreachable, an input file is missing..."""


class Stopped(Exception):
    """SIGTERM or SIGINT arrived: stop sending and report what was done."""


def size(text: str) -> int:
    """``"4M"``, ``"250k"``, ``"1000"``: a byte count (decimal units)."""
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1000, 250k, 4M)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _run_id(text: str) -> str:
    if _RUN_ID_RE.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(
            f"bad run id {text!r}: 1-32 letters, digits or '-', starting with a letter or digit"
        )
    return text


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser with the options every program takes: ``--bind``, ``--run-id``,
    ``--duration`` and ``--seed``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--bind", default=None, help="the client's own lab address; every socket binds to it"
    )
    parser.add_argument("--run-id", required=True, type=_run_id, help="embedded in everything sent")
    parser.add_argument(
        "--duration", type=positive_float, default=60.0, help="stop after this many seconds"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    return parser


def run_id_prefix(run_id: str) -> bytes:
    """The line a program's payloads start with: ``eh-run=<run id>\\n``."""
    return f"eh-run={run_id}\n".encode("ascii")


def make_payload(run_id: str, n_bytes: int, rng: random.Random) -> bytes:
    """``n_bytes`` (at least the prefix) of inert data: the run-id prefix, then random bytes
    (what compressed or encrypted exfiltration looks like on the wire)."""
    prefix = run_id_prefix(run_id)
    return prefix + rng.randbytes(max(0, n_bytes - len(prefix)))


def gap(rng: random.Random, interval_s: float, jitter: float) -> float:
    """``interval_s`` varied by up to ``jitter`` (a fraction) either way."""
    return max(0.0, interval_s * (1 + rng.uniform(-jitter, jitter)))


class Deadline:
    """The end of a program's run, ``duration_s`` after it was made."""

    def __init__(
        self,
        duration_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.start = clock()
        self.end = self.start + duration_s

    def elapsed(self) -> float:
        return self._clock() - self.start

    def remaining(self) -> float:
        return max(0.0, self.end - self._clock())

    def expired(self) -> bool:
        return self._clock() >= self.end

    def timeout(self, cap: float, floor: float = 1.0) -> float:
        """A socket or request timeout: ``cap``, cut to what is left of the run but never under
        ``floor`` (a last exchange started just before the deadline still gets its answer)."""
        return min(cap, max(floor, self.remaining()))

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` (less if the deadline comes first); False once it has passed."""
        self._sleep(min(max(0.0, seconds), self.remaining()))
        return not self.expired()

    def wait_until(self, t: float) -> bool:
        """Sleep until the clock reads ``t`` (a :meth:`elapsed` value); False once expired."""
        return self.wait(t - self.elapsed())


def tcp_connect(host: str, port: int, bind: str | None, timeout_s: float) -> socket.socket:
    """A TCP connection to ``host:port`` from ``bind``; :class:`ProgramError` if it fails."""
    try:
        return socket.create_connection(
            (host, port), timeout=timeout_s, source_address=(bind, 0) if bind else None
        )
    except OSError as exc:
        raise ProgramError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc


def udp_socket(bind: str | None, timeout_s: float) -> socket.socket:
    """A UDP socket bound to ``bind`` (any port), with a receive timeout."""
    family = socket.AF_INET6 if bind and ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if bind:
            sock.bind((bind, 0))
        sock.settimeout(timeout_s)
    except OSError as exc:
        sock.close()
        raise ProgramError(f"cannot bind a UDP socket to {bind}: {exc.strerror or exc}") from exc
    return sock


def drain(sock: socket.socket, wait_s: float) -> int:
    """Read what the peer sends, each read waiting at most ``wait_s``, until it closes or goes
    quiet; bytes read."""
    got = 0
    sock.settimeout(wait_s)
    while True:
        try:
            data = sock.recv(65_536)
        except OSError:  # timeout, reset: sinks may answer oddly or not at all, which is fine
            return got
        if not data:
            return got
        got += len(data)


def read_input(path: Path) -> bytes:
    """The content of the file ``--file`` names; :class:`ProgramError` if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ProgramError(f"cannot read --file {path}: {exc.strerror}") from exc


def emit(summary: Mapping[str, object]) -> None:
    """One JSON line on stdout: what the program did."""
    sys.stdout.write(json.dumps(summary, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


def run_program(
    name: str,
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace, Stats], None],
    argv: Sequence[str] | None,
) -> int:
    """Parse ``argv``, run ``body(args, stats)``, report; the exit status.

    0: done (data sent, deadline reached, or stopped by SIGTERM/SIGINT); 1: failed, with
    ``<name>: <reason>`` on stderr; 2: bad arguments (argparse's own message)."""
    args = parser.parse_args(None if argv is None else list(argv))
    stats: Stats = {"program": name, "run_id": args.run_id}
    previous: dict[signal.Signals, Callable[[int, FrameType | None], object] | int | None] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _stop)
    started = time.monotonic()
    try:
        body(args, stats)
    except Stopped as exc:
        stats["stopped_by"] = str(exc)
    except (HarnessError, OSError) as exc:
        message = str(exc).replace("\n", " ")
        sys.stderr.write(f"{name}: {message}\n")
        sys.stderr.flush()
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stats["elapsed_s"] = round(time.monotonic() - started, 3)
    emit(stats)
    return 0
