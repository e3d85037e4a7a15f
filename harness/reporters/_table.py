"""The per-analytic summary table shared by the console and Markdown reporters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["HEADERS", "fmt_bytes", "fmt_rate", "summary_rows"]

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
