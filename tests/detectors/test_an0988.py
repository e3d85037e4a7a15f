from __future__ import annotations

import random

import pytest

from detectors.an0988 import QuietProcessAfterFileAccess
from harness.alerts import Alert
from harness.events import NS_PER_S, AppProtocol, DnsQuery, FileAccess, NetworkFlow, Transport
from harness.fields import Profile
from harness.runner import DetectorSpec, Outcome, run_detectors
from harness.scenario import ScenarioRun
from harness.truth import ActorKind
from scenarios.attacks import QuietProcessExfil
from scenarios.world import Actor, Proc, World, build_environment
from tests.conftest import SMALL

MB = 1_000_000
NOTEPAD = r"C:\Windows\System32\notepad.exe"
CHROME = r"C:\Program Files\Google\Chrome\Application\chrome.exe"


def _world() -> World:
    env = build_environment(random.Random(0), workstations=6, servers=1, baseline_days=1)
    return World("t", 0, env)


def _baseline_use(world: World, image: str, *, network: bool) -> None:
    """Runs of ``image`` on the first workstation during the baseline, online or not."""
    actor = world.actor(f"usual-{image.rsplit(chr(92), 1)[-1]}", ActorKind.BENIGN, "")
    host = world.env.workstations[0]
    for i in range(3):
        t = world.env.start_ns + (9 + i) * 3600 * NS_PER_S
        proc = world.spawn(actor, host, t, image, image, signer="Microsoft Windows")
        world.read_file(actor, proc, t + NS_PER_S, rf"C:\Users\x\Documents\n{i}.txt", 2_000)
        if network:
            ts = t + 2 * NS_PER_S
            world.flow(actor, proc, ts, dst_ip="198.51.100.5", dst_port=443, bytes_out=400_000,
                       bytes_in=3 * MB, server_name="www.news.example")  # fmt: skip


def _read(world: World, actor: Actor, proc: Proc, t: int, files: int, size: int = 40_000) -> int:
    for i in range(files):
        world.read_file(actor, proc, t + i * 20_000_000, rf"C:\Users\x\Documents\d{i}.docx", size)
    return t + files * 20_000_000 + NS_PER_S


