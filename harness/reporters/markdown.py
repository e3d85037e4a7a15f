"""Markdown reporter: the summary table, per-scenario results and per-actor outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from tabulate import tabulate

from harness.reporters._table import HEADERS, fmt_bytes, fmt_rate, summary_rows

__all__ = ["MarkdownReporter"]


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
