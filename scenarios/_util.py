"""Small seeded helpers shared by the scenario generators: external addresses, work hours,
heavy-tailed sizes."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterator
from functools import lru_cache

from harness.events import NS_PER_S
from scenarios.world import NS_PER_DAY, Environment

__all__ = ["external_ip", "lognormal_bytes", "random_text", "work_sessions"]

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
