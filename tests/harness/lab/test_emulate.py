"""``egress-harness emulate`` end to end: the default cast in network namespaces (every malicious
actor detected by each analytic expected for it, benign actors silent, in under 5 minutes, no
namespace left), a reduced cast in Docker and on loopback, and a clear exit 2 when a backend
cannot run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.analytics import analytic_id, technique_id
from harness.cli import main
from harness.errors import LabError
from harness.lab.emulate import EmulationConfig, EmulationOutcome, run_emulation
from harness.lab.report import write_outputs
from harness.lab.spec import LabActor, Phase
from harness.truth import ActorKind
from scenarios.lab import LAB_ACTORS

#: The acceptance bound for a full emulated run.
FULL_RUN_LIMIT_S = 300.0

_COMMON = ("--bind", "{bind}", "--run-id", "{run_id}", "--duration", "{duration}")
#: A small cast for the Docker and loopback runs: one benign fetcher (both phases) and a DNS
#: tunnel (attack phase), on two clients.
SMALL_CAST = (
    LabActor(
        actor_id="browser",
        kind=ActorKind.BENIGN,
        description="browser-like fetcher of lab pages",
        program="scenarios.programs.fetcher",
        exe_name="chrome.exe",
        args=(
            *_COMMON,
            "--names",
            "www.{zone},cdn.{zone}",
            "--resolver",
            "{resolver}",
            "--ca",
            "{ca}",
            "--interval",
            "2",
        ),
        phases=frozenset({Phase.BASELINE, Phase.ATTACK}),
        client=0,
    ),
    LabActor(
        actor_id="dns-tunnel",
        kind=ActorKind.MALICIOUS,
        description="iodine-style DNS tunnel",
        program="scenarios.programs.dns_tunnel",
        exe_name="svchost.exe",
        args=(
            *_COMMON,
            "--style",
            "iodine",
            "--resolver",
            "{resolver}",
            "--zone",
            "{zone}",
            "--bytes",
            "60k",
            "--rate",
            "40",
        ),
        client=1,
        start_offset_s=1.0,
        techniques=(technique_id("T1071.004"),),
        expected_analytics=(analytic_id("AN1225"),),
        synthetic=("dns-tunnels", "iodine-tunnel"),
    ),
)


def _lab_leftovers(run_id: str) -> list[str]:
    found: list[str] = []
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    found += [line for line in ns.stdout.splitlines() if f"eh-{run_id}" in line]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False)
    found += [line for line in links.stdout.splitlines() if f"eh-{run_id}" in line]
    return found


def _docker_leftovers(run_id: str) -> list[str]:
    out = []
    for cmd in (
        ["docker", "ps", "-a", "--format", "{{.Names}}"],
        ["docker", "network", "ls", "--format", "{{.Name}}"],
    ):
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        out += [n for n in res.stdout.split() if n.startswith(f"eh-{run_id}")]
    return out


def _alerts_on(outcome: EmulationOutcome, actor: str) -> list[dict[str, object]]:
    truth = outcome.truth
    return [
        a
        for a in outcome.alerts
        if any(truth.event_actor.get(str(e)) == actor for e in a["evidence"])  # type: ignore[attr-defined]
    ]


def _false_alerts(outcome: EmulationOutcome, actor: str) -> list[str]:
    """Analytic and reason of every false alert (one citing no malicious actor) on ``actor``."""
    return [
        f"{a['analytic']}: {a['reason']}" for a in _alerts_on(outcome, actor) if not a["true_alert"]
    ]


def _missed(outcome: EmulationOutcome) -> list[str]:
    rows = [r for r in outcome.rows if r["expected"] and not r["emulated"]["detected"]]
    out = []
    for r in rows:
        on_actor = [a["analytic"] for a in _alerts_on(outcome, r["actor"])]
        out.append(f"{r['actor']} not detected by {r['analytic']} (its alerts: {on_actor})")
    return out


# -- usage errors ----------------------------------------------------------------------------


def test_unavailable_backend_is_exit_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.lab.netns import NetnsBackend

    monkeypatch.setattr(
        NetnsBackend, "available", classmethod(lambda cls: "the netns backend needs root")
    )
    code = main(["emulate", "--backend", "netns", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "netns" in err
    assert "needs root" in err
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_no_docker_engine_is_exit_2_from_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    res = subprocess.run(
        [sys.executable, "-m", "harness", "emulate", "--backend", "docker",
         "--out", str(tmp_path / "x")],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "Docker engine" in res.stderr or "docker" in res.stderr.lower()
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_unknown_actor_is_a_usage_error(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        __import__("harness.cli", fromlist=["cli"]).cli,
        ["emulate", "--backend", "loopback", "--actors", "no-such-actor", "--out", str(tmp_path)],
    )
    assert result.exit_code != 0
    assert "no-such-actor" in str(result.exception)


# -- end to end ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def netns_full(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[EmulationOutcome, float]:
    from harness.lab.netns import NetnsBackend

    reason = NetnsBackend.available()
    if reason is not None:
        pytest.skip(f"netns backend unavailable: {reason}")
    out = tmp_path_factory.mktemp("emulate-netns")
    t0 = time.monotonic()
    outcome = run_emulation(EmulationConfig(out=out, backend="netns"))
    write_outputs(outcome)
    return outcome, time.monotonic() - t0


@pytest.mark.privileged
def test_netns_default_cast_every_malicious_actor_detected(
    netns_full: tuple[EmulationOutcome, float],
) -> None:
    outcome, wall = netns_full
    assert outcome.backend == "netns"
    assert {a.actor_id for a in outcome.truth.actors} == {a.actor_id for a in LAB_ACTORS}
    assert wall < FULL_RUN_LIMIT_S, f"full emulation took {wall:.0f} s"
    missed = _missed(outcome)
    assert not missed, "; ".join(missed)


@pytest.mark.privileged
def test_netns_default_cast_benign_actors_raise_no_alerts(
    netns_full: tuple[EmulationOutcome, float],
) -> None:
    outcome, _ = netns_full
    noisy = {
        a.actor_id: _false_alerts(outcome, a.actor_id)
        for a in outcome.truth.actors
        if a.kind is ActorKind.BENIGN
    }
    assert not {k: v for k, v in noisy.items() if v}, noisy


@pytest.mark.privileged
def test_netns_default_cast_report(netns_full: tuple[EmulationOutcome, float]) -> None:
    outcome, _ = netns_full
    doc = json.loads((outcome.out / "emulation.json").read_text())
    assert doc["attribution_rate"] is not None
    assert doc["join"]["performed"] is True
    assert "unattributed_events" in doc
    for name in ("results.json", "alerts.ndjson", "truth.json", "capture.pcap", "sinks.log"):
        assert (outcome.out / name).is_file(), name
    # Every malicious actor with a synthetic counterpart has synthetic figures beside its own.
    assert all(
        r["synthetic"] is not None
        for r in outcome.rows
        if r["expected"]
        and any(a.actor_id == r["actor"] and a.synthetic is not None for a in LAB_ACTORS)
    )
    # Every launch ran under its executable name, seen by the attribution monitor.
    for launch in doc["actors"]:
        if launch["comm"] is not None:
            # comm is the last component, cut to 15 characters by the kernel
            assert launch["exe_name"].rsplit("/", 1)[-1].startswith(launch["comm"])
    assert _lab_leftovers(outcome.run_id) == []


@pytest.mark.privileged
def test_docker_reduced_cast(tmp_path: Path) -> None:
    from harness.lab.docker import DockerBackend

    reason = DockerBackend.available()
    if reason is not None:
        pytest.skip(f"docker backend unavailable: {reason}")
    outcome = run_emulation(
        EmulationConfig(
            out=tmp_path / "docker", backend="docker", baseline_s=8, attack_s=20,
            cast=SMALL_CAST, side_by_side=False,
        )
    )  # fmt: skip
    write_outputs(outcome)
    assert outcome.backend == "docker"
    assert outcome.emulation["attribution_rate"] is not None
    assert outcome.emulation["attribution_rate"] > 0.5
    assert not _missed(outcome), _missed(outcome)
    assert not _false_alerts(outcome, "browser")
    assert _docker_leftovers(outcome.run_id) == []


@pytest.mark.privileged
def test_loopback_reduced_cast(tmp_path: Path) -> None:
    outcome = run_emulation(
        EmulationConfig(
            out=tmp_path / "loopback", backend="loopback", baseline_s=6, attack_s=15,
            cast=SMALL_CAST, side_by_side=False,
        )
    )  # fmt: skip
    assert outcome.backend == "loopback"
    join = outcome.emulation["join"]
    assert join["performed"] is False  # loopback connections are never joined: said so
    assert outcome.emulation["attribution_rate"] > 0.5
    assert not _missed(outcome), _missed(outcome)
    assert set(outcome.telemetry.hosts) == {"client-1", "client-2"}
    assert not _false_alerts(outcome, "browser")


@pytest.mark.privileged
def test_a_sink_that_cannot_bind_fails_the_run_naming_its_log(tmp_path: Path) -> None:
    # Occupy the loopback lab's DNS address, so the sink process cannot bind it.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.113.53", 53))
        with pytest.raises(LabError) as err:
            run_emulation(
                EmulationConfig(
                    out=tmp_path / "run", backend="loopback", baseline_s=1, attack_s=1,
                    cast=SMALL_CAST, side_by_side=False,
                )
            )  # fmt: skip
    message = str(err.value)
    assert "sinks.log" in message
    assert "127.0.113.53:53" in message


@pytest.mark.privileged
def test_sigint_during_a_run_leaves_no_namespace(tmp_path: Path) -> None:
    from harness.lab.netns import NetnsBackend

    reason = NetnsBackend.available()
    if reason is not None:
        pytest.skip(f"netns backend unavailable: {reason}")
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "emulate", "--backend", "netns", "--actors",
         "browser-1,iodine-tunnel", "--baseline-s", "30", "--attack-s", "30", "--quiet",
         "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out / "actors").is_dir():
            time.sleep(0.2)
        assert (out / "actors").is_dir(), "the run did not reach its baseline phase"
        run_id = json.loads((out / "plan.json").read_text())["run_id"]
        assert _lab_leftovers(run_id)  # the lab is up
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert _lab_leftovers(run_id) == []
