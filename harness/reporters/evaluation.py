"""Console text of ``readiness`` and ``evaluate``: rendered from their documents and alert
records (:mod:`harness.ingest.evaluate`), so what is printed is what is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tabulate import tabulate

from harness.reporters._table import fmt_bytes

__all__ = ["alerts_text", "inputs_text", "readiness_text", "scoring_text"]


def _fields(values: Sequence[str]) -> str:
    return ", ".join(values) or "-"


def inputs_text(inputs: Sequence[Mapping[str, Any]]) -> str:
    """One line per input, then its warnings and errors."""
    rows = []
    notes: list[str] = []
    for i in inputs:
        rows.append(
            [
                i["path"],
                i["kind"] or "?",
                i["events"],
                i["skipped_records"],
                "unreadable"
                if i["error"] and not i["events"]
                else ("stopped" if i["error"] else "ok"),
            ]
        )
        if i["error"]:
            notes.append(f"  {i['path']}: {i['error']}")
        if i["warnings"]:
            notes.append(
                f"  {i['path']}: {i['warnings']} warning(s), {i['skipped_records']} record(s) "
                "skipped; first:"
            )
            notes += [f"    {w}" for w in i["first_warnings"]]
        if i.get("out_of_order"):
            notes.append(f"  {i['path']}: {i['out_of_order']} event(s) far out of time order")
    table = tabulate(
        rows, headers=("input", "format", "events", "skipped", "status"), tablefmt="simple"
    )
    return table + ("\n" + "\n".join(notes) if notes else "") + "\n"


def readiness_text(doc: Mapping[str, Any]) -> str:
    """The per-analytic readiness table with fields present and missing, and the join rate."""
    rows = []
    for aid, a in doc["analytics"].items():
        rows.append(
            [
                aid,
                a["verdict"],
                a["detector"] or "(no detector)",
                _fields(a["present"]),
                _fields(a["missing_required"]),
                _fields(a["missing_recommended"]),
            ]
        )
    lines = [
        "fields present: " + _fields(doc["fields"]),
        _join_line(doc["join"]),
        "",
        tabulate(
            rows,
            headers=(
                "analytic",
                "verdict",
                "detector",
                "present",
                "missing (required)",
                "missing (recommended)",
            ),
            tablefmt="simple",
        ),
    ]
    return "\n".join(lines) + "\n"


def _join_line(join: Mapping[str, Any]) -> str:
    flows = join["flows"]
    if not flows:
        text = "join: no flows"
    else:
        rate = join["rate"]
        text = f"flows attributed to a process: {join['attributed_flows']}/{flows} ({rate:.1%})"
        if join["endpoint_and_network"]:
            text += " after joining endpoint connections to network flows"
    if join.get("note"):
        text += f" ({join['note']})"
    return text


def alerts_text(alerts: Sequence[Mapping[str, Any]]) -> str:
    """Every alert: time, analytic, score, entity and reason (and true/false when scored)."""
    if not alerts:
        return "no alerts\n"
    scored = any("true_alert" in a for a in alerts)
    rows = []
    for a in alerts:
        e = a["entity"]
        who = e["host"] or "?"
        if e["process_name"] or e["process_guid"]:
            who += f" {e['process_name'] or e['process_guid']}"
        where = ""
        if e["dst_ip"]:
            where = f"{e['dst_ip']}" + (f":{e['dst_port']}" if e["dst_port"] is not None else "")
        if e["domain"]:
            where = f"{where} ({e['domain']})" if where else e["domain"]
        row = [a["time"][:23] + "Z", a["analytic"], f"{a['score']:.2f}", who, where, a["reason"]]
        if scored:
            row.append(("TRUE " + ",".join(a["actors"])) if a["true_alert"] else "false")
        rows.append(row)
    headers = ["time", "analytic", "score", "host / process", "destination", "reason"]
    if scored:
        headers.append("label")
    return (
        tabulate(rows, headers=headers, tablefmt="simple", maxcolwidths=[None] * 5 + [70, None])
        + "\n"
    )


def scoring_text(doc: Mapping[str, Any]) -> str:
    """Per analytic: status, readiness and alerts, and (with ground truth) the scores."""
    rows = []
    results = doc.get("results")
    for aid, a in doc["analytics"].items():
        row = [aid, a["detector"] or "-", a["status"], a["readiness"], a["alerts"]]
        if results is not None:
            r = results["analytics"][aid]
            c = r["counts"]
            rate = r["detection_rate"]["value"]
            row += [
                "n/a"
                if rate is None
                else f"{rate:.2f} ({c['detected_actors']}/{c['expected_actors']})",
                c["false_alerts"],
                "n/a" if r["latency_s"]["median"] is None else f"{r['latency_s']['median']:.1f}",
                fmt_bytes(r["bytes_before_alert"]["median"]),
            ]
        rows.append(row)
    headers = ["analytic", "detector", "status", "readiness", "alerts"]
    if results is not None:
        headers += ["detection rate", "false alerts", "latency s (median)", "bytes before alert"]
    return tabulate(rows, headers=headers, tablefmt="simple") + "\n"
