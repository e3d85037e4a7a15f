"""``egress-harness generate``: ECS NDJSON and ground truth on disk, the network-only profile's
compact packet capture, everything deterministic per seed, and the CLI's error conventions (exit 2
with a suggestion, exit 3 for harness errors)."""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path

import pytest

from harness.cli import main
from harness.ecs import read_ndjson
from harness.events import NetworkFlow
from harness.fields import Profile
from harness.pcap.scenario import pcap_conversations, stitch_flows
from harness.pcap.writer import PcapReader
from harness.registry import SCENARIOS

SMALL = ("--param", "workstations=3", "--param", "baseline_days=1", "--param", "servers=1")
#: Smaller still for the capture: every flow is rendered, Teams calls of gigabytes included.
NET = (
    "--profile", "network-only", "--param", "workstations=2", "--param", "baseline_days=1",
    "--param", "servers=1", "--param", "browsing_sessions_per_day=5",
)  # fmt: skip


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "seed3"
    assert main(["generate", "https-exfil", "--seed", "3", "--out", str(out), *SMALL]) == 0
    return out


def test_generate_writes_events_and_truth_that_match_the_scenario(generated: Path) -> None:
    scenario = SCENARIOS.load("https-exfil")()
    params = scenario.params({"workstations": 3, "baseline_days": 1, "servers": 1})
    run = scenario.generate(params, 3, Profile.EDR)
    assert list(read_ndjson(generated / "events.ndjson")) == list(run.telemetry.events)
    truth = json.loads((generated / "truth.json").read_text(encoding="utf-8"))
    assert truth["scenario"] == "https-exfil"
    assert truth["seed"] == 3
    assert truth["profile"] == "edr"
    assert truth["params"]["workstations"] == 3
    assert truth["event_actor"] == dict(run.truth.event_actor)
    by_id = {a["actor_id"]: a for a in truth["actors"]}
    assert set(by_id) == {a.actor_id for a in run.truth.actors}
    for actor in run.truth.actors:
        doc = by_id[actor.actor_id]
        assert doc["kind"] == actor.kind.value
        assert doc["techniques"] == list(actor.techniques)
        assert doc["expected_analytics"] == list(actor.expected_analytics)
        assert doc["trap_for"] == list(actor.trap_for)
        assert doc["start_ns"] == actor.start_ns
        assert doc["hosts"] == list(actor.hosts)
        assert [tuple(p) for p in doc["bytes_timeline"]] == list(actor.bytes_timeline)
    assert any(a["kind"] == "malicious" for a in truth["actors"])
    assert not (generated / "capture.pcap").exists()


def test_same_seed_same_bytes_other_seed_differs(generated: Path, tmp_path: Path) -> None:
    again, other = tmp_path / "again", tmp_path / "other"
    assert main(["generate", "https-exfil", "--seed", "3", "--out", str(again), *SMALL]) == 0
    assert main(["generate", "https-exfil", "--seed", "4", "--out", str(other), *SMALL]) == 0
    for name in ("events.ndjson", "truth.json"):
        assert (again / name).read_bytes() == (generated / name).read_bytes()
        assert (other / name).read_bytes() != (generated / name).read_bytes()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("net") / "seed3"
    assert main(["generate", "https-exfil", "--seed", "3", "--out", str(out), *NET]) == 0
    return out


def test_network_only_writes_a_compact_capture_of_every_flow(network: Path) -> None:
    events = list(read_ndjson(network / "events.ndjson"))
    flows = stitch_flows(events)
    assert sum(f.bytes_out + f.bytes_in for f in flows) > 10**9
    convs = pcap_conversations(network / "capture.pcap")
    for f in flows:
        conv = convs[(f.transport, f.src_ip, f.src_port, f.dst_ip, f.dst_port)]
        assert (conv.bytes_out, conv.bytes_in) == (f.bytes_out, f.bytes_in), f
    with PcapReader(network / "capture.pcap") as reader:
        assert reader.header.snaplen == 384
        lengths = [(len(frame), orig_len) for _, frame, orig_len in reader.records()]
    assert all(cut == min(orig, 384) for cut, orig in lengths)
    assert max(orig for _, orig in lengths) > 60_000  # offloaded segments and datagrams
    assert (network / "capture.pcap").stat().st_size < 200 * 10**6
    assert any(isinstance(e, NetworkFlow) for e in events)


def test_network_only_capture_is_deterministic(network: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert main(["generate", "https-exfil", "--seed", "3", "--out", str(again), *NET]) == 0
    for name in ("capture.pcap", "events.ndjson", "truth.json"):
        assert (again / name).read_bytes() == (network / name).read_bytes(), name


def test_unknown_scenario_is_a_usage_error_with_a_suggestion(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(capsys, "generate", "https-exfill", "--out", str(tmp_path / "x"))
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "did you mean 'https-exfil'?" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--param", "bogus=1"), "bogus"),
        (("--param", "workstations"), "KNOB=VALUE"),
        (("--param", "workstations=0"), "workstations"),
        (("--profile", "pcap"), "pcap"),
        (("--seed", "-1"), "-1"),
        (("--snaplen", "-1"), "--snaplen"),
        (("--max-segment", "65496"), "--max-segment"),
        (("--udp-bulk", "1000"), "--udp-bulk"),
    ],
)
def test_bad_options_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    code, _, err = _run(capsys, "generate", "https-exfil", "--out", str(tmp_path / "x"), *args)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_missing_out_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "generate", "https-exfil")
    assert code == 2
    assert "--out" in err


def test_a_capture_larger_than_the_free_space_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("shutil.disk_usage", lambda _path: usage(10**9, 10**9, 1_000))
    out = tmp_path / "net"
    code, _, err = _run(
        capsys, "generate", "https-exfil", "--profile", "network-only", "--out", str(out), *SMALL
    )
    assert code == 3
    assert err.startswith("egress-harness: error: the capture of 'https-exfil' would take")
    assert err.strip().count("\n") == 0
    assert not (out / "capture.pcap").exists()


def test_an_unwritable_output_folder_is_a_harness_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    code, _, err = _run(capsys, "generate", "https-exfil", "--out", str(blocker / "sub"), *SMALL)
    assert code == 3
    assert "cannot write to" in err
    assert "Traceback" not in err
