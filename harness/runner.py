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

import bisect
import gc
import multiprocessing
import operator
import os
import time
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from itertools import compress
from typing import Any

from harness.alerts import Alert
from harness.analytics import AnalyticId
from harness.detector import Detector, Tunable
from harness.errors import UsageError
from harness.events import Event, EventKind
from harness.eventtable import EventTable
from harness.fields import Field, Profile
from harness.scenario import Scenario
from harness.telemetry import Telemetry, TelemetryInfo, split_index
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
    #: The detection events the detector is streamed.
    detection: Sequence[Event] = ()
    alerts: list[RaisedAlert] = field(default_factory=list)
    #: Per kept alert, the event whose ``observe`` returned it (``None``: ``flush`` did).
    raised_by: list[Event | None] = field(default_factory=list)
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
    """Fit and stream one telemetry through the detectors; the detectors never see truth.

    Each detector is fitted on the baseline events of the kinds it consumes and then streamed
    the detection window's events of those kinds, in event-time order, one detector after the
    other (they share nothing, so their alerts are what an interleaved replay gives). The
    selections are made once per set of consumed kinds, by event class. ``fit_s`` is one pair
    of clock reads around ``fit``; while streaming the clock is read once after every
    ``observe``, so an alert's ``wall_latency_s`` is the wall time from the end of the previous
    call to the return of the one that raised it, and ``observe_s`` is their sum plus ``flush``.

    The cyclic garbage collector is paused meanwhile (:func:`_collector_paused`).
    """
    with _collector_paused():
        return _run_detectors(telemetry, specs, clock)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector, if it is on, and turn it back on afterwards.

    A recording is hundreds of thousands of long-lived event objects, and detectors grow their
    state by as many small containers (keys, windows, episodes). With the collector on, the
    five reference detectors over the default suite's eight recordings set off about 180
    collections of the young generations, about 8 % of their time, that freed nothing (their
    state is acyclic: reference counting frees it), and now and then a full collection, which
    traverses every event as well. Reference cycles a detector does make are collected once
    the collector is back on.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _run_detectors(
    telemetry: Telemetry, specs: Sequence[DetectorSpec], clock: Clock
) -> tuple[DetectorRun, ...]:
    results: dict[str, DetectorRun] = {}
    select = _Selections(telemetry)
    ran: list[_Active] = []
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
        baseline, detection = select(cls.consumes)
        ran.append(_run_one(spec, baseline, detection, telemetry.end_ns, clock))
    _check_evidence(ran, telemetry.events)
    for state in ran:
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


def _check_evidence(ran: Sequence[_Active], events: Sequence[Event]) -> None:
    """The contract's last check: an alert may cite only events of the telemetry.

    It is made once all detectors have run, for all of them at once, because it is the one
    check that needs the event ids: the cited ids are searched for from the most recent event
    back, until all are found (most evidence is recent). The outcome is what stopping at the
    first offending alert gives: all alerts a detector raised before any other failure of its
    run were kept, so its first alert citing an unknown id (if any) is where it broke the
    contract, and the events it observed end with the one whose ``observe`` returned that alert
    (all of them when ``flush`` did). Only its timings include the events after it."""
    unknown = {eid for state in ran for raised in state.alerts for eid in raised.alert.evidence}
    # Evidence is mostly recent: look for it from the end back, and stop once all is found.
    end = len(events)
    while unknown and end > 0:
        start = max(0, end - _EVIDENCE_CHUNK)
        unknown.difference_update(map(_EVENT_ID, events[start:end]))
        end = start
    if not unknown:
        return
    for state in ran:
        for raised, by in zip(state.alerts, state.raised_by, strict=True):
            bad = [e for e in raised.alert.evidence if e in unknown]
            if bad:
                unknown_id = _ContractError(f"alert cites unknown event id {bad[0]!r}")
                state.error = _failure("observe", unknown_id)
                state.events = (
                    len(state.detection) if by is None else _position(state.detection, by) + 1
                )
                break


#: Events per step of the backward search for cited event ids.
_EVIDENCE_CHUNK = 4_096


