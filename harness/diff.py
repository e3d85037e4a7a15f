"""Differences between two results documents: what a change to a detector did.

Per analytic: detection rate, false-alert rate, latency and bytes before alert, old and new.
Per malicious actor, seed and analytic: detections gained and lost. Per benign actor, seed and
analytic: false alerts that appeared or went away. Per detected actor: latency changes beyond a
threshold. Also the tunables and scenario overrides that differ between the two runs, and the
scenarios and seeds only one of them ran (their actors are not compared).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

from harness.reporters._table import fmt_bytes

__all__ = ["DiffOptions", "diff_results", "diff_text"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffOptions:
    """A latency change is reported when it exceeds both thresholds."""

    latency_pct: float = 25.0
    latency_min_s: float = 1.0


_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("detection_rate", "detection_rate", "value"),
    ("false_alerts_per_100_host_days", "false_alerts_per_100_host_days", "value"),
    ("precision", "precision", "value"),
    ("latency_median_s", "latency_s", "median"),
    ("latency_p95_s", "latency_s", "p95"),
    ("bytes_before_alert_median", "bytes_before_alert", "median"),
)
_COUNTS = ("expected_actors", "detected_actors", "false_alerts", "errors")


def _pair(old: float | None, new: float | None) -> dict[str, float | None]:
    delta = None if old is None or new is None else new - old
    return {"old": old, "new": new, "delta": delta}


def _analytics(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for aid in sorted(set(old["analytics"]) | set(new["analytics"])):
        a, b = old["analytics"].get(aid), new["analytics"].get(aid)
        entry: dict[str, Any] = {
            "status": {
                "old": a["status"] if a else None,
                "new": b["status"] if b else None,
            },
            "detector": {"old": a["detector"] if a else None, "new": b["detector"] if b else None},
        }
        for name, section, part in _FIGURES:
            entry[name] = _pair(a[section][part] if a else None, b[section][part] if b else None)
        for name in _COUNTS:
            entry[name] = _pair(a["counts"][name] if a else None, b["counts"][name] if b else None)
        out[aid] = entry
    return out


def _config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    o = {d["id"]: d for d in old["run"]["detectors"]}
    n = {d["id"]: d for d in new["run"]["detectors"]}
    for det in sorted(set(o) | set(n)):
        if det not in o or det not in n:
            changes.append(
                {
                    "kind": "detector",
                    "target": det,
                    "name": "",
                    "old": "present" if det in o else "absent",
                    "new": "present" if det in n else "absent",
                }
            )
            continue
        to, tn = o[det]["tunables"], n[det]["tunables"]
        for name in sorted(set(to) | set(tn)):
            if to.get(name) != tn.get(name):
                changes.append(
                    {
                        "kind": "tunable",
                        "target": det,
                        "name": name,
                        "old": to.get(name),
                        "new": tn.get(name),
                    }
                )
    so = {s["id"]: s["overrides"] for s in old["run"]["scenarios"]}
    sn = {s["id"]: s["overrides"] for s in new["run"]["scenarios"]}
    for scen in sorted(set(so) & set(sn)):
        for name in sorted(set(so[scen]) | set(sn[scen])):
            if so[scen].get(name) != sn[scen].get(name):
                changes.append(
                    {
                        "kind": "knob",
                        "target": scen,
                        "name": name,
                        "old": so[scen].get(name),
                        "new": sn[scen].get(name),
                    }
                )
    if old["run"]["profile"] != new["run"]["profile"]:
        changes.append(
            {
                "kind": "profile",
                "target": "run",
                "name": "profile",
                "old": old["run"]["profile"],
                "new": new["run"]["profile"],
            }
        )
    return changes


_Key = tuple[str, str, int, str]  # scenario, actor, seed, analytic


def _actor_runs(doc: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], Any]]:
    for scen_id, scen in doc["scenarios"].items():
        for actor in scen["actors"]:
            for run in actor["runs"]:
                yield scen_id, actor, run


def _detections(doc: Mapping[str, Any]) -> dict[_Key, Mapping[str, Any]]:
    return {
        (scen_id, actor["actor_id"], run["seed"], aid): hit
        for scen_id, actor, run in _actor_runs(doc)
        if actor["kind"] == "malicious"
        for aid, hit in run["detections"].items()
    }


def _false_alerts(doc: Mapping[str, Any]) -> dict[_Key, int]:
    return {
        (scen_id, actor["actor_id"], run["seed"], aid): n
        for scen_id, actor, run in _actor_runs(doc)
        for aid, n in run["false_alerts"].items()
    }


def _seeds(doc: Mapping[str, Any]) -> set[tuple[str, int]]:
    return {(sid, seed) for sid, scen in doc["scenarios"].items() for seed in scen["seeds"]}


def _row(key: _Key, **extra: Any) -> dict[str, Any]:
    scen, actor, seed, aid = key
    return {"scenario": scen, "actor": actor, "seed": seed, "analytic": aid, **extra}


def diff_results(
    old: Mapping[str, Any], new: Mapping[str, Any], options: DiffOptions | None = None
) -> dict[str, Any]:
    """The differences between two results documents, as a JSON-ready dictionary."""
    opts = options or DiffOptions()
    common = _seeds(old) & _seeds(new)
    det_old, det_new = _detections(old), _detections(new)
    gained, lost, latency = [], [], []
    for key in sorted(set(det_old) & set(det_new)):
        if (key[0], key[2]) not in common:
            continue
        a, b = det_old[key], det_new[key]
        if b["detected"] and not a["detected"]:
            gained.append(
                _row(key, latency_s=b["latency_s"], bytes_before_alert=b["bytes_before_alert"])
            )
        elif a["detected"] and not b["detected"]:
            lost.append(
                _row(key, latency_s=a["latency_s"], bytes_before_alert=a["bytes_before_alert"])
            )
        elif a["detected"] and b["detected"]:
            lo, ln = a["latency_s"], b["latency_s"]
            if lo is None or ln is None:
                continue
            change = ln - lo
            pct = None if lo == 0 else 100.0 * change / lo
            beyond_pct = pct is None or abs(pct) > opts.latency_pct
            if abs(change) > opts.latency_min_s and beyond_pct:
                latency.append(_row(key, old_s=lo, new_s=ln, delta_s=change, delta_pct=pct))
    fa_old, fa_new = _false_alerts(old), _false_alerts(new)
    new_fa, cleared_fa = [], []
    for key in sorted(set(fa_old) | set(fa_new)):
        if (key[0], key[2]) not in common:
            continue
        n_old, n_new = fa_old.get(key, 0), fa_new.get(key, 0)
        if n_new > n_old:
            new_fa.append(_row(key, old=n_old, new=n_new))
        elif n_new < n_old:
            cleared_fa.append(_row(key, old=n_old, new=n_new))
    only_old = sorted(_seeds(old) - common)
    only_new = sorted(_seeds(new) - common)
    return {
        "old": {"config_digest": old["run"]["config_digest"], "seeds": old["run"]["seeds"]},
        "new": {"config_digest": new["run"]["config_digest"], "seeds": new["run"]["seeds"]},
        "config_changes": _config_changes(old, new),
        "not_compared": {
            "only_old": [{"scenario": s, "seed": seed} for s, seed in only_old],
            "only_new": [{"scenario": s, "seed": seed} for s, seed in only_new],
        },
        "analytics": _analytics(old, new),
        "gained_detections": gained,
        "lost_detections": lost,
        "new_false_alerts": new_fa,
        "cleared_false_alerts": cleared_fa,
        "latency_changes": latency,
        "thresholds": {"latency_pct": opts.latency_pct, "latency_min_s": opts.latency_min_s},
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _change(p: Mapping[str, Any], digits: int = 2, *, size: bool = False) -> str:
    def show(value: float | None) -> str:
        return fmt_bytes(value) if size else _fmt(value, digits)

    if p["old"] == p["new"]:
        return show(p["new"])
    text = f"{show(p['old'])} -> {show(p['new'])}"
    if p["delta"] is not None and not size:
        text += f" ({p['delta']:+.{digits}f})"
    return text


def diff_text(d: Mapping[str, Any]) -> str:
    """The diff as plain-text tables."""
    out = [f"old {d['old']['config_digest'][:19]}  new {d['new']['config_digest'][:19]}"]
    if d["config_changes"]:
        out += ["", "Configuration changes"]
        rows = [
            [c["kind"], c["target"] + (f".{c['name']}" if c["name"] else ""), c["old"], c["new"]]
            for c in d["config_changes"]
        ]
        out.append(tabulate(rows, headers=("kind", "name", "old", "new"), tablefmt="plain"))
    rows = []
    for aid, a in d["analytics"].items():
        if a["status"]["old"] == a["status"]["new"] == "no_detector":
            continue
        status = a["status"]["new"]
        if a["status"]["old"] != status:
            status = f"{a['status']['old']} -> {status}"
        rows.append(
            [
                aid,
                status,
                _change(a["detection_rate"]),
                _change(a["false_alerts_per_100_host_days"], 1),
                _change(a["latency_median_s"], 1),
                _change(a["latency_p95_s"], 1),
                _change(a["bytes_before_alert_median"], size=True),
            ]
        )
    out += [
        "",
        "Analytics (old -> new)",
        tabulate(
            rows,
            headers=(
                "analytic",
                "status",
                "detection rate",
                "false alerts /100 host-days",
                "latency median s",
                "latency p95 s",
                "bytes before alert",
            ),
            tablefmt="plain",
            disable_numparse=True,
        ),
    ]

    def section(title: str, items: list[Mapping[str, Any]], cols: list[str]) -> None:
        out.extend(["", f"{title}: {len(items)}"])
        if items:
            table = [[item[c] if item[c] is not None else "n/a" for c in cols] for item in items]
            out.append(tabulate(table, headers=cols, tablefmt="plain", floatfmt=".1f"))

    base = ["analytic", "scenario", "actor", "seed"]
    section("Lost detections", d["lost_detections"], [*base, "latency_s", "bytes_before_alert"])
    section("Gained detections", d["gained_detections"], [*base, "latency_s", "bytes_before_alert"])
    section("New false alerts", d["new_false_alerts"], [*base, "old", "new"])
    section("Cleared false alerts", d["cleared_false_alerts"], [*base, "old", "new"])
    t = d["thresholds"]
    section(
        f"Latency changes beyond {t['latency_pct']:g}% and {t['latency_min_s']:g} s",
        d["latency_changes"],
        [*base, "old_s", "new_s", "delta_s"],
    )
    nc = d["not_compared"]
    for side in ("only_old", "only_new"):
        if nc[side]:
            runs = ", ".join(f"{r['scenario']} seed {r['seed']}" for r in nc[side])
            out += ["", f"not compared ({side.replace('_', ' ')}): {runs}"]
    return "\n".join(out) + "\n"
