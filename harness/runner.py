"""The runner: generate each scenario for each seed, stream its telemetry through the detectors
in event-time order, and keep what happened for scoring.

For every (scenario, seed) the runner builds fresh detector instances, fits them on the baseline
window and replays the detection window event by event. A detector that lacks a telemetry field
it needs is *not evaluable* and is not run. A detector that raises, or that breaks its contract
(an alert for another analytic, citing no evidence or an event it was never shown), is an
*ERROR* for that run: recorded with its message and never counted as a miss. Wall-clock figures
come from an injected clock, so tests can pin them.

With ``workers > 1`` the (scenario, seed) jobs run in forked worker processes, each generating
its telemetry and streaming it through fresh detectors; only the compact run records (alerts,
truth, a :class:`~harness.telemetry.TelemetryInfo`) come back, and they are returned in plan
order, so the results are the same as a serial run's. Workers use the real clock.

A **threshold sweep** (``RunPlan.sweep_points``) re-runs each detector over the same telemetry
with its primary tunable set to values spaced by factors of two around the default
(:func:`sweep_values`), so the results can show detection rate against false alerts.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from harness.alerts import Alert
from harness.analytics import AnalyticId
from harness.detector import Detector, Tunable
from harness.errors import UsageError
from harness.events import EventKind
from harness.fields import Field, Profile
from harness.scenario import Scenario
from harness.telemetry import Telemetry, TelemetryInfo
from harness.truth import GroundTruth

__all__ = [
    "DetectorRun",
    "DetectorSpec",
    "Outcome",
    "RaisedAlert",
    "RunPlan",
    "RunRecord",
    "ScenarioSpec",
    "SweepRun",
    "default_workers",
    "primary_tunable",
    "run_detectors",
    "run_plan",
    "sweep_values",
]

Clock = Callable[[], float]
#: Called after each (scenario, seed) with (done, total, label).
ProgressFn = Callable[[int, int, str], None]


class Outcome(StrEnum):
    OK = "ok"
    ERROR = "error"
    NOT_EVALUABLE = "not_evaluable"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioSpec:
    scenario: type[Scenario]
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectorSpec:
    detector: type[Detector]
    tunables: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    scenarios: tuple[ScenarioSpec, ...]
    detectors: tuple[DetectorSpec, ...]
    seeds: tuple[int, ...]
    profile: Profile = Profile.EDR
    #: Values per detector's primary tunable in a threshold sweep; 0 runs no sweep.
    sweep_points: int = 0

    def __post_init__(self) -> None:
        if self.sweep_points < 0 or self.sweep_points > 15:
            raise UsageError(f"sweep points must be 0 to 15, got {self.sweep_points}")
        seen: dict[AnalyticId, str] = {}
        for spec in self.detectors:
            cls = spec.detector
            if cls.analytic in seen:
                raise UsageError(
                    f"detectors {seen[cls.analytic]!r} and {cls.id!r} both implement "
                    f"{cls.analytic}; select one detector per analytic"
                )
            seen[cls.analytic] = cls.id
            cls(**spec.tunables)  # validate tunables before any work starts
        if not self.seeds:
            raise UsageError("no seeds to run; give at least one seed")
        for s in self.scenarios:
            s.scenario().params(s.overrides)


@dataclass(frozen=True, slots=True, kw_only=True)
class RaisedAlert:
    """An alert and the event time at which the runner received it (``raised_ns``): the time of
    the event whose observation returned it, or the end of the recording for ``flush``."""

    alert: Alert
    raised_ns: int
    wall_latency_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectorRun:
    detector: str
    analytic: AnalyticId
    outcome: Outcome
    alerts: tuple[RaisedAlert, ...] = ()
    missing_fields: tuple[Field, ...] = ()
    error: str | None = None
    events_observed: int = 0
    fit_s: float = 0.0
    observe_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepRun:
    """One detector re-run over a run's telemetry with its primary tunable set to ``value``."""

    detector: str
    tunable: str
    value: float
    run: DetectorRun


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    scenario: str
    seed: int
    parameters: Mapping[str, Any]
    telemetry: TelemetryInfo
    truth: GroundTruth
    detectors: tuple[DetectorRun, ...]
    generate_s: float
    sweeps: tuple[SweepRun, ...] = ()


