from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import replace
from itertools import count

import pytest

from detectors.an1225 import AbnormalAppProtocolUse
from harness.alerts import Alert
from harness.events import (
    NS_PER_S,
    AppProtocol,
    Direction,
    DnsQuery,
    Event,
    NetworkFlow,
    ProcessStart,
    Transport,
)
from harness.fields import PROFILE_FIELDS, Profile
from harness.runner import DetectorRun, DetectorSpec, Outcome, run_detectors
from harness.scenario import ScenarioRun
from harness.truth import ActorKind
from scenarios.attacks import DnsTunnels
from scenarios.encodings import TunnelEncoding, chunk_stream
from tests.conftest import SMALL

T0 = 1_800_000_000 * NS_PER_S
BASE32 = "abcdefghijklmnopqrstuvwxyz012345"
_ids = count(1)


def _eid() -> str:
    return f"t{next(_ids)}"


def _query(ts_ns: int, host: str, name: str, qtype: str = "A", guid: str | None = None) -> DnsQuery:
    return DnsQuery(
        event_id=_eid(),
        ts_ns=ts_ns,
        host=host,
        process_guid=guid,
        src_ip="192.0.2.100",
        resolver_ip="192.0.2.10",
        query=name,
        qtype=qtype,
        rcode="NOERROR",
        answers=(),
        query_bytes=40 + len(name),
        response_bytes=60 + len(name),
    )


def _flow(
    ts_ns: int,
    host: str,
    guid: str | None,
    *,
    app: AppProtocol = AppProtocol.TLS,
    port: int = 443,
    out: int = 2_000,
    inb: int = 20_000,
    dst: str = "203.0.113.7",
    direction: Direction = Direction.OUTBOUND,
    server_name: str | None = None,
) -> NetworkFlow:
    return NetworkFlow(
        event_id=_eid(),
        ts_ns=ts_ns,
        flow_id=_eid(),
        host=host,
        process_guid=guid,
        transport=Transport.UDP if app is AppProtocol.DNS else Transport.TCP,
        src_ip="192.0.2.100",
        src_port=50_000,
        dst_ip=dst,
        dst_port=port,
        direction=direction,
        app_protocol=app,
        start_ns=ts_ns - NS_PER_S,
        end_ns=ts_ns,
        bytes_out=out,
        bytes_in=inb,
        packets_out=1,
        packets_in=1,
        server_name=server_name,
    )


def _start(ts_ns: int, host: str, guid: str, image: str) -> ProcessStart:
    return ProcessStart(
        event_id=_eid(),
        ts_ns=ts_ns,
        host=host,
        process_guid=guid,
        pid=4,
        image=image,
        name=image.rsplit("\\", 1)[-1],
        command_line=image,
        parent_guid=None,
        user="u",
        signer=None,
    )


def _run(events: Iterable[Event], baseline: Iterable[Event] = (), **tunables: float) -> list[Alert]:
    det = AbnormalAppProtocolUse(**tunables)
    det.fit(baseline)
    alerts: list[Alert] = []
    for e in events:
        alerts.extend(det.observe(e))
    alerts.extend(det.flush())
    return alerts


def _base32_names(rng: random.Random, domain: str, n: int) -> list[str]:
    return [f"{''.join(rng.choices(BASE32, k=62))}.{domain}" for _ in range(n)]


def _ids_of(events: Sequence[Event]) -> set[str]:
    return {e.event_id for e in events}


# -- DNS tunnels -----------------------------------------------------------------------------


