"""Knob declarations and validation, the exported strategies, and the default suite's coverage
of every analytic (at least three malicious variations and two benign traps each)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings

from harness.analytics import AnalyticId, analytic_id
from harness.errors import InvalidParameterError
from harness.fields import Field
from harness.registry import SCENARIOS, SUITES
from harness.scenario import Scenario
from harness.truth import ActorKind, GroundTruth
from scenarios.knobs import knobs
from scenarios.office import AttackScenario
from scenarios.strategies import SCENARIO_CLASSES, SMALL_OFFICE, params

_IDS = [c.id for c in SCENARIO_CLASSES]
ANALYTICS = tuple(analytic_id(a) for a in ("AN0988", "AN0030", "AN1225", "AN0144", "AN1962"))


def test_strategies_cover_every_registered_scenario() -> None:
    assert sorted(_IDS) == SCENARIOS.names()
    assert tuple(SUITES.load("default")) == tuple(_IDS)


@pytest.mark.parametrize("cls", SCENARIO_CLASSES, ids=_IDS)
def test_every_knob_is_documented_and_its_default_valid(cls: type[Scenario]) -> None:
    for spec in knobs(cls.Params):
        assert spec.doc, f"{cls.id}.{spec.name} has no doc"
        spec.check(spec.default)
    cls.Params()


@pytest.mark.parametrize("cls", SCENARIO_CLASSES, ids=_IDS)
def test_out_of_range_values_name_the_knob(cls: type[Scenario]) -> None:
    scenario = cls()
    for spec in knobs(cls.Params):
        bad: list[Any] = ["not-a-value"] if spec.kind is not str else [12]
        if spec.choices and spec.kind is str:
            bad.append("bogus")
        if spec.low is not None:
            bad.append(spec.kind(spec.low) - 1 if spec.kind is int else spec.low - 0.5)
        if spec.high is not None:
            bad.append(spec.kind(spec.high) + 1 if spec.kind is int else spec.high * 2 + 1)
        bad.extend(spec.exclude)
        for value in bad:
            with pytest.raises(InvalidParameterError, match=spec.name) as info:
                scenario.params({spec.name: value})
            assert info.value.name == spec.name


@pytest.mark.parametrize("cls", SCENARIO_CLASSES, ids=_IDS)
def test_full_range_draws_are_accepted(cls: type[Scenario]) -> None:
    @settings(max_examples=25, deadline=None, derandomize=True)
    @given(p=params(cls, full_range=True, office=None))
    def check(p: Any) -> None:
        for spec in knobs(p):
            spec.check(getattr(p, spec.name))

    check()


@pytest.mark.parametrize(
    "cls", [c for c in SCENARIO_CLASSES if issubclass(c, AttackScenario)], ids=lambda c: c.id
)
def test_too_few_workstations_is_a_usage_error(cls: type[AttackScenario]) -> None:
    scenario = cls()
    p = scenario.params({**SMALL_OFFICE, "workstations": cls.victims - 1 or 1})
    if cls.victims > 1:
        with pytest.raises(InvalidParameterError, match="workstations"):
            scenario.generate(p, 0)


def test_difficulty_ladders_name_real_knobs_with_valid_values() -> None:
    for cls in SCENARIO_CLASSES:
        names = {f.name for f in dataclasses.fields(cls.Params)}
        for knob_name, ladder in cls.difficulty.items():
            assert knob_name in names, (cls.id, knob_name)
            for value in ladder:
                cls().params({knob_name: value})


@pytest.fixture(scope="module")
def suite_truths() -> list[GroundTruth]:
    office = {**SMALL_OFFICE, "servers": 2}  # the second server is the web proxy
    out = []
    for cls in SCENARIO_CLASSES:
        scenario = cls()
        out.append(scenario.generate(scenario.params(office), 0).truth)
    return out


def test_default_suite_covers_every_analytic(suite_truths: list[GroundTruth]) -> None:
    malicious: dict[AnalyticId, set[str]] = defaultdict(set)
    traps: dict[AnalyticId, set[str]] = defaultdict(set)
    benign: set[str] = set()
    all_malicious: set[str] = set()
    for truth in suite_truths:
        for a in truth.actors:
            if a.kind is ActorKind.MALICIOUS:
                all_malicious.add(a.actor_id)
                for an in a.expected_analytics:
                    malicious[an].add(f"{truth.scenario}/{a.actor_id}")
            else:
                benign.add(a.actor_id)
                for an in a.trap_for:
                    traps[an].add(a.actor_id)
    assert len(all_malicious) >= 14
    assert len([b for b in benign if b != "windows-system"]) >= 12
    for an in ANALYTICS:
        assert len(malicious[an]) >= 3, (an, sorted(malicious[an]))
        assert len(traps[an]) >= 2, (an, sorted(traps[an]))


def test_malicious_actors_are_labelled_and_move_bytes(suite_truths: list[GroundTruth]) -> None:
    for truth in suite_truths:
        for a in truth.malicious:
            assert a.techniques, a.actor_id
            assert a.expected_analytics, a.actor_id
            assert a.start_ns is not None, a.actor_id
            if Field.PACKETS not in a.observable_with:  # packet-only actors send no flows
                assert a.bytes_total > 0, a.actor_id
