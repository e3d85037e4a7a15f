from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import ClassVar

import pytest

from harness.alerts import Alert, Entity
from harness.analytics import analytic_id
from harness.detector import Detector, Tunable
from harness.errors import InvalidParameterError, UnknownPluginError, UsageError
from harness.events import Event, EventKind, NetworkFlow
from harness.fields import Field, Profile
from harness.results import build_results, canonical_json
from harness.runner import (
    DetectorSpec,
    Outcome,
    RunPlan,
    ScenarioSpec,
    run_detectors,
    run_plan,
    sweep_values,
)
from scenarios.https_exfil import HttpsExfil
from tests.conftest import SMALL


class _Base(Detector):
    analytic = analytic_id("AN0030")
    techniques = ()
    required_fields: ClassVar[frozenset[Field]] = frozenset({Field.FLOW_BYTES})
    consumes: ClassVar[frozenset[EventKind]] = frozenset({EventKind.NETWORK_FLOW})


class Explodes(_Base):
    id = "explodes"

    def observe(self, event: Event) -> Sequence[Alert]:
        raise RuntimeError("boom")


class CitesNothing(_Base):
    id = "cites-nothing"

    def observe(self, event: Event) -> Sequence[Alert]:
        return (
            Alert(
                analytic=self.analytic,
                detector=self.id,
                ts_ns=event.ts_ns,
                score=1,
                entity=Entity(),
                evidence=("no-such-event",),
                reason="x",
            ),
        )


class Records(_Base):
    """Keeps everything it is shown, to check what the runner hands over."""

    id = "records"
    tunable_specs: ClassVar[dict[str, Tunable]] = {
        "k": Tunable(default=1, minimum=0, maximum=2, description="k")
    }
    seen: ClassVar[list[object]] = []

    def fit(self, baseline: object) -> None:
        Records.seen.extend(baseline)  # type: ignore[call-overload]

    def observe(self, event: Event) -> Sequence[Alert]:
        Records.seen.append(event)
        return ()


class NeedsPackets(_Base):
    id = "needs-packets"
    required_fields = frozenset({Field.PACKETS, Field.FLOW_BYTES})


@pytest.fixture(scope="module")
def generated():  # type: ignore[no-untyped-def]
    s = HttpsExfil()
    return s.generate(s.params(SMALL), 0)


def test_exception_is_an_error_outcome_not_a_miss(generated) -> None:  # type: ignore[no-untyped-def]
    (run,) = run_detectors(generated.telemetry, [DetectorSpec(detector=Explodes)])
    assert run.outcome is Outcome.ERROR
    assert run.error == "observe raised RuntimeError: boom"
    assert run.alerts == ()


def test_citing_an_unknown_event_breaks_the_contract(generated) -> None:  # type: ignore[no-untyped-def]
    (run,) = run_detectors(generated.telemetry, [DetectorSpec(detector=CitesNothing)])
    assert run.outcome is Outcome.ERROR
    assert "unknown event id 'no-such-event'" in (run.error or "")


class CitesLateThenExplodes(_Base):
    """Raises a valid alert on its 2nd event, one citing an unknown id on its 3rd, and raises
    on its 5th: the run must end where the contract broke, at the 3rd event."""

    id = "cites-late"

    def __init__(self, **tunables: float) -> None:
        super().__init__(**tunables)
        self.n = 0

    def observe(self, event: Event) -> Sequence[Alert]:
        self.n += 1
        if self.n == 5:
            raise RuntimeError("too late")
        if self.n not in (2, 3):
            return ()
        cited = event.event_id if self.n == 2 else "no-such-event"
        return (
            Alert(
                analytic=self.analytic,
                detector=self.id,
                ts_ns=event.ts_ns,
                score=1,
                entity=Entity(),
                evidence=(cited,),
                reason="x",
            ),
        )


def test_a_contract_break_ends_the_run_at_the_offending_event(generated) -> None:  # type: ignore[no-untyped-def]
    (run,) = run_detectors(generated.telemetry, [DetectorSpec(detector=CitesLateThenExplodes)])
    assert run.outcome is Outcome.ERROR
    assert run.error == "broke the detector contract: alert cites unknown event id 'no-such-event'"
    assert run.events_observed == 3
    assert run.alerts == ()
    (ok,) = run_detectors(generated.telemetry, [DetectorSpec(detector=Records)])
    assert ok.outcome is Outcome.OK


def test_missing_fields_make_the_detector_not_evaluable(generated) -> None:  # type: ignore[no-untyped-def]
    (run,) = run_detectors(generated.telemetry, [DetectorSpec(detector=NeedsPackets)])
    assert run.outcome is Outcome.NOT_EVALUABLE
    assert run.missing_fields == (Field.PACKETS,)


def test_detector_sees_only_its_event_kinds_in_time_order(generated) -> None:  # type: ignore[no-untyped-def]
    Records.seen.clear()
    run_detectors(generated.telemetry, [DetectorSpec(detector=Records)])
    assert Records.seen
    assert all(isinstance(e, NetworkFlow) for e in Records.seen)
    ts = [e.ts_ns for e in Records.seen]  # type: ignore[attr-defined]
    assert ts == sorted(ts)


