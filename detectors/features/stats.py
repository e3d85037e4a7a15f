"""Numeric features for volume, asymmetry, rarity and regularity of outbound traffic.

Responsibility: small, allocation-light building blocks the reference detectors share:

* :func:`producer_consumer_ratio` - PCR, the upload/download asymmetry of a flow or a host.
* :class:`RobustBaseline` - per-key median/MAD learnt in ``fit``, robust z-scores afterwards.
* :func:`shannon_entropy` - bits per symbol of a payload (bytes) or a string (characters).
* :class:`RunningStats` - streaming mean, variance and coefficient of variation (Welford).
* :class:`SlidingSum` - per-key sum over a sliding time window ("more than 1 MB in 5 minutes").
* :class:`FirstSeen` - per-host and fleet-wide sets of keys learnt in ``fit``: first-seen and
  prevalence questions (Elastic new_terms, Splunk's "fewer than 10 hosts", RITA's 2 %).

All times are integer nanoseconds (``ts_ns``). Invalid arguments raise
:class:`harness.errors.InvalidParameterError`.
"""

from __future__ import annotations

import math
import random
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from harness.errors import InvalidParameterError

__all__ = [
    "MAD_TO_SIGMA",
    "FirstSeen",
    "RobustBaseline",
    "RobustSummary",
    "RunningStats",
    "SlidingSum",
    "keyed_state",
    "producer_consumer_ratio",
    "shannon_entropy",
]

K = TypeVar("K", bound=Hashable)


class _Timed(Protocol):
    latest: int


S = TypeVar("S", bound=_Timed)


def keyed_state(
    keys: OrderedDict[K, S], key: K, ts_ns: int, make: Callable[[int], S], max_keys: int
) -> tuple[S, int]:
    """The state of ``key`` in a bounded least-recently-used table, and the time to use.

    A new key gets ``make(ts_ns)``; past ``max_keys`` the least recently used key is dropped.
    Time never runs backwards per key: an event older than the key's latest is counted at the
    latest (streams are only nearly ordered), which keeps sliding windows monotone.
    """
    state = keys.get(key)
    if state is None:
        state = make(ts_ns)
        keys[key] = state
        if len(keys) > max_keys:
            keys.popitem(last=False)
        return state, ts_ns
    keys.move_to_end(key)
    if ts_ns < state.latest:
        return state, state.latest
    state.latest = ts_ns
    return state, ts_ns


H = TypeVar("H", bound=Hashable)

#: Consistency constant: for normally distributed data, 1.4826 * MAD estimates the standard
#: deviation (1 / Phi^-1(3/4) = 1 / 0.67449 = 1.4826), so a robust z-score is on the same scale
#: as an ordinary one when the data are normal, and is not dragged by outliers when they are not.
MAD_TO_SIGMA = 1.4826


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidParameterError(name, value, f"an integer >= {minimum}")
    return value


def _check_number(name: str, value: object, minimum: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or value < minimum
    ):
        raise InvalidParameterError(name, value, f"a number >= {minimum}")
    return float(value)


# --------------------------------------------------------------------------------------------
# Asymmetry and entropy
# --------------------------------------------------------------------------------------------


def producer_consumer_ratio(bytes_out: int, bytes_in: int) -> float | None:
    """PCR = (out - in) / (out + in), in [-1, 1]; ``None`` when both are 0.

    +1 is pure upload, about -0.5 is web browsing, -1 is pure download. AN1225's MITRE tunable
    "more than 90 % outbound" is PCR > 0.8.
    """
    if bytes_out < 0:
        raise InvalidParameterError("bytes_out", bytes_out, "a byte count >= 0")
    if bytes_in < 0:
        raise InvalidParameterError("bytes_in", bytes_in, "a byte count >= 0")
    total = bytes_out + bytes_in
    if total == 0:
        return None
    return (bytes_out - bytes_in) / total


# Below this length str.count per distinct symbol beats building a Counter.
_SHORT = 64
# c * log2(c) for the counts that occur in names and single packets, so the sum over symbols is
# a C-level map over a list instead of a Python loop with a log per symbol.
_CLOG_MAX = 4_096
CLOG2: list[float] = [0.0, 0.0, *(c * math.log2(c) for c in range(2, _CLOG_MAX + 1))]


