"""Conformance kit for plugin authors: check a scenario or a detector in one call.

    from harness.testing import check_scenario, check_detector

    def test_my_scenario():
        check_scenario(MyScenario)

    def test_my_detector():
        check_detector(MyDetector, MyScenario)

Each check raises :class:`ConformanceError` naming the first broken rule. The rules: plugin ids
are kebab-case; scenarios are deterministic for a seed and differ across seeds, emit events in
event-time order with unique ids, and book every event to an actor; detectors declare a valid
analytic, techniques, fields, event kinds and in-range tunable defaults, cite only events they
were shown, and give the same alerts for the same input.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from harness.analytics import ANALYTICS, analytic_id, technique_id
from harness.detector import Detector
from harness.errors import HarnessError
from harness.events import EventKind
from harness.fields import Field, Profile
from harness.runner import DetectorSpec, Outcome, run_detectors
from harness.scenario import Scenario

__all__ = ["ConformanceError", "check_detector", "check_scenario"]

_PLUGIN_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class ConformanceError(HarnessError):
    """A plugin breaks a rule of its contract."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConformanceError(message)


def check_scenario(
    cls: type[Scenario], *, seeds: tuple[int, int] = (0, 1), overrides: dict[str, Any] | None = None
) -> None:
    """Check the scenario contract on two seeds (see the module docstring)."""
    _require(bool(_PLUGIN_ID.fullmatch(getattr(cls, "id", ""))), f"{cls!r}: id is not kebab-case")
    _require(bool(getattr(cls, "description", "")), f"{cls.id}: no description")
    _require(dataclasses.is_dataclass(cls.Params), f"{cls.id}: Params is not a dataclass")
    scenario = cls()
    params = scenario.params(overrides)
    first = scenario.generate(params, seeds[0], Profile.EDR)
    again = scenario.generate(params, seeds[0], Profile.EDR)
    other = scenario.generate(params, seeds[1], Profile.EDR)
    _require(
        list(first.telemetry.events) == list(again.telemetry.events),
        f"{cls.id}: the same seed gave different events",
    )
    _require(first.truth == again.truth, f"{cls.id}: the same seed gave different ground truth")
    _require(
        list(first.telemetry.events) != list(other.telemetry.events),
        f"{cls.id}: seeds {seeds[0]} and {seeds[1]} gave the same events",
    )
    events = first.telemetry.events
    _require(len(events) > 0, f"{cls.id}: no events")
    keys = [(e.ts_ns, e.event_id) for e in events]
    _require(keys == sorted(keys), f"{cls.id}: events are not in event-time order")
    ids = [e.event_id for e in events]
    _require(len(set(ids)) == len(ids), f"{cls.id}: duplicate event ids")
    missing = [i for i in ids if i not in first.truth.event_actor]
    _require(not missing, f"{cls.id}: event {missing[:1]} is booked to no actor")
    tel = first.telemetry
    _require(
        all(tel.start_ns <= e.ts_ns < tel.end_ns for e in events),
        f"{cls.id}: events outside the telemetry window",
    )
    for actor in first.truth.malicious:
        _require(bool(actor.expected_analytics), f"{actor.actor_id}: malicious, no analytics")
        for aid in actor.expected_analytics:
            analytic_id(aid)
        for tid in actor.techniques:
            technique_id(tid)


def check_detector(
    cls: type[Detector], scenario: type[Scenario], *, seed: int = 0, profile: Profile = Profile.EDR
) -> None:
    """Check the detector contract, running it on one generation of ``scenario``."""
    _require(bool(_PLUGIN_ID.fullmatch(getattr(cls, "id", ""))), f"{cls!r}: id is not kebab-case")
    _require(cls.analytic in ANALYTICS, f"{cls.id}: unknown analytic {cls.analytic!r}")
    for tid in cls.techniques:
        technique_id(tid)
    _require(
        all(isinstance(f, Field) for f in cls.required_fields),
        f"{cls.id}: required_fields must be Field members",
    )
    _require(
        bool(cls.consumes) and all(isinstance(k, EventKind) for k in cls.consumes),
        f"{cls.id}: consumes must name at least one EventKind",
    )
    for name, spec in cls.tunable_specs.items():
        _require(
            spec.minimum <= spec.default <= spec.maximum,
            f"{cls.id}: tunable {name!r} default outside its bounds",
        )
        _require(bool(spec.description), f"{cls.id}: tunable {name!r} has no description")
    _require(bool(cls.__doc__ or ""), f"{cls.id}: no docstring")
    module_doc = __import__(cls.__module__, fromlist=["_"]).__doc__ or ""
    _require("Known gaps:" in module_doc, f"{cls.id}: module docstring lacks 'Known gaps:'")
    run = scenario().generate(scenario().params(), seed, profile)
    first = run_detectors(run.telemetry, [DetectorSpec(detector=cls)])[0]
    _require(first.outcome is not Outcome.ERROR, f"{cls.id}: {first.error}")
    again = run_detectors(run.telemetry, [DetectorSpec(detector=cls)])[0]
    _require(
        [a.alert for a in first.alerts] == [a.alert for a in again.alerts],
        f"{cls.id}: the same input gave different alerts",
    )
