"""Scoring: turn detector outcomes and ground truth into the figures DESIGN.md defines.

Per run and analytic, :func:`score_run` counts; counts add across seeds and scenarios
(:meth:`AnalyticCounts.__add__`); :func:`summarize` turns a total into rates with intervals.

Definitions (DESIGN.md, "Ground truth and scoring"):

* An alert is **true** when any event it cites was caused by a malicious actor, else **false**.
* **Detection rate**: of the malicious actors expected to fire the analytic, the share with at
  least one true alert of that analytic citing one of their events. Wilson 95% interval over the
  actors of all seeds. An actor whose traces need a field the profile lacks (packet anomalies
  under ``edr``) is counted as *unobservable*, apart from the rate.
* **Alert precision**: true alerts over all alerts, Wilson interval.
* **False alerts per 100 host-days** and **per 1,000 benign process instances**: false alerts
  over the detection window's host-days (hosts x days) or over the benign process instances
  active in it, Poisson score interval.
* **Latency**: event time of the first true alert on an expected actor (when the runner received
  it) minus the actor's first event in the detection window, in seconds; median and p95.
* **Bytes before alert**: the actor's cumulative bytes sent up to that moment.

A run whose detector raised is an ERROR: it contributes to ``errors`` and to nothing else.
Figures with no denominator are ``None``, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.events import NS_PER_S
from harness.runner import DetectorRun, Outcome, RunRecord
from harness.stats import percentile, poisson_rate_interval, wilson_interval
from harness.truth import GroundTruth

__all__ = ["ActorDetection", "AnalyticCounts", "score_detector_run", "summarize"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorDetection:
    """How one expected actor fared against one analytic in one run."""

    actor_id: str
    detected: bool
    first_alert_ns: int | None
    latency_s: float | None
    bytes_before_alert: int | None
    bytes_total: int
    true_alerts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyticCounts:
    """Additive counts for one analytic over any number of runs."""

    runs: int = 0
    errors: int = 0
    not_evaluable: int = 0
    expected_actors: int = 0
    unobservable_actors: int = 0
    detected_actors: int = 0
    true_alerts: int = 0
    false_alerts: int = 0
    benign_process_instances: int = 0
    host_seconds: int = 0
    latencies_s: tuple[float, ...] = ()
    bytes_before_alert: tuple[int, ...] = ()
    missed_bytes: tuple[int, ...] = field(default=())

    def __add__(self, other: AnalyticCounts) -> AnalyticCounts:
        return AnalyticCounts(
            runs=self.runs + other.runs,
            errors=self.errors + other.errors,
            not_evaluable=self.not_evaluable + other.not_evaluable,
            expected_actors=self.expected_actors + other.expected_actors,
            unobservable_actors=self.unobservable_actors + other.unobservable_actors,
            detected_actors=self.detected_actors + other.detected_actors,
            true_alerts=self.true_alerts + other.true_alerts,
            false_alerts=self.false_alerts + other.false_alerts,
            benign_process_instances=self.benign_process_instances + other.benign_process_instances,
            host_seconds=self.host_seconds + other.host_seconds,
            latencies_s=self.latencies_s + other.latencies_s,
            bytes_before_alert=self.bytes_before_alert + other.bytes_before_alert,
            missed_bytes=self.missed_bytes + other.missed_bytes,
        )


def classify_alert(
    evidence: tuple[str, ...], truth: GroundTruth, malicious: frozenset[str] | None = None
) -> set[str]:
    """The malicious actors an alert's evidence points at (empty: a false alert)."""
    if malicious is None:
        malicious = frozenset(a.actor_id for a in truth.malicious)
    cited = (truth.event_actor.get(e) for e in evidence)
    return {a for a in cited if a is not None and a in malicious}