class _ContractError(Exception):
    pass


@dataclass(slots=True)
class _Active:
    spec: DetectorSpec
    instance: Detector
    alerts: list[RaisedAlert] = field(default_factory=list)
    events: int = 0
    observe_s: float = 0.0
    fit_s: float = 0.0
    error: str | None = None


def default_workers(jobs: int) -> int:
    """Worker processes for ``jobs`` jobs: one per available core, never more than the jobs."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, jobs))


def run_plan(
    plan: RunPlan,
    *,
    clock: Clock = time.perf_counter,
    progress: ProgressFn | None = None,
    workers: int = 1,
) -> list[RunRecord]:
    """Run every scenario for every seed through every detector; see the module docstring."""
    jobs = [(i, seed) for i in range(len(plan.scenarios)) for seed in plan.seeds]
    if workers <= 1 or len(jobs) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        records = []
        for done, (i, seed) in enumerate(jobs, start=1):
            records.append(_run_job(plan, i, seed, clock))
            if progress is not None:
                progress(done, len(jobs), f"{records[-1].scenario} seed {seed}")
        return records
    return _run_parallel(plan, jobs, min(workers, len(jobs)), progress)


#: The plan a forked worker runs: set in the parent just before the pool forks, so that plans
#: holding classes defined anywhere (a test function, a notebook) need no pickling.
_WORKER_PLAN: RunPlan | None = None


def _worker_job(index: int, seed: int) -> RunRecord:
    assert _WORKER_PLAN is not None, "worker started without a plan"
    return _run_job(_WORKER_PLAN, index, seed, time.perf_counter)


def _run_parallel(
    plan: RunPlan, jobs: list[tuple[int, int]], workers: int, progress: ProgressFn | None
) -> list[RunRecord]:
    global _WORKER_PLAN
    _WORKER_PLAN = plan
    results: dict[tuple[int, int], RunRecord] = {}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    try:
        pending: dict[Future[RunRecord], tuple[int, int]] = {
            pool.submit(_worker_job, i, seed): (i, seed) for i, seed in jobs
        }
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                key = pending.pop(future)
                record = future.result()  # a scenario that raised raises here, as when serial
                results[key] = record
                if progress is not None:
                    progress(len(results), len(jobs), f"{record.scenario} seed {record.seed}")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _WORKER_PLAN = None
    return [results[key] for key in jobs]


def _run_job(plan: RunPlan, index: int, seed: int, clock: Clock) -> RunRecord:
    spec = plan.scenarios[index]
    scenario = spec.scenario()
    params = scenario.params(spec.overrides)
    t0 = clock()
    generated = scenario.generate(params, seed, plan.profile)
    gen_s = clock() - t0
    telemetry = generated.telemetry
    runs = run_detectors(telemetry, plan.detectors, clock=clock)
    sweeps: list[SweepRun] = []
    if plan.sweep_points:
        for dspec in plan.detectors:
            primary = primary_tunable(dspec.detector)
            if primary is None:
                continue
            name, tunable = primary
            if name in dspec.tunables:
                continue  # the user pinned the operating point: nothing to sweep
            for value in sweep_values(tunable, plan.sweep_points):
                swept = DetectorSpec(
                    detector=dspec.detector, tunables={**dspec.tunables, name: value}
                )
                (run,) = run_detectors(telemetry, (swept,), clock=clock)
                sweeps.append(
                    SweepRun(detector=dspec.detector.id, tunable=name, value=value, run=run)
                )
    return RunRecord(
        scenario=scenario.id,
        seed=seed,
        parameters=_params_dict(params),
        telemetry=TelemetryInfo.of(telemetry),
        truth=generated.truth,
        detectors=runs,
        generate_s=gen_s,
        sweeps=tuple(sweeps),
    )


def primary_tunable(detector: type[Detector]) -> tuple[str, Tunable] | None:
    """The detector's tunable marked ``primary`` (its main operating point), if any."""
    for name, spec in sorted(detector.tunable_specs.items()):
        if spec.primary:
            return name, spec
    return None


