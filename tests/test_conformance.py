"""Every registered plugin passes the conformance kit: one test id per plugin."""

from __future__ import annotations

import pytest

from harness.registry import DETECTORS, REPORTERS, SCENARIOS, SUITES
from harness.results import build_results
from harness.runner import DetectorSpec, RunPlan, ScenarioSpec, run_plan
from harness.testing import check_detector, check_scenario
from scenarios.https_exfil import HttpsExfil
from tests.conftest import SMALL


@pytest.mark.parametrize("name", SCENARIOS.names())
def test_scenario_conformance(name: str) -> None:
    check_scenario(SCENARIOS.load(name), overrides=SMALL)


@pytest.mark.parametrize("name", DETECTORS.names())
def test_detector_conformance(name: str) -> None:
    check_detector(DETECTORS.load(name), HttpsExfil)


@pytest.mark.parametrize("name", SUITES.names())
def test_suites_name_registered_scenarios(name: str) -> None:
    assert set(SUITES.load(name)) <= set(SCENARIOS.names())


@pytest.mark.parametrize("name", REPORTERS.names())
def test_reporters_render_a_real_document(name: str) -> None:
    plan = RunPlan(
        scenarios=(ScenarioSpec(scenario=HttpsExfil, overrides=SMALL),),
        detectors=tuple(DetectorSpec(detector=d) for d in DETECTORS.load_all()),
        seeds=(0,),
    )
    doc = build_results(plan, run_plan(plan))
    text = REPORTERS.load(name)().render(doc)
    assert "AN0144" in text
