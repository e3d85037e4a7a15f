"""ATT&CK Navigator layer (layer format 4.5) rendered from the canonical results document.

One technique object per ATT&CK technique that an analytic of the run covers: the analytic's own
techniques (:data:`harness.analytics.ANALYTICS`, as MITRE maps them) together with the
techniques its detector declares (``Detector.techniques``). Analytics with no detector in the run
are left out: nothing was measured for them.

**Score and colour.** A technique's score is 100 x its detection rate measured against ground
truth: of the malicious actor-runs (actor x seed) whose techniques include it or one of its
sub-techniques and on which an analytic covering it was scored, the share that at least one of
those analytics detected (Wilson 95% interval in the metadata). The rate is taken from the
actors, not from the analytic as a whole, so a technique a detector merely declares (AN1225
declares ``T1071.001``) is not painted green by actors that used another one (DNS tunnels,
``T1071.004``). The gradient runs red (0) through yellow (50) to green (100). A technique with no
such actor-run (not exercised by the scenarios run, or its analytics not evaluable under the
profile, or every run an error) gets no score, a grey colour and a comment starting with "not
evaluable": an undefined rate is never drawn as a 0.

**Metadata**: the technique's rate with counts, the actors that exercised it and the latency of
their first alerts; then, divider-separated, per covering analytic: analytic id and title,
detector id, status, detection rate with its Wilson 95% interval and counts, precision, false
alerts per 100 host-days with the Poisson interval, event-time latency median / p95 and bytes
before the first alert median / p95.

The layer format is defined by MITRE's ``layers/spec/v4.5/layerformat.md`` in the
``mitre-attack/attack-navigator`` repository, which publishes no JSON Schema; the tests validate
against one written from that document (``tests/harness/data/navigator-layer-4.5.schema.json``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.analytics import ANALYTICS, AnalyticId, TechniqueId, technique_id
from harness.errors import HarnessError
from harness.registry import DETECTORS
from harness.reporters._table import fmt_bytes
from harness.stats import percentile, wilson_interval

__all__ = [
    "ATTACK_VERSION",
    "DOMAIN",
    "LAYER_VERSION",
    "NAVIGATOR_VERSION",
    "NOT_EVALUABLE_COLOR",
    "TechniqueFigures",
    "analytic_techniques",
    "build_layer",
    "technique_figures",
]

#: Major ATT&CK release the analytics are taken from (ANALYTICS.md: release 19.1).
ATTACK_VERSION = "19"
#: Navigator release the layer is written for (format 4.5 needs at least 4.9.0).
NAVIGATOR_VERSION = "5.2.0"
LAYER_VERSION = "4.5"
DOMAIN = "enterprise-attack"
#: Red at 0 %, yellow at 50 %, green at 100 % detected.
GRADIENT = ("#ff6666", "#ffe766", "#8ec843")
NOT_EVALUABLE_COLOR = "#bdbdbd"


def analytic_techniques(
    doc: Mapping[str, Any], declared: Mapping[str, Sequence[str]] | None = None
) -> dict[str, tuple[TechniqueId, ...]]:
    """Per analytic with a detector in the run, the techniques it covers: MITRE's mapping plus
    the detector's declared techniques. ``declared`` (detector id to technique ids) overrides the
    registry look-up, for detectors that are not registered."""
    out: dict[str, tuple[TechniqueId, ...]] = {}
    for aid, summary in doc["analytics"].items():
        det_id = summary.get("detector")
        if det_id is None:
            continue
        ids: list[str] = []
        info = ANALYTICS.get(AnalyticId(aid))
        if info is not None:
            ids += info.techniques
        if declared is not None and det_id in declared:
            ids += declared[det_id]
        elif det_id in DETECTORS.names():
            ids += DETECTORS.load(det_id).techniques
        out[aid] = tuple(technique_id(t) for t in sorted(set(ids)))
    return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,.1f}{unit}"


def _rate_text(rate: Mapping[str, Any], *, percent: bool) -> str:
    if rate["value"] is None:
        return "n/a"
    fmt = _pct if percent else _num
    return f"{fmt(rate['value'])} (95% CI {fmt(rate['ci_low'])} to {fmt(rate['ci_high'])})"


def _analytic_metadata(aid: str, a: Mapping[str, Any]) -> list[dict[str, str]]:
    c = a["counts"]
    status = a["status"]
    if a["missing_fields"] and status == "not_evaluable":
        status += " (missing " + ", ".join(a["missing_fields"]) + ")"
    if c["errors"]:
        status += f" ({c['errors']} of {c['runs']} runs raised)"
    rate = _rate_text(a["detection_rate"], percent=True)
    if a["detection_rate"]["value"] is not None:
        rate += f", {c['detected_actors']}/{c['expected_actors']} actor-runs"
    false = _rate_text(a["false_alerts_per_100_host_days"], percent=False)
    if a["evaluable"]:
        false += f", {c['false_alerts']} false alerts over {c['host_days']:.1f} host-days"
    lat = a["latency_s"]
    before = a["bytes_before_alert"]
    return [
        {"name": "analytic", "value": f"{aid} {a['title']}"},
        {"name": "detector", "value": str(a["detector"])},
        {"name": "status", "value": status},
        {"name": "detection rate", "value": rate},
        {"name": "precision", "value": _rate_text(a["precision"], percent=True)},
        {"name": "false alerts per 100 host-days", "value": false},
        {
            "name": "latency median / p95",
            "value": f"{_num(lat['median'], ' s')} / {_num(lat['p95'], ' s')}",
        },
        {
            "name": "bytes before alert median / p95",
            "value": f"{fmt_bytes(before['median'])} / {fmt_bytes(before['p95'])}",
        },
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class TechniqueFigures:
    """Ground-truth figures of one technique: the malicious actor-runs that exercised it (or a
    sub-technique of it) and that an analytic covering it was expected to fire on."""

    actor_runs: int
    detected: int
    actors: tuple[str, ...]
    latencies_s: tuple[float, ...]
    bytes_before_alert: tuple[int, ...]

    @property
    def rate(self) -> tuple[float, float, float] | None:
        return wilson_interval(self.detected, self.actor_runs)


def technique_figures(
    doc: Mapping[str, Any], tid: str, analytics: Sequence[str]
) -> TechniqueFigures:
    """Detection of ``tid`` over the run: an actor-run counts when the actor's ground-truth
    techniques include ``tid`` or one of its sub-techniques and at least one of ``analytics``
    was scored on it; it is detected when any of them fired on it. Latency and bytes are those
    of the earliest of those analytics' first alerts."""
    runs = detected = 0
    actors: set[str] = set()
    latencies: list[float] = []
    before: list[int] = []
    for scenario in doc["scenarios"].values():
        for actor in scenario["actors"]:
            if actor["kind"] != "malicious" or not any(
                t == tid or t.startswith(tid + ".") for t in actor["techniques"]
            ):
                continue
            for run in actor["runs"]:
                scored = [run["detections"][a] for a in analytics if a in run["detections"]]
                if not scored:
                    continue
                runs += 1
                actors.add(actor["actor_id"])
                hits = [d for d in scored if d["detected"]]
                if not hits:
                    continue
                detected += 1
                first = min(hits, key=lambda d: d["first_alert_ns"])
                if first["latency_s"] is not None:
                    latencies.append(first["latency_s"])
                if first["bytes_before_alert"] is not None:
                    before.append(first["bytes_before_alert"])
    return TechniqueFigures(
        actor_runs=runs,
        detected=detected,
        actors=tuple(sorted(actors)),
        latencies_s=tuple(latencies),
        bytes_before_alert=tuple(before),
    )


