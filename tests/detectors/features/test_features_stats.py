"""Tests for detectors.features.stats: PCR, robust z, entropy, Welford, sliding sums, prevalence."""

from __future__ import annotations

import math
import statistics
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.features.stats import (
    MAD_TO_SIGMA,
    FirstSeen,
    RobustBaseline,
    RunningStats,
    SlidingSum,
    producer_consumer_ratio,
    shannon_entropy,
)
from harness.errors import InvalidParameterError

_bytes_count = st.integers(min_value=0, max_value=10**12)

# ---------------------------------------------------------------------------------------------
# Producer-consumer ratio
# ---------------------------------------------------------------------------------------------


def test_pcr_reference_points() -> None:
    assert producer_consumer_ratio(0, 0) is None
    assert producer_consumer_ratio(5_000, 0) == 1.0
    assert producer_consumer_ratio(0, 5_000) == -1.0
    assert producer_consumer_ratio(300, 100) == 0.5
    assert producer_consumer_ratio(1_000, 3_000) == -0.5  # browsing-like
    assert producer_consumer_ratio(950, 50) == pytest.approx(0.9)


@given(_bytes_count, _bytes_count)
def test_pcr_properties(out: int, inn: int) -> None:
    pcr = producer_consumer_ratio(out, inn)
    if out == inn == 0:
        assert pcr is None
        return
    assert pcr is not None
    assert -1.0 <= pcr <= 1.0
    reverse = producer_consumer_ratio(inn, out)
    assert reverse is not None
    assert reverse == -pcr  # antisymmetric
    if inn == 0:
        assert pcr == 1.0
    if out == 0:
        assert pcr == -1.0
    assert (pcr > 0) == (out > inn)


@pytest.mark.parametrize(("out", "inn"), [(-1, 0), (0, -5)])
def test_pcr_rejects_negative_counts(out: int, inn: int) -> None:
    with pytest.raises(InvalidParameterError):
        producer_consumer_ratio(out, inn)


# ---------------------------------------------------------------------------------------------
# Robust baseline
# ---------------------------------------------------------------------------------------------


def test_consistency_constant() -> None:
    # 1 / Phi^-1(3/4): MAD * 1.4826 estimates sigma for normal data
    assert pytest.approx(1 / statistics.NormalDist().inv_cdf(0.75), abs=1e-4) == MAD_TO_SIGMA


def test_robust_z_hand_computed_odd() -> None:
    # samples 1 2 3 4 100: median 3; |x - 3| = 2 1 0 1 97 -> sorted 0 1 1 2 97, MAD 1
    base: RobustBaseline[str] = RobustBaseline()
    base.extend("k", [1, 2, 3, 4, 100])
    s = base.summary("k")
    assert s is not None
    assert (s.median, s.mad, s.count) == (3.0, 1.0, 5)
    assert s.scale == pytest.approx(1.4826)
    assert base.z("k", 10) == pytest.approx(7 / 1.4826)  # 4.7214...
    assert base.z("k", 3) == 0.0
    assert base.z("k", 0) == pytest.approx(-3 / 1.4826)


def test_robust_z_hand_computed_even() -> None:
    # samples 1 2 3 4: median 2.5; |x - 2.5| = 1.5 .5 .5 1.5, MAD 1.0
    base: RobustBaseline[str] = RobustBaseline(min_samples=4, mad_floor=0.01)
    base.extend("k", [4, 1, 3, 2])
    assert base.z("k", 5.5) == pytest.approx(3 / 1.4826)


def test_constant_history_gives_finite_z() -> None:
    base: RobustBaseline[str] = RobustBaseline()
    base.extend("beacon", [1_000] * 30)
    s = base.summary("beacon")
    assert s is not None
    assert s.mad == 0.0
    # floor: max(0, 1.0, 0.05 * 1000) = 50 bytes -> scale 74.13
    assert s.scale == pytest.approx(1.4826 * 50)
    z = base.z("beacon", 2_000)
    assert z is not None
    assert math.isfinite(z)
    assert z == pytest.approx(1_000 / (1.4826 * 50))
    zero: RobustBaseline[str] = RobustBaseline()
    zero.extend("idle", [0] * 10)
    assert zero.z("idle", 3) == pytest.approx(3 / 1.4826)  # the absolute floor near zero


def test_robust_baseline_needs_min_samples_and_updates() -> None:
    base: RobustBaseline[str] = RobustBaseline(min_samples=3)
    assert base.z("k", 1.0) is None
    base.extend("k", [10, 10])
    assert base.z("k", 1.0) is None
    base.add("k", 13)
    assert base.summary("k") is not None
    before = base.z("k", 20)
    base.extend("k", [100, 100, 100])
    assert base.z("k", 20) != before  # the cached summary was invalidated
    assert "k" in base
    assert len(base) == 1


