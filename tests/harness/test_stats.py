from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.stats import percentile, poisson_rate_interval, wilson_interval


def test_wilson_hand_checked() -> None:
    # 8 of 10: Wilson 95% interval (0.4902, 0.9433), e.g. Newcombe (1998) table I method 3.
    p, lo, hi = wilson_interval(8, 10)  # type: ignore[misc]
    assert p == 0.8
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)


def test_wilson_edges() -> None:
    assert wilson_interval(0, 0) is None
    p, lo, hi = wilson_interval(0, 5)  # type: ignore[misc]
    assert (p, lo) == (0.0, 0.0)
    assert 0 < hi < 0.5
    p, lo, hi = wilson_interval(5, 5)  # type: ignore[misc]
    assert (p, hi) == (1.0, 1.0)
    assert 0.5 < lo < 1
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(6, 5)


@given(st.integers(0, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_estimate_and_stays_in_unit_interval(sn: tuple[int, int]) -> None:
    s, n = sn
    out = wilson_interval(s, n)
    if n == 0:
        assert out is None
        return
    assert out is not None
    p, lo, hi = out
    assert 0.0 <= lo <= p <= hi <= 1.0


def test_poisson_score_interval_hand_checked() -> None:
    # x = 0 over 10 units: upper bound z^2 / 10 = 0.384 (score interval), lower 0.
    rate, lo, hi = poisson_rate_interval(0, 10.0)  # type: ignore[misc]
    assert (rate, lo) == (0.0, 0.0)
    assert hi == pytest.approx(1.959964**2 / 10, rel=1e-5)
    # x = 4: (4 + 1.92 -/+ 1.96 * sqrt(4.96)) = (1.555, 10.286)
    rate, lo, hi = poisson_rate_interval(4, 1.0)  # type: ignore[misc]
    assert rate == 4.0
    assert lo == pytest.approx(4 + 1.959964**2 / 2 - 1.959964 * math.sqrt(4 + 1.959964**2 / 4))
    assert hi == pytest.approx(10.286, abs=1e-3)
    assert poisson_rate_interval(3, 0.0) is None


@given(st.integers(0, 100_000), st.floats(0.01, 1e6))
def test_poisson_interval_brackets_rate(x: int, exposure: float) -> None:
    out = poisson_rate_interval(x, exposure)
    assert out is not None
    rate, lo, hi = out
    assert 0 <= lo <= rate <= hi


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 95) == 95
    with pytest.raises(ValueError, match="q must be"):
        percentile([1.0], 101)
