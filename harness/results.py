"""The canonical results document: one JSON object every report is rendered from.

The document is deterministic: keys sorted, floats rounded to 6 decimals, no wall-clock figure,
so running the same command twice gives byte-identical ``results.json``. Wall-clock figures
(throughput, time taken, alert wall latency) go to a separate ``timing.json``.

Its shape is fixed by ``harness/schema/results.schema.json`` (:data:`SCHEMA_VERSION`), which
:func:`validate` checks.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from harness import __version__
from harness.analytics import ANALYTICS, AnalyticId
from harness.errors import SchemaError
from harness.runner import DetectorRun, Outcome, RunPlan, RunRecord, primary_tunable
from harness.scoring import ActorDetection, AnalyticCounts, score_detector_run, summarize
from harness.stats import percentile

__all__ = [
    "SCHEMA_VERSION",
    "alerts_ndjson",
    "build_results",
    "build_timing",
    "canonical_json",
    "load_schema",
    "validate",
]

SCHEMA_VERSION = "1.0"


def _round(value: Any) -> Any:
    if isinstance(value, float):
        rounded = round(value, 6)
        return 0.0 if rounded == 0 else rounded  # no "-0.0"
    if isinstance(value, Mapping):
        return {str(k): _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    return value


def canonical_json(doc: Mapping[str, Any]) -> str:
    """Sorted keys, 2-space indent, 6-decimal floats, a final newline; NaN is refused."""
    return (
        json.dumps(_round(doc), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        + "\n"
    )


def plan_section(plan: RunPlan) -> dict[str, Any]:
    section: dict[str, Any] = {
        "profile": plan.profile.value,
        "sweep_points": plan.sweep_points,
        "seeds": list(plan.seeds),
        "scenarios": [
            {"id": s.scenario.id, "overrides": dict(sorted(s.overrides.items()))}
            for s in plan.scenarios
        ],
        "detectors": [
            {
                "id": d.detector.id,
                "analytic": d.detector.analytic,
                "tunables": d.detector(**d.tunables).tunables,
            }
            for d in plan.detectors
        ],
    }
    digest = hashlib.sha256(canonical_json(section).encode()).hexdigest()
    section["config_digest"] = f"sha256:{digest}"
    return section


def _detection_dict(d: ActorDetection) -> dict[str, Any]:
    return {
        "detected": d.detected,
        "first_alert_ns": d.first_alert_ns,
        "latency_s": d.latency_s,
        "bytes_before_alert": d.bytes_before_alert,
        "true_alerts": d.true_alerts,
    }


def _status(runs: Sequence[DetectorRun]) -> tuple[str, bool, list[str], list[str]]:
    """Status, evaluable, missing fields and error messages of one analytic over its runs."""
    missing = sorted({f.value for r in runs for f in r.missing_fields})
    errors = [r.error for r in runs if r.error]
    if not runs:
        return "no_detector", False, [], []
    if all(r.outcome is Outcome.NOT_EVALUABLE for r in runs):
        return "not_evaluable", False, missing, []
    if all(r.outcome is not Outcome.OK for r in runs):
        return "error", True, missing, [e for e in errors if e]
    return "ok", True, missing, [e for e in errors if e]


def build_results(
    plan: RunPlan, records: Sequence[RunRecord], *, held_out: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The canonical results document for a finished run (see the schema for every field);
    ``held_out`` is the section :func:`harness.holdout.holdout_section` builds, if any."""
    totals: dict[AnalyticId, AnalyticCounts] = defaultdict(AnalyticCounts)
    runs_by_analytic: dict[AnalyticId, list[DetectorRun]] = defaultdict(list)
    errors_by_analytic: dict[AnalyticId, list[str]] = defaultdict(list)
    detector_of = {d.detector.analytic: d.detector.id for d in plan.detectors}
    scenarios: dict[str, dict[str, Any]] = {}
    scen_counts: dict[str, dict[AnalyticId, AnalyticCounts]] = defaultdict(
        lambda: defaultdict(AnalyticCounts)
    )
    scen_runs: dict[str, dict[AnalyticId, list[DetectorRun]]] = defaultdict(
        lambda: defaultdict(list)
    )
    actors: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)

    for rec in records:
        entry = scenarios.setdefault(
            rec.scenario,
            {
                "parameters": dict(rec.parameters),
                "seeds": [],
                "telemetry": {"events": 0, "detection_host_seconds": 0},
            },
        )
        entry["seeds"].append(rec.seed)
        entry["telemetry"]["events"] += rec.telemetry.events
        entry["telemetry"]["detection_host_seconds"] += rec.telemetry.detection_host_seconds
        per_seed: dict[str, dict[str, Any]] = {}
        for actor in rec.truth.actors:
            if actor.actor_id not in actors[rec.scenario]:
                actors[rec.scenario][actor.actor_id] = {
                    "actor_id": actor.actor_id,
                    "kind": actor.kind.value,
                    "description": actor.description,
                    "techniques": list(actor.techniques),
                    "expected_analytics": list(actor.expected_analytics),
                    "trap_for": list(actor.trap_for),
                    "observable_with": sorted(f.value for f in actor.observable_with),
                    "runs": [],
                }
            per_seed[actor.actor_id] = {
                "seed": rec.seed,
                "start_ns": actor.start_ns,
                "bytes_total": actor.bytes_total,
                "process_instances": actor.process_instances,
                "hosts": len(actor.hosts),
                "detections": {},
                "false_alerts": {},
            }
        for run in rec.detectors:
            counts, details, false_by_actor = score_detector_run(rec, run)
            totals[run.analytic] += counts
            scen_counts[rec.scenario][run.analytic] += counts
            runs_by_analytic[run.analytic].append(run)
            scen_runs[rec.scenario][run.analytic].append(run)
            if run.error:
                errors_by_analytic[run.analytic].append(
                    f"{rec.scenario} seed {rec.seed}: {run.error}"
                )
            for d in details:
                per_seed[d.actor_id]["detections"][run.analytic] = _detection_dict(d)
            for actor_id, n in false_by_actor.items():
                if actor_id in per_seed:
                    per_seed[actor_id]["false_alerts"][run.analytic] = n
        for actor_id, detail in per_seed.items():
            actors[rec.scenario][actor_id]["runs"].append(detail)

    sweeps = _sweeps(plan, records)
    analytics: dict[str, Any] = {}
    for aid, info in ANALYTICS.items():
        status, evaluable, missing, _ = _status(runs_by_analytic.get(aid, []))
        analytics[aid] = {
            "title": info.title,
            "detector": detector_of.get(aid),
            "status": status,
            "evaluable": evaluable,
            "missing_fields": missing,
            "errors": errors_by_analytic.get(aid, []),
            **summarize(totals[aid]),
            "sweep": sweeps.get(aid),
        }
    for name, entry in scenarios.items():
        entry["analytics"] = {}
        for aid in ANALYTICS:
            status, evaluable, missing, _ = _status(scen_runs[name].get(aid, []))
            entry["analytics"][aid] = {
                "status": status,
                "evaluable": evaluable,
                "missing_fields": missing,
                **summarize(scen_counts[name][aid]),
            }
        entry["actors"] = sorted(actors[name].values(), key=lambda a: a["actor_id"])

    return {
        "schema_version": SCHEMA_VERSION,
        "harness_version": __version__,
        "run": plan_section(plan),
        "analytics": analytics,
        "held_out": dict(held_out) if held_out is not None else None,
        "scenarios": scenarios,
    }


