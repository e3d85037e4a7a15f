from __future__ import annotations

import random

import pytest

from detectors.an0030 import AsymmetricOutbound
from harness.alerts import Alert
from harness.events import NS_PER_S, AppProtocol, Transport
from harness.fields import Profile
from harness.runner import DetectorSpec, Outcome, run_detectors
from harness.scenario import ScenarioRun
from harness.truth import ActorKind
from scenarios.attacks import CustomPortExfil, StagingAndBeacons
from scenarios.world import NS_PER_DAY, Actor, World, build_environment
from tests.conftest import SMALL

MB = 1_000_000
TEMP_TOOL = r"C:\Users\x\AppData\Local\Temp\upd.exe"


def _world(baseline_days: int = 1) -> World:
    env = build_environment(
        random.Random(0), workstations=6, servers=1, baseline_days=baseline_days
    )
    return World("t", 0, env)


def _stream(
    world: World,
    actor: Actor | str,
    host_index: int,
    image: str,
    start_ns: int,
    *,
    flows: int,
    bytes_out: int,
    bytes_in: int,
    gap_s: float = 5.0,
    dst_ip: str = "203.0.113.77",
    dst_port: int = 4444,
    transport: Transport = Transport.TCP,
    app: AppProtocol = AppProtocol.UNKNOWN,
    server_name: str | None = None,
) -> None:
    if isinstance(actor, str):
        actor = world.actor(actor, ActorKind.BENIGN, "")
    host = world.env.hosts[host_index]
    proc = world.spawn(actor, host, start_ns, image, image)
    t = start_ns + NS_PER_S
    for _ in range(flows):
        world.flow(
            actor,
            proc,
            t,
            dst_ip=dst_ip,
            dst_port=dst_port,
            bytes_out=bytes_out,
            bytes_in=bytes_in,
            transport=transport,
            app=app,
            server_name=server_name,
        )
        t += int(gap_s * NS_PER_S)


def _run(
    world: World, profile: Profile = Profile.EDR, **tunables: float
) -> tuple[ScenarioRun, list[Alert]]:
    run = world.finish(profile)
    (out,) = run_detectors(
        run.telemetry, [DetectorSpec(detector=AsymmetricOutbound, tunables=tunables)]
    )
    assert out.outcome is Outcome.OK, out.error
    return run, [r.alert for r in out.alerts]


def _actors(run: ScenarioRun, alert: Alert) -> set[str]:
    return {run.truth.event_actor[e] for e in alert.evidence}


def test_upload_heavy_stream_to_a_rare_peer_alerts_once_citing_its_flows() -> None:
    world = _world()
    det = world.env.baseline_until_ns + 3600 * NS_PER_S
    _stream(world, "exfil", 3, TEMP_TOOL, det, flows=12, bytes_out=500_000, bytes_in=80)
    _stream(world, "small", 4, TEMP_TOOL, det, flows=1, bytes_out=300_000, bytes_in=80,
            dst_ip="198.51.100.7", dst_port=5555)  # fmt: skip
    run, alerts = _run(world)
    assert len(alerts) == 1
    (alert,) = alerts
    assert _actors(run, alert) == {"exfil"}
    assert alert.entity.dst_port == 4444
    assert alert.entity.process_name == "upd.exe"
    assert alert.ts_ns < det + 4 * 5 * NS_PER_S  # decided at 1 MB, not at the end
    assert "PCR 1.00" in alert.reason
    assert "no upload history" in alert.reason


def _signed_upload(world: World, actor_id: str, host_index: int, image: str, ts: int) -> None:
    actor = world.actor(actor_id, ActorKind.BENIGN, "")
    proc = world.spawn(actor, world.env.hosts[host_index], ts, image, image, signer="Vendor Ltd")
    world.flow(actor, proc, ts + NS_PER_S, dst_ip="203.0.113.77", dst_port=443,
               bytes_out=3 * MB, bytes_in=4_000, duration_ns=20 * NS_PER_S,
               server_name="diag.vendor.example")  # fmt: skip


