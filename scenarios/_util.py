"""Small seeded helpers shared by the scenario generators: external addresses, work hours,
heavy-tailed sizes."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator

from harness.events import NS_PER_S
from scenarios.world import NS_PER_DAY, Environment

__all__ = ["external_ip", "lognormal_bytes", "work_sessions"]

_RANGES = ("198.51.100", "203.0.113")


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
