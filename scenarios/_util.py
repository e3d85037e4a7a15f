"""Small seeded helpers shared by the scenario generators: external addresses, work hours,
heavy-tailed sizes, random text; each one draw at a time from a :class:`random.Random` and, for
actors that draw a whole span at once, many at a time from a NumPy :class:`~numpy.random.Generator`
(:func:`sessions`, :func:`lognormal_many`, :func:`texts`)."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from harness.events import NS_PER_S
from scenarios.world import NS_PER_DAY, Environment

__all__ = [
    "Sessions",
    "external_ip",
    "external_ips",
    "generator",
    "lognormal_bytes",
    "lognormal_many",
    "random_text",
    "sessions",
    "texts",
    "work_sessions",
]

Int64s = npt.NDArray[np.int64]

_RANGES = ("198.51.100", "203.0.113")


@lru_cache(maxsize=8_192)
def external_ip(name: str) -> str:
    """A stable documentation-range address for a public service name.

    Derived from a hash of the name over both public documentation ranges, so benign and
    malicious services are interleaved: a detector cannot learn "which range is bad".
    """
    digest = hashlib.sha256(name.encode()).digest()
    return f"{_RANGES[digest[0] & 1]}.{1 + digest[1] % 253}"


def lognormal_bytes(rng: random.Random, median: float, sigma: float, cap: float) -> int:
    """A heavy-tailed size around ``median`` bytes, capped at ``cap``."""
    return max(1, int(min(cap, median * math.exp(rng.gauss(0.0, sigma)))))


def work_sessions(rng: random.Random, env: Environment, day: int, per_day: float) -> Iterator[int]:
    """Start times (ns) of activity sessions of one user on one day: a working day of about
    08:00-17:30 UTC with jitter, a lunch dip, and fewer sessions at weekends."""
    weekday = (day % 7) < 5  # the synthetic epoch is a Monday
    n = max(0, round(rng.gauss(per_day if weekday else per_day * 0.1, math.sqrt(per_day))))
    day_start = env.start_ns + day * NS_PER_DAY
    arrive = 8 * 3600 + rng.uniform(-2700, 2700)
    leave = 17.5 * 3600 + rng.uniform(-3600, 3600)
    times = []
    for _ in range(n):
        t = rng.uniform(arrive, leave)
        if 12 * 3600 < t < 13 * 3600 and rng.random() < 0.6:
            t = rng.uniform(arrive, leave)
        times.append(day_start + int(t * NS_PER_S))
    yield from sorted(times)


def random_text(rng: random.Random, alphabet: str, length: int) -> str:
    """``length`` characters drawn from ``alphabet``: exactly
    ``"".join(rng.choice(alphabet) for _ in range(length))``, draw for draw, at a fraction of the
    cost. ``choice`` is ``seq[rng._randbelow(len(seq))]``, and for :class:`random.Random`
    ``_randbelow(n)`` draws ``getrandbits(n.bit_length())`` until the value is below ``n``
    (CPython 3.11 to 3.13); that loop is inlined here. Subclasses go through ``choice``."""
    n = len(alphabet)
    if type(rng) is not random.Random or n == 0:
        return "".join([rng.choice(alphabet) for _ in range(length)])
    bits: Callable[[int], int] = rng.getrandbits
    k = n.bit_length()
    out = []
    for _ in range(length):
        r = bits(k)
        while r >= n:
            r = bits(k)
        out.append(alphabet[r])
    return "".join(out)


def generator(rng: random.Random) -> np.random.Generator:
    """A NumPy generator seeded from ``rng`` (one draw of 128 bits)."""
    return np.random.default_rng(rng.getrandbits(128))


def external_ips(names: Sequence[str]) -> npt.NDArray[np.object_]:
    """:func:`external_ip` of each name, as an object array."""
    out = np.empty(len(names), dtype=object)
    out[:] = [external_ip(n) for n in names]
    return out


def lognormal_many(
    gen: np.random.Generator, median: float, sigma: float, cap: float, size: int
) -> Int64s:
    """``size`` draws of :func:`lognormal_bytes`."""
    x = np.minimum(cap, median * np.exp(gen.normal(0.0, sigma, size)))
    return np.maximum(1, x.astype(np.int64))


def texts(gen: np.random.Generator, alphabet: str, lengths: npt.ArrayLike) -> list[str]:
    """One random string from ``alphabet`` (ASCII) per length."""
    lens = np.asarray(lengths, dtype=np.int64)
    if not len(lens):
        return []
    width = int(lens.max())
    table = np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)
    chars = table[gen.integers(0, len(table), (len(lens), width))]
    rows = chars.view(f"S{width}").ravel().tolist()
    return [r[:n].decode("ascii") for r, n in zip(rows, lens.tolist(), strict=True)]


@dataclass(frozen=True, slots=True)
class Sessions:
    """Activity sessions over a grid of (host, day) cells, sorted by cell then time: ``cell``
    is the cell's index (hosts major: ``host_pos * days + day_pos``), ``host`` the world's host
    index, ``day`` the day index, ``ts`` the start time."""

    cell: Int64s
    host: Int64s
    day: Int64s
    ts: Int64s

    def __len__(self) -> int:
        return len(self.ts)

    def first_in_cell(self) -> npt.NDArray[np.bool_]:
        """True for the first session of each cell."""
        return np.r_[True, self.cell[1:] != self.cell[:-1]] if len(self) else np.zeros(0, bool)


def sessions(
    gen: np.random.Generator,
    env: Environment,
    hosts: Sequence[int],
    days: range,
    per_day: float | npt.ArrayLike,
) -> Sessions:
    """:func:`work_sessions` for every host and day at once; ``per_day`` may differ by host."""
    n_hosts, n_days = len(hosts), len(days)
    host_pos = np.repeat(np.arange(n_hosts), n_days)
    day = np.tile(np.asarray(days, dtype=np.int64), n_hosts)
    rate = np.broadcast_to(np.asarray(per_day, dtype=np.float64), (n_hosts,))[host_pos]
    weekday = (day % 7) < 5  # the synthetic epoch is a Monday
    mean = np.where(weekday, rate, rate * 0.1)
    count = np.maximum(0, np.rint(gen.normal(mean, np.sqrt(rate)))).astype(np.int64)
    arrive = 8 * 3600 + gen.uniform(-2700, 2700, len(day))
    leave = 17.5 * 3600 + gen.uniform(-3600, 3600, len(day))
    cell = np.repeat(np.arange(len(day)), count)
    width = (leave - arrive)[cell]
    t = arrive[cell] + gen.random(len(cell)) * width
    lunch = (t > 12 * 3600) & (t < 13 * 3600) & (gen.random(len(cell)) < 0.6)
    t = np.where(lunch, arrive[cell] + gen.random(len(cell)) * width, t)
    ts = env.start_ns + day[cell] * NS_PER_DAY + (t * NS_PER_S).astype(np.int64)
    order = np.lexsort((ts, cell))
    cell = cell[order]
    return Sessions(
        cell=cell,
        host=np.asarray(hosts, dtype=np.int64)[host_pos[cell]] if n_hosts else cell,
        day=day[cell],
        ts=ts[order],
    )
