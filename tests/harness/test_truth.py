"""harness.truth: a BytesTimeline answers as the tuple of its points does."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.truth import ActorKind, ActorTruth, BytesTimeline


@given(
    st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 10**6)), max_size=20),
    st.integers(-5, 1010),
)
def test_timeline_answers_as_its_tuple(steps: list[tuple[int, int]], at: int) -> None:
    times = sorted({t for t, _ in steps})
    points = tuple((t, 10 * (i + 1)) for i, t in enumerate(times))
    timeline = BytesTimeline(np.array(times, dtype=np.int64),
                             np.array([b for _, b in points], dtype=np.int64))  # fmt: skip
    as_arrays = ActorTruth(actor_id="a", kind=ActorKind.MALICIOUS, description="",
                           bytes_timeline=timeline)  # fmt: skip
    as_tuple = ActorTruth(actor_id="a", kind=ActorKind.MALICIOUS, description="",
                          bytes_timeline=points)  # fmt: skip
    assert as_arrays.bytes_until(at) == as_tuple.bytes_until(at)
    assert as_arrays.bytes_total == as_tuple.bytes_total
    assert as_arrays == as_tuple
    assert hash(timeline) == hash(points)
    assert list(timeline) == list(points)
    assert tuple(timeline[1:]) == points[1:]
    assert pickle.loads(pickle.dumps(timeline)) == points


def test_timeline_needs_one_total_per_time() -> None:
    with pytest.raises(ValueError, match="2 times for 1 totals"):
        BytesTimeline(np.array([1, 2]), np.array([5]))
