"""Hypothesis strategies over scenario knobs, for property tests (ours and users').

Every knob of every scenario is declared with :func:`scenarios.knobs.knob`, which records its
valid range, its choices and a *test range*: a valid sub-range small enough that a generated
scenario stays quick. :func:`params` draws a whole ``Params`` from those ranges; the office is
small by default (:data:`SMALL_OFFICE`), or pass ``office=None`` to draw the office knobs too.

    from hypothesis import given
    from scenarios.strategies import scenario_runs

    @given(scenario_runs())
    def test_my_detector_never_raises(case):
        scenario, params, seed = case
        run = scenario.generate(params, seed)
        ...

``full_range=True`` draws from the whole valid range instead (for validation tests: any drawn
value must be accepted). Strategies are built from the knob declarations, so a knob added to a
scenario is drawn without touching this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from harness.errors import UnknownPluginError
from harness.scenario import Scenario
from scenarios.attacks import (
    CustomPortExfil,
    DnsExfilEvasive,
    DnsTunnels,
    ProtocolAnomalies,
    QuietProcessExfil,
    StagingAndBeacons,
)
from scenarios.https_exfil import HttpsExfil
from scenarios.knobs import Knob, knobs
from scenarios.office import OfficeBaseline

__all__ = [
    "SCENARIO_CLASSES",
    "SMALL_OFFICE",
    "knob_values",
    "overrides_around_defaults",
    "params",
    "scenario_runs",
    "seeds",
]

#: The built-in scenarios, in the order of the default suite.
SCENARIO_CLASSES: tuple[type[Scenario], ...] = (
    OfficeBaseline,
    HttpsExfil,
    DnsTunnels,
    DnsExfilEvasive,
    QuietProcessExfil,
    StagingAndBeacons,
    CustomPortExfil,
    ProtocolAnomalies,
)

#: Office knobs for quick property tests: five workstations (the most any attack needs), one
#: file server, one baseline day, one detection day, light browsing.
SMALL_OFFICE: Mapping[str, Any] = {
    "workstations": 5,
    "servers": 1,
    "baseline_days": 1,
    "detection_days": 1,
    "browsing_sessions_per_day": 3.0,
}


def knob_values(spec: Knob, *, full_range: bool = False) -> st.SearchStrategy[Any]:
    """Values of one knob: its choices, or numbers in its test range (or whole valid range)."""
    if spec.choices:
        return st.sampled_from(spec.choices)
    low, high = spec.low, spec.high
    if not full_range and spec.test_range is not None:
        low, high = spec.test_range
    strategy: st.SearchStrategy[Any]
    if spec.kind is int:
        strategy = st.integers(
            min_value=None if low is None else int(low),
            max_value=None if high is None else int(high),
        )
    else:
        strategy = st.floats(
            min_value=low, max_value=high, allow_nan=False, allow_infinity=False, width=64
        )
    if spec.exclude:
        excluded = frozenset(spec.exclude)
        strategy = strategy.filter(lambda v: v not in excluded)
    return strategy


def _scenario_class(scenario: type[Scenario] | Scenario | str) -> type[Scenario]:
    if isinstance(scenario, str):
        by_id = {c.id: c for c in SCENARIO_CLASSES}
        if scenario not in by_id:
            raise UnknownPluginError("scenario", scenario, by_id)
        return by_id[scenario]
    return scenario if isinstance(scenario, type) else type(scenario)


def params(
    scenario: type[Scenario] | Scenario | str,
    *,
    office: Mapping[str, Any] | None = SMALL_OFFICE,
    full_range: bool = False,
    **fixed: Any,
) -> st.SearchStrategy[Any]:
    """``Params`` of ``scenario`` with every knob drawn (see the module docstring).

    ``office`` pins the office knobs (``None`` draws them too, from their test ranges); keyword
    arguments pin any other knob to a value.
    """
    cls = _scenario_class(scenario)
    pinned = dict(office or {})
    pinned.update(fixed)
    victims = int(getattr(cls, "victims", 1))
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for spec in knobs(cls.Params):
        if spec.name in pinned:
            fields[spec.name] = st.just(pinned[spec.name])
        elif spec.name == "workstations":
            low = max(victims, int(spec.test_range[0] if spec.test_range else 1))
            high = max(low, int(spec.test_range[1] if spec.test_range else low))
            fields[spec.name] = st.integers(min_value=low, max_value=high)
        else:
            fields[spec.name] = knob_values(spec, full_range=full_range)
    return st.fixed_dictionaries(fields).map(lambda kw: cls.Params(**kw))


def seeds() -> st.SearchStrategy[int]:
    """Scenario seeds (any non-negative 32-bit integer)."""
    return st.integers(min_value=0, max_value=2**32 - 1)


def scenario_runs(
    scenarios: tuple[type[Scenario], ...] = SCENARIO_CLASSES,
    *,
    office: Mapping[str, Any] | None = SMALL_OFFICE,
) -> st.SearchStrategy[tuple[Scenario, Any, int]]:
    """``(scenario instance, params, seed)`` over ``scenarios``, ready to ``generate``."""
    return st.sampled_from(scenarios).flatmap(
        lambda cls: st.tuples(st.just(cls()), params(cls, office=office), seeds())
    )


def _around(spec: Knob, factor: float) -> st.SearchStrategy[Any]:
    """Values of one knob within ``factor`` of its default, inside its valid range."""
    if spec.choices:
        return st.sampled_from(spec.choices)
    default = spec.default
    if default == 0:  # nothing to scale: the test range, or the default alone
        return knob_values(spec) if spec.test_range is not None else st.just(default)
    low, high = sorted((default / factor, default * factor))
    if spec.low is not None:
        low = max(low, spec.low)
    if spec.high is not None:
        high = min(high, spec.high)
    strategy: st.SearchStrategy[Any]
    if spec.kind is int:
        strategy = st.integers(min_value=int(-(-low // 1)), max_value=max(int(high), int(low)))
    else:
        strategy = st.floats(min_value=low, max_value=high, allow_nan=False, width=64)
    if spec.exclude:
        excluded = frozenset(spec.exclude)
        strategy = strategy.filter(lambda v: v not in excluded)
    return strategy


def overrides_around_defaults(
    scenario: type[Scenario] | Scenario | str, *, factor: float = 4.0
) -> st.SearchStrategy[dict[str, Any]]:
    """Overrides of a scenario's own knobs (not the office's): every choice knob over all its
    choices, every number within ``factor`` of its default (``default / factor`` to
    ``default * factor``, inside the valid range).

    These are the variations an attacker would plausibly pick around the documented operating
    point, which is what held-out evaluation (``egress-harness run --holdout``) should cover;
    degenerate extremes (one byte moved) belong to the evasion frontier instead.
    """
    cls = _scenario_class(scenario)
    office = {f.name for f in dataclasses.fields(OfficeBaseline.Params)}
    fields = {
        spec.name: _around(spec, factor) for spec in knobs(cls.Params) if spec.name not in office
    }
    return st.fixed_dictionaries(fields)