def _technique(
    tid: TechniqueId, aids: Sequence[str], doc: Mapping[str, Any], parents: set[str]
) -> dict[str, Any]:
    analytics = doc["analytics"]
    figures = technique_figures(doc, tid, aids)
    rate = figures.rate
    metadata: list[dict[str, Any]] = []
    if rate is not None:
        metadata += [
            {
                "name": "technique detection rate",
                "value": f"{_pct(rate[0])} (95% CI {_pct(rate[1])} to {_pct(rate[2])}), "
                f"{figures.detected}/{figures.actor_runs} actor-runs",
            },
            {"name": "actors exercising it", "value": ", ".join(figures.actors)},
            {
                "name": "technique latency median / p95",
                "value": f"{_num(percentile(figures.latencies_s, 50), ' s')} / "
                f"{_num(percentile(figures.latencies_s, 95), ' s')}",
            },
        ]
    for aid in aids:
        if metadata:
            metadata.append({"divider": True})
        metadata += _analytic_metadata(aid, analytics[aid])
    entry: dict[str, Any] = {
        "techniqueID": tid,
        "enabled": True,
        "metadata": metadata,
        "links": [
            {
                "label": f"ATT&CK {tid}",
                "url": "https://attack.mitre.org/techniques/" + tid.replace(".", "/") + "/",
            }
        ],
        "showSubtechniques": tid in parents,
    }
    if rate is not None:
        entry["score"] = round(100 * rate[0], 2)
        entry["color"] = ""
        entry["comment"] = (
            f"{_pct(rate[0])} of {figures.actor_runs} actor-runs exercising {tid} detected by "
            + " or ".join(aids)
            + f" (95% CI {_pct(rate[1])} to {_pct(rate[2])})"
        )
        return entry
    reasons = []
    for aid in aids:
        a = analytics[aid]
        if a["status"] == "not_evaluable":
            why = "not evaluable, missing " + (", ".join(a["missing_fields"]) or "fields")
        elif a["status"] == "error":
            why = "every run raised"
        else:
            why = "scored on no actor exercising it"
        reasons.append(f"{aid} {why}")
    entry["color"] = NOT_EVALUABLE_COLOR
    entry["comment"] = (
        f"not evaluable: no malicious actor in the scenarios run exercised {tid} where a "
        "covering analytic could be scored (" + "; ".join(reasons) + ")"
    )
    return entry


