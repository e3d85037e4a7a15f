"""Small statistics with honest edge cases: Wilson and Poisson score intervals, quantiles.

Every function returns ``None`` where a figure is undefined (no trials, no samples) rather than
a misleading 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["Z95", "percentile", "poisson_rate_interval", "wilson_interval"]

#: Two-sided 95% standard normal quantile.
Z95 = 1.959963984540054


def wilson_interval(
    successes: int, trials: int, z: float = Z95
) -> tuple[float, float, float] | None:
    """Proportion and its Wilson score interval; ``None`` when there are no trials."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if trials == 0:
        return None
    p = successes / trials
    z2 = z * z
    denom = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denom
    # Clamp: rounding can put a bound a hair past the estimate at p = 0 or p = 1.
    return p, min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def poisson_rate_interval(
    count: int, exposure: float, z: float = Z95
) -> tuple[float, float, float] | None:
    """Rate ``count / exposure`` with the Poisson score interval; ``None`` without exposure.

    The score interval solves ``(x - mu)^2 = z^2 mu`` for the mean ``mu``; unlike the Wald
    interval it is not degenerate at ``count == 0`` (0 false alerts still has an upper bound).
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if exposure <= 0:
        return None
    z2 = z * z
    root = z * math.sqrt(count + z2 / 4)
    lo = max(0.0, count + z2 / 2 - root)
    hi = count + z2 / 2 + root
    return count / exposure, lo / exposure, hi / exposure


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation; ``None`` for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)
