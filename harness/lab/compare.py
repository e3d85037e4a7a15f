"""The side-by-side comparison: each emulated actor's figures beside its synthetic counterpart's.

For every actor with a synthetic counterpart ``(scenario, actor)``, that scenario is run (seed 0,
default knobs, ``edr`` profile; once per scenario) and per actor and analytic the synthetic and
emulated detection, latency and bytes before the first alert are set beside each other
(:func:`side_by_side_rows`, rendered by :func:`side_by_side_text`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.analytics import AnalyticId
from harness.fields import Profile
from harness.lab.spec import LabActor
from harness.runner import DetectorSpec, RunRecord
from harness.scoring import ActorDetection, score_detector_run
from harness.truth import ActorKind

__all__ = ["Figures", "side_by_side_rows", "side_by_side_text", "synthetic_figures"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """One actor against one analytic in one run."""

    expected: bool
    detected: bool | None
    #: Alerts of the analytic citing the actor's events (true ones for a malicious actor).
    alerts: int
    #: Of the alerts citing the actor, those that cite no malicious actor (false alerts).
    false_alerts: int
    latency_s: float | None
    bytes_before_alert: int | None
    bytes_total: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "detected": self.detected,
            "alerts": self.alerts,
            "false_alerts": self.false_alerts,
            "latency_s": self.latency_s,
            "bytes_before_alert": self.bytes_before_alert,
            "bytes_total": self.bytes_total,
        }

    @classmethod
    def silent(cls, *, expected: bool = False, bytes_total: int = 0) -> Figures:
        """The figures of an actor no alert of the analytic cites."""
        return cls(
            expected=expected, detected=False, alerts=0, false_alerts=0, latency_s=None,
            bytes_before_alert=None, bytes_total=bytes_total,
        )  # fmt: skip


def _figures(record: RunRecord) -> dict[tuple[str, AnalyticId], Figures]:
    """Per (actor, analytic): detection details for expected actors, alert counts for all."""
    truth = record.truth
    cited: Counter[tuple[str, AnalyticId]] = Counter()
    false: Counter[tuple[str, AnalyticId]] = Counter()
    details: dict[tuple[str, AnalyticId], ActorDetection] = {}
    for run in record.detectors:
        # The scorer's false alerts per cited actor are this table's (a detector that did not
        # run comes back without any, and has no alerts). Its "<none>" entry (alerts citing
        # unlabelled events) is never looked up: the table's keys are cited actors.
        _, dets, false_by_actor = score_detector_run(record, run)
        for det in dets:
            details[(det.actor_id, run.analytic)] = det
        false.update({(actor_id, run.analytic): n for actor_id, n in false_by_actor.items()})
        for raised in run.alerts:
            for actor in {truth.event_actor.get(e) for e in raised.alert.evidence} - {None}:
                assert actor is not None
                cited[(actor, run.analytic)] += 1
    out: dict[tuple[str, AnalyticId], Figures] = {}
    keys = set(details) | set(cited)
    for actor_id, analytic in keys:
        d = details.get((actor_id, analytic))
        try:
            total = truth.actor(actor_id).bytes_total
        except KeyError:
            total = 0
        out[(actor_id, analytic)] = Figures(
            expected=d is not None,
            detected=d.detected if d is not None else cited[(actor_id, analytic)] > 0,
            alerts=cited[(actor_id, analytic)],
            false_alerts=false[(actor_id, analytic)],
            latency_s=d.latency_s if d is not None else None,
            bytes_before_alert=d.bytes_before_alert if d is not None else None,
            bytes_total=total,
        )
    return out


def synthetic_figures(
    cast: Sequence[LabActor], specs: Sequence[DetectorSpec]
) -> dict[str, dict[tuple[str, AnalyticId], Figures]]:
    """Per synthetic scenario named by the cast: its figures (seed 0, default knobs, edr)."""
    from harness.registry import SCENARIOS
    from harness.runner import RunPlan, ScenarioSpec, run_plan

    out: dict[str, dict[tuple[str, AnalyticId], Figures]] = {}
    for scenario_id in sorted({a.synthetic[0] for a in cast if a.synthetic is not None}):
        cls = SCENARIOS.load(scenario_id)
        plan = RunPlan(
            scenarios=(ScenarioSpec(scenario=cls),), detectors=tuple(specs), seeds=(0,),
            profile=Profile.EDR,
        )  # fmt: skip
        (record,) = run_plan(plan)
        out[scenario_id] = _figures(record)
    return out


def side_by_side_rows(
    cast: Sequence[LabActor],
    record: RunRecord,
    synthetic: Mapping[str, Mapping[tuple[str, AnalyticId], Figures]],
) -> list[dict[str, Any]]:
    emulated = _figures(record)
    rows: list[dict[str, Any]] = []
    for a in cast:
        syn = synthetic.get(a.synthetic[0]) if a.synthetic is not None else None
        analytics: set[AnalyticId] = set(a.expected_analytics) | set(a.trap_for)
        analytics |= {an for (actor, an) in emulated if actor == a.actor_id}
        if syn is not None and a.synthetic is not None:
            analytics |= {an for (actor, an) in syn if actor == a.synthetic[1]}
        truth = record.truth.actor(a.actor_id)
        targets: list[AnalyticId | None] = [*sorted(analytics)] or [None]
        for analytic in targets:
            emu = emulated.get((a.actor_id, analytic)) if analytic is not None else None
            if emu is None:
                expected = a.kind is ActorKind.MALICIOUS and analytic in a.expected_analytics
                emu = Figures.silent(expected=expected, bytes_total=truth.bytes_total)
            row: dict[str, Any] = {
                "actor": a.actor_id,
                "kind": a.kind.value,
                "exe_name": a.exe_name,
                "analytic": analytic,
                "expected": a.kind is ActorKind.MALICIOUS and analytic in a.expected_analytics,
                "trap": analytic in a.trap_for,
                "emulated": emu.as_dict(),
                "synthetic": None,
            }
            if syn is not None and a.synthetic is not None and analytic is not None:
                s = syn.get((a.synthetic[1], analytic))
                row["synthetic"] = {
                    "scenario": a.synthetic[0],
                    "actor": a.synthetic[1],
                    **(s if s is not None else Figures.silent()).as_dict(),
                }
            rows.append(row)
    return rows


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("MB", 1_000_000), ("kB", 1_000)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _cell(f: Mapping[str, Any] | None, kind: str) -> str:
    if f is None:
        return "-"
    if kind == "benign":
        n = f["false_alerts"]
        return f"{n} false alert{'s' if n != 1 else ''}"
    if not f["expected"]:
        return f"{f['alerts']} alert{'s' if f['alerts'] != 1 else ''}"
    if not f["detected"]:
        return f"MISSED ({_fmt_bytes(f['bytes_total'])} out)"
    lat = f["latency_s"]
    return f"yes {lat:.1f}s {_fmt_bytes(f['bytes_before_alert'])}" if lat is not None else "yes"


def side_by_side_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The per-actor table: kind, analytic (``*`` expected, ``t`` trap), emulated figures
    (detected, latency, bytes before the first alert; for a malicious actor and an analytic not
    expected of it the alerts citing it; for a benign actor its false alerts) and the synthetic
    counterpart's beside them."""
    from tabulate import tabulate

    table = []
    for r in rows:
        mark = "*" if r["expected"] else ("t" if r["trap"] else "")
        syn = r["synthetic"]
        table.append(
            [
                r["actor"],
                r["kind"],
                r["exe_name"],
                f"{r['analytic'] or '-'}{mark}",
                _cell(r["emulated"], r["kind"]),
                _cell(syn, r["kind"]) if syn is not None else "-",
                f"{syn['scenario']}:{syn['actor']}" if syn is not None else "-",
            ]
        )
    headers = ["actor", "kind", "executable", "analytic", "emulated", "synthetic", "counterpart"]
    return tabulate(table, headers=headers, tablefmt="simple") + "\n"