class _Selections:
    """The baseline and detection events of given kinds, each selection made once (detectors
    that consume the same kinds, as far as this telemetry has them, share it) and shared as
    tuples, so that no detector can change what another is shown.

    The events' classes are read in one pass; a selection is then made on positions, in C
    (``compress`` over the classes, ``itemgetter`` on the events), so it never goes back over
    the events it leaves out: on a large recording that pass, not the test, is the cost."""

    __slots__ = ("_cache", "_classes", "_present", "_telemetry")

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        self._classes: list[type[Event]] = []
        self._present: frozenset[type[Event]] | None = None
        self._cache: dict[frozenset[type[Event]], tuple[Sequence[Event], Sequence[Event]]] = {}

    def __call__(self, kinds: frozenset[EventKind]) -> tuple[Sequence[Event], Sequence[Event]]:
        telemetry = self._telemetry
        events = telemetry.events
        if isinstance(events, EventTable):
            # Pick from the table's list of objects: ``itemgetter`` on the table itself would
            # go through its Python-level ``__getitem__`` once per event.
            events = events.events()
        if self._present is None:
            self._classes = list(map(type, events))
            self._present = frozenset(self._classes)
        types = self._present.intersection(_EVENT_CLASS[kind] for kind in kinds)
        selected = self._cache.get(types)
        if selected is None:
            split = split_index(telemetry.events, telemetry.baseline_until_ns)
            if types == self._present:  # every event is of a consumed kind
                selected = (tuple(events[:split]), tuple(events[split:]))
            else:
                keep = list(compress(range(len(events)), map(types.__contains__, self._classes)))
                cut = bisect.bisect_left(keep, split)
                selected = (_pick(events, keep[:cut]), _pick(events, keep[cut:]))
            self._cache[types] = selected
        return selected


def _pick(events: Sequence[Event], positions: list[int]) -> tuple[Event, ...]:
    """The events at ``positions``, as a tuple."""
    if len(positions) > 1:
        picked: tuple[Event, ...] = operator.itemgetter(*positions)(events)
        return picked
    return tuple(events[i] for i in positions)


_EVENT_ID = operator.attrgetter("event_id")
#: Event class of each kind: routing by ``type(event)`` hashes no enum member.
_EVENT_CLASS: dict[EventKind, type[Event]] = {c.kind: c for c in typing.get_args(Event)}


def _run_one(
    spec: DetectorSpec,
    baseline: Sequence[Event],
    detection: Sequence[Event],
    end_ns: int,
    clock: Clock,
) -> _Active:
    """Fit one detector, stream the detection events through it and flush it."""
    cls = spec.detector
    state = _Active(spec=spec, instance=cls(**spec.tunables), detection=detection)
    t0 = clock()
    try:
        state.instance.fit(baseline)
    except Exception as exc:  # noqa: BLE001 - plugin boundary: a failure is an ERROR outcome
        state.error = f"fit raised {type(exc).__name__}: {exc}"
    state.fit_s = clock() - t0
    if state.error is None:
        _stream(state, detection, clock)
    if state.error is None:
        t0 = clock()
        try:
            _accept(state, state.instance.flush(), end_ns, 0.0, None)
        except Exception as exc:  # noqa: BLE001 - plugin boundary
            state.error = _failure("flush", exc)
        state.observe_s += clock() - t0
    return state


def _stream(state: _Active, events: Sequence[Event], clock: Clock) -> None:
    """The hot loop: one ``observe`` call and one clock read per event. The contract checks on
    returned alerts are the runner's work: their time is not charged to the detector."""
    observe = state.instance.observe
    done = 0  # events observed, set only when the loop stops early
    checks = 0.0  # clock time spent checking alerts
    start = last = clock()
    event: Event | None = None
    try:
        for event in events:
            out = observe(event)
            now = clock()
            if out:
                _accept(state, out, event.ts_ns, now - last, event)
                last = clock()
                checks += last - now
            else:
                last = now
        done = len(events)
    except Exception as exc:  # noqa: BLE001 - plugin boundary
        state.error = _failure("observe", exc)
        last = clock()
        # An observe that raised does not count; one whose alerts broke the contract does.
        assert event is not None
        done = _position(events, event) + isinstance(exc, _ContractError)
    state.events = done
    state.observe_s = last - start - checks


def _position(events: Sequence[Event], event: Event) -> int:
    for i, e in enumerate(events):
        if e is event:
            return i
    return len(events)  # pragma: no cover - the event came from the list


def _failure(where: str, exc: Exception) -> str:
    if isinstance(exc, _ContractError):
        return f"broke the detector contract: {exc}"
    return f"{where} raised {type(exc).__name__}: {exc}"


def _accept(
    state: _Active, alerts: Sequence[Alert], raised_ns: int, wall: float, by: Event | None
) -> None:
    """Check the detector contract on returned alerts and keep them, with the event whose
    ``observe`` returned them (``None`` for ``flush``). Whether the events they cite exist is
    checked once all detectors have run (:func:`_check_evidence`)."""
    cls = state.spec.detector
    for alert in alerts:
        if alert.analytic != cls.analytic:
            raise _ContractError(f"alert for {alert.analytic}, detector is {cls.analytic}")
        if not alert.evidence:
            raise _ContractError("alert cites no evidence")
        state.alerts.append(RaisedAlert(alert=alert, raised_ns=raised_ns, wall_latency_s=wall))
        state.raised_by.append(by)


def _params_dict(params: Any) -> dict[str, Any]:
    return dict(sorted(asdict(params).items()))
