from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import strategies as st

from detectors.an0144 import UnseenProcessHttpsVolume
from harness.holdout import (
    HOLDOUT_FIRST_SEED,
    KNOB_FIRST_SEED,
    draw_examples,
    drawn_knob_plan,
    held_out_seed_plan,
    holdout_section,
)
from harness.reporters.console import ConsoleReporter
from harness.reporters.markdown import MarkdownReporter
from harness.results import build_results, validate
from harness.runner import DetectorSpec, RunPlan, ScenarioSpec, run_plan
from scenarios.https_exfil import HttpsExfil
from scenarios.office import OfficeBaseline
from tests.conftest import SMALL


class DrawnExfil(HttpsExfil):
    id: ClassVar[str] = "drawn-exfil"

    @classmethod
    def knob_strategy(cls) -> Any:
        return st.fixed_dictionaries(
            {
                "chunk_bytes": st.integers(100_000, 4_000_000),
                "interval_s": st.floats(5, 120),
            }
        )


def test_draws_are_reproducible_and_vary_with_the_seed() -> None:
    strategy = st.integers(0, 10**9)
    first = draw_examples(strategy, 5)
    assert len(first) == 5
    assert draw_examples(strategy, 5) == first
    assert draw_examples(strategy, 5, seed=7) != first


def test_holdout_plans() -> None:
    plan = RunPlan(
        scenarios=(
            ScenarioSpec(scenario=DrawnExfil, overrides=SMALL),
            ScenarioSpec(scenario=OfficeBaseline, overrides=SMALL),
        ),
        detectors=(DetectorSpec(detector=UnseenProcessHttpsVolume),),
        seeds=(0, 1),
        sweep_points=3,
    )
    seeds = held_out_seed_plan(plan)
    assert seeds.seeds == (HOLDOUT_FIRST_SEED, HOLDOUT_FIRST_SEED + 1)
    assert seeds.sweep_points == 0
    knobs = drawn_knob_plan(plan, 3)
    assert knobs is not None
    assert knobs.seeds == (KNOB_FIRST_SEED,)
    assert [s.scenario for s in knobs.scenarios] == [DrawnExfil] * 3  # office publishes none
    for spec in knobs.scenarios:
        assert spec.overrides["workstations"] == SMALL["workstations"]  # the plan's own win
        assert 100_000 <= spec.overrides["chunk_bytes"] <= 4_000_000
    only_office = RunPlan(
        scenarios=(ScenarioSpec(scenario=OfficeBaseline, overrides=SMALL),),
        detectors=plan.detectors,
        seeds=(0,),
    )
    assert drawn_knob_plan(only_office, 3) is None


def test_held_out_section_in_the_document_and_reports() -> None:
    plan = RunPlan(
        scenarios=(ScenarioSpec(scenario=DrawnExfil, overrides=SMALL),),
        detectors=(DetectorSpec(detector=UnseenProcessHttpsVolume),),
        seeds=(0,),
    )
    seed_plan = held_out_seed_plan(plan)
    knob_plan = drawn_knob_plan(plan, 2)
    assert knob_plan is not None
    section = holdout_section(seed_plan, run_plan(seed_plan), knob_plan, run_plan(knob_plan))
    doc = build_results(plan, run_plan(plan), held_out=section)
    validate(doc)
    held = doc["held_out"]
    assert held["seeds"]["seeds"] == [HOLDOUT_FIRST_SEED]
    an = held["seeds"]["analytics"]["AN0144"]
    assert an["expected_actors"] == 2
    assert 0 <= an["detection_rate"]["value"] <= 1
    assert len(held["drawn_knobs"]["draws"]) == 2
    assert held["drawn_knobs"]["analytics"]["AN0144"]["expected_actors"] == 4  # 2 draws x 2
    assert "held-out seeds" in ConsoleReporter().render(doc)
    assert "Not tuned on" in MarkdownReporter().render(doc)
    plain = build_results(plan, run_plan(plan))
    assert plain["held_out"] is None
    assert "held-out seeds" not in ConsoleReporter().render(plain)