def test_signed_fleet_new_software_is_held_for_the_deployment_check() -> None:
    """The first host of a signed app's rollout uploads a diagnostics bundle: dropped when the
    app reaches three hosts within the hold, raised late (dated at the upload) when not."""
    image = r"C:\Program Files\Vendor\app.exe"
    for spread, expected in ((2, 0), (1, 1)):
        world = _world()
        det = world.env.baseline_until_ns + 3600 * NS_PER_S
        _signed_upload(world, "first", 1, image, det)
        for i in range(spread):
            actor = world.actor(f"spread{i}", ActorKind.BENIGN, "")
            world.spawn(actor, world.env.hosts[2 + i], det + (i + 1) * 300 * NS_PER_S, image,
                        image, signer="Vendor Ltd")  # fmt: skip
        _stream(world, "later", 5, TEMP_TOOL, det + 7200 * NS_PER_S, flows=1, bytes_out=10,
                bytes_in=10)  # fmt: skip
        run = world.finish(Profile.EDR)
        (out,) = run_detectors(run.telemetry, [DetectorSpec(detector=AsymmetricOutbound)])
        assert len(out.alerts) == expected
        for raised in out.alerts:
            assert _actors(run, raised.alert) == {"first"}
            assert raised.raised_ns >= det + 1800 * NS_PER_S
            assert raised.alert.ts_ns < det + 60 * NS_PER_S


def test_unsigned_new_tool_is_not_held() -> None:
    world = _world()
    det = world.env.baseline_until_ns + 3600 * NS_PER_S
    _stream(world, "exfil", 3, TEMP_TOOL, det, flows=4, bytes_out=500_000, bytes_in=80)
    run = world.finish(Profile.EDR)
    (out,) = run_detectors(run.telemetry, [DetectorSpec(detector=AsymmetricOutbound)])
    (raised,) = out.alerts
    assert raised.raised_ns == raised.alert.ts_ns < det + 60 * NS_PER_S


def test_constant_padding_beacon_alerts_on_its_junk_pattern_before_min_bytes() -> None:
    world = _world()
    det = world.env.baseline_until_ns + 3600 * NS_PER_S
    _stream(
        world, "beacon", 3, TEMP_TOOL, det, flows=30, bytes_out=20_400, bytes_in=300, gap_s=60,
        dst_port=80, app=AppProtocol.HTTP, server_name="static.feed.example",
    )  # fmt: skip
    run, alerts = _run(world)
    (alert,) = alerts
    assert _actors(run, alert) == {"beacon"}
    assert "near-constant" in alert.reason
    assert len(alert.evidence) == 10  # the tenth request completes the pattern


def test_upload_history_makes_a_nightly_backup_to_a_rare_port_normal() -> None:
    world = _world(baseline_days=3)
    env = world.env
    agent = r"C:\Program Files\BackupVendor\Agent\bkagent.exe"
    rng = random.Random(1)
    backup = world.actor("backup", ActorKind.BENIGN, "")
    for day in range(4):  # three baseline nights and one detection night
        night = env.start_ns + day * NS_PER_DAY + 3600 * NS_PER_S
        size = int(600 * MB * rng.uniform(0.7, 1.4))
        _stream(world, backup, 1, agent, night, flows=1, bytes_out=size, bytes_in=size // 1000,
                dst_port=8400)  # fmt: skip
    # The same traffic from a process with no such history is not normal.
    night = env.baseline_until_ns + 3600 * NS_PER_S
    _stream(world, "impostor", 2, TEMP_TOOL, night, flows=1, bytes_out=600 * MB, bytes_in=600_000,
            dst_port=8400, dst_ip="203.0.113.78")  # fmt: skip
    run, alerts = _run(world)
    assert [_actors(run, a) for a in alerts] == [{"impostor"}]