def _sum_clog(counts: Iterable[int]) -> float:
    clog = CLOG2
    try:
        return sum(map(clog.__getitem__, counts))
    except IndexError:
        return sum(c * math.log2(c) for c in counts if c > 1)


def shannon_entropy(data: bytes | bytearray | memoryview | str) -> float:
    """Shannon entropy of the symbol frequencies of ``data``, in bits per symbol.

    Symbols are bytes for binary input (range [0, 8]; encrypted or compressed payloads sit near
    8, English text near 4.5) and characters for ``str`` input (so Base32 text is at most 5,
    hex at most 4). 0.0 for empty or single-symbol input. Cost is linear in the length (a
    ``Counter`` above 64 symbols, about 30 ns per byte).
    """
    if isinstance(data, memoryview):
        data = data.tobytes()
    n = len(data)
    if n < 2:
        return 0.0
    # H = log2(n) - (1/n) * sum(c log2 c) over the symbol counts c.
    if n <= _SHORT:
        acc = _sum_clog(list(map(data.count, set(data))))  # type: ignore[arg-type]
    else:
        acc = _sum_clog(list(Counter(data).values()))
    return max(0.0, math.log2(n) - acc / n)


# --------------------------------------------------------------------------------------------
# Robust baseline
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RobustSummary:
    """What a key's history reduced to: the robust centre and spread used for z-scores."""

    #: Samples kept for the key (after reservoir sampling).
    count: int
    median: float
    #: Raw median absolute deviation.
    mad: float
    #: Denominator of the z-score: MAD_TO_SIGMA * max(mad, floors). Always > 0.
    scale: float


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    mid = n // 2
    if n % 2:
        return sorted_values[mid]
    return (sorted_values[mid - 1] + sorted_values[mid]) / 2.0


class RobustBaseline(Generic[K]):
    """Per-key median and MAD learnt from history; robust z-scores of new values.

    During ``fit`` call :meth:`add` for each historical sample; afterwards :meth:`z` gives
    ``(value - median) / (MAD_TO_SIGMA * max(MAD, mad_floor, mad_floor_fraction * |median|))``
    against the key's own history, or ``None`` when the key has fewer than ``min_samples``.

    The MAD floor is what keeps a constant history (MAD = 0, a service that always sends the
    same 512-byte beacon) from giving an infinite z for the first byte of difference: with the
    defaults, a key whose history is constant at 1 000 bytes has scale 1.4826 * 50 = 74 bytes,
    so 2 000 bytes scores z = 13.5 and 1 010 bytes scores 0.13. ``mad_floor`` (absolute, in
    the value's units) matters near zero, ``mad_floor_fraction`` (relative to the median) for
    large values.

    Memory: at most ``max_samples_per_key`` samples are kept per key by reservoir sampling
    (Vitter's algorithm R) with a seeded generator, so results are reproducible. Summaries are
    computed on first use and cached until the key gets a new sample.
    """

    __slots__ = ("_cache", "_floor", "_floor_fraction", "_max", "_min", "_rng", "_samples", "_seen")

    def __init__(
        self,
        *,
        min_samples: int = 5,
        mad_floor: float = 1.0,
        mad_floor_fraction: float = 0.05,
        max_samples_per_key: int = 10_000,
        seed: int = 0,
    ) -> None:
        self._min = _check_int("min_samples", min_samples, 1)
        self._floor = _check_number("mad_floor", mad_floor, 0.0)
        self._floor_fraction = _check_number("mad_floor_fraction", mad_floor_fraction, 0.0)
        if self._floor == 0.0 and self._floor_fraction == 0.0:
            raise InvalidParameterError(
                "mad_floor", mad_floor, "> 0 when mad_floor_fraction is 0 (scale must be > 0)"
            )
        self._max = _check_int("max_samples_per_key", max_samples_per_key, 1)
        # Reservoir sampling, not security: a seeded Mersenne Twister keeps fits reproducible.
        self._rng = random.Random(seed)
        self._samples: dict[K, list[float]] = {}
        self._seen: dict[K, int] = {}
        self._cache: dict[K, RobustSummary | None] = {}

    def __len__(self) -> int:
        return len(self._samples)

    def __contains__(self, key: object) -> bool:
        return key in self._samples

    def add(self, key: K, value: float) -> None:
        """Add one historical sample for ``key``."""
        samples = self._samples.get(key)
        if samples is None:
            samples = self._samples[key] = []
            self._seen[key] = 0
        seen = self._seen[key] + 1
        self._seen[key] = seen
        if len(samples) < self._max:
            samples.append(float(value))
        else:
            slot = self._rng.randrange(seen)
            if slot < self._max:
                samples[slot] = float(value)
        self._cache.pop(key, None)

    def extend(self, key: K, values: Iterable[float]) -> None:
        """Add several historical samples for ``key`` (as many :meth:`add` calls would)."""
        batch = list(values)
        if not batch:
            return
        samples = self._samples.get(key)
        if samples is None:
            samples = self._samples[key] = []
            self._seen[key] = 0
        # While the reservoir has room every sample is kept and no random draw is made.
        room = max(0, self._max - len(samples))
        samples.extend(map(float, batch[:room]))
        self._seen[key] += min(room, len(batch))
        self._cache.pop(key, None)
        for value in batch[room:]:
            self.add(key, value)

    def summary(self, key: K) -> RobustSummary | None:
        """The key's median/MAD summary, or ``None`` with fewer than ``min_samples`` samples."""
        try:
            return self._cache[key]
        except KeyError:
            pass
        samples = self._samples.get(key)
        result: RobustSummary | None = None
        if samples is not None and len(samples) >= self._min:
            ordered = sorted(samples)
            median = _median(ordered)
            mad = _median(sorted(abs(v - median) for v in ordered))
            floored = max(mad, self._floor, self._floor_fraction * abs(median))
            result = RobustSummary(
                count=len(ordered), median=median, mad=mad, scale=MAD_TO_SIGMA * floored
            )
        self._cache[key] = result
        return result

    def z(self, key: K, value: float) -> float | None:
        """Robust z-score of ``value`` against ``key``'s history; ``None`` if too little."""
        s = self.summary(key)
        if s is None:
            return None
        return (value - s.median) / s.scale