def sweep_values(tunable: Tunable, points: int) -> tuple[float, ...]:
    """``points`` operating points of a tunable: its default times powers of four centred on 1
    (for 5 points: 1/16, 1/4, 1, 4, 16: wide enough to reach where detections or false alerts
    change), clipped to the tunable's bounds, distinct, ascending.
    A default of 0 is swept linearly across the tunable's range instead."""
    if points <= 0:
        return ()
    half = (points - 1) / 2
    if tunable.default == 0:
        span = tunable.maximum - tunable.minimum
        raw = [tunable.minimum + span * k / max(points - 1, 1) for k in range(points)]
    else:
        raw = [tunable.default * 4.0 ** (k - half) for k in range(points)]
    clipped = {min(tunable.maximum, max(tunable.minimum, v)) for v in raw}
    return tuple(sorted(clipped))


def run_detectors(
    telemetry: Telemetry, specs: Sequence[DetectorSpec], *, clock: Clock = time.perf_counter
) -> tuple[DetectorRun, ...]:
    """Fit and stream one telemetry through the detectors; the detectors never see truth."""
    results: dict[str, DetectorRun] = {}
    active: list[_Active] = []
    for spec in specs:
        cls = spec.detector
        missing = tuple(sorted(cls.required_fields - telemetry.fields))
        if missing:
            results[cls.id] = DetectorRun(
                detector=cls.id,
                analytic=cls.analytic,
                outcome=Outcome.NOT_EVALUABLE,
                missing_fields=missing,
            )
            continue
        state = _Active(spec=spec, instance=cls(**spec.tunables))
        t0 = clock()
        try:
            state.instance.fit(e for e in telemetry.baseline if e.kind in cls.consumes)
        except Exception as exc:  # noqa: BLE001 - plugin boundary: a failure is an ERROR outcome
            state.error = f"fit raised {type(exc).__name__}: {exc}"
        state.fit_s = clock() - t0
        active.append(state)

    known = {e.event_id for e in telemetry.events}
    routes: dict[EventKind, list[_Active]] = {k: [] for k in EventKind}
    for state in active:
        if state.error is None:
            for kind in state.spec.detector.consumes:
                routes[kind].append(state)

    def accept(state: _Active, alerts: Sequence[Alert], raised_ns: int, wall: float) -> None:
        cls = state.spec.detector
        for alert in alerts:
            if alert.analytic != cls.analytic:
                raise _ContractError(f"alert for {alert.analytic}, detector is {cls.analytic}")
            if not alert.evidence:
                raise _ContractError("alert cites no evidence")
            unknown = [e for e in alert.evidence if e not in known]
            if unknown:
                raise _ContractError(f"alert cites unknown event id {unknown[0]!r}")
            state.alerts.append(RaisedAlert(alert=alert, raised_ns=raised_ns, wall_latency_s=wall))

    def fail(state: _Active, where: str, exc: Exception) -> None:
        if isinstance(exc, _ContractError):
            state.error = f"broke the detector contract: {exc}"
        else:
            state.error = f"{where} raised {type(exc).__name__}: {exc}"
        for kind in state.spec.detector.consumes:
            if state in routes[kind]:
                routes[kind].remove(state)

    for event in telemetry.detection:
        for state in routes[event.kind]:
            t0 = clock()
            try:
                out = state.instance.observe(event)
                wall = clock() - t0
                state.observe_s += wall
                state.events += 1
                if out:
                    accept(state, out, event.ts_ns, wall)
            except Exception as exc:  # noqa: BLE001 - plugin boundary
                fail(state, "observe", exc)
    for state in active:
        if state.error is None:
            t0 = clock()
            try:
                accept(state, state.instance.flush(), telemetry.end_ns, 0.0)
            except Exception as exc:  # noqa: BLE001 - plugin boundary
                fail(state, "flush", exc)
            state.observe_s += clock() - t0
        cls = state.spec.detector
        results[cls.id] = DetectorRun(
            detector=cls.id,
            analytic=cls.analytic,
            outcome=Outcome.ERROR if state.error else Outcome.OK,
            alerts=() if state.error else tuple(state.alerts),
            error=state.error,
            events_observed=state.events,
            fit_s=state.fit_s,
            observe_s=state.observe_s,
        )
    return tuple(results[s.detector.id] for s in specs)


def _params_dict(params: Any) -> dict[str, Any]:
    return dict(sorted(asdict(params).items()))
