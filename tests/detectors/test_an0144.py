from __future__ import annotations

import random

from detectors.an0144 import UnseenProcessHttpsVolume
from harness.events import NS_PER_S
from harness.fields import Profile
from harness.runner import DetectorSpec, Outcome, run_detectors
from harness.truth import ActorKind
from scenarios.world import World, build_environment

MB = 1_000_000


def _world() -> World:
    env = build_environment(random.Random(0), workstations=8, baseline_days=1)
    return World("t", 0, env)


def _upload(
    world: World,
    actor_id: str,
    host_index: int,
    image: str,
    start_ns: int,
    total: int,
    signer: str | None = None,
    chunk: int = 500_000,
) -> None:
    actor = world.actor(actor_id, ActorKind.BENIGN, "")
    host = world.env.workstations[host_index]
    proc = world.spawn(actor, host, start_ns, image, image, signer=signer)
    t = start_ns + NS_PER_S
    for _ in range(total // chunk):
        world.flow(
            actor, proc, t, dst_ip="203.0.113.9", dst_port=443, bytes_out=chunk, bytes_in=500
        )
        t += 10 * NS_PER_S


def _alerts(world: World) -> list[str]:
    run = world.finish(Profile.EDR)
    (out,) = run_detectors(run.telemetry, [DetectorSpec(detector=UnseenProcessHttpsVolume)])
    assert out.outcome is Outcome.OK
    return [run.truth.event_actor[r.alert.evidence[-1]] for r in out.alerts]


def test_unseen_process_uploading_past_threshold_alerts_once() -> None:
    world = _world()
    det = world.env.baseline_until_ns + 3600 * NS_PER_S
    _upload(world, "new", 0, r"C:\Users\x\AppData\Local\Temp\a.exe", det, 6 * MB)
    _upload(world, "small", 1, r"C:\tools\b.exe", det, 1 * MB)
    assert _alerts(world) == ["new"]


def test_process_that_used_https_on_the_host_in_baseline_is_not_unseen() -> None:
    world = _world()
    env = world.env
    image = r"C:\Users\alice\AppData\Local\Microsoft\OneDrive\OneDrive.exe"
    _upload(world, "before", 2, image, env.start_ns + 3600 * NS_PER_S, 1 * MB, "MS")
    _upload(
        world,
        "after",
        2,
        image.replace("alice", "bob"),
        env.baseline_until_ns + NS_PER_S,
        10 * MB,
        "MS",
    )  # same application: per-user paths are folded together
    assert _alerts(world) == []


def test_prevalent_new_image_is_a_rollout_not_rare() -> None:
    world = _world()
    det = world.env.baseline_until_ns
    image = r"C:\Program Files\New\new.exe"
    for i in range(5):
        actor = world.actor(f"install{i}", ActorKind.BENIGN, "")
        world.spawn(actor, world.env.workstations[i], det + i * NS_PER_S, image, image)
    _upload(world, "upload", 6, image, det + 600 * NS_PER_S, 5 * MB, "Vendor")
    assert _alerts(world) == []


def test_masquerading_name_from_an_unusual_path_is_its_own_image() -> None:
    world = _world()
    env = world.env
    chrome = r"C:\Program Files\Google\Chrome\Application\chrome.exe"
    for i in range(6):
        _upload(world, f"chrome{i}", i, chrome, env.start_ns + 3600 * NS_PER_S, 1 * MB, "Google")
    _upload(world, "fake", 0, r"C:\Users\Public\chrome.exe", env.baseline_until_ns, 3 * MB)
    assert _alerts(world) == ["fake"]


def _start(world: World, actor_id: str, host_index: int, image: str, ts: int, signer: str) -> None:
    actor = world.actor(actor_id, ActorKind.BENIGN, "")
    world.spawn(actor, world.env.workstations[host_index], ts, image, image, signer=signer)


def test_common_program_that_never_used_the_web_anywhere_alerts() -> None:
    """Notepad runs everywhere but no host ever sent HTTP(S) from it: uploading 3 MB is new."""
    world = _world()
    env = world.env
    notepad = r"C:\Windows\System32\notepad.exe"
    for i in range(7):
        _start(world, f"np{i}", i, notepad, env.start_ns + 3600 * NS_PER_S, "Microsoft Windows")
    _upload(world, "hollowed", 0, notepad, env.baseline_until_ns + 60 * NS_PER_S, 3 * MB, "MS")
    assert _alerts(world) == ["hollowed"]


def test_signed_new_software_on_one_host_alerts_after_the_hold() -> None:
    world = _world()
    det = world.env.baseline_until_ns + 3600 * NS_PER_S
    image = r"C:\Program Files\Vendor\tool.exe"
    _upload(world, "lone", 0, image, det, 4 * MB, "Vendor Ltd")
    # something later in the stream, after the 30 min hold, releases the alert
    _upload(world, "later", 1, r"C:\Program Files\Other\x.exe", det + 7200 * NS_PER_S, 1 * MB)
    run = world.finish(Profile.EDR)
    (out,) = run_detectors(run.telemetry, [DetectorSpec(detector=UnseenProcessHttpsVolume)])
    assert [run.truth.event_actor[r.alert.evidence[-1]] for r in out.alerts] == ["lone"]
    (raised,) = out.alerts
    assert raised.raised_ns >= det + 1800 * NS_PER_S  # held back for the deployment check
    assert raised.alert.ts_ns < det + 600 * NS_PER_S  # but dated at the upload


def test_signed_new_software_spreading_within_the_hold_is_a_deployment() -> None:
    world = _world()
    det = world.env.baseline_until_ns + 3600 * NS_PER_S
    image = r"C:\Program Files\Vendor\agent.exe"
    _upload(world, "first-host", 0, image, det, 4 * MB, "Vendor Ltd")
    for i in (1, 2):
        _start(world, f"spread{i}", i, image, det + i * 300 * NS_PER_S, "Vendor Ltd")
    assert _alerts(world) == []


def test_never_run_os_binary_is_not_held_as_a_deployment() -> None:
    world = _world()
    det = world.env.baseline_until_ns + 3600 * NS_PER_S
    curl = r"C:\Windows\System32\curl.exe"
    _upload(world, "curl", 0, curl, det, 4 * MB, "Microsoft Windows")
    for i in (1, 2, 3):
        _start(world, f"curl{i}", i, curl, det + i * 60 * NS_PER_S, "Microsoft Windows")
    run = world.finish(Profile.EDR)
    (out,) = run_detectors(run.telemetry, [DetectorSpec(detector=UnseenProcessHttpsVolume)])
    (raised,) = out.alerts
    assert run.truth.event_actor[raised.alert.evidence[-1]] == "curl"
    assert raised.raised_ns < det + 600 * NS_PER_S  # at once, not after a hold
