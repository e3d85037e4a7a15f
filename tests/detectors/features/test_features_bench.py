"""Micro-benchmarks of the per-event feature calls (pytest-benchmark; marked slow).

Run: ``python -m pytest tests/detectors/features/test_features_bench.py -m slow``. They assert
nothing about speed (machines differ); they record it, and fail only if a call breaks.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from detectors.features.bigram import BigramModel
from detectors.features.dns import (
    DistinctCounter,
    InformationCounter,
    PublicSuffixMatcher,
    label_entropy,
    registered_domain,
)
from detectors.features.stats import SlidingSum

pytestmark = pytest.mark.slow

_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_RNG = random.Random(11)
_TUNNEL = ["".join(_RNG.choice(_B32) for _ in range(40)) + f".{i % 7}" for i in range(200_000)]


def test_bench_registered_domain_cached(benchmark: Any) -> None:
    registered_domain("www.google.co.uk")
    assert benchmark(registered_domain, "www.google.co.uk") == "google.co.uk"


def test_bench_registered_domain_uncached(benchmark: Any) -> None:
    matcher = PublicSuffixMatcher(cache_size=0)
    name = "mzxw6ytboi2dsnzqgq3dmmbvgy3tqojq.x.t.example.com"
    assert benchmark(matcher.registered_domain, name) == "example.com"


def test_bench_bigram_score_uncached(benchmark: Any) -> None:
    model = BigramModel.load_default()
    uncached = BigramModel(_counts(), cache_size=0)
    assert model.score("windowsupdate") == uncached.score("windowsupdate")
    benchmark(uncached.score, "mzxw6ytboi2dsnzqgq3dmmbvgy3tqojq")


def _counts() -> dict[str, int]:
    import json
    from importlib import resources

    text = resources.files("detectors.features").joinpath("data", "bigrams_en.json").read_text()
    counts: dict[str, int] = json.loads(text)["counts"]
    return counts


def test_bench_label_entropy(benchmark: Any) -> None:
    benchmark(label_entropy, "mzxw6ytboi2dsnzqgq3dmmbvgy3tqojq.t")


def test_bench_information_counter_add_tunnel(benchmark: Any) -> None:
    counter: InformationCounter[str] = InformationCounter()
    names = itertools.cycle(_TUNNEL)
    ts = itertools.count(0, 1_000_000)
    benchmark(lambda: counter.add("10.0.0.5|t.example", next(names), next(ts)))


def test_bench_distinct_counter_add_tunnel(benchmark: Any) -> None:
    counter: DistinctCounter[str] = DistinctCounter()
    names = itertools.cycle(_TUNNEL)
    ts = itertools.count(0, 1_000_000)
    benchmark(lambda: counter.add("10.0.0.5|t.example", next(names), next(ts)))


def test_bench_sliding_sum_add(benchmark: Any) -> None:
    sums: SlidingSum[str] = SlidingSum(window_ns=300 * 10**9)
    ts = itertools.count(0, 10_000_000)
    benchmark(lambda: sums.add("host-a", next(ts), 1_200))
