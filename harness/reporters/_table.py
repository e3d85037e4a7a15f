"""The per-analytic summary table shared by the console and Markdown reporters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["HEADERS", "HOLDOUT_HEADERS", "fmt_bytes", "fmt_rate", "holdout_rows", "summary_rows"]

HEADERS = (
    "analytic",
    "detector",
    "status",
    "detection rate [95% CI]",
    "false alerts /100 host-days [95% CI]",
    "precision",
    "latency s (median / p95)",
    "bytes before alert (median)",
)


def fmt_rate(rate: Mapping[str, Any], digits: int = 2) -> str:
    if rate["value"] is None:
        return "n/a"
    return f"{rate['value']:.{digits}f} [{rate['ci_low']:.{digits}f}, {rate['ci_high']:.{digits}f}]"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def _fmt_num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def summary_rows(doc: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for aid, a in doc["analytics"].items():
        status = a["status"]
        if a["missing_fields"] and status == "not_evaluable":
            status += " (missing " + ", ".join(a["missing_fields"]) + ")"
        if a["counts"]["errors"]:
            status += f" ({a['counts']['errors']} errors)"
        c = a["counts"]
        rate = fmt_rate(a["detection_rate"])
        if a["detection_rate"]["value"] is not None:
            rate += f" ({c['detected_actors']}/{c['expected_actors']})"
        rows.append(
            [
                aid,
                a["detector"] or "-",
                status,
                rate,
                fmt_rate(a["false_alerts_per_100_host_days"], 1)
                + (f" ({c['false_alerts']})" if a["evaluable"] else ""),
                fmt_rate(a["precision"]),
                f"{_fmt_num(a['latency_s']['median'])} / {_fmt_num(a['latency_s']['p95'])}",
                fmt_bytes(a["bytes_before_alert"]["median"]),
            ]
        )
    return rows


HOLDOUT_HEADERS = (
    "analytic",
    "detection rate: main seeds",
    "held-out seeds",
    "drawn knobs",
    "false alerts /100 host-days: main",
    "held-out",
    "drawn",
)


def _rate_with_counts(m: Mapping[str, Any] | None) -> str:
    if m is None:
        return "n/a"
    text = fmt_rate(m["detection_rate"])
    if m["detection_rate"]["value"] is not None:
        text += f" ({m['detected_actors']}/{m['expected_actors']})"
    return text


def holdout_rows(doc: Mapping[str, Any]) -> list[list[str]]:
    """Main, held-out-seed and drawn-knob figures side by side (empty without a hold-out)."""
    held = doc.get("held_out")
    if not held:
        return []
    seeds = held["seeds"]["analytics"]
    drawn = (held["drawn_knobs"] or {}).get("analytics", {})
    rows = []
    for aid, a in doc["analytics"].items():
        if a["status"] == "no_detector":
            continue
        main = {
            **a,
            "detected_actors": a["counts"]["detected_actors"],
            "expected_actors": a["counts"]["expected_actors"],
        }
        h, d = seeds.get(aid), drawn.get(aid)
        rows.append(
            [
                aid,
                _rate_with_counts(main),
                _rate_with_counts(h),
                _rate_with_counts(d),
                fmt_rate(a["false_alerts_per_100_host_days"], 1),
                fmt_rate(h["false_alerts_per_100_host_days"], 1) if h else "n/a",
                fmt_rate(d["false_alerts_per_100_host_days"], 1) if d else "n/a",
            ]
        )
    return rows
