"""Step-summary reporter: a short GitHub-flavoured Markdown page for a CI job's summary.

GitHub Actions shows the Markdown appended to ``$GITHUB_STEP_SUMMARY`` on the run's page
(GitLab and others can publish the same file as an artifact). The page leads with the gate's
verdict and its violations when a gate ran, then one row per analytic with its figures and,
given a baseline, the change against it. As a reporter (``summary.md`` in the run folder) it
renders the figures alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from harness.reporters._table import fmt_bytes, fmt_rate

if TYPE_CHECKING:
    from harness.gate import GateReport

__all__ = ["SummaryReporter", "render_summary"]


def _cell(text: object) -> str:
    """A table cell: pipes escaped, one line."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _delta(now: float | None, then: float | None, fmt: str, unit: str = "") -> str:
    if now is None or then is None:
        return ""
    diff = now - then
    if abs(diff) < 1e-9:
        return " (=)"
    return f" ({diff:+{fmt}}{unit})"


def _rows(doc: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[str]:
    head = (
        "| analytic | detector | status | detection rate [95% CI] | false alerts /100 host-days "
        "| latency p95 s | bytes before alert (median) |"
    )
    rows = [head, "|" + "---|" * 7]
    for aid, a in doc["analytics"].items():
        b = baseline["analytics"].get(aid) if baseline is not None else None
        c = a["counts"]
        rate = fmt_rate(a["detection_rate"])
        fa = fmt_rate(a["false_alerts_per_100_host_days"], 1)
        p95 = a["latency_s"]["p95"]
        lat = "n/a" if p95 is None else f"{p95:.1f}"
        size = fmt_bytes(a["bytes_before_alert"]["median"])
        if a["detection_rate"]["value"] is not None:
            rate += f" ({c['detected_actors']}/{c['expected_actors']})"
        if a["evaluable"]:
            fa += f" ({c['false_alerts']})"
        if b is not None:
            rate += _delta(a["detection_rate"]["value"], b["detection_rate"]["value"], ".2f")
            fa += _delta(
                a["false_alerts_per_100_host_days"]["value"],
                b["false_alerts_per_100_host_days"]["value"],
                ".1f",
            )
            lat += _delta(p95, b["latency_s"]["p95"], ".1f")
        status = a["status"]
        if status == "not_evaluable" and a["missing_fields"]:
            status += " (missing " + ", ".join(a["missing_fields"]) + ")"
        cells = (aid, a["detector"] or "-", status, rate, fa, lat, size)
        rows.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return rows


def render_summary(
    doc: Mapping[str, Any],
    *,
    gate: GateReport | None = None,
    baseline: Mapping[str, Any] | None = None,
) -> str:
    """The step-summary Markdown for ``doc`` (with a gate's verdict and a baseline's deltas)."""
    run = doc["run"]
    out: list[str] = []
    if gate is None:
        out.append("## egress-harness results")
    else:
        verdict = "PASS :white_check_mark:" if gate.passed else "FAIL :x:"
        out.append(f"## egress-harness gate: {verdict}")
        out += ["", gate.verdict().removeprefix("gate: ")]
        if gate.violations:
            out += ["", "| analytic | rule | observed | limit | detail |", "|---|---|---|---|---|"]
            for v in gate.violations:
                cells = (v.analytic, f"`{v.rule}`", v.observed, v.limit, v.detail)
                out.append("| " + " | ".join(_cell(x) for x in cells) + " |")
        if gate.notes:
            out += ["", "<details><summary>Notes</summary>", ""]
            out += [f"- {_cell(n)}" for n in gate.notes]
            out += ["", "</details>"]
    out += [
        "",
        f"Profile `{run['profile']}`, seeds {', '.join(map(str, run['seeds']))}, "
        f"{len(doc['scenarios'])} scenarios, harness {doc['harness_version']}, "
        f"configuration `{run['config_digest'][:19]}`"
        + (" (changes against the baseline in brackets)" if baseline is not None else "")
        + ".",
        "",
    ]
    out += _rows(doc, baseline)
    return "\n".join(out) + "\n"


class SummaryReporter:
    id: ClassVar[str] = "summary"
    filename: ClassVar[str | None] = "summary.md"

    def render(self, doc: Mapping[str, Any]) -> str:
        return render_summary(doc)