def build_layer(
    doc: Mapping[str, Any], *, declared: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    """The Navigator layer of a results document (see the module docstring)."""
    try:
        by_analytic = analytic_techniques(doc, declared)
        by_technique: dict[TechniqueId, list[str]] = {}
        for aid, tids in by_analytic.items():
            for tid in tids:
                by_technique.setdefault(tid, []).append(aid)
        parents = {t.split(".", 1)[0] for t in by_technique if "." in t}
        techniques = [
            _technique(tid, sorted(aids), doc, parents)
            for tid, aids in sorted(by_technique.items())
        ]
        run = doc["run"]
    except KeyError as exc:
        raise HarnessError(f"results document lacks {exc.args[0]!r}: cannot build a layer") from exc
    scenarios = ", ".join(s["id"] for s in run["scenarios"])
    return {
        "name": "egress-harness detection coverage",
        "versions": {
            "attack": ATTACK_VERSION,
            "navigator": NAVIGATOR_VERSION,
            "layer": LAYER_VERSION,
        },
        "domain": DOMAIN,
        "description": (
            f"Detection rate per technique measured by egress-harness {doc['harness_version']} "
            f"over {len(run['seeds'])} seeds of {scenarios} ({run['profile']} profile). "
            "Score = 100 x the share of malicious actor-runs exercising the technique that an "
            "analytic covering it detected; grey = not evaluable."
        ),
        "sorting": 3,
        "layout": {
            "layout": "side",
            "showID": True,
            "showName": True,
            "showAggregateScores": False,
            "countUnscored": False,
            "aggregateFunction": "max",
            "expandedSubtechniques": "annotated",
        },
        "hideDisabled": False,
        "techniques": techniques,
        "gradient": {"colors": list(GRADIENT), "minValue": 0, "maxValue": 100},
        "legendItems": [
            {"label": "0% of expected actors detected", "color": GRADIENT[0]},
            {"label": "50% detected", "color": GRADIENT[1]},
            {"label": "100% detected", "color": GRADIENT[2]},
            {"label": "not evaluable (no rate)", "color": NOT_EVALUABLE_COLOR},
        ],
        "metadata": [
            {"name": "harness version", "value": str(doc["harness_version"])},
            {"name": "config digest", "value": str(run["config_digest"])},
            {"name": "profile", "value": str(run["profile"])},
            {"name": "seeds", "value": ", ".join(str(s) for s in run["seeds"])},
            {"name": "scenarios", "value": scenarios},
        ],
        "showTacticRowBackground": False,
        "selectTechniquesAcrossTactics": True,
        "selectSubtechniquesWithParent": False,
        "selectVisibleTechniques": False,
    }
