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
from harness.runner import DetectorSpec, Outcome, RunPlan, ScenarioSpec, run_detectors, run_plan
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