def test_plan_validation() -> None:
    with pytest.raises(UsageError, match="no seeds"):
        RunPlan(scenarios=(), detectors=(), seeds=())
    with pytest.raises(UsageError, match="both implement AN0030"):
        RunPlan(
            scenarios=(),
            detectors=(DetectorSpec(detector=Explodes), DetectorSpec(detector=Records)),
            seeds=(0,),
        )
    with pytest.raises(InvalidParameterError, match="tunable 'k'"):
        RunPlan(
            scenarios=(), detectors=(DetectorSpec(detector=Records, tunables={"k": 9}),), seeds=(0,)
        )
    with pytest.raises(UnknownPluginError, match="did you mean 'k'"):
        Records(kk=1)
    with pytest.raises(UnknownPluginError, match="did you mean 'chunk_bytes'"):
        RunPlan(
            scenarios=(ScenarioSpec(scenario=HttpsExfil, overrides={"chunk_byte": 1}),),
            detectors=(),
            seeds=(0,),
        )


def test_run_plan_reports_progress_and_uses_injected_clock() -> None:
    ticks = itertools.count()
    calls: list[tuple[int, int, str]] = []
    plan = RunPlan(
        scenarios=(ScenarioSpec(scenario=HttpsExfil, overrides=SMALL),),
        detectors=(DetectorSpec(detector=Records),),
        seeds=(0, 1),
        profile=Profile.EDR,
    )
    records = run_plan(plan, clock=lambda: float(next(ticks)), progress=lambda *a: calls.append(a))
    assert calls == [(1, 2, "https-exfil seed 0"), (2, 2, "https-exfil seed 1")]
    assert all(r.generate_s == 1.0 for r in records)  # one tick between the two clock reads


class BigFlows(_Base):
    """Alerts on every outbound flow record of at least ``min_bytes``: a swept threshold."""

    id = "big-flows"
    tunable_specs: ClassVar[dict[str, Tunable]] = {
        "min_bytes": Tunable(
            default=1_000_000, minimum=1, maximum=1e12, description="bytes", primary=True
        )
    }

    def observe(self, event: Event) -> Sequence[Alert]:
        if isinstance(event, NetworkFlow) and event.bytes_out >= self.tunables["min_bytes"]:
            return (
                Alert(
                    analytic=self.analytic,
                    detector=self.id,
                    ts_ns=event.ts_ns,
                    score=1.0,
                    entity=Entity(host=event.host),
                    evidence=(event.event_id,),
                    reason="big",
                ),
            )
        return ()


def _plan(sweep_points: int = 0) -> RunPlan:
    return RunPlan(
        scenarios=(ScenarioSpec(scenario=HttpsExfil, overrides=SMALL),),
        detectors=(DetectorSpec(detector=BigFlows),),
        seeds=(0, 1, 2),
        sweep_points=sweep_points,
    )


def test_parallel_workers_give_the_serial_results() -> None:
    plan = _plan(sweep_points=3)
    serial = run_plan(plan)
    calls: list[tuple[int, int, str]] = []
    parallel = run_plan(plan, workers=2, progress=lambda *a: calls.append(a))
    assert [(r.scenario, r.seed) for r in parallel] == [(r.scenario, r.seed) for r in serial]
    assert canonical_json(build_results(plan, parallel)) == canonical_json(
        build_results(plan, serial)
    )
    assert sorted(c[0] for c in calls) == [1, 2, 3]
    assert all(c[1] == 3 for c in calls)


def test_sweep_point_at_the_default_equals_the_main_figures() -> None:
    plan = _plan(sweep_points=5)
    doc = build_results(plan, run_plan(plan))
    sweep = doc["analytics"]["AN0030"]["sweep"]
    assert sweep["tunable"] == "min_bytes"
    values = [p["value"] for p in sweep["points"]]
    assert values == [62_500, 250_000, 1_000_000, 4_000_000, 16_000_000]
    at_default = sweep["points"][2]
    main = doc["analytics"]["AN0030"]
    assert at_default["detection_rate"] == main["detection_rate"]
    assert at_default["false_alerts"] == main["counts"]["false_alerts"]
    # a lower byte threshold can only add alerts: false alerts never grow with the threshold
    false = [p["false_alerts"] for p in sweep["points"]]
    assert false == sorted(false, reverse=True)
    assert doc["analytics"]["AN0988"]["sweep"] is None


def test_a_pinned_primary_tunable_is_not_swept() -> None:
    plan = RunPlan(
        scenarios=(ScenarioSpec(scenario=HttpsExfil, overrides=SMALL),),
        detectors=(DetectorSpec(detector=BigFlows, tunables={"min_bytes": 5e5}),),
        seeds=(0,),
        sweep_points=3,
    )
    (record,) = run_plan(plan)
    assert record.sweeps == ()


@pytest.mark.parametrize(
    ("default", "low", "high", "points", "expected"),
    [
        (8.0, 1.0, 100.0, 5, (1.0, 2.0, 8.0, 32.0, 100.0)),
        (8.0, 5.0, 10.0, 5, (5.0, 8.0, 10.0)),
        (0.0, 0.0, 1.0, 3, (0.0, 0.5, 1.0)),
        (3.0, 1.0, 100.0, 1, (3.0,)),
    ],
)
def test_sweep_values(
    default: float, low: float, high: float, points: int, expected: tuple[float, ...]
) -> None:
    spec = Tunable(default=default, minimum=low, maximum=high, description="t", primary=True)
    assert sweep_values(spec, points) == expected


def test_sweep_points_are_bounded() -> None:
    with pytest.raises(UsageError, match="sweep points"):
        _plan(sweep_points=99)