def _upload(world: World, actor: Actor, proc: Proc, t: int, total: int, *, port: int = 443,
            chunk: int = 250_000) -> None:  # fmt: skip
    for i in range(total // chunk):
        world.flow(actor, proc, t + i * 5 * NS_PER_S, dst_ip="203.0.113.44", dst_port=port,
                   bytes_out=chunk, bytes_in=200,
                   app=AppProtocol.TLS if port == 443 else AppProtocol.UNKNOWN)  # fmt: skip


def _run(world: World, **tunables: float) -> tuple[ScenarioRun, list[Alert]]:
    run = world.finish(Profile.EDR)
    spec = DetectorSpec(detector=QuietProcessAfterFileAccess, tunables=tunables)
    (out,) = run_detectors(run.telemetry, [spec])
    assert out.outcome is Outcome.OK, out.error
    return run, [r.alert for r in out.alerts]


def _kinds(run: ScenarioRun, alert: Alert) -> set[str]:
    by_id = {e.event_id: type(e).__name__ for e in run.telemetry.events}
    return {by_id[e] for e in alert.evidence}


def _actors(run: ScenarioRun, alert: Alert) -> set[str]:
    return {run.truth.event_actor[e] for e in alert.evidence}


def test_quiet_image_sending_after_reading_files_alerts_once_citing_reads_and_sends() -> None:
    world = _world()
    _baseline_use(world, NOTEPAD, network=False)
    actor = world.actor("exfil", ActorKind.MALICIOUS, "")
    host = world.env.workstations[0]
    start = world.env.baseline_until_ns + 3600 * NS_PER_S
    proc = world.spawn(actor, host, start, NOTEPAD, "notepad.exe", signer="Microsoft Windows")
    _upload(world, actor, proc, _read(world, actor, proc, start + NS_PER_S, 40), 6 * MB)
    run, alerts = _run(world)
    (alert,) = alerts
    assert _actors(run, alert) == {"exfil"}
    assert _kinds(run, alert) == {"FileAccess", "NetworkFlow"}
    assert alert.entity.process_guid == proc.guid
    assert "notepad.exe sent 1.0 MB over TLS" in alert.reason
    assert "reading 40 files" in alert.reason
    assert "never seen on the network on this host (3 earlier runs)" in alert.reason


def test_no_alert_without_file_access_below_volume_or_for_a_network_application() -> None:
    world = _world()
    _baseline_use(world, NOTEPAD, network=False)
    _baseline_use(world, CHROME, network=True)
    host = world.env.workstations[0]
    start = world.env.baseline_until_ns + 3600 * NS_PER_S
    cases = (
        ("no-reads", NOTEPAD, 0, 6 * MB),  # sending alone is AN0144/AN1225's business
        ("too-little", NOTEPAD, 40, 750_000),  # under 1 MB in 5 minutes
        ("browser", CHROME, 40, 6 * MB),  # a network application uploading what it read
    )
    for i, (name, image, files, total) in enumerate(cases):
        actor = world.actor(name, ActorKind.BENIGN, "")
        t = start + i * 3600 * NS_PER_S
        proc = world.spawn(actor, host, t, image, image)
        _upload(world, actor, proc, _read(world, actor, proc, t + NS_PER_S, files), total)
    assert _run(world)[1] == []


def test_dns_through_the_resolver_api_is_attributed_to_the_caller() -> None:
    world = _world()
    actor = world.actor("dns-exfil", ActorKind.MALICIOUS, "")
    host = world.env.workstations[2]
    start = world.env.baseline_until_ns + 3600 * NS_PER_S
    tool = r"C:\Python311\python.exe"
    proc = world.spawn(actor, host, start, tool, "python.exe det.py")
    t = _read(world, actor, proc, start + NS_PER_S, 30)
    for i in range(800):
        label = f"{i:04x}" + "ab" * 60
        world.dns(actor, proc, t + i * 200_000_000, f"{label[:63]}.{label[63:]}.x.exfil.example",
                  answers=("192.0.2.1",))  # fmt: skip
    run, alerts = _run(world)
    (alert,) = alerts
    assert alert.entity.process_name == "python.exe"
    assert alert.entity.domain == "exfil.example"
    assert _kinds(run, alert) == {"FileAccess", "DnsQuery"}  # not the DNS client's flows
    assert "DNS queries" in alert.reason
    assert "image never seen before" in alert.reason


def test_reads_by_a_sibling_count_for_the_uploader() -> None:
    world = _world()
    actor = world.actor("staging", ActorKind.MALICIOUS, "")
    host = world.env.workstations[1]
    start = world.env.baseline_until_ns + 3600 * NS_PER_S
    shell = world.spawn(actor, host, start, r"C:\Windows\System32\cmd.exe", "cmd.exe /c s.bat")
    zipper = world.spawn(actor, host, start + NS_PER_S, r"C:\Program Files\7-Zip\7z.exe",
                         "7z.exe a x.7z", parent=shell)  # fmt: skip
    t = _read(world, actor, zipper, start + 2 * NS_PER_S, 50)
    curl = world.spawn(
        actor, host, t, r"C:\Windows\System32\curl.exe", "curl -T x.7z", parent=shell
    )
    _upload(world, actor, curl, t + NS_PER_S, 4 * MB)
    run, alerts = _run(world)
    (alert,) = alerts
    assert alert.entity.process_name == "curl.exe"
    assert "(read by 7z.exe)" in alert.reason
    readers = {
        e.process_guid
        for e in run.telemetry.events
        if isinstance(e, FileAccess) and e.event_id in alert.evidence
    }
    assert readers == {zipper.guid}


@pytest.mark.parametrize(("gap_s", "alerts"), [(600, 2), (7200, 1)])
def test_one_alert_per_episode(gap_s: float, alerts: int) -> None:
    world = _world()
    _baseline_use(world, NOTEPAD, network=False)
    actor = world.actor("exfil", ActorKind.MALICIOUS, "")
    host = world.env.workstations[0]
    start = world.env.baseline_until_ns + 3600 * NS_PER_S
    proc = world.spawn(actor, host, start, NOTEPAD, "notepad.exe")
    t = _read(world, actor, proc, start + NS_PER_S, 40)
    _upload(world, actor, proc, t, 3 * MB)
    t2 = t + 3600 * NS_PER_S
    _upload(world, actor, proc, _read(world, actor, proc, t2, 40), 3 * MB, port=8081)
    assert len(_run(world, episode_gap_s=gap_s)[1]) == alerts


def test_an_image_that_alerted_does_not_become_network_normal() -> None:
    world = _world()
    _baseline_use(world, NOTEPAD, network=False)
    host = world.env.workstations[0]
    start = world.env.baseline_until_ns + 3600 * NS_PER_S
    for i in range(2):
        actor = world.actor(f"exfil{i}", ActorKind.MALICIOUS, "")
        t = start + i * 1800 * NS_PER_S
        proc = world.spawn(actor, host, t, NOTEPAD, "notepad.exe")
        _upload(world, actor, proc, _read(world, actor, proc, t + NS_PER_S, 40), 8 * MB)
    run, alerts = _run(world)
    assert [_actors(run, a) for a in alerts] == [{"exfil0"}, {"exfil1"}]


@pytest.fixture(scope="module")
def small_run() -> tuple[ScenarioRun, list[Alert]]:
    scenario = QuietProcessExfil()
    run = scenario.generate(scenario.params(SMALL), 0)
    (res,) = run_detectors(run.telemetry, [DetectorSpec(detector=QuietProcessAfterFileAccess)])
    assert res.outcome is Outcome.OK, res.error
    return run, [r.alert for r in res.alerts]


def test_end_to_end_catches_each_quiet_process_variant(
    small_run: tuple[ScenarioRun, list[Alert]],
) -> None:
    run, alerts = small_run
    by_actor = {}
    for alert in alerts:
        (actor,) = _actors(run, alert)  # every alert is about one actor
        by_actor[actor] = alert
    expected = {a.actor_id for a in run.truth.malicious if "AN0988" in a.expected_analytics}
    assert {"notepad-https", "rundll32-dns", "rundll32-tcp"} <= expected
    assert set(by_actor) == expected
    dns = by_actor["rundll32-dns"]
    assert _kinds(run, dns) == {"FileAccess", "NetworkFlow"}  # raw socket: its own UDP/53
    flows = [e for e in run.telemetry.events if isinstance(e, NetworkFlow)]
    assert any(
        f.event_id in dns.evidence and f.transport is Transport.UDP and f.dst_port == 53
        for f in flows
    )
    assert not any(
        isinstance(e, DnsQuery) and e.event_id in dns.evidence for e in run.telemetry.events
    )