def _sweeps(plan: RunPlan, records: Sequence[RunRecord]) -> dict[str, dict[str, Any]]:
    """Per analytic, the threshold sweep of its detector's primary tunable: one point per value
    with detection rate, false alerts per 100 host-days and precision over all runs."""
    out: dict[str, dict[str, Any]] = {}
    for spec in plan.detectors:
        cls = spec.detector
        primary = primary_tunable(cls)
        if primary is None:
            continue
        name, tunable = primary
        per_value: dict[float, AnalyticCounts] = defaultdict(AnalyticCounts)
        for rec in records:
            for sweep in rec.sweeps:
                if sweep.detector == cls.id:
                    per_value[sweep.value] += score_detector_run(rec, sweep.run)[0]
        if not per_value:
            continue
        points = []
        for value in sorted(per_value):
            summary = summarize(per_value[value])
            points.append(
                {
                    "value": value,
                    "detection_rate": summary["detection_rate"],
                    "false_alerts_per_100_host_days": summary["false_alerts_per_100_host_days"],
                    "precision": summary["precision"],
                    "detected_actors": summary["counts"]["detected_actors"],
                    "expected_actors": summary["counts"]["expected_actors"],
                    "false_alerts": summary["counts"]["false_alerts"],
                }
            )
        out[cls.analytic] = {
            "detector": cls.id,
            "tunable": name,
            "default": tunable.default,
            "description": tunable.description,
            "points": points,
        }
    return out


