"""The evidence manifest of a run folder and ``egress-harness verify``: every input and output
hashed, the configuration, versions, commit and reproduce command recorded, and any changed
byte caught."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from harness import evidence
from harness.cli import main
from harness.evidence import (
    MANIFEST_NAME,
    InputFile,
    dependency_versions,
    file_inputs,
    git_info,
    verify,
    write_manifest,
)
from harness.registry import DETECTORS

REPO = Path(__file__).resolve().parents[2]
SMALL_PARAMS = [
    "--param",
    "office-baseline.workstations=4",
    "--param",
    "office-baseline.baseline_days=1",
    "--param",
    "office-baseline.detection_days=1",
]
RUN_ARGS = [
    "run",
    "--scenario",
    "office-baseline",
    "--detector",
    "an1225-abnormal-app-protocol",
    "--seeds",
    "1",
    "--workers",
    "1",
    *SMALL_PARAMS,
    "-q",
]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run") / "bundle"
    assert main([*RUN_ARGS, "--out", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def manifest(run_folder: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((run_folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    return doc


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_outputs_are_every_file_of_the_run_folder(
    run_folder: Path, manifest: dict[str, Any]
) -> None:
    listed = {e["path"]: e for e in manifest["outputs"]}
    on_disk = {p.name for p in run_folder.iterdir() if p.name != MANIFEST_NAME}
    assert set(listed) == on_disk
    assert {"results.json", "report.md", "alerts.ndjson", "timing.json"} <= on_disk
    assert "navigator-layer.json" in on_disk
    for name, entry in listed.items():
        assert entry["sha256"] == _sha(run_folder / name)
        assert entry["bytes"] == (run_folder / name).stat().st_size


def test_inputs_hash_the_code_that_made_and_judged_the_telemetry(
    manifest: dict[str, Any],
) -> None:
    inputs = {e["path"]: e for e in manifest["inputs"]}
    for rel in ("harness/runner.py", "scenarios/office.py", "detectors/an1225.py"):
        entry = inputs[str(REPO / rel)]
        assert entry["role"] == "code"
        assert entry["sha256"] == _sha(REPO / rel)
    assert not any("__pycache__" in p for p in inputs)


def test_configuration_environment_and_command(manifest: dict[str, Any]) -> None:
    config = manifest["configuration"]
    assert config["run"]["seeds"] == [0]
    assert config["run"]["detectors"][0]["id"] == "an1225-abnormal-app-protocol"
    assert config["run"]["detectors"][0]["tunables"]  # every tunable, defaults included
    assert config["scenario_parameters"]["office-baseline"]["workstations"] == 4
    assert manifest["configuration_digest"].startswith("sha256:")
    env = manifest["environment"]
    assert env["python"].count(".") == 2
    dists = env["distributions"]
    for name in ("egress-harness", "click", "jsonschema", "numpy", "referencing"):
        assert dists[name] == metadata.version(name)
    assert "pytest" not in dists  # an optional extra, not a dependency
    argv = manifest["command"]["argv"]
    assert argv[:2] == ["egress-harness", "run"]
    assert "--out" not in argv
    assert "--workers" not in argv
    pairs = list(itertools.pairwise(argv))
    assert ("--scenario", "office-baseline") in pairs
    assert ("--seeds", "1") in pairs
    assert ("--profile", "edr") in pairs  # a default, made explicit
    assert ("--param", "office-baseline.workstations=4") in pairs


def test_git_commit_is_read_from_the_checkout(manifest: dict[str, Any]) -> None:
    if not (REPO / ".git").exists():
        assert manifest["git"] is None
        return
    git = manifest["git"]
    assert len(git["commit"]) == 40
    exe = shutil.which("git")
    if exe is not None:
        head = subprocess.run(
            [exe, "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        assert git["commit"] == head
        assert isinstance(git["dirty"], bool)


def test_reproduce_command_reproduces_the_results(
    run_folder: Path, manifest: dict[str, Any], tmp_path: Path
) -> None:
    again = tmp_path / "again"
    argv = manifest["command"]["argv"]
    assert main([*argv[1:], "--out", str(again), "-q"]) == 0
    assert (again / "results.json").read_bytes() == (run_folder / "results.json").read_bytes()


def test_verify_passes_on_an_untouched_bundle(
    run_folder: Path, manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _verify(capsys, str(run_folder))
    assert code == 0, out
    assert out.startswith("OK: ")
    assert manifest["manifest_digest"] in out
    code, _ = _verify(capsys, str(run_folder / MANIFEST_NAME), "--outputs-only")
    assert code == 0


def test_verify_catches_one_changed_byte_in_every_file(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(run_folder, bundle)
    files = sorted(p for p in bundle.iterdir() if p.is_file())
    assert MANIFEST_NAME in {p.name for p in files}
    for path in files:
        original = path.read_bytes()
        for offset in sorted({0, len(original) // 2, max(len(original) - 1, 0)}):
            flipped = bytearray(original or b"\x00")  # an empty file: a byte appears
            flipped[offset] ^= 0x01
            path.write_bytes(bytes(flipped))
            code, out = _verify(capsys, str(bundle), "--outputs-only")
            assert code == 1, f"{path.name} byte {offset}: {out}"
            if path.name == MANIFEST_NAME:
                assert f"manifest  {path}:" in out
            else:
                assert f"changed   {path.name}" in out
            assert "FAILED" in out
        path.write_bytes(original)
    assert _verify(capsys, str(bundle), "--outputs-only")[0] == 0


def test_verify_reports_missing_and_extra_files(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(run_folder, bundle)
    (bundle / "timing.json").unlink()
    (bundle / "notes").mkdir()
    (bundle / "notes" / "added.txt").write_text("added later\n", encoding="utf-8")
    code, out = _verify(capsys, str(bundle), "--outputs-only")
    assert code == 1
    assert "missing   timing.json" in out
    assert "extra     notes/added.txt" in out


def test_verify_expect_digest(
    run_folder: Path, manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    digest = manifest["manifest_digest"]
    assert _verify(capsys, str(run_folder), "--outputs-only", "--expect-digest", digest)[0] == 0
    code, out = _verify(capsys, str(run_folder), "--outputs-only", "--expect-digest", "sha256:0")
    assert code == 1
    assert "is not the expected 'sha256:0'" in out


def test_verify_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _verify(capsys, str(tmp_path / "nowhere"))
    assert code == 2
    assert "not found" in out
    code, out = _verify(capsys, str(tmp_path))
    assert code == 2
    assert f"holds no {MANIFEST_NAME}" in out


def test_changed_input_is_caught_unless_outputs_only(tmp_path: Path) -> None:
    recorded = tmp_path / "capture"
    recorded.mkdir()
    (recorded / "conn.log").write_text("#fields\tts\n1.0\n", encoding="utf-8")
    labels = tmp_path / "labels.json"
    labels.write_text("{}\n", encoding="utf-8")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "alerts.ndjson").write_text("", encoding="utf-8")
    inputs = [*file_inputs([recorded], "telemetry"), InputFile(path=labels, role="labels")]
    doc = write_manifest(
        folder,
        command=["egress-harness", "evaluate", str(recorded)],
        configuration={},
        inputs=inputs,
    )
    assert {(e["role"], Path(e["path"]).name) for e in doc["inputs"]} == {
        ("telemetry", "conn.log"),
        ("labels", "labels.json"),
    }
    assert verify(folder).ok
    (recorded / "conn.log").write_text("#fields\tts\n2.0\n", encoding="utf-8")
    labels.unlink()
    report = verify(folder)
    assert report.changed == (str(recorded / "conn.log"),)
    assert report.missing == (str(labels),)
    assert verify(folder, check_inputs=False).ok


def test_evaluate_records_its_telemetry_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = REPO / "tests" / "harness" / "ingest" / "data" / "sysmon_events.xml"
    out = tmp_path / "eval"
    assert main(["evaluate", str(recording), "--out", str(out), "-q"]) == 0
    doc = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    telemetry = [e for e in doc["inputs"] if e["role"] == "telemetry"]
    assert telemetry == [
        {
            "path": str(recording),
            "role": "telemetry",
            "sha256": _sha(recording),
            "bytes": recording.stat().st_size,
        }
    ]
    assert doc["command"]["argv"] == ["egress-harness", "evaluate", str(recording)]
    assert {d["id"] for d in doc["configuration"]["detectors"]} == set(DETECTORS.names())
    assert {e["path"] for e in doc["outputs"]} >= {"evaluation.json", "alerts.ndjson"}
    assert _verify(capsys, str(out))[0] == 0


def test_git_info_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evidence.shutil, "which", lambda name: None)
    assert git_info(tmp_path) is None
    sha = "0123456789abcdef0123456789abcdef01234567"
    git_dir = tmp_path / "repo" / ".git"
    git_dir.mkdir(parents=True)
    (git_dir / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    (git_dir / "packed-refs").write_text(
        f"# pack-refs with: peeled\n{sha} refs/heads/main\n", encoding="utf-8"
    )
    info = git_info(tmp_path / "repo")
    assert info == {
        "commit": sha,
        "ref": "refs/heads/main",
        "work_tree": str(tmp_path / "repo"),
        "dirty": None,
    }
    loose = git_dir / "refs" / "heads"
    loose.mkdir(parents=True)
    (loose / "main").write_text(sha.replace("0", "f") + "\n", encoding="utf-8")
    assert git_info(tmp_path / "repo") == {**info, "commit": sha.replace("0", "f")}


def test_dependency_closure_skips_extras() -> None:
    deps = dependency_versions()
    assert deps["egress-harness"] == metadata.version("egress-harness")
    assert "jsonschema-specifications" in deps  # transitive, through jsonschema
    assert "mypy" not in deps
    assert list(deps) == sorted(deps)
