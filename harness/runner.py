"""The runner: generate each scenario for each seed, stream its telemetry through the detectors
in event-time order, and keep what happened for scoring.

For every (scenario, seed) the runner builds fresh detector instances, fits them on the baseline
window and replays the detection window event by event. A detector that lacks a telemetry field
it needs is *not evaluable* and is not run. A detector that raises, or that breaks its contract
(an alert for another analytic, citing no evidence or an event it was never shown), is an
*ERROR* for that run: recorded with its message and never counted as a miss. Wall-clock figures
come from an injected clock, so tests can pin them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from harness.alerts import Alert
from harness.analytics import AnalyticId
from harness.detector import Detector
from harness.errors import UsageError
from harness.events import EventKind
from harness.fields import Field, Profile
from harness.scenario import Scenario
from harness.telemetry import Telemetry
from harness.truth import GroundTruth

__all__ = [
    "DetectorRun",
    "DetectorSpec",
    "Outcome",
    "RaisedAlert",
    "RunPlan",
    "RunRecord",
    "ScenarioSpec",
    "run_plan",
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

    def __post_init__(self) -> None:
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
class RunRecord:
    scenario: str
    seed: int
    parameters: Mapping[str, Any]
    telemetry: Telemetry
    truth: GroundTruth
    detectors: tuple[DetectorRun, ...]
    generate_s: float


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


def run_plan(
    plan: RunPlan, *, clock: Clock = time.perf_counter, progress: ProgressFn | None = None
) -> list[RunRecord]:
    """Run every scenario for every seed through every detector; see the module docstring."""
    records: list[RunRecord] = []
    total = len(plan.scenarios) * len(plan.seeds)
    done = 0
    for spec in plan.scenarios:
        scenario = spec.scenario()
        params = scenario.params(spec.overrides)
        for seed in plan.seeds:
            t0 = clock()
            generated = scenario.generate(params, seed, plan.profile)
            gen_s = clock() - t0
            runs = run_detectors(generated.telemetry, plan.detectors, clock=clock)
            records.append(
                RunRecord(
                    scenario=scenario.id,
                    seed=seed,
                    parameters=_params_dict(params),
                    telemetry=generated.telemetry,
                    truth=generated.truth,
                    detectors=runs,
                    generate_s=gen_s,
                )
            )
            done += 1
            if progress is not None:
                progress(done, total, f"{scenario.id} seed {seed}")
    return records


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