def build_timing(
    records: Sequence[RunRecord], *, run_id: str, started_utc: str, wall_s: float
) -> dict[str, Any]:
    """Wall-clock figures, kept out of the canonical document because they vary run to run."""
    per_detector: dict[str, dict[str, Any]] = {}
    for rec in records:
        for run in rec.detectors:
            d = per_detector.setdefault(
                run.detector, {"events": 0, "observe_s": 0.0, "fit_s": 0.0, "latencies": []}
            )
            d["events"] += run.events_observed
            d["observe_s"] += run.observe_s
            d["fit_s"] += run.fit_s
            d["latencies"].extend(a.wall_latency_s for a in run.alerts)
    detectors = {
        name: {
            "events_observed": d["events"],
            "observe_s": d["observe_s"],
            "fit_s": d["fit_s"],
            "events_per_s": d["events"] / d["observe_s"] if d["observe_s"] > 0 else None,
            "alert_wall_latency_ms": {
                "median": _ms(percentile(d["latencies"], 50)),
                "p95": _ms(percentile(d["latencies"], 95)),
            },
        }
        for name, d in sorted(per_detector.items())
    }
    events = sum(r.telemetry.events for r in records)
    generate_s = sum(r.generate_s for r in records)
    return {
        "note": "wall-clock figures: they differ from run to run and are not part of results.json",
        "run_id": run_id,
        "started_utc": started_utc,
        "wall_s": wall_s,
        "generate_s": generate_s,
        "events": events,
        "generate_events_per_s": events / generate_s if generate_s > 0 else None,
        "detectors": detectors,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def alerts_ndjson(records: Sequence[RunRecord]) -> str:
    """Every alert of the run, one JSON object a line, in run then event-time order."""
    lines = []
    for rec in records:
        for run in rec.detectors:
            for raised in run.alerts:
                a = raised.alert
                lines.append(
                    json.dumps(
                        _round(
                            {
                                "scenario": rec.scenario,
                                "seed": rec.seed,
                                "analytic": a.analytic,
                                "detector": a.detector,
                                "ts_ns": a.ts_ns,
                                "raised_ns": raised.raised_ns,
                                "score": a.score,
                                "entity": {
                                    k: getattr(a.entity, k) for k in a.entity.__dataclass_fields__
                                },
                                "reason": a.reason,
                                "evidence": list(a.evidence),
                            }
                        ),
                        sort_keys=True,
                        ensure_ascii=False,
                    )
                )
    return "".join(line + "\n" for line in lines)


@cache
def load_schema() -> dict[str, Any]:
    text = resources.files("harness").joinpath("schema/results.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate(doc: Mapping[str, Any]) -> None:
    """Raise :class:`SchemaError` naming the first violation if ``doc`` is not a valid results
    document."""
    validator = jsonschema.Draft202012Validator(load_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        raise SchemaError(f"results document invalid at {where}: {error.message}")
