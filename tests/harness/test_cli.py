from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import __version__
from harness.cli import main, parse_seeds
from harness.errors import InvalidParameterError
from harness.registry import DETECTORS


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--version")
    assert code == 0
    assert __version__ in out
    code, out, _ = _run(capsys, "run", "--help")
    assert code == 0
    assert "--seeds" in out


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "list", "--json")
    assert code == 0
    doc = json.loads(out)
    assert {s["id"] for s in doc["scenarios"]} >= {"office-baseline", "https-exfil"}
    assert {a["id"] for a in doc["analytics"]} == {"AN0988", "AN0030", "AN1225", "AN0144", "AN1962"}
    assert doc["suites"][0]["id"] == "default"
    assert any(d["analytic"] == "AN0144" for d in doc["detectors"])


def test_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "list")
    assert code == 0
    assert "Scenarios" in out
    assert "an0144-unseen-process-https" in out


def test_run_writes_valid_results_and_prints_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_dir = tmp_path / "run"
    code, out, err = _run(
        capsys,
        "run",
        "--seeds",
        "1",
        "--out",
        str(out_dir),
        "--param",
        "https-exfil.workstations=5",
        "--param",
        "office-baseline.workstations=5",
    )
    assert code == 0, err
    assert "AN0144" in out
    assert "detection rate" in out
    files = {p.name for p in out_dir.iterdir()}
    assert files >= {"alerts.ndjson", "report.md", "results.json", "timing.json"}
    assert files >= {"evidence.json", "navigator-layer.json"}  # registered reporters add more
    doc = json.loads((out_dir / "results.json").read_text())
    assert doc["run"]["scenarios"][1]["overrides"] == {"workstations": 5}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--scenario", "https-exfill"], "did you mean 'https-exfil'?"),
        (["run", "--detector", "an0144"], "unknown detector 'an0144'"),
        (["run", "--seeds", "x"], "invalid --seeds 'x'"),
        (["run", "--seeds", "0"], "invalid --seeds '0'"),
        (["run", "--param", "https-exfil.jitter=2"], "invalid jitter 2"),
        (["run", "--param", "nope"], "PLUGIN.NAME=VALUE"),
        (
            ["run", "--param", "office-baseline.workstations=3", "--scenario", "https-exfil"],
            "not being run",
        ),
        (["run", "--tunable", "an0144-unseen-process-https.min_bytes=-1"], "tunable 'min_bytes'"),
        (["run", "--suite", "defualt"], "did you mean 'default'?"),
        (["run", "--profile", "pcap"], "Invalid value for '--profile'"),
        (["frobnicate"], "No such command"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = _run(capsys, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_harness_error_exits_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = _run(
        capsys,
        "run",
        "--seeds",
        "1",
        "--scenario",
        "office-baseline",
        "--param",
        "office-baseline.workstations=2",
        "--out",
        str(blocker / "x"),
    )
    assert code == 3
    assert "cannot write results" in err
    assert "Traceback" not in err


def test_plugin_load_failure_exits_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import EntryPoint

    import harness.registry

    broken = EntryPoint(name="broken", value="no_such_module:Thing", group=DETECTORS.group)
    real = harness.registry._entry_points

    def points(group: str) -> dict[str, EntryPoint]:
        return {"broken": broken} if group == DETECTORS.group else real(group)

    monkeypatch.setattr(harness.registry, "_entry_points", points)
    code, _, err = _run(capsys, "run", "--detector", "broken")
    assert code == 3
    assert "failed to load" in err
    assert "Traceback" not in err


def test_internal_fault_exits_3_without_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.cli

    def boom(*a: object, **k: object) -> None:
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(harness.cli, "run_plan", boom)
    code, _, err = _run(capsys, "run", "--seeds", "1")
    assert code == 3
    assert "internal error: ZeroDivisionError: bug" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "seeds"), [("3", (0, 1, 2)), ("10-12", (10, 11, 12)), ("4,1,9", (4, 1, 9))]
)
def test_parse_seeds(text: str, seeds: tuple[int, ...]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "-1", "1,1", "5-3", "a-b"])
def test_parse_seeds_rejects(text: str) -> None:
    with pytest.raises(InvalidParameterError):
        parse_seeds(text)


def test_console_script_and_module_entry(tmp_path: Path) -> None:
    for cmd in (["egress-harness"], [sys.executable, "-m", "harness"]):
        proc = subprocess.run(
            [*cmd, "list", "--json"], capture_output=True, text=True, check=False, cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["analytics"]


def test_same_command_twice_gives_identical_results(tmp_path: Path) -> None:
    texts = []
    for name in ("a", "b"):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                "-q",
                "--seeds",
                "2",
                "--out",
                str(tmp_path / name),
                "--param",
                "https-exfil.workstations=6",
                "--param",
                "office-baseline.workstations=6",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        texts.append((tmp_path / name / "results.json").read_bytes())
        texts.append((tmp_path / name / "alerts.ndjson").read_bytes())
    assert texts[0] == texts[2]
    assert texts[1] == texts[3]
