"""The recorded-telemetry pipeline: readiness, detection without a baseline, labels, injection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import truth_document
from harness.ecs import write_ndjson
from harness.errors import InputError, InvalidParameterError
from harness.events import NS_PER_S
from harness.fields import Field, Profile
from harness.ingest.evaluate import (
    Verdict,
    alert_records,
    assess,
    detector_specs,
    evaluate,
    evaluation_document,
    load_labels,
    parse_time,
    results_document,
    validate_document,
)
from harness.pcap.scenario import write_scenario_pcap
from harness.registry import DETECTORS, SCENARIOS
from harness.runner import DetectorSpec, run_detectors
from harness.scenario import ScenarioRun
from tests.conftest import SMALL

H = 3_600 * NS_PER_S


def _generate(scenario: str, profile: Profile) -> ScenarioRun:
    sc = SCENARIOS.load(scenario)()
    run: ScenarioRun = sc.generate(sc.params(SMALL), 0, profile)
    return run


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("evaluate")


@pytest.fixture(scope="module")
def tunnel_pcap(folder: Path) -> Path:
    """Five minutes of the iodine-style tunnel alone: no baseline, no other traffic."""
    run = _generate("dns-tunnels", Profile.NETWORK_ONLY)
    mine = [
        e for e in run.telemetry.events if run.truth.event_actor.get(e.event_id) == "iodine-tunnel"
    ]
    first = mine[0].ts_ns
    path = folder / "tunnel.pcap"
    write_scenario_pcap([e for e in mine if e.ts_ns < first + 300 * NS_PER_S], path)
    return path


@pytest.fixture(scope="module")
def office_pcap(folder: Path) -> Path:
    """Four working hours of the benign office (08:00-12:00 of its detection day)."""
    run = _generate("office-baseline", Profile.NETWORK_ONLY)
    start = run.telemetry.baseline_until_ns + 8 * H
    path = folder / "office.pcap"
    write_scenario_pcap([e for e in run.telemetry.events if start <= e.ts_ns < start + 4 * H], path)
    return path


@pytest.fixture(scope="module")
def edr_export(folder: Path) -> tuple[Path, Path, ScenarioRun]:
    """The ECS export and truth.json of dns-tunnels under edr, as `generate` writes them."""
    run = _generate("dns-tunnels", Profile.EDR)
    events = folder / "events.ndjson"
    write_ndjson(run.telemetry.events, events)
    truth = folder / "truth.json"
    doc = truth_document(run.truth, profile="edr", params=SMALL)
    truth.write_text(json.dumps(doc))
    return events, truth, run


def all_specs() -> tuple[DetectorSpec, ...]:
    return detector_specs((), {})


def test_short_tunnel_capture_is_flagged_without_a_baseline(tunnel_pcap: Path) -> None:
    ev = evaluate([tunnel_pcap], specs=all_specs())
    assert ev.telemetry.baseline == []
    alerts = alert_records(ev)
    dns = [a for a in alerts if a["analytic"] == "AN1225"]
    assert dns, "the tunnel drew no AN1225 alert"
    first = dns[0]
    assert first["entity"]["dst_port"] == 53
    assert first["entity"]["domain"] == "tunnel-a.example"
    assert first["time"].endswith("Z")
    assert first["evidence"]
    doc = evaluation_document(ev)
    validate_document(doc)
    assert doc["analytics"]["AN0988"]["status"] == "not_evaluable"
    assert doc["analytics"]["AN1225"]["alerts"] == len(dns)


def test_benign_office_capture_draws_few_alerts(office_pcap: Path) -> None:
    ev = evaluate([office_pcap], specs=all_specs())
    hosts = len(ev.telemetry.hosts)
    alerts = alert_records(ev)
    # Four working hours of a benign office of several hosts, judged with no baseline at all.
    assert hosts >= 5
    assert len(alerts) <= 3, [a["reason"] for a in alerts]


def test_readiness_verdicts_pcap_only_vs_edr(
    tunnel_pcap: Path, edr_export: tuple[Path, Path, ScenarioRun]
) -> None:
    pcap = evaluate([tunnel_pcap], specs=all_specs()).readiness
    assert pcap["AN0988"].verdict is Verdict.NOT_EVALUABLE
    assert pcap["AN0144"].verdict is Verdict.NOT_EVALUABLE
    assert Field.PROCESS in pcap["AN0144"].missing_required
    for aid in ("AN0030", "AN1225", "AN1962"):
        assert pcap[aid].verdict is Verdict.DEGRADED  # runs, but without process identity
        assert Field.PROCESS in pcap[aid].missing_recommended
    events, _, _ = edr_export
    edr = evaluate([events], specs=all_specs()).readiness
    assert edr["AN0988"].verdict is Verdict.SUPPORTED
    assert edr["AN0144"].verdict is Verdict.SUPPORTED
    assert edr["AN1962"].verdict is Verdict.DEGRADED
    assert edr["AN1962"].missing_recommended == (Field.PACKETS,)


def test_assess_without_detectors_uses_the_analytic_table() -> None:
    fields = frozenset({Field.FLOW_BYTES, Field.FLOW_APP_PROTOCOL, Field.PACKETS, Field.DNS_QUERY})
    verdicts = assess(fields, [])
    assert verdicts["AN1962"].verdict is Verdict.DEGRADED
    assert verdicts["AN1962"].detector is None
    assert verdicts["AN0030"].verdict is Verdict.NOT_EVALUABLE


def test_ecs_export_with_truth_scores_like_the_synthetic_run(
    edr_export: tuple[Path, Path, ScenarioRun],
) -> None:
    events, truth_path, run = edr_export
    offset = (run.telemetry.baseline_until_ns - run.telemetry.start_ns) // NS_PER_S
    ev = evaluate(
        [events], specs=all_specs(), baseline_until=f"{offset}s", labels=load_labels(truth_path)
    )
    assert ev.telemetry.baseline_until_ns == run.telemetry.baseline_until_ns
    direct = run_detectors(run.telemetry, all_specs())
    assert [len(r.alerts) for r in ev.runs] == [len(r.alerts) for r in direct]
    doc = results_document(ev)
    assert doc is not None
    assert doc["run"]["profile"] == "recorded"
    an1225 = doc["analytics"]["AN1225"]
    assert an1225["counts"]["expected_actors"] == 4
    assert an1225["detection_rate"]["value"] == an1225["counts"]["detected_actors"] / 4
    assert an1225["counts"]["detected_actors"] >= 3
    assert ev.labels is not None
    assert ev.labels["labelled_events"] == len(run.telemetry.events)


def test_rules_labels_score_a_capture(tunnel_pcap: Path, folder: Path) -> None:
    rules = folder / "labels.csv"
    rules.write_text(
        "actor,kind,expected_analytics,domain,dst_ip\n"
        "iodine,malicious,AN1225,tunnel-a.example,\n"
        "iodine,malicious,AN1225,,198.51.100.53\n"
    )
    ev = evaluate([tunnel_pcap], specs=all_specs(), labels=load_labels(rules))
    doc = results_document(ev)
    assert doc is not None
    c = doc["analytics"]["AN1225"]["counts"]
    assert (c["detected_actors"], c["expected_actors"], c["false_alerts"]) == (1, 1, 0)
    assert doc["analytics"]["AN1225"]["latency_s"]["median"] is not None
    assert all(a["true_alert"] for a in alert_records(ev))


def test_injected_actor_is_detected_on_benign_background(office_pcap: Path) -> None:
    ev = evaluate(
        [office_pcap],
        specs=all_specs(),
        inject="dns-tunnels:iodine-tunnel",
        inject_params=SMALL,
    )
    assert ev.injection is not None
    inj = ev.injection
    assert inj.target_host in ev.telemetry.hosts
    mid = (ev.telemetry.start_ns + ev.telemetry.end_ns) // 2
    assert abs(inj.events[0].ts_ns - mid) < NS_PER_S * 600
    doc = results_document(ev)
    assert doc is not None
    assert doc["analytics"]["AN1225"]["counts"]["detected_actors"] == 1
    validate_document(evaluation_document(ev))


def test_parse_time_absolute_and_relative() -> None:
    start = 1_793_000_000 * NS_PER_S
    assert parse_time("2h", start_ns=start) == start + 2 * H
    assert parse_time("90", start_ns=start) == start + 90 * NS_PER_S
    assert parse_time("1.5m", start_ns=start) == start + 90 * NS_PER_S
    assert parse_time("2026-11-02T00:00:00Z", start_ns=0) == 1_793_577_600 * NS_PER_S
    assert parse_time("2026-11-02T01:00:00+01:00", start_ns=0) == 1_793_577_600 * NS_PER_S
    with pytest.raises(InvalidParameterError, match="UTC offset"):
        parse_time("2026-11-02T00:00:00", start_ns=0)
    with pytest.raises(InvalidParameterError, match="--baseline-until"):
        parse_time("yesterday", start_ns=0)


def test_labels_errors_name_the_file_and_entry(tmp_path: Path) -> None:
    bad = tmp_path / "l.json"
    bad.write_text(json.dumps({"labels": [{"actor": "ok-actor"}, {"actor": "Bad Actor"}]}))
    with pytest.raises(InputError, match=r"entry 2: actor 'Bad Actor'"):
        load_labels(bad)
    bad.write_text(json.dumps([{"actor": "a", "expected_analytics": ["AN12"]}]))
    with pytest.raises(InputError, match="entry 1: invalid analytic id"):
        load_labels(bad)
    bad.write_text(json.dumps([{"actor": "a", "colour": "red"}]))
    with pytest.raises(InputError, match="unknown key 'colour'"):
        load_labels(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_labels(tmp_path / "missing.json")


def test_every_registered_detector_is_assessed() -> None:
    verdicts = assess(frozenset(Field), [DETECTORS.load(i) for i in DETECTORS.names()])
    assert {v.verdict for v in verdicts.values()} == {Verdict.SUPPORTED}
