from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from detectors.an0144 import UnseenProcessHttpsVolume
from harness.cli import main
from harness.frontier import frontier_markdown, rungs, search_frontier
from harness.results import canonical_json
from harness.runner import DetectorSpec
from scenarios.https_exfil import HttpsExfil
from scenarios.office import OfficeBaseline


class LadderedExfil(HttpsExfil):
    """HTTPS exfiltration on a small office, with a ladder on the chunk size: AN0144 alerts
    when an unseen process sends 2 MB within 5 minutes, so with one chunk every 30 s chunks of
    2 MB are caught at once, 50 kB chunks (1 MB per 5 minutes) never."""

    id: ClassVar[str] = "laddered-exfil"
    difficulty: ClassVar[dict[str, tuple[Any, ...]]] = {
        "chunk_bytes": (2_000_000, 400_000, 50_000),
    }

    def params(self, overrides: Any = None) -> Any:
        small = {"workstations": 6, "servers": 1, "baseline_days": 2, "total_bytes": 6_000_000}
        return super().params({**small, **dict(overrides or {})})


def test_rungs_follow_the_ladders() -> None:
    got = [(r.knob, r.step, r.value) for r in rungs([LadderedExfil])]
    assert got == [
        ("chunk_bytes", 0, 2_000_000),
        ("chunk_bytes", 1, 400_000),
        ("chunk_bytes", 2, 50_000),
    ]
    assert rungs([OfficeBaseline]) == []  # no ladders: no frontier


def test_frontier_finds_the_weakest_caught_rung() -> None:
    doc = search_frontier(
        [LadderedExfil], [DetectorSpec(detector=UnseenProcessHttpsVolume)], (0, 1)
    )
    rows = {(r["actor"], r["knob"]): r for r in doc["frontier"]}
    assert set(rows) == {("unseen-uploader", "chunk_bytes"), ("disguised-browser", "chunk_bytes")}
    for row in rows.values():
        assert row["analytic"] == "AN0144"
        ladder = row["ladder"]
        assert [x["seeds"] for x in ladder] == [2, 2, 2]
        # 2 MB chunks are caught in every seed; 50 kB chunks every 30 s stay under 2 MB / 5 min
        assert ladder[0]["caught_seeds"] == 2
        assert ladder[2]["caught_seeds"] == 0
        assert row["weakest_caught"] in (2_000_000, 400_000)
        assert row["caught_at_hardest"] is False
    assert doc["errors"] == []
    page = frontier_markdown(doc)
    assert "unseen-uploader" in page
    assert "✗" in page
    # canonical and deterministic
    again = search_frontier(
        [LadderedExfil], [DetectorSpec(detector=UnseenProcessHttpsVolume)], (0, 1), workers=2
    )
    assert canonical_json(again) == canonical_json(doc)


def test_frontier_command_writes_json_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "f"
    code = main(
        ["frontier", "--scenario", "protocol-anomalies", "--seeds", "1", "--workers", "2",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    doc = json.loads((out / "frontier.json").read_text(encoding="utf-8"))
    rows = {(r["actor"], r["analytic"], r["knob"]): r for r in doc["frontier"]}
    # extraneous packets leave no trace an EDR sees: unobservable, not a miss
    packets = rows[("extraneous-packets", "AN1962", "anomaly_count")]
    assert packets["unobservable_without"] == ["packets"]
    assert "unobservable (needs packets)" in (out / "frontier.md").read_text(encoding="utf-8")
    assert all(
        not r["unobservable_without"] for k, r in rows.items() if k[0] != "extraneous-packets"
    )


def test_frontier_command_rejects_scenarios_without_ladders(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["frontier", "--scenario", "office-baseline"]) == 2
    assert "has difficulty ladders" in capsys.readouterr().err