def test_robust_baseline_reservoir_is_bounded_and_reproducible() -> None:
    def fit(seed: int) -> float | None:
        base: RobustBaseline[str] = RobustBaseline(max_samples_per_key=25, seed=seed)
        base.extend("k", range(1_000))
        s = base.summary("k")
        assert s is not None
        assert s.count == 25
        return base.z("k", 500)

    assert fit(1) == fit(1)


def test_robust_baseline_extend_is_add_after_add() -> None:
    # extend() fills the reservoir in bulk; past that it must draw exactly as add() does.
    bulk: RobustBaseline[str] = RobustBaseline(max_samples_per_key=25, seed=3)
    one: RobustBaseline[str] = RobustBaseline(max_samples_per_key=25, seed=3)
    bulk.add("k", 7)
    one.add("k", 7)
    bulk.extend("k", range(100))
    bulk.extend("k", [])
    for v in range(100):
        one.add("k", v)
    assert bulk.summary("k") == one.summary("k")
    assert bulk.z("k", 40) == one.z("k", 40)


def test_robust_z_resists_outliers_in_history() -> None:
    base: RobustBaseline[str] = RobustBaseline()
    base.extend("k", [100, 102, 98, 101, 99, 100, 10**9])  # one huge outlier in the history
    z = base.z("k", 200)
    # median 100, MAD 1, floored to 5 % of the median: scale 1.4826 * 5
    assert z == pytest.approx(100 / (1.4826 * 5))
    history = [100, 102, 98, 101, 99, 100, 10**9]
    ordinary = (200 - statistics.fmean(history)) / statistics.pstdev(history)
    assert ordinary < 0  # the outlier makes an ordinary z-score call 200 bytes *below* normal


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_samples": 0},
        {"mad_floor": -1.0},
        {"mad_floor": math.nan},
        {"mad_floor_fraction": -0.1},
        {"mad_floor": 0.0, "mad_floor_fraction": 0.0},
        {"max_samples_per_key": 0},
    ],
)
def test_robust_baseline_rejects_bad_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidParameterError):
        RobustBaseline(**kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Shannon entropy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "bits"),
    [
        (b"", 0.0),
        (b"\x00", 0.0),
        (b"\x00" * 1_000, 0.0),
        (b"\x00\x01" * 100, 1.0),
        (bytes(range(256)), 8.0),
        (bytes(range(256)) * 20, 8.0),  # long input: the Counter path
        ("abcdefgh", 3.0),
        ("0123456789abcdef" * 10, 4.0),
        (memoryview(b"abab"), 1.0),
        (bytearray(b"aabbccdd"), 2.0),
    ],
)
def test_entropy_known_values(data: bytes | str | memoryview | bytearray, bits: float) -> None:
    assert shannon_entropy(data) == pytest.approx(bits, abs=1e-12)


@given(st.one_of(st.binary(max_size=5_000), st.text(max_size=300)))
def test_entropy_matches_definition(data: bytes | str) -> None:
    n = len(data)
    counts = Counter(data).values()
    expected = -sum(c / n * math.log2(c / n) for c in counts) if n else 0.0
    h = shannon_entropy(data)
    assert h == pytest.approx(expected, abs=1e-9)
    assert 0.0 <= h <= math.log2(max(1, len(counts))) + 1e-9


# ---------------------------------------------------------------------------------------------
# RunningStats: Welford's streaming moments
# ---------------------------------------------------------------------------------------------


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=2, max_size=200))
def test_running_stats_match_statistics_module(values: list[float]) -> None:
    rs = RunningStats()
    for v in values:
        rs.add(v)
    assert rs.count == len(values)
    assert rs.mean == pytest.approx(statistics.fmean(values), abs=1e-6)
    assert rs.variance == pytest.approx(statistics.pvariance(values), rel=1e-6, abs=1e-3)
    cv = rs.cv()
    if rs.mean == 0.0:
        assert cv is None
    else:
        assert cv == pytest.approx(rs.stdev / abs(rs.mean))


def test_running_stats_edge_cases() -> None:
    rs = RunningStats()
    assert rs.cv() is None
    assert rs.variance == 0.0
    rs.add(512)
    assert rs.cv() is None
    for _ in range(99):
        rs.add(512)
    assert rs.cv() == 0.0  # constant-size junk padding
    rs.add(1_024)
    cv = rs.cv()
    assert cv is not None
    assert cv > 0


# ---------------------------------------------------------------------------------------------
# SlidingSum
# ---------------------------------------------------------------------------------------------