# --------------------------------------------------------------------------------------------
# Streaming moments
# --------------------------------------------------------------------------------------------


class RunningStats:
    """Streaming count, mean, variance and coefficient of variation (Welford's algorithm).

    Numerically stable in one pass, O(1) memory. Junk-data padding that makes every request the
    same size shows as a coefficient of variation near 0. Variance is the population variance
    (divide by n): the request sizes observed are the population being described.
    """

    __slots__ = ("_m2", "count", "mean")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0

    def add(self, x: float) -> None:
        """Include one observation."""
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (x - self.mean)

    @property
    def variance(self) -> float:
        """Population variance; 0.0 before two observations."""
        return self._m2 / self.count if self.count > 1 else 0.0

    @property
    def stdev(self) -> float:
        """Population standard deviation."""
        return math.sqrt(self.variance)

    def cv(self) -> float | None:
        """Coefficient of variation stdev / |mean|; ``None`` below 2 observations or at mean 0."""
        if self.count < 2 or self.mean == 0.0:
            return None
        return self.stdev / abs(self.mean)


# --------------------------------------------------------------------------------------------
# Sliding window sum
# --------------------------------------------------------------------------------------------


class SlidingSum(Generic[K]):
    """Per-key sum of amounts over a sliding time window.

    ``add(key, ts_ns, amount)`` returns the sum of the key's amounts with timestamps in the
    half-open window ``(ts_ns - window_ns, ts_ns]``, the new amount included; AN0988's MITRE
    tunable "more than 1 MB in under 5 minutes" is ``SlidingSum(window_ns=300 * 10**9)`` and a
    comparison with 1_000_000.

    ``resolution_ns`` bounds memory: amounts whose timestamps fall in the same
    ``resolution_ns``-aligned slot are merged and expire together, when the slot's *end* leaves
    the window; so the sum can include amounts up to ``resolution_ns`` older than the window
    (it never drops amounts still inside it). With ``resolution_ns=1`` the window is exact.
    Per key memory is at most ``window_ns / resolution_ns + 1`` slots; at most ``max_keys``
    keys are kept, the least recently updated dropped first.

    Timestamps should be non-decreasing per key; an earlier one is treated as the key's latest.
    """

    __slots__ = ("_keys", "_max_keys", "_resolution", "_window")

    def __init__(
        self,
        *,
        window_ns: int,
        resolution_ns: int = 1_000_000_000,
        max_keys: int = 100_000,
    ) -> None:
        self._window = _check_int("window_ns", window_ns, 1)
        self._resolution = _check_int("resolution_ns", resolution_ns, 1)
        if resolution_ns > window_ns:
            raise InvalidParameterError("resolution_ns", resolution_ns, "<= window_ns")
        self._max_keys = _check_int("max_keys", max_keys, 1)
        self._keys: OrderedDict[K, _SumState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: K, ts_ns: int, amount: int | float) -> int | float:
        """Add ``amount`` at ``ts_ns``; return the key's windowed sum."""
        state, ts_ns = keyed_state(self._keys, key, ts_ns, _SumState, self._max_keys)
        slot = ts_ns // self._resolution
        slots = state.slots
        if slots and slots[-1][0] == slot:
            slots[-1][1] += amount
        else:
            slots.append([slot, amount])
        state.total += amount
        # A slot expires when its last instant, (slot + 1) * res - 1, is <= ts - window.
        horizon = ts_ns - self._window
        res = self._resolution
        while (slots[0][0] + 1) * res - 1 <= horizon:
            state.total -= slots.popleft()[1]
        return state.total

    def total(self, key: K, now_ns: int) -> int | float:
        """The key's windowed sum at ``now_ns`` (read-only; 0 for unknown keys)."""
        state = self._keys.get(key)
        if state is None:
            return 0
        horizon = now_ns - self._window
        res = self._resolution
        return sum(a for slot, a in state.slots if (slot + 1) * res - 1 > horizon)


