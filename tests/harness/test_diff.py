"""``egress-harness diff``: per-analytic changes, per-actor gained and lost detections, new false
alerts and latency changes between two results documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.diff import DiffOptions, diff_results, diff_text
from tests.harness.resultdocs import actor, analytic, hit, make_doc, run


def _actors(
    exfil: tuple[dict[str, Any], dict[str, Any]],
    dns: tuple[dict[str, Any], dict[str, Any]],
    rollout_false: tuple[int, int],
) -> list[dict[str, Any]]:
    return [
        actor(
            "dns-tunnel",
            "malicious",
            [run(s, {"AN0144": dns[s]}) for s in (0, 1)],
            expected=("AN0144",),
        ),
        actor(
            "exfil-curl",
            "malicious",
            [run(s, {"AN0144": exfil[s]}) for s in (0, 1)],
            expected=("AN0144",),
        ),
        actor(
            "software-rollout",
            "benign",
            [
                run(s, false_alerts={"AN0144": n} if n else None)
                for s, n in enumerate(rollout_false)
            ],
            trap_for=("AN0144",),
        ),
    ]


@pytest.fixture
def docs() -> tuple[dict[str, Any], dict[str, Any]]:
    old = make_doc(
        {"AN0144": analytic("AN0144", detected=3, expected=4, false_alerts=1)},
        actors=_actors(
            (hit(True, 10.0, 2_000_000), hit(True, 20.0, 2_100_000)),
            (hit(False), hit(True, 100.0, 50_000)),
            (1, 0),
        ),
        tunables={"min_bytes": 2_000_000.0},
    )
    new = make_doc(
        {"AN0144": analytic("AN0144", detected=3, expected=4, false_alerts=2)},
        actors=_actors(
            (hit(True, 10.5, 2_000_000), hit(False)),
            (hit(True, 5.0, 10_000), hit(True, 300.0, 150_000)),
            (0, 2),
        ),
        tunables={"min_bytes": 1_000_000.0},
    )
    return old, new


def test_gained_lost_false_alerts_and_latency(docs: tuple[dict[str, Any], ...]) -> None:
    old, new = docs
    d = diff_results(old, new)
    key = ("scenario", "actor", "seed", "analytic")
    assert [tuple(r[k] for k in key) for r in d["lost_detections"]] == [
        ("https-exfil", "exfil-curl", 1, "AN0144")
    ]
    assert [tuple(r[k] for k in key) for r in d["gained_detections"]] == [
        ("https-exfil", "dns-tunnel", 0, "AN0144")
    ]
    assert d["gained_detections"][0]["latency_s"] == 5.0
    assert [(r["actor"], r["seed"], r["old"], r["new"]) for r in d["new_false_alerts"]] == [
        ("software-rollout", 1, 0, 2)
    ]
    assert [(r["actor"], r["seed"], r["old"], r["new"]) for r in d["cleared_false_alerts"]] == [
        ("software-rollout", 0, 1, 0)
    ]
    # 100 s -> 300 s is beyond 25 % and 1 s; 10 s -> 10.5 s is not
    (lat,) = d["latency_changes"]
    assert (lat["actor"], lat["seed"], lat["delta_s"], lat["delta_pct"]) == (
        "dns-tunnel",
        1,
        200.0,
        200.0,
    )
    assert d["config_changes"] == [
        {
            "kind": "tunable",
            "target": "an0144-rule",
            "name": "min_bytes",
            "old": 2_000_000.0,
            "new": 1_000_000.0,
        }
    ]
    fa = d["analytics"]["AN0144"]["false_alerts_per_100_host_days"]
    assert (fa["old"], fa["new"], fa["delta"]) == (1.0, 2.0, 1.0)


def test_latency_thresholds(docs: tuple[dict[str, Any], ...]) -> None:
    old, new = docs
    wide = diff_results(old, new, DiffOptions(latency_pct=300.0, latency_min_s=1.0))
    assert wide["latency_changes"] == []
    tight = diff_results(old, new, DiffOptions(latency_pct=1.0, latency_min_s=0.1))
    assert {(r["actor"], r["seed"]) for r in tight["latency_changes"]} == {
        ("dns-tunnel", 1),
        ("exfil-curl", 0),
    }


def test_identical_runs_have_no_differences(docs: tuple[dict[str, Any], ...]) -> None:
    old, _ = docs
    d = diff_results(old, old)
    for key in (
        "lost_detections",
        "gained_detections",
        "new_false_alerts",
        "cleared_false_alerts",
        "latency_changes",
        "config_changes",
    ):
        assert d[key] == [], key
    assert all(p["delta"] in (0, None) for p in d["analytics"]["AN0144"].values() if "delta" in p)


def test_runs_only_in_one_document_are_not_compared(docs: tuple[dict[str, Any], ...]) -> None:
    old, _ = docs
    more = make_doc(seeds=(0, 1, 2))
    d = diff_results(old, more)
    assert d["not_compared"]["only_new"] == [{"scenario": "https-exfil", "seed": 2}]
    assert "not compared (only new): https-exfil seed 2" in diff_text(d)


def test_text_report(docs: tuple[dict[str, Any], ...]) -> None:
    text = diff_text(diff_results(*docs))
    assert "Lost detections: 1" in text
    assert "Gained detections: 1" in text
    assert "New false alerts: 1" in text
    assert "Latency changes beyond 25% and 1 s: 1" in text
    assert "an0144-rule.min_bytes" in text
    assert "1.0 -> 2.0 (+1.0)" in text  # false alerts per 100 host-days
    lost = text.split("Lost detections: 1\n", 1)[1].splitlines()[1]
    assert lost.split()[:4] == ["AN0144", "https-exfil", "exfil-curl", "1"]


def test_command_text_json_and_errors(
    docs: tuple[dict[str, Any], ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_path, new_dir = tmp_path / "old.json", tmp_path / "new"
    new_dir.mkdir()
    old_path.write_text(json.dumps(docs[0]), encoding="utf-8")
    (new_dir / "results.json").write_text(json.dumps(docs[1]), encoding="utf-8")
    assert main(["diff", str(old_path), str(new_dir)]) == 0
    assert "Lost detections: 1" in capsys.readouterr().out
    assert main(["diff", "--json", "--latency-pct", "300", str(old_path), str(new_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["latency_changes"] == []
    assert len(out["lost_detections"]) == 1
    assert main(["diff", str(old_path), str(tmp_path / "missing.json")]) == 2
    assert "cannot read new results" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": "1.0"}), encoding="utf-8")
    assert main(["diff", str(bad), str(old_path)]) == 3
    assert "old results" in capsys.readouterr().err