_sum_events = st.lists(
    st.tuples(
        st.sampled_from(["h1", "h2"]),
        st.integers(min_value=0, max_value=30),
        st.integers(min_value=0, max_value=1_000),
    ),
    max_size=80,
)


@given(_sum_events, st.integers(min_value=1, max_value=60))
def test_sliding_sum_exact_matches_brute_force(
    events: list[tuple[str, int, int]], window: int
) -> None:
    sums: SlidingSum[str] = SlidingSum(window_ns=window, resolution_ns=1)
    history: list[tuple[str, int, int]] = []
    ts = 0
    for key, step, amount in events:
        ts += step
        history.append((key, ts, amount))
        expected = sum(a for k, t, a in history if k == key and ts - window < t <= ts)
        assert sums.add(key, ts, amount) == expected
        for other in ("h1", "h2"):
            want = sum(a for k, t, a in history if k == other and ts - window < t <= ts)
            assert sums.total(other, ts) == want


@given(_sum_events, st.integers(min_value=2, max_value=60), st.integers(min_value=1, max_value=10))
def test_sliding_sum_resolution_only_keeps_a_little_extra(
    events: list[tuple[str, int, int]], window: int, resolution: int
) -> None:
    resolution = min(resolution, window)
    sums: SlidingSum[str] = SlidingSum(window_ns=window, resolution_ns=resolution)
    history: list[tuple[str, int, int]] = []
    ts = 0
    for key, step, amount in events:
        ts += step
        history.append((key, ts, amount))
        got = sums.add(key, ts, amount)
        exact = sum(a for k, t, a in history if k == key and ts - window < t <= ts)
        wider = sum(a for k, t, a in history if k == key and ts - window - resolution < t <= ts)
        assert exact <= got <= wider  # never drops what is inside, may keep one slot more


def test_sliding_sum_megabyte_in_five_minutes() -> None:
    s = 1_000_000_000
    sums: SlidingSum[str] = SlidingSum(window_ns=300 * s)
    total = 0
    for i in range(10):
        total = int(sums.add("host-a", i * 30 * s, 120_000))
    assert total == 1_200_000  # ten sends 30 s apart, all inside 5 minutes
    assert sums.add("host-a", 600 * s, 1) == 1  # everything earlier has left the window


def test_sliding_sum_key_eviction_and_validation() -> None:
    sums: SlidingSum[str] = SlidingSum(window_ns=10, resolution_ns=1, max_keys=1)
    sums.add("a", 1, 5)
    sums.add("b", 2, 7)
    assert len(sums) == 1
    assert sums.total("a", 2) == 0
    assert sums.add("b", 1, 1) == 8  # late event: clamped to the key's latest time
    with pytest.raises(InvalidParameterError):
        SlidingSum(window_ns=0)
    with pytest.raises(InvalidParameterError):
        SlidingSum(window_ns=10, resolution_ns=11)
    with pytest.raises(InvalidParameterError):
        SlidingSum(window_ns=10, max_keys=0)


# ---------------------------------------------------------------------------------------------
# FirstSeen / prevalence
# ---------------------------------------------------------------------------------------------


def test_first_seen_and_prevalence() -> None:
    seen: FirstSeen[str, str] = FirstSeen()
    for host in ("ws1", "ws2", "ws3"):
        seen.learn(host, r"c:\windows\system32\svchost.exe")
    seen.learn("ws1", r"c:\tools\rclone.exe")
    assert seen.host_count == 3
    assert len(seen) == 2
    assert seen.fleet_prevalence(r"c:\windows\system32\svchost.exe") == 3
    assert seen.fleet_prevalence(r"c:\tools\rclone.exe") == 1
    assert seen.fleet_prevalence("never") == 0
    assert not seen.is_new_on_host("ws1", r"c:\tools\rclone.exe")
    assert seen.is_new_on_host("ws2", r"c:\tools\rclone.exe")
    assert seen.is_new_on_host("ws9", r"c:\windows\system32\svchost.exe")
    assert seen.is_new_in_fleet("never")
    assert not seen.is_new_in_fleet(r"c:\tools\rclone.exe")
    seen.learn("ws1", r"c:\tools\rclone.exe")  # idempotent
    assert seen.fleet_prevalence(r"c:\tools\rclone.exe") == 1


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=100))
def test_first_seen_matches_sets(pairs: list[tuple[int, int]]) -> None:
    seen: FirstSeen[int, int] = FirstSeen()
    for host, key in pairs:
        seen.learn(host, key)
    for key in range(10):
        hosts = {h for h, k in pairs if k == key}
        assert seen.fleet_prevalence(key) == len(hosts)
        for host in range(10):
            assert seen.is_new_on_host(host, key) == (host not in hosts)
    assert seen.host_count == len({h for h, _ in pairs})