class _SumState:
    """Mutable per-key state of :class:`SlidingSum` (slotted: one per key)."""

    __slots__ = ("latest", "slots", "total")

    def __init__(self, ts_ns: int) -> None:
        self.latest = ts_ns
        self.total: int | float = 0
        # [slot index, summed amount], oldest first
        self.slots: deque[list[int | float]] = deque()


# --------------------------------------------------------------------------------------------
# First seen and prevalence
# --------------------------------------------------------------------------------------------


class FirstSeen(Generic[H, K]):
    """Which keys (process images, destinations, user agents ...) each host has shown.

    During ``fit`` call :meth:`learn` for every (host, key) in the history (Elastic's new_terms
    rules use 7 to 20 days of it). Afterwards :meth:`is_new_on_host` answers "has this host
    never shown this key?" and :meth:`fleet_prevalence` "on how many hosts was it seen?"
    (Splunk flags a process seen on fewer than 10 hosts; RITA adds weight to destinations seen
    by at most 2 % of hosts: compare ``fleet_prevalence(key) / host_count``).

    Whether detection-time sightings are learnt too (so a key is new only once) is the
    detector's choice: call :meth:`learn` after checking. Memory is one set of hosts per key.
    """

    __slots__ = ("_hosts", "_hosts_of")

    def __init__(self) -> None:
        self._hosts_of: dict[K, set[H]] = {}
        self._hosts: set[H] = set()

    def learn(self, host: H, key: K) -> None:
        """Record that ``host`` showed ``key``."""
        hosts = self._hosts_of.get(key)
        if hosts is None:
            self._hosts_of[key] = {host}
        else:
            hosts.add(host)
        self._hosts.add(host)

    def is_new_on_host(self, host: H, key: K) -> bool:
        """True when ``host`` has never shown ``key`` (also for hosts never seen at all)."""
        hosts = self._hosts_of.get(key)
        return hosts is None or host not in hosts

    def is_new_in_fleet(self, key: K) -> bool:
        """True when no host has shown ``key``."""
        return key not in self._hosts_of

    def fleet_prevalence(self, key: K) -> int:
        """Number of distinct hosts that showed ``key``."""
        hosts = self._hosts_of.get(key)
        return 0 if hosts is None else len(hosts)

    @property
    def host_count(self) -> int:
        """Number of distinct hosts learnt (the denominator of a prevalence fraction)."""
        return len(self._hosts)

    def __len__(self) -> int:
        return len(self._hosts_of)
