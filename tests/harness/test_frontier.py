from __future__ import annotations

from typing import Any, ClassVar

from detectors.an0144 import UnseenProcessHttpsVolume
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