@pytest.mark.parametrize(
    ("bytes_out", "bytes_in", "transport", "port"),
    [
        (9 * MB, 11 * MB, Transport.UDP, 3478),  # meeting media: symmetric
        (40_000, 300 * MB, Transport.TCP, 443),  # update download
    ],
)
def test_symmetric_and_download_heavy_traffic_is_not_disproportionate(
    bytes_out: int, bytes_in: int, transport: Transport, port: int
) -> None:
    world = _world()
    det = world.env.baseline_until_ns + 3600 * NS_PER_S
    _stream(world, "benign", 3, TEMP_TOOL, det, flows=3, bytes_out=bytes_out, bytes_in=bytes_in,
            transport=transport, dst_port=port)  # fmt: skip
    assert _run(world)[1] == []


def test_upload_to_a_peer_most_of_the_fleet_uses_is_not_uncommon() -> None:
    world = _world()
    env = world.env
    sync = r"C:\Users\x\AppData\Local\Sync\sync.exe"
    polls = world.actor("polls", ActorKind.BENIGN, "")
    for i in range(1, 7):  # every host talks to the sync service in the baseline
        _stream(world, polls, i, sync, env.start_ns + 3600 * NS_PER_S, flows=2, bytes_out=3_000,
                bytes_in=5_000, dst_port=443, server_name="api.sync.example")  # fmt: skip
    _stream(world, "upload", 3, sync, env.baseline_until_ns + 60 * NS_PER_S, flows=4,
            bytes_out=10 * MB, bytes_in=50_000, dst_port=443,
            server_name="upload-7.api.sync.example", dst_ip="198.51.100.201")  # fmt: skip
    assert _run(world)[1] == []


def test_network_only_telemetry_falls_back_to_the_sending_host() -> None:
    world = _world()
    det = world.env.baseline_until_ns + 3600 * NS_PER_S
    _stream(world, "exfil", 3, TEMP_TOOL, det, flows=12, bytes_out=500_000, bytes_in=80)
    run, alerts = _run(world, Profile.NETWORK_ONLY)
    (alert,) = alerts
    assert _actors(run, alert) == {"exfil"}
    assert alert.entity.process_guid is None
    assert alert.entity.host == world.env.hosts[3].name
    assert alert.reason.startswith(f"host {world.env.hosts[3].name} sent")


def test_a_new_episode_after_a_quiet_gap_alerts_again() -> None:
    world = _world()
    det = world.env.baseline_until_ns + 3600 * NS_PER_S
    actor = world.actor("exfil", ActorKind.MALICIOUS, "")
    proc = world.spawn(actor, world.env.hosts[3], det, TEMP_TOOL, TEMP_TOOL)
    for burst_start in (det, det + 2 * 3600 * NS_PER_S):  # two bursts, two hours apart
        for i in range(6):
            ts = burst_start + i * 5 * NS_PER_S
            world.flow(actor, proc, ts, dst_ip="203.0.113.77", dst_port=4444,
                       bytes_out=500_000, bytes_in=60, app=AppProtocol.UNKNOWN)  # fmt: skip
    assert len(_run(world)[1]) == 2
    assert len(_run(world, episode_gap_s=3 * 3600)[1]) == 1


@pytest.fixture(scope="module")
def small_runs() -> list[tuple[ScenarioRun, list[Alert]]]:
    out = []
    for cls in (StagingAndBeacons, CustomPortExfil):
        scenario = cls()
        run = scenario.generate(scenario.params(SMALL), 0)
        (res,) = run_detectors(run.telemetry, [DetectorSpec(detector=AsymmetricOutbound)])
        assert res.outcome is Outcome.OK, res.error
        out.append((run, [r.alert for r in res.alerts]))
    return out


def test_end_to_end_detects_padded_beacons_and_custom_port_exfiltration(
    small_runs: list[tuple[ScenarioRun, list[Alert]]],
) -> None:
    for run, alerts in small_runs:
        hit = set().union(*(_actors(run, a) for a in alerts)) if alerts else set()
        expected = {a.actor_id for a in run.truth.malicious if "AN0030" in a.expected_analytics}
        assert expected <= hit
        malicious = {a.actor_id for a in run.truth.malicious}
        assert all(_actors(run, a) & malicious for a in alerts), [a.reason for a in alerts]
