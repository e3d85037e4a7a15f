"""Small hand-made results documents for gate, diff and reporter tests.

Intervals are computed with the harness's own Wilson and Poisson functions, and every document
is checked against the results schema, so the tests exercise documents ``run`` could write.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.analytics import ANALYTICS
from harness.results import validate
from harness.stats import poisson_rate_interval, wilson_interval

DIGEST = "sha256:" + "0" * 64


def _rate(interval: tuple[float, float, float] | None, scale: float = 1.0) -> dict[str, Any]:
    if interval is None:
        return {"value": None, "ci_low": None, "ci_high": None}
    v, lo, hi = interval
    return {"value": v * scale, "ci_low": lo * scale, "ci_high": hi * scale}


def analytic(
    aid: str,
    *,
    status: str = "ok",
    detected: int = 9,
    expected: int = 10,
    false_alerts: int = 1,
    host_days: float = 100.0,
    latency: tuple[float | None, float | None] = (30.0, 120.0),
    bytes_before: tuple[float | None, float | None] = (2_000_000.0, 4_000_000.0),
    errors: Sequence[str] = (),
    missing: Sequence[str] = (),
) -> dict[str, Any]:
    """One analytic's summary; ``no_detector`` and ``not_evaluable`` get null figures."""
    scored = status in ("ok", "error")
    if status != "ok":
        detected = false_alerts = 0
        latency = bytes_before = (None, None)
        if status != "error":
            expected = 0
            host_days = 0.0
    true_alerts = detected
    return {
        "title": ANALYTICS[aid].title,  # type: ignore[index]
        "detector": None if status == "no_detector" else f"{aid.lower()}-rule",
        "status": status,
        "evaluable": scored,
        "missing_fields": list(missing),
        "errors": list(errors),
        "sweep": None,
        "detection_rate": _rate(wilson_interval(detected, expected) if status == "ok" else None),
        "precision": _rate(wilson_interval(true_alerts, true_alerts + false_alerts)),
        "false_alerts_per_100_host_days": _rate(
            poisson_rate_interval(false_alerts, host_days) if status == "ok" else None, 100.0
        ),
        "false_alerts_per_1000_benign_processes": _rate(
            poisson_rate_interval(false_alerts, 500) if status == "ok" else None, 1000.0
        ),
        "latency_s": {"median": latency[0], "p95": latency[1]},
        "bytes_before_alert": {"median": bytes_before[0], "p95": bytes_before[1]},
        "counts": {
            "runs": 10 if status != "no_detector" else 0,
            "scored_runs": 10 - len(errors) if scored else 0,
            "errors": len(errors),
            "not_evaluable": 10 if status == "not_evaluable" else 0,
            "expected_actors": expected,
            "unobservable_actors": 0,
            "detected_actors": detected,
            "true_alerts": true_alerts,
            "false_alerts": false_alerts,
            "benign_process_instances": 500 if scored else 0,
            "host_days": host_days,
            "missed_actor_bytes": 0,
        },
    }


def hit(
    detected: bool, latency_s: float | None = None, nbytes: int | None = None
) -> dict[str, Any]:
    return {
        "detected": detected,
        "first_alert_ns": 1_000_000_000 if detected else None,
        "latency_s": latency_s if detected else None,
        "bytes_before_alert": nbytes if detected else None,
        "true_alerts": 1 if detected else 0,
    }


def actor(
    actor_id: str,
    kind: str,
    runs: Iterable[Mapping[str, Any]],
    *,
    expected: Sequence[str] = (),
    trap_for: Sequence[str] = (),
) -> dict[str, Any]:
    return {
        "actor_id": actor_id,
        "kind": kind,
        "description": f"{actor_id} (test actor)",
        "techniques": ["T1048"] if kind == "malicious" else [],
        "expected_analytics": list(expected),
        "trap_for": list(trap_for),
        "observable_with": [],
        "runs": [dict(r) for r in runs],
    }


def run(
    seed: int,
    detections: Mapping[str, Mapping[str, Any]] | None = None,
    false_alerts: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    return {
        "seed": seed,
        "start_ns": 1_000_000_000,
        "bytes_total": 5_000_000,
        "process_instances": 1,
        "hosts": 1,
        "detections": dict(detections or {}),
        "false_alerts": dict(false_alerts or {}),
    }


def scenario(
    actors: Sequence[Mapping[str, Any]], seeds: Sequence[int], metrics: Mapping[str, Any]
) -> dict[str, Any]:
    per = {}
    for aid, a in metrics.items():
        per[aid] = {k: v for k, v in a.items() if k not in ("title", "detector", "errors", "sweep")}
    return {
        "parameters": {"workstations": 6},
        "seeds": list(seeds),
        "telemetry": {"events": 1000, "detection_host_seconds": 86_400 * 7},
        "analytics": per,
        "actors": [dict(a) for a in actors],
    }


def default_actors(seeds: Sequence[int] = (0, 1)) -> list[dict[str, Any]]:
    """An exfiltration actor AN0144 catches in every seed and two quiet benign traps."""
    return [
        actor(
            "backup-agent",
            "benign",
            [run(s) for s in seeds],
            trap_for=("AN0144", "AN0030"),
        ),
        actor(
            "exfil-curl",
            "malicious",
            [run(s, {"AN0144": hit(True, 12.0 + s, 2_000_000)}) for s in seeds],
            expected=("AN0144",),
        ),
        actor("software-rollout", "benign", [run(s) for s in seeds], trap_for=("AN0144",)),
    ]


def make_doc(
    analytics: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    actors: Sequence[Mapping[str, Any]] | None = None,
    seeds: Sequence[int] = (0, 1),
    tunables: Mapping[str, float] | None = None,
    scenario_id: str = "https-exfil",
) -> dict[str, Any]:
    """A valid results document: AN0144 ``ok`` with the given figures (``analytics`` replaces
    any analytic's summary), the other analytics ``no_detector``."""
    summaries = {aid: analytic(aid, status="no_detector") for aid in ANALYTICS}
    summaries["AN0144"] = analytic("AN0144")
    for aid, a in (analytics or {}).items():
        summaries[aid] = copy.deepcopy(dict(a))
    doc = {
        "schema_version": "1.0",
        "harness_version": "0.1.0",
        "run": {
            "profile": "edr",
            "seeds": list(seeds),
            "scenarios": [{"id": scenario_id, "overrides": {}}],
            "detectors": [
                {
                    "id": a["detector"],
                    "analytic": aid,
                    "tunables": dict(tunables or {"min_bytes": 2_000_000.0}),
                }
                for aid, a in sorted(summaries.items())
                if a["detector"] is not None
            ],
            "config_digest": DIGEST,
            "sweep_points": 0,
        },
        "analytics": dict(sorted(summaries.items())),
        "held_out": None,
        "scenarios": {
            scenario_id: scenario(
                actors if actors is not None else default_actors(seeds), seeds, summaries
            )
        },
    }
    validate(doc)
    return doc
