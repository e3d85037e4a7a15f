from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harness.alerts import Alert, Entity
from harness.analytics import analytic_id
from harness.events import NS_PER_S
from harness.fields import PROFILE_FIELDS, Profile
from harness.runner import DetectorRun, Outcome, RaisedAlert, RunRecord
from harness.scoring import AnalyticCounts, score_detector_run, summarize
from harness.telemetry import Telemetry, TelemetryInfo
from harness.truth import ActorKind, ActorTruth, GroundTruth

AN = analytic_id("AN0144")
T0 = 1_000 * NS_PER_S
DAY = 86_400 * NS_PER_S


def _record(alerts: list[tuple[int, tuple[str, ...]]], outcome: Outcome = Outcome.OK) -> RunRecord:
    """Two hosts, one detection day; actor 'bad' starts at T0 + 100 s and sends 1 kB every 10 s;
    'good' is benign with 3 process instances."""
    bad = ActorTruth(
        actor_id="bad",
        kind=ActorKind.MALICIOUS,
        description="",
        expected_analytics=(AN,),
        start_ns=T0 + 100 * NS_PER_S,
        process_instances=1,
        bytes_timeline=tuple((T0 + (100 + 10 * i) * NS_PER_S, 1000 * (i + 1)) for i in range(10)),
    )
    good = ActorTruth(actor_id="good", kind=ActorKind.BENIGN, description="", process_instances=3)
    truth = GroundTruth(
        scenario="s",
        seed=0,
        actors=(bad, good),
        event_actor={"b1": "bad", "b2": "bad", "g1": "good", "g2": "good"},
    )
    tel = Telemetry(
        profile="edr",
        fields=PROFILE_FIELDS[Profile.EDR],
        hosts=("h1", "h2"),
        start_ns=T0 - DAY,
        baseline_until_ns=T0,
        end_ns=T0 + DAY,
        events=(),
    )
    raised = tuple(
        RaisedAlert(
            alert=Alert(
                analytic=AN,
                detector="d",
                ts_ns=ts,
                score=1.0,
                entity=Entity(),
                evidence=ev,
                reason="",
            ),
            raised_ns=ts,
            wall_latency_s=0.0,
        )
        for ts, ev in alerts
    )
    run = DetectorRun(detector="d", analytic=AN, outcome=outcome, alerts=raised)
    return RunRecord(
        scenario="s",
        seed=0,
        parameters={},
        telemetry=TelemetryInfo.of(tel),
        truth=truth,
        detectors=(run,),
        generate_s=0.0,
    )


def test_latency_and_bytes_before_alert_hand_checked() -> None:
    # A false alert, then true alerts at +135 s and +125 s (out of order on purpose).
    rec = _record(
        [
            (T0 + 50 * NS_PER_S, ("g1",)),
            (T0 + 135 * NS_PER_S, ("b2", "g2")),
            (T0 + 125 * NS_PER_S, ("b1",)),
        ]
    )
    counts, details, false_by_actor = score_detector_run(rec, rec.detectors[0])
    assert (counts.true_alerts, counts.false_alerts) == (2, 1)
    assert (counts.expected_actors, counts.detected_actors) == (1, 1)
    # first true alert at +125 s; the actor started at +100 s -> 25 s.
    assert counts.latencies_s == (25.0,)
    # by +125 s the actor had sent points at +100, +110, +120: 3 kB.
    assert counts.bytes_before_alert == (3000,)
    assert details[0].true_alerts == 2
    assert details[0].bytes_total == 10_000
    assert false_by_actor == {"good": 1}
    assert counts.host_seconds == 2 * 86_400
    assert counts.benign_process_instances == 3


def test_missed_actor_is_a_miss_with_its_bytes() -> None:
    rec = _record([(T0 + 50 * NS_PER_S, ("g1",))])
    counts, details, _ = score_detector_run(rec, rec.detectors[0])
    assert counts.detected_actors == 0
    assert counts.expected_actors == 1
    assert counts.missed_bytes == (10_000,)
    assert details[0].latency_s is None
    summary = summarize(counts)
    assert summary["detection_rate"]["value"] == 0.0
    assert summary["latency_s"] == {"median": None, "p95": None}
    assert summary["false_alerts_per_100_host_days"]["value"] == 50.0


def test_error_is_never_a_miss() -> None:
    rec = _record([], outcome=Outcome.ERROR)
    counts, details, _ = score_detector_run(rec, rec.detectors[0])
    assert counts.errors == 1
    assert counts.expected_actors == 0
    assert details == []
    summary = summarize(counts)
    assert summary["detection_rate"]["value"] is None
    assert summary["false_alerts_per_100_host_days"]["value"] is None


def test_no_alerts_gives_null_precision_not_zero() -> None:
    rec = _record([])
    counts, _, _ = score_detector_run(rec, rec.detectors[0])
    assert summarize(counts)["precision"] == {"value": None, "ci_low": None, "ci_high": None}


_counts = st.builds(
    lambda exp, det, t, f, bp, hs, lat: AnalyticCounts(
        runs=1,
        expected_actors=exp,
        detected_actors=min(det, exp),
        true_alerts=t,
        false_alerts=f,
        benign_process_instances=bp,
        host_seconds=hs,
        latencies_s=tuple(lat),
    ),
    st.integers(0, 50),
    st.integers(0, 50),
    st.integers(0, 500),
    st.integers(0, 500),
    st.integers(0, 5000),
    st.integers(0, 10**8),
    st.lists(st.floats(0, 1e5), max_size=5),
)


@given(st.lists(_counts, min_size=1, max_size=6))
def test_rates_are_proportions_or_null(parts: list[AnalyticCounts]) -> None:
    total = sum(parts, AnalyticCounts())
    s = summarize(total)
    for key in ("detection_rate", "precision"):
        r = s[key]
        if r["value"] is None:
            assert r["ci_low"] is None
            assert r["ci_high"] is None
        else:
            assert 0 <= r["ci_low"] <= r["value"] <= r["ci_high"] <= 1
    fa = s["false_alerts_per_100_host_days"]
    assert (fa["value"] is None) == (total.host_seconds == 0)


@given(st.lists(_counts, min_size=1, max_size=6))
def test_counts_are_additive_across_seeds(parts: list[AnalyticCounts]) -> None:
    total = sum(parts, AnalyticCounts())
    assert total.expected_actors == sum(p.expected_actors for p in parts)
    assert total.false_alerts == sum(p.false_alerts for p in parts)
    assert len(total.latencies_s) == sum(len(p.latencies_s) for p in parts)
    # order of accumulation does not matter for the counts
    rev = sum(reversed(parts), AnalyticCounts())
    assert summarize(rev)["counts"] == summarize(total)["counts"]
