"""The evasion frontier: for each malicious actor and each analytic expected to catch it, the
weakest setting of each difficulty knob at which the analytic's detector still catches it.

A scenario declares difficulty ladders (:attr:`harness.scenario.Scenario.difficulty`): for a
knob, values from the easiest to the hardest (lower rate, smaller volume, more disguise). The
frontier runs the scenario once per rung (one knob moved at a time, every other knob at its
default), for a few seeds, through the detectors, and records for every malicious actor whether
each expected analytic caught it in every seed. The **frontier** of (actor, analytic, knob) is
the hardest rung such that the actor was caught in all seeds at that rung and at every easier
rung; ``None`` when it was not caught even at the easiest one.

The result is a canonical JSON document (stable order, no wall-clock figure) and a Markdown
table; :func:`frontier_markdown` renders it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

from harness import __version__
from harness.fields import Profile
from harness.runner import (
    DetectorSpec,
    ProgressFn,
    RunPlan,
    ScenarioSpec,
    run_plan,
)
from harness.scenario import Scenario
from harness.scoring import classify_alert

__all__ = ["FRONTIER_SCHEMA_VERSION", "Rung", "frontier_markdown", "rungs", "search_frontier"]

FRONTIER_SCHEMA_VERSION = "1.0"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rung:
    """One run of the frontier: a scenario with one knob moved to ``value``."""

    scenario: type[Scenario]
    knob: str
    step: int
    value: Any


def rungs(scenarios: Sequence[type[Scenario]]) -> list[Rung]:
    """Every rung of every difficulty ladder of ``scenarios``, in declaration order."""
    out = []
    for cls in scenarios:
        for knob, ladder in cls.difficulty.items():
            for step, value in enumerate(ladder):
                out.append(Rung(scenario=cls, knob=knob, step=step, value=value))
    return out


def search_frontier(
    scenarios: Sequence[type[Scenario]],
    detectors: Sequence[DetectorSpec],
    seeds: tuple[int, ...],
    *,
    workers: int = 1,
    progress: ProgressFn | None = None,
    profile: Profile = Profile.EDR,
) -> dict[str, Any]:
    """Run every rung for every seed and build the frontier document (see the module doc).
    Actors whose traces the profile cannot show (packet anomalies under ``edr``) are listed
    as unobservable, not as misses."""
    ladder = rungs(scenarios)
    plan = RunPlan(
        scenarios=tuple(
            ScenarioSpec(scenario=r.scenario, overrides={r.knob: r.value}) for r in ladder
        ),
        detectors=tuple(detectors),
        seeds=seeds,
        profile=profile,
    )
    records = run_plan(plan, workers=workers, progress=progress)
    analytic_detector: dict[str, str] = {d.detector.analytic: d.detector.id for d in detectors}
    # caught[(scenario, actor, analytic, knob)][step] = [caught in seed s for s in seeds]
    caught: dict[tuple[str, str, str, str], dict[int, list[bool]]] = {}
    descriptions: dict[tuple[str, str], str] = {}
    unobservable: dict[tuple[str, str], list[str]] = {}
    errors: list[str] = []
    for index, record in enumerate(records):
        rung = ladder[index // len(seeds)]
        truth = record.truth
        malicious = frozenset(a.actor_id for a in truth.malicious)
        hit: dict[str, set[str]] = {}
        for run in record.detectors:
            if run.error:
                errors.append(
                    f"{record.scenario} {rung.knob}={rung.value!r} seed "
                    f"{record.seed}: {run.detector}: {run.error}"
                )
            for raised in run.alerts:
                for actor_id in classify_alert(raised.alert.evidence, truth, malicious):
                    hit.setdefault(run.analytic, set()).add(actor_id)
        for actor in truth.malicious:
            descriptions[(record.scenario, actor.actor_id)] = actor.description
            missing = actor.observable_with - record.telemetry.fields
            if missing:
                unobservable[(record.scenario, actor.actor_id)] = sorted(f.value for f in missing)
            for analytic in actor.expected_analytics:
                if analytic not in analytic_detector:
                    continue
                key = (record.scenario, actor.actor_id, analytic, rung.knob)
                steps = caught.setdefault(key, {})
                steps.setdefault(rung.step, []).append(actor.actor_id in hit.get(analytic, ()))
    rows = []
    for (scenario, actor_name, analytic_name, knob), steps in sorted(caught.items()):
        cls = next(c for c in scenarios if c.id == scenario)
        values = cls.difficulty[knob]
        ladder_rows = [
            {
                "value": values[step],
                "caught_seeds": sum(steps.get(step, [])),
                "seeds": len(steps.get(step, [])),
            }
            for step in range(len(values))
        ]
        weakest = None
        for step, rung_row in enumerate(ladder_rows):
            if rung_row["seeds"] and rung_row["caught_seeds"] == rung_row["seeds"]:
                weakest = step
            else:
                break
        rows.append(
            {
                "scenario": scenario,
                "actor": actor_name,
                "description": descriptions[(scenario, actor_name)],
                "analytic": analytic_name,
                "detector": analytic_detector[analytic_name],
                "knob": knob,
                "ladder": ladder_rows,
                "weakest_caught": None if weakest is None else values[weakest],
                "caught_at_hardest": weakest == len(values) - 1,
                "unobservable_without": unobservable.get((scenario, actor_name), []),
            }
        )
    return {
        "schema_version": FRONTIER_SCHEMA_VERSION,
        "harness_version": __version__,
        "seeds": list(seeds),
        "profile": plan.profile.value,
        "detectors": [
            {
                "id": d.detector.id,
                "analytic": d.detector.analytic,
                "tunables": d.detector(**d.tunables).tunables,
            }
            for d in detectors
        ],
        "errors": errors,
        "frontier": rows,
    }


def frontier_markdown(doc: dict[str, Any]) -> str:
    """The frontier as a Markdown page: one table row per (actor, analytic, knob)."""
    out = [
        "# Evasion frontier",
        "",
        f"Seeds {', '.join(map(str, doc['seeds']))}, profile `{doc['profile']}`. One knob moves at "
        "a time, every other knob at its default. A rung counts as caught when the analytic "
        "caught the actor in every seed; **weakest caught** is the hardest rung reached without "
        "a miss on the way.",
        "",
    ]
    rows = []
    for r in doc["frontier"]:
        ladder = " → ".join(
            f"{_fmt(x['value'])} {'✓' if x['caught_seeds'] == x['seeds'] else '✗'}"
            + (
                ""
                if x["caught_seeds"] in (0, x["seeds"])
                else f" ({x['caught_seeds']}/{x['seeds']})"
            )
            for x in r["ladder"]
        )
        weakest = "not caught" if r["weakest_caught"] is None else _fmt(r["weakest_caught"])
        if r["unobservable_without"]:
            weakest = f"unobservable (needs {', '.join(r['unobservable_without'])})"
        if r["caught_at_hardest"]:
            weakest += " (hardest tried)"
        rows.append([r["actor"], r["analytic"], r["knob"], weakest, ladder])
    out.append(
        tabulate(
            rows,
            headers=("actor", "analytic", "knob", "weakest caught", "ladder (easiest → hardest)"),
            tablefmt="github",
        )
    )
    if doc["errors"]:
        out += ["", "## Errors", ""] + [f"- {e}" for e in doc["errors"]]
    return "\n".join(out) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
