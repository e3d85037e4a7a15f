"""Held-out evaluation: the same detectors on seeds and knob values nobody tuned them on.

A detector tuned while looking at seeds 0 to 4 of the default suite can fit those seeds rather
than the behaviour. ``egress-harness run --holdout`` therefore scores two more sets of runs
beside the main figures, and the results document shows all three:

* **held-out seeds**: the same scenarios and knobs, seeds from :data:`HOLDOUT_FIRST_SEED` on
  (as many seeds as the main run). The project's detectors are never tuned on them.
* **drawn knobs**: for every scenario that publishes a knob strategy
  (:meth:`harness.scenario.Scenario.knob_strategy`), knob settings drawn by Hypothesis from the
  whole valid range (rates, volumes, chunking, jitter, padding, encodings, disguises), each run
  once. Draws are reproducible: they come from a fixed Hypothesis seed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.strategies import SearchStrategy

from harness.analytics import ANALYTICS, AnalyticId
from harness.runner import RunPlan, RunRecord, ScenarioSpec
from harness.scoring import AnalyticCounts, score_detector_run, summarize

__all__ = [
    "DRAW_SEED",
    "HOLDOUT_FIRST_SEED",
    "KNOB_FIRST_SEED",
    "draw_examples",
    "drawn_knob_plan",
    "held_out_seed_plan",
    "holdout_section",
]

#: First seed of the held-out range (the main run uses seeds from 0).
HOLDOUT_FIRST_SEED = 1000
#: First scenario seed of the drawn-knob runs.
KNOB_FIRST_SEED = 2000
#: The Hypothesis seed the knob draws come from.
DRAW_SEED = 20_261_125


def draw_examples(strategy: SearchStrategy[Any], count: int, *, seed: int = DRAW_SEED) -> list[Any]:
    """``count`` values drawn from ``strategy``, the same ones every time for the same seed.

    Hypothesis runs a property that records what it is given, with the example database off,
    only the generation phase, and a pinned seed.
    """
    drawn: list[Any] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn[:count]


def held_out_seed_plan(plan: RunPlan) -> RunPlan:
    """``plan`` on as many seeds again, from :data:`HOLDOUT_FIRST_SEED`, without sweeps."""
    seeds = tuple(range(HOLDOUT_FIRST_SEED, HOLDOUT_FIRST_SEED + len(plan.seeds)))
    return replace(plan, seeds=seeds, sweep_points=0)


def drawn_knob_plan(plan: RunPlan, draws_per_scenario: int) -> RunPlan | None:
    """One scenario spec per drawn knob setting (over the plan's own overrides), one seed each
    (:data:`KNOB_FIRST_SEED`); ``None`` when no scenario of the plan publishes a strategy."""
    specs: list[ScenarioSpec] = []
    for spec in plan.scenarios:
        strategy = spec.scenario.knob_strategy()
        if strategy is None:
            continue
        for overrides in draw_examples(strategy, draws_per_scenario):
            specs.append(
                ScenarioSpec(scenario=spec.scenario, overrides={**overrides, **spec.overrides})
            )
    if not specs:
        return None
    return replace(plan, scenarios=tuple(specs), seeds=(KNOB_FIRST_SEED,), sweep_points=0)


def _compact(counts: AnalyticCounts) -> dict[str, Any]:
    s = summarize(counts)
    return {
        "detection_rate": s["detection_rate"],
        "false_alerts_per_100_host_days": s["false_alerts_per_100_host_days"],
        "precision": s["precision"],
        "latency_s": s["latency_s"],
        "bytes_before_alert": s["bytes_before_alert"],
        "detected_actors": s["counts"]["detected_actors"],
        "expected_actors": s["counts"]["expected_actors"],
        "false_alerts": s["counts"]["false_alerts"],
        "errors": s["counts"]["errors"],
    }


def _analytics(records: Sequence[RunRecord]) -> dict[str, Any]:
    totals: dict[AnalyticId, AnalyticCounts] = defaultdict(AnalyticCounts)
    for record in records:
        for run in record.detectors:
            totals[run.analytic] += score_detector_run(record, run)[0]
    return {aid: _compact(totals[aid]) for aid in ANALYTICS if aid in totals}


def holdout_section(
    seed_plan: RunPlan,
    seed_records: Sequence[RunRecord],
    knob_plan: RunPlan | None,
    knob_records: Sequence[RunRecord],
) -> dict[str, Any]:
    """The ``held_out`` section of the results document."""
    section: dict[str, Any] = {
        "seeds": {"seeds": list(seed_plan.seeds), "analytics": _analytics(seed_records)},
        "drawn_knobs": None,
    }
    if knob_plan is not None:
        section["drawn_knobs"] = {
            "hypothesis_seed": DRAW_SEED,
            "draws": [
                {
                    "scenario": spec.scenario.id,
                    "seed": seed,
                    "overrides": dict(sorted(spec.overrides.items())),
                }
                for spec in knob_plan.scenarios
                for seed in knob_plan.seeds
            ],
            "analytics": _analytics(knob_records),
        }
    return section
