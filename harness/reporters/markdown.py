"""Markdown reporter: the summary table, per-scenario results and per-actor outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from tabulate import tabulate

from harness.reporters._table import (
    HEADERS,
    HOLDOUT_HEADERS,
    fmt_bytes,
    fmt_rate,
    holdout_rows,
    summary_rows,
)

__all__ = ["MarkdownReporter"]


def _sweep_section(doc: Mapping[str, Any]) -> list[str]:
    """Detection rate against false alerts at each swept value of a primary tunable."""
    swept = {aid: a["sweep"] for aid, a in doc["analytics"].items() if a.get("sweep")}
    if not swept:
        return []
    out = ["", "## Threshold sweeps", ""]
    out.append(
        "Each detector re-run over the same telemetry with its primary tunable at each value "
        "(the default is marked *)."
    )
    for aid, sweep in swept.items():
        rows = [
            [
                f"{p['value']:g}{' *' if p['value'] == sweep['default'] else ''}",
                fmt_rate(p["detection_rate"]) + f" ({p['detected_actors']}/{p['expected_actors']})",
                fmt_rate(p["false_alerts_per_100_host_days"], 1) + f" ({p['false_alerts']})",
                fmt_rate(p["precision"]),
            ]
            for p in sweep["points"]
        ]
        out += [
            "",
            f"### {aid}: `{sweep['detector']}` {sweep['tunable']}",
            "",
            sweep["description"],
            "",
            tabulate(
                rows,
                headers=(
                    sweep["tunable"],
                    "detection rate",
                    "false alerts /100 host-days",
                    "precision",
                ),
                tablefmt="github",
            ),
        ]
    return out


class MarkdownReporter:
    id: ClassVar[str] = "markdown"
    filename: ClassVar[str | None] = "report.md"

    def render(self, doc: Mapping[str, Any]) -> str:
        run = doc["run"]
        out = [
            "# egress-harness results",
            "",
            f"- harness {doc['harness_version']}, results schema {doc['schema_version']}",
            f"- profile `{run['profile']}`, seeds {', '.join(map(str, run['seeds']))}",
            f"- configuration digest `{run['config_digest']}`",
            "",
            "## Analytics",
            "",
            tabulate(summary_rows(doc), headers=HEADERS, tablefmt="github"),
            "",
            "Detection rate: share of malicious actors expected to fire the analytic that drew a "
            "true alert (Wilson 95% interval). False alerts: per 100 host-days of detection "
            "window (Poisson score interval). Latency: first true alert minus actor start, "
            "event time.",
        ]
        held = holdout_rows(doc)
        if held:
            h = doc["held_out"]
            draws = len(h["drawn_knobs"]["draws"]) if h["drawn_knobs"] else 0
            out += [
                "",
                "## Not tuned on: held-out seeds and drawn knobs",
                "",
                f"Held-out seeds {', '.join(map(str, h['seeds']['seeds']))} (same knobs), and "
                f"{draws} knob settings drawn by Hypothesis over each scenario's valid range "
                "(one seed each). The detectors were never tuned on either.",
                "",
                tabulate(held, headers=HOLDOUT_HEADERS, tablefmt="github"),
            ]
        out += _sweep_section(doc)
        for name, scen in doc["scenarios"].items():
            out += ["", f"## Scenario `{name}`", ""]
            out.append(
                f"{len(scen['seeds'])} seed(s), {scen['telemetry']['events']} events, "
                f"{scen['telemetry']['detection_host_seconds'] / 86_400:.1f} host-days in "
                "detection windows."
            )
            rows = []
            for actor in scen["actors"]:
                if actor["kind"] == "malicious":
                    for aid in actor["expected_analytics"]:
                        hits = [r["detections"].get(aid) for r in actor["runs"]]
                        got = [h for h in hits if h is not None]
                        caught = sum(h["detected"] for h in got)
                        lat = [h["latency_s"] for h in got if h["latency_s"] is not None]
                        rows.append(
                            [
                                actor["actor_id"],
                                "malicious",
                                aid,
                                f"caught {caught}/{len(got)}" if got else "not scored",
                                f"{min(lat):.0f}" if lat else "n/a",
                            ]
                        )
                else:
                    fa = sum(sum(r["false_alerts"].values()) for r in actor["runs"])
                    traps = ", ".join(actor["trap_for"]) or "-"
                    rows.append([actor["actor_id"], "benign", traps, f"{fa} false alerts", ""])
            out += [
                "",
                tabulate(
                    rows,
                    headers=("actor", "kind", "analytic / trap for", "outcome", "best latency s"),
                    tablefmt="github",
                ),
            ]
            stats = [
                [
                    aid,
                    m["status"],
                    fmt_rate(m["detection_rate"]),
                    fmt_rate(m["false_alerts_per_100_host_days"], 1),
                    fmt_bytes(m["bytes_before_alert"]["median"]),
                ]
                for aid, m in scen["analytics"].items()
                if m["status"] != "no_detector"
            ]
            if stats:
                out += [
                    "",
                    tabulate(
                        stats,
                        headers=(
                            "analytic",
                            "status",
                            "detection rate",
                            "false alerts /100 host-days",
                            "bytes before alert",
                        ),
                        tablefmt="github",
                    ),
                ]
        return "\n".join(out) + "\n"