def score_detector_run(
    record: RunRecord, run: DetectorRun
) -> tuple[AnalyticCounts, list[ActorDetection], dict[str, int]]:
    """Counts for one detector on one run, per-actor detail for the actors expected to fire its
    analytic, and false alerts per benign actor whose events were cited (``<none>`` when an
    alert cites no actor at all)."""
    truth = record.truth
    analytic = run.analytic
    fields = record.telemetry.fields
    candidates = [a for a in truth.malicious if analytic in a.expected_analytics]
    expected = [a for a in candidates if a.observable_with <= fields]
    unobservable = len(candidates) - len(expected)
    if run.outcome is Outcome.ERROR:
        return AnalyticCounts(runs=1, errors=1), [], {}
    if run.outcome is Outcome.NOT_EVALUABLE:
        return AnalyticCounts(runs=1, not_evaluable=1), [], {}
    malicious = frozenset(a.actor_id for a in truth.malicious)
    first: dict[str, int] = {}
    per_actor_true: dict[str, int] = {}
    true_alerts = false_alerts = 0
    false_by_actor: dict[str, int] = {}
    for raised in run.alerts:
        actors = classify_alert(raised.alert.evidence, truth, malicious)
        if actors:
            true_alerts += 1
            for actor_id in actors:
                per_actor_true[actor_id] = per_actor_true.get(actor_id, 0) + 1
                if actor_id not in first or raised.raised_ns < first[actor_id]:
                    first[actor_id] = raised.raised_ns
        else:
            false_alerts += 1
            cited = sorted({truth.event_actor.get(e, "<none>") for e in raised.alert.evidence})
            for benign_id in cited:
                false_by_actor[benign_id] = false_by_actor.get(benign_id, 0) + 1
    details: list[ActorDetection] = []
    latencies: list[float] = []
    before: list[int] = []
    missed: list[int] = []
    for actor in expected:
        ts = first.get(actor.actor_id)
        if ts is None or actor.start_ns is None:
            details.append(
                ActorDetection(
                    actor_id=actor.actor_id,
                    detected=False,
                    first_alert_ns=None,
                    latency_s=None,
                    bytes_before_alert=None,
                    bytes_total=actor.bytes_total,
                    true_alerts=0,
                )
            )
            missed.append(actor.bytes_total)
            continue
        latency = (ts - actor.start_ns) / NS_PER_S
        moved = actor.bytes_until(ts)
        latencies.append(latency)
        before.append(moved)
        details.append(
            ActorDetection(
                actor_id=actor.actor_id,
                detected=True,
                first_alert_ns=ts,
                latency_s=latency,
                bytes_before_alert=moved,
                bytes_total=actor.bytes_total,
                true_alerts=per_actor_true.get(actor.actor_id, 0),
            )
        )
    counts = AnalyticCounts(
        runs=1,
        expected_actors=len(expected),
        unobservable_actors=unobservable,
        detected_actors=sum(d.detected for d in details),
        true_alerts=true_alerts,
        false_alerts=false_alerts,
        benign_process_instances=truth.benign_process_instances,
        host_seconds=record.telemetry.detection_host_seconds,
        latencies_s=tuple(latencies),
        bytes_before_alert=tuple(before),
        missed_bytes=tuple(missed),
    )
    return counts, details, false_by_actor


def _rate(interval: tuple[float, float, float] | None, scale: float = 1.0) -> dict[str, Any]:
    if interval is None:
        return {"value": None, "ci_low": None, "ci_high": None}
    value, lo, hi = interval
    return {"value": value * scale, "ci_low": lo * scale, "ci_high": hi * scale}


def _dist(values: tuple[float, ...] | tuple[int, ...]) -> dict[str, Any]:
    return {"median": percentile(values, 50), "p95": percentile(values, 95)}


def summarize(counts: AnalyticCounts) -> dict[str, Any]:
    """Rates with intervals and distributions from additive counts (``None`` if undefined)."""
    scored = counts.runs - counts.errors - counts.not_evaluable
    host_days = counts.host_seconds / 86_400
    alerts = counts.true_alerts + counts.false_alerts
    return {
        "detection_rate": _rate(wilson_interval(counts.detected_actors, counts.expected_actors)),
        "precision": _rate(wilson_interval(counts.true_alerts, alerts)),
        "false_alerts_per_100_host_days": _rate(
            poisson_rate_interval(counts.false_alerts, host_days), 100.0
        ),
        "false_alerts_per_1000_benign_processes": _rate(
            poisson_rate_interval(counts.false_alerts, counts.benign_process_instances), 1000.0
        ),
        "latency_s": _dist(counts.latencies_s),
        "bytes_before_alert": _dist(counts.bytes_before_alert),
        "counts": {
            "runs": counts.runs,
            "scored_runs": scored,
            "errors": counts.errors,
            "not_evaluable": counts.not_evaluable,
            "expected_actors": counts.expected_actors,
            "unobservable_actors": counts.unobservable_actors,
            "detected_actors": counts.detected_actors,
            "true_alerts": counts.true_alerts,
            "false_alerts": counts.false_alerts,
            "benign_process_instances": counts.benign_process_instances,
            "host_days": host_days,
            "missed_actor_bytes": sum(counts.missed_bytes),
        },
    }
