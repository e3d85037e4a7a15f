"""Network-only parity: a scenario rendered to a pcap and read back is detected as it was.

For each scenario whose malicious actors network data can show, one small office is generated
twice (``network-only`` and ``edr``), the network-only telemetry is rendered to a compact
capture and read back with :func:`harness.ingest.read_pcap`, and the three network-capable
detectors (AN1225, AN0030, AN1962) run on (a) the synthetic network-only telemetry, (b) the
events read back from the capture, and (c) the edr telemetry. Per malicious actor and analytic,
(b) must equal (a). For actors that need no field outside both profiles (``observable_with``),
(b) must equal (c) unless the edr detection relied on process identity: the detectors then also
run on (c') the edr telemetry with process identity removed (no process or file events, flows
and DNS without process), and an actor caught by (c) but not by (c') is the only accepted
difference. False alerts (alerts citing no malicious actor) of (a) and (b) are compared too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from detectors.an0030 import AsymmetricOutbound
from detectors.an1225 import AbnormalAppProtocolUse
from detectors.an1962 import UncommonFlows
from harness.analytics import AnalyticId
from harness.events import DnsQuery, Event, NetworkFlow, ProtocolAnomaly
from harness.fields import PROFILE_FIELDS, Field, Profile
from harness.ingest import read_pcap
from harness.ingest.parity import ReadbackMap, map_readback, readback_truth
from harness.pcap.scenario import write_scenario_pcap
from harness.registry import SCENARIOS
from harness.runner import DetectorRun, DetectorSpec, Outcome, run_detectors
from harness.scoring import classify_alert
from harness.telemetry import Telemetry, evolve, sort_events
from harness.truth import ActorKind, GroundTruth

pytestmark = pytest.mark.slow

#: Smaller than tests.conftest.SMALL: the captures of four scenarios must render and read back
#: within the CI budget (packets scale with the office's benign volume, Teams media mostly).
#: Workstations: as few as the scenario attacks (its ``victims``), at least 4.
PARAMS = {"servers": 1, "baseline_days": 1, "detection_days": 1}
MIN_WORKSTATIONS = 4
SEED = 1
SCENARIO_IDS = ("dns-tunnels", "dns-exfil-evasive", "protocol-anomalies", "custom-port-exfil")
SPECS = (
    DetectorSpec(detector=AbnormalAppProtocolUse),
    DetectorSpec(detector=AsymmetricOutbound),
    DetectorSpec(detector=UncommonFlows),
)
NETWORK_FIELDS = PROFILE_FIELDS[Profile.NETWORK_ONLY]
PROCESS_FIELDS = frozenset({Field.PROCESS, Field.FILE_READ, Field.FLOW_PROCESS, Field.DNS_PROCESS})


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdicts:
    """Per analytic: the malicious actors caught and the number of false alerts."""

    caught: dict[AnalyticId, frozenset[str]]
    false_alerts: dict[AnalyticId, int]
    outcomes: dict[AnalyticId, Outcome]


def verdicts(runs: Sequence[DetectorRun], truth: GroundTruth) -> Verdicts:
    malicious = frozenset(a.actor_id for a in truth.malicious)
    caught: dict[AnalyticId, frozenset[str]] = {}
    false_alerts: dict[AnalyticId, int] = {}
    for run in runs:
        actors: set[str] = set()
        false = 0
        for raised in run.alerts:
            hit = classify_alert(raised.alert.evidence, truth, malicious)
            actors |= hit
            false += not hit
        caught[run.analytic] = frozenset(actors)
        false_alerts[run.analytic] = false
    return Verdicts(
        caught=caught,
        false_alerts=false_alerts,
        outcomes={r.analytic: r.outcome for r in runs},
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Parity:
    scenario: str
    truth: GroundTruth
    synthetic: Verdicts
    readback: Verdicts
    edr: Verdicts
    edr_without_process: Verdicts
    mapping: ReadbackMap
    read_events: int


def _readback_telemetry(events: list[Event], like: Telemetry) -> Telemetry:
    hosts = sorted({e.host for e in events if e.host is not None})
    return Telemetry(
        profile=Profile.NETWORK_ONLY.value,
        fields=NETWORK_FIELDS,
        hosts=tuple(hosts),
        start_ns=like.start_ns,
        baseline_until_ns=like.baseline_until_ns,
        end_ns=like.end_ns,
        events=events,
    )


def _without_process(telemetry: Telemetry) -> Telemetry:
    """The edr telemetry as if its sensor could not attribute anything to a process."""
    events: list[Event] = []
    for e in telemetry.events:
        if isinstance(e, NetworkFlow | DnsQuery):
            events.append(evolve(e, process_guid=None) if e.process_guid is not None else e)
        elif isinstance(e, ProtocolAnomaly):
            events.append(e)
    return Telemetry(
        profile=f"{telemetry.profile}-without-process",
        fields=telemetry.fields - PROCESS_FIELDS,
        hosts=telemetry.hosts,
        start_ns=telemetry.start_ns,
        baseline_until_ns=telemetry.baseline_until_ns,
        end_ns=telemetry.end_ns,
        events=events,
    )


def build_parity(scenario_id: str, folder: Path) -> Parity:
    """Generate, render, read back and detect one scenario (module docstring)."""
    scenario = SCENARIOS.load(scenario_id)()
    workstations = max(MIN_WORKSTATIONS, getattr(scenario, "victims", 1))
    params = scenario.params({**PARAMS, "workstations": workstations})
    net = scenario.generate(params, SEED, Profile.NETWORK_ONLY)
    edr = scenario.generate(params, SEED, Profile.EDR)
    path = folder / f"{scenario_id}.pcap"
    write_scenario_pcap(net.telemetry.events, path)
    read = sort_events(read_pcap(path))
    path.unlink()
    mapping = map_readback(read, net.telemetry.events)
    back = _readback_telemetry(read, net.telemetry)
    return Parity(
        scenario=scenario_id,
        truth=net.truth,
        synthetic=verdicts(run_detectors(net.telemetry, SPECS), net.truth),
        readback=verdicts(run_detectors(back, SPECS), readback_truth(net.truth, mapping)),
        edr=verdicts(run_detectors(edr.telemetry, SPECS), edr.truth),
        edr_without_process=verdicts(
            run_detectors(_without_process(edr.telemetry), SPECS), edr.truth
        ),
        mapping=mapping,
        read_events=len(read),
    )


@pytest.fixture(scope="module", params=SCENARIO_IDS)
def parity(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Parity:
    return build_parity(request.param, tmp_path_factory.mktemp("parity"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    actor: str
    analytic: AnalyticId
    edr: bool
    edr_without_process: bool
    synthetic: bool
    pcap: bool

    @property
    def edr_needs_process(self) -> bool:
        return self.edr and not self.edr_without_process


def _rows(p: Parity) -> Iterator[Row]:
    for actor in p.truth.malicious:
        for spec in SPECS:
            a = spec.detector.analytic
            yield Row(
                actor=actor.actor_id,
                analytic=a,
                edr=actor.actor_id in p.edr.caught[a],
                edr_without_process=actor.actor_id in p.edr_without_process.caught[a],
                synthetic=actor.actor_id in p.synthetic.caught[a],
                pcap=actor.actor_id in p.readback.caught[a],
            )


def _table(p: Parity) -> str:
    lines = [f"{p.scenario}: actor analytic edr (without process) / synthetic / pcap"]
    for r in _rows(p):
        lines.append(
            f"  {r.actor:24} {r.analytic}  {int(r.edr)} ({int(r.edr_without_process)}) / "
            f"{int(r.synthetic)} / {int(r.pcap)}"
        )
    lines.append(
        f"  false alerts synthetic {p.synthetic.false_alerts}, pcap {p.readback.false_alerts}"
    )
    m = p.mapping
    lines.append(
        f"  unmatched read events { ({k: len(v) for k, v in m.unmatched.items()}) }; "
        f"anomalies via flow {m.anomalies_via_flow}, flows via anomaly {m.flows_via_anomaly}, "
        f"queries via flow {m.queries_via_flow}"
    )
    return "\n".join(lines)


def test_every_detector_runs_on_the_readback(parity: Parity) -> None:
    for verdict in (parity.synthetic, parity.readback, parity.edr, parity.edr_without_process):
        assert set(verdict.outcomes.values()) == {Outcome.OK}, verdict.outcomes
    assert parity.read_events > 0


def test_every_read_flow_and_query_maps_to_the_synthetic_run(parity: Parity) -> None:
    assert not parity.mapping.unmatched, _table(parity)


def test_readback_catches_the_actors_the_synthetic_run_catches(parity: Parity) -> None:
    diffs = [r for r in _rows(parity) if r.synthetic != r.pcap]
    assert not diffs, _table(parity)


def test_readback_matches_edr_for_actors_network_data_shows(parity: Parity) -> None:
    both = NETWORK_FIELDS & PROFILE_FIELDS[Profile.EDR]
    observable = {
        a.actor_id
        for a in parity.truth.malicious
        if a.kind is ActorKind.MALICIOUS and a.observable_with <= both
    }
    diffs = [
        r
        for r in _rows(parity)
        if r.actor in observable and r.edr != r.pcap and not r.edr_needs_process
    ]
    assert not diffs, _table(parity)


def test_false_alerts_match(parity: Parity) -> None:
    assert parity.readback.false_alerts == parity.synthetic.false_alerts, _table(parity)
