from __future__ import annotations

import pytest

from harness.analytics import ANALYTICS, analytic_id, technique_id
from harness.errors import InvalidParameterError


@pytest.mark.parametrize("good", ["T1071", "T1071.004", "T1001.001"])
def test_technique_ids_accepted(good: str) -> None:
    assert technique_id(good) == good


@pytest.mark.parametrize("bad", ["T1071.", "T1071x004", "t1071", "T1071.0041", " T1071", "T107"])
def test_technique_ids_rejected_by_fullmatch(bad: str) -> None:
    with pytest.raises(InvalidParameterError, match="technique id"):
        technique_id(bad)


@pytest.mark.parametrize("bad", ["AN098", "AN09888", "an0988", "AN0988 "])
def test_analytic_ids_rejected(bad: str) -> None:
    with pytest.raises(InvalidParameterError, match="analytic id"):
        analytic_id(bad)


def test_catalogue_has_the_five_analytics_in_order() -> None:
    assert list(ANALYTICS) == ["AN0988", "AN0030", "AN1225", "AN0144", "AN1962"]
    assert all(a.required_fields for a in ANALYTICS.values())