def test_tunnel_at_default_rate_is_caught_within_a_minute_on_network_only_fields() -> None:
    assert AbnormalAppProtocolUse.required_fields <= PROFILE_FIELDS[Profile.NETWORK_ONLY]
    rng = random.Random(1)
    names = _base32_names(rng, "t1.tunnel-a.example", 600)
    events = [_query(T0 + i * NS_PER_S // 5, "ws1", n, "NULL") for i, n in enumerate(names)]
    alerts = _run(events)
    assert len(alerts) == 1  # one alert per episode, however long the tunnel runs
    (alert,) = alerts
    assert alert.ts_ns - T0 <= 60 * NS_PER_S
    assert alert.entity.host == "ws1"
    assert alert.entity.process_guid is None  # no process identity: the host is the entity
    assert alert.entity.domain == "tunnel-a.example"
    assert alert.evidence
    assert set(alert.evidence) <= _ids_of(events)
    assert "tunnel-a.example" in alert.reason
    assert "NULL" in alert.reason
    assert 0 < alert.score <= 1


def test_low_and_slow_dictionary_word_exfiltration_is_caught_by_the_aggregate() -> None:
    payload = random.Random(2).randbytes(4_000)
    names = chunk_stream(
        payload, encoding=TunnelEncoding.WORDS, domain="news.wordfeed.example", session=3
    )
    # One query every 30 s: no single name looks like data (no digits, English-like letters).
    events = [_query(T0 + i * 30 * NS_PER_S, "ws2", n) for i, n in enumerate(names)]
    alerts = _run(events)
    assert len(alerts) == 1
    assert alerts[0].entity.domain == "wordfeed.example"
    assert "0 data-like names" in alerts[0].reason


def test_av_reputation_lookups_spread_over_many_hosts_are_a_service() -> None:
    rng = random.Random(3)
    events = []
    for i in range(3_000):
        host = f"ws{i % 10}"
        name = f"0.{rng.randint(1, 9)}.{rng.randbytes(16).hex()}.f.sxl.sophosxl.example"
        events.append(_query(T0 + i * 2 * NS_PER_S, host, name))
    assert _run(events) == []


def test_service_learnt_in_the_baseline_stays_a_service_for_a_single_host() -> None:
    rng = random.Random(4)
    baseline = [
        _query(T0 + i * NS_PER_S, f"ws{i % 6}", f"{rng.randbytes(16).hex()}.sophosxl.example")
        for i in range(60)
    ]
    detection = [
        _query(
            T0 + 86_400 * NS_PER_S + i * NS_PER_S,
            "ws0",
            f"{rng.randbytes(16).hex()}.f.sophosxl.example",
        )
        for i in range(2_000)
    ]
    assert _run(detection, baseline) == []


def test_resolver_api_query_names_the_calling_process() -> None:
    rng = random.Random(5)
    names = _base32_names(rng, "c2.example-cdn.example", 300)
    guid = "{P-1}"
    events: list[Event] = [_start(T0, "ws3", guid, r"C:\ProgramData\Intel\igfxsvc.exe")]
    events += [_query(T0 + (i + 1) * NS_PER_S, "ws3", n, "TXT", guid) for i, n in enumerate(names)]
    (alert,) = _run(events)
    assert alert.entity.process_guid == guid
    assert alert.entity.process_name == "igfxsvc.exe"
    assert alert.reason.startswith("DNS tunnel suspected: igfxsvc.exe on ws3")


def test_a_new_episode_after_a_long_silence_alerts_again() -> None:
    rng = random.Random(6)
    first = [
        _query(T0 + i * NS_PER_S, "ws4", n, "TXT")
        for i, n in enumerate(_base32_names(rng, "x.exfil.example", 200))
    ]
    later = T0 + 3 * 3_600 * NS_PER_S
    second = [
        _query(later + i * NS_PER_S, "ws4", n, "TXT")
        for i, n in enumerate(_base32_names(rng, "x.exfil.example", 200))
    ]
    alerts = _run(first + second, dns_window_s=600)
    assert len(alerts) == 2
    assert set(alerts[0].evidence) <= _ids_of(first)
    assert set(alerts[1].evidence) <= _ids_of(second)


# -- abnormal processes ----------------------------------------------------------------------

SVCHOST = r"C:\Windows\System32\svchost.exe"
RUNDLL = r"C:\Windows\System32\rundll32.exe"


def _dns_client_baseline(host: str) -> list[Event]:
    guid = "{DNSCACHE-" + host + "}"
    events: list[Event] = [_start(T0, host, guid, SVCHOST)]
    events += [
        _flow(
            T0 + (i + 1) * NS_PER_S,
            host,
            guid,
            app=AppProtocol.DNS,
            port=53,
            out=60,
            inb=120,
            dst="192.0.2.10",
            direction=Direction.INTERNAL,
        )
        for i in range(30)
    ]
    return events


def test_raw_socket_dns_from_a_process_that_is_not_the_dns_client_alerts() -> None:
    baseline = [e for h in ("ws1", "ws2", "ws3") for e in _dns_client_baseline(h)]
    t = T0 + 86_400 * NS_PER_S
    detection: list[Event] = [_start(t, "ws1", "{RUNDLL}", RUNDLL)]
    for i in range(40):
        for guid in ("{RUNDLL}", "{DNSCACHE-ws1}"):
            detection.append(
                _flow(
                    t + (i + 1) * NS_PER_S,
                    "ws1",
                    guid,
                    app=AppProtocol.DNS,
                    port=53,
                    out=250,
                    inb=90,
                    dst="192.0.2.10",
                    direction=Direction.INTERNAL,
                )
            )
    (alert,) = _run(detection, baseline)
    assert alert.entity.process_guid == "{RUNDLL}"
    assert "raw socket" in alert.reason
    rundll_flows = {
        e.event_id for e in detection if isinstance(e, NetworkFlow) and e.process_guid == "{RUNDLL}"
    }
    assert set(alert.evidence) <= rundll_flows


def test_tls_on_an_irregular_port_by_a_new_process_alerts_but_not_by_a_known_one() -> None:
    updater = r"C:\Program Files\Vendor\Agent\VendorUpdate.exe"
    tool = r"C:\Users\bob\AppData\Local\Temp\dnsproxy.exe"
    baseline: list[Event] = [_start(T0, "ws1", "{UPD-0}", updater)]
    baseline += [_flow(T0 + i * NS_PER_S, "ws1", "{UPD-0}", port=8531) for i in range(1, 4)]
    t = T0 + 86_400 * NS_PER_S
    detection: list[Event] = [
        _start(t, "ws1", "{UPD-1}", updater),
        _start(t, "ws1", "{TOOL}", tool),
    ]
    for i in range(1, 6):
        detection.append(_flow(t + i * 120 * NS_PER_S, "ws1", "{UPD-1}", port=8531))
        detection.append(_flow(t + i * 120 * NS_PER_S, "ws1", "{TOOL}", port=53))
    (alert,) = _run(detection, baseline)
    assert alert.entity.process_guid == "{TOOL}"
    assert "irregular port 53" in alert.reason
    assert len(alert.evidence) == 3  # irregular_min_flows


def test_one_udp_socket_carrying_many_dns_messages_off_port_53_alerts() -> None:
    """A client that keeps one socket for all its queries is one flow but many DNS messages:
    each datagram counts toward the irregular-port rule, as a socket per query would."""
    tool = r"C:\Users\bob\AppData\Local\Temp\mdnsresp.exe"
    t = T0 + 86_400 * NS_PER_S
    one_query = _flow(t + NS_PER_S, "ws1", "{TOOL}", app=AppProtocol.DNS, port=5000)
    many = replace(one_query, event_id=_eid(), ts_ns=t + 9 * NS_PER_S, packets_out=8)
    assert _run([_start(t, "ws1", "{TOOL}", tool), one_query]) == []
    (alert,) = _run([_start(t, "ws1", "{TOOL}", tool), many])
    assert "DNS on irregular port 5000" in alert.reason
    assert alert.evidence == (many.event_id,)


def test_high_outbound_without_process_identity_names_the_host() -> None:
    t = T0 + 86_400 * NS_PER_S
    detection = [
        _flow(t + i * 5 * NS_PER_S, "ws5", None, out=250_000, inb=300, server_name="x.sync.example")
        for i in range(8)
    ]
    (alert,) = _run(detection)
    assert alert.entity.host == "ws5"
    assert alert.entity.process_guid is None
    assert alert.entity.domain == "x.sync.example"
    assert alert.reason.startswith("high outbound volume: host ws5")
    assert set(alert.evidence) == _ids_of(detection[:4])  # 1 MB reached on the fourth record


def test_flows_far_above_the_hosts_own_history_alert_before_the_fixed_volume() -> None:
    baseline = [
        _flow(T0 + i * NS_PER_S, "ws5", None, out=2_000 + 37 * i, server_name="www.news.example")
        for i in range(30)
    ]
    t = T0 + 86_400 * NS_PER_S
    detection = [
        _flow(t + i * 5 * NS_PER_S, "ws5", None, out=250_000, inb=300, server_name="x.sync.example")
        for i in range(8)
    ]
    (alert,) = _run(detection, baseline)
    assert "far above this host's" in alert.reason
    assert set(alert.evidence) == _ids_of(detection[:3])


def test_receive_heavy_traffic_of_a_new_process_is_not_high_outbound() -> None:
    t = T0 + 86_400 * NS_PER_S
    detection: list[Event] = [_start(t, "ws1", "{NEW}", r"C:\Tools\viewer.exe")]
    detection += [
        _flow(t + i * NS_PER_S, "ws1", "{NEW}", out=500_000, inb=5_000_000) for i in range(1, 20)
    ]
    assert _run(detection) == []


def test_smb_to_an_outside_address_alerts_once() -> None:
    t = T0 + 86_400 * NS_PER_S
    detection = [
        _flow(
            t + i * NS_PER_S, "ws6", None, app=AppProtocol.SMB, port=445, out=3_000_000, inb=60_000
        )
        for i in range(10)
    ]
    internal = [
        _flow(
            t + i * NS_PER_S,
            "ws7",
            None,
            app=AppProtocol.SMB,
            port=445,
            out=3_000_000,
            dst="192.0.2.20",
            direction=Direction.INTERNAL,
        )
        for i in range(10)
    ]
    (alert,) = _run(detection + internal)
    assert alert.entity.host == "ws6"
    assert alert.reason.startswith("SMB to an outside address")
    assert alert.evidence == (detection[0].event_id,)


def test_primary_tunable_is_unique() -> None:
    primaries = [n for n, s in AbnormalAppProtocolUse.tunable_specs.items() if s.primary]
    assert primaries == ["alert_threshold"]


# -- end to end ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tunnels_run() -> tuple[ScenarioRun, DetectorRun]:
    scenario = DnsTunnels()
    run = scenario.generate(scenario.params(SMALL), seed=7, profile=Profile.NETWORK_ONLY)
    (out,) = run_detectors(run.telemetry, [DetectorSpec(detector=AbnormalAppProtocolUse)])
    return run, out


def test_every_tool_style_tunnel_is_caught_in_a_small_office(
    tunnels_run: tuple[ScenarioRun, DetectorRun],
) -> None:
    run, out = tunnels_run
    assert out.outcome is Outcome.OK
    truth = run.truth
    shown = {e.event_id for e in run.telemetry.events}
    caught: set[str] = set()
    for raised in out.alerts:
        alert = raised.alert
        assert set(alert.evidence) <= shown
        for eid in alert.evidence:
            actor = truth.actor(truth.event_actor[eid])
            if actor.kind is ActorKind.MALICIOUS:
                caught.add(actor.actor_id)
                assert actor.start_ns is not None
                assert alert.ts_ns - actor.start_ns <= 60 * NS_PER_S
    assert caught == {"iodine-tunnel", "dnscat2-tunnel", "dns2tcp-tunnel", "det-exfil"}
