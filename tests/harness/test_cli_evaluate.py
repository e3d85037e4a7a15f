"""`egress-harness readiness` and `egress-harness evaluate` on files, as a user runs them."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from harness.cli import main
from harness.events import NS_PER_S
from harness.fields import Profile
from harness.ingest.evaluate import validate_document
from harness.pcap.scenario import write_scenario_pcap
from harness.registry import SCENARIOS
from harness.results import validate
from tests.conftest import SMALL


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first two minutes of the dns2tcp-style tunnel, with everything else of the same
    three minutes."""
    sc = SCENARIOS.load("dns-tunnels")()
    run = sc.generate(sc.params(SMALL), 0, Profile.NETWORK_ONLY)
    actor = run.truth.actor("dns2tcp-tunnel")
    assert actor.start_ns is not None
    lo, hi = actor.start_ns - 60 * NS_PER_S, actor.start_ns + 120 * NS_PER_S
    path = tmp_path_factory.mktemp("cli") / "capture.pcap"
    write_scenario_pcap([e for e in run.telemetry.events if lo <= e.ts_ns < hi], path)
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_readiness_table_and_json(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["readiness", str(capture)], capsys)
    assert code == 0, err
    assert "AN0988" in out
    assert "not_evaluable" in out
    assert "fields present: dns.query, flow.app_protocol, flow.bytes, packets" in out
    code, out, _ = run_cli(["readiness", "--json", str(capture)], capsys)
    assert code == 0
    doc = json.loads(out)
    validate_document(doc)
    assert doc["analytics"]["AN1225"]["verdict"] == "degraded"
    assert doc["join"]["attributed_flows"] == 0


def test_evaluate_writes_alerts_readiness_and_evaluation(
    capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    code, out, err = run_cli(["evaluate", str(capture), "--out", str(out_dir)], capsys)
    assert code == 0, err
    assert "DNS tunnel suspected" in out
    assert "baseline window empty" in out
    alerts = [json.loads(line) for line in (out_dir / "alerts.ndjson").read_text().splitlines()]
    assert any(a["analytic"] == "AN1225" for a in alerts)
    for a in alerts:
        assert set(a) >= {"analytic", "detector", "score", "time", "ts_ns", "entity", "reason"}
        assert set(a["entity"]) >= {
            "host",
            "process_guid",
            "src_ip",
            "src_port",
            "dst_ip",
            "dst_port",
        }
        assert a["evidence"]
    validate_document(json.loads((out_dir / "readiness.json").read_text()))
    validate_document(json.loads((out_dir / "evaluation.json").read_text()))
    assert not (out_dir / "results.json").exists()  # nothing to score against


def test_evaluate_with_rules_labels_writes_valid_results(
    capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.json"
    labels.write_text(
        json.dumps(
            {
                "labels": [
                    {
                        "actor": "dns2tcp",
                        "expected_analytics": ["AN1225"],
                        "domain": "tcp-over.example",
                    }
                ]
            }
        )
    )
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        ["evaluate", str(capture), "--labels", str(labels), "--out", str(out_dir), "-q"], capsys
    )
    assert code == 0, err
    doc = json.loads((out_dir / "results.json").read_text())
    validate(doc)
    assert doc["run"]["profile"] == "recorded"
    counts = doc["analytics"]["AN1225"]["counts"]
    assert (counts["detected_actors"], counts["expected_actors"]) == (1, 1)
    assert "detection rate" in out


def test_baseline_until_outside_the_recording_is_a_usage_error(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["evaluate", str(capture), "--baseline-until", "30d"], capsys)
    assert code == 2
    assert "--baseline-until" in err
    assert "within the recording" in err


@pytest.mark.parametrize("command", ["readiness", "evaluate"])
def test_bad_inputs_exit_codes_and_messages(
    command: str, tmp_path: Path, capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli([command, str(tmp_path / "missing.pcap")], capsys)
    assert code == 2
    assert "does not exist" in err
    assert "Traceback" not in err

    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    code, _, err = run_cli([command, str(empty)], capsys)
    assert code == 3
    assert "is empty" in err
    assert len(err.strip().splitlines()) == 1

    unknown = tmp_path / "notes.pcap"
    unknown.write_text("just some notes\n")
    code, _, err = run_cli([command, str(unknown)], capsys)
    assert code == 3
    assert "unrecognised format" in err

    # A corrupt capture: records are skipped, counted and located; the rest is read.
    data = bytearray(capture.read_bytes())
    struct.pack_into("<I", data, 24 + 8, 0xFFFFFFF0)
    corrupt = tmp_path / "corrupt.pcap"
    corrupt.write_bytes(bytes(data[: len(data) - 7]))
    code, out, err = run_cli([command, str(corrupt)], capsys)
    assert code == 0, err
    assert "skipped" in out
    assert "byte offset 24" in out
    assert "file ends inside a record" in out

    # A header-only capture has nothing to read.
    header_only = tmp_path / "header.pcap"
    header_only.write_bytes(capture.read_bytes()[:24])
    code, _, err = run_cli([command, str(header_only)], capsys)
    assert code == 3
    assert "nothing could be read" in err


def test_unknown_detector_and_bad_tunable(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["evaluate", str(capture), "--detector", "an1225-abnormal"], capsys)
    assert code == 2
    assert "did you mean" in err
    code, _, err = run_cli(
        ["evaluate", str(capture), "--tunable", "an0144-unseen-process-https.min_bytes=1"], capsys
    )
    assert code == 2
