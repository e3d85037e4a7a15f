"""HTML reporter: one self-contained, printable page an auditor can read without the harness.

The page is rendered from the results document alone, plus what the installed plugins say about
themselves: each registered detector's required fields (for telemetry readiness), tunable
defaults and the "Known gaps:" section of its module docstring. It holds detection rate and
false-alert charts with 95% intervals, latency and bytes-before-alert distributions, threshold
curves, held-out figures, the scenario and actor catalogue, readiness, known gaps and the run's
provenance; optionally the evasion frontier (:mod:`harness.frontier`).

Nothing is fetched: CSS is inline, charts are inline SVG (:mod:`harness.reporters._svg`), there
is no script, and a Content-Security-Policy forbids every network load. Undefined figures print
as "n/a", never 0. The output is a pure function of its inputs: no clock, no random draw.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, ClassVar

from harness.analytics import ANALYTICS, AnalyticId
from harness.errors import HarnessError
from harness.fields import PROFILE_FIELDS, Field, Profile
from harness.registry import DETECTORS
from harness.reporters._svg import (
    CurvePoint,
    IntervalRow,
    StripRow,
    curve_chart,
    fmt_seconds,
    interval_chart,
    strip_chart,
)
from harness.reporters._table import fmt_bytes, fmt_rate

__all__ = [
    "DetectorFacts",
    "HtmlReporter",
    "detector_facts",
    "known_gaps",
    "render_html",
    "reproduce_command",
]

NA = "n/a"
_KNOWN_GAPS = re.compile(r"^[ \t]*Known gaps:[ \t]*$", re.MULTILINE)
_BULLET = re.compile(r"^[*\-•]\s+")
_LITERAL = re.compile(r"``(.+?)``")


def known_gaps(docstring: str | None) -> list[str]:
    """The items of the "Known gaps:" section at the end of a module docstring (bullets joined
    across their continuation lines); empty if there is no such section."""
    if not docstring:
        return []
    match = _KNOWN_GAPS.search(docstring)
    if match is None:
        return []
    items: list[str] = []
    fresh = True
    for raw in docstring[match.end() :].splitlines():
        line = raw.strip()
        if not line:
            fresh = True
            continue
        if _BULLET.match(line):
            items.append(_BULLET.sub("", line))
        elif fresh or not items:
            items.append(line)
        else:
            items[-1] += " " + line
        fresh = False
    return items


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectorFacts:
    """What an installed detector declares about itself (``None`` when it is not installed)."""

    id: str
    installed: bool
    required_fields: frozenset[str] = frozenset()
    defaults: Mapping[str, float] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)
    gaps: tuple[str, ...] = ()
    module: str = ""


def detector_facts(detector_id: str) -> DetectorFacts:
    """Load a registered detector's declarations; a detector that is not installed (or fails to
    load) gives ``installed=False`` and the report says so rather than guessing."""
    try:
        cls = DETECTORS.load(detector_id)
    except HarnessError:
        return DetectorFacts(id=detector_id, installed=False)
    module = sys.modules.get(cls.__module__)
    specs = getattr(cls, "tunable_specs", {})
    return DetectorFacts(
        id=detector_id,
        installed=True,
        required_fields=frozenset(str(f) for f in getattr(cls, "required_fields", ())),
        defaults={name: float(s.default) for name, s in specs.items()},
        descriptions={name: str(s.description) for name, s in specs.items()},
        gaps=tuple(known_gaps(module.__doc__ if module else None)),
        module=cls.__module__,
    )


# --------------------------------------------------------------------------- formatting helpers


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _rich(text: str) -> str:
    """Escape ``text`` and show RST ``literals`` as code."""
    return _LITERAL.sub(lambda m: f"<code>{m.group(1)}</code>", _e(text))


def _num(value: float | None, digits: int = 2) -> str:
    return NA if value is None else f"{value:.{digits}f}"


def _value(value: Any) -> str:
    if value is None:
        return NA
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return f"{value:_}"
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) or "-"
    return str(value)


def _seeds(seeds: Sequence[int]) -> str:
    return ", ".join(map(str, seeds)) or NA


def _tunable(value: float) -> str:
    """A tunable value: whole numbers with thousands separators, others as ``g``."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:g}"


def _rate_counts(rate: Mapping[str, Any], detected: int, expected: int) -> str:
    text = fmt_rate(rate)
    return text if rate["value"] is None else f"{text} ({detected}/{expected})"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


class _Table:
    """A captioned table with header cells scoped to columns; cells are HTML already."""

    def __init__(self, caption: str, headers: Sequence[str], *, numeric: Iterable[int] = ()):
        self.caption = caption
        self.headers = headers
        self.numeric = frozenset(numeric)
        self.rows: list[Sequence[str]] = []

    def add(self, *cells: str) -> None:
        self.rows.append(cells)

    def html(self) -> str:
        head = "".join(f'<th scope="col">{_e(h)}</th>' for h in self.headers)
        body = []
        for row in self.rows:
            cells = []
            for i, cell in enumerate(row):
                cls = ' class="num"' if i in self.numeric else ""
                tag = f'th scope="row"{cls}' if i == 0 else f"td{cls}"
                cells.append(f"<{tag}>{cell}</{tag.split()[0]}>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        if not body:
            span = len(self.headers)
            body.append(f'<tr><td colspan="{span}">none</td></tr>')
        return (
            f"<table><caption>{_e(self.caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


# --------------------------------------------------------------------------- per-actor detail


@dataclass(frozen=True, slots=True, kw_only=True)
class _ActorOutcome:
    scenario: str
    actor: str
    analytic: str
    scored: int
    caught: int
    latencies: tuple[float, ...]
    bytes_before: tuple[int, ...]
    #: Fields the actor's traces need that the run's profile lacks (not scored for that).
    unobservable: tuple[str, ...]


def _unscored(lacking: Sequence[str]) -> str:
    if lacking:
        return "not scored: unobservable without " + ", ".join(lacking)
    return "not scored"


def _actor_outcomes(doc: Mapping[str, Any]) -> list[_ActorOutcome]:
    """Per malicious actor and expected analytic: seeds scored, seeds caught, the latency and
    bytes before alert of each caught seed."""
    out = []
    have = _profile_fields(doc["run"]["profile"])
    for scen_id, scen in doc["scenarios"].items():
        for actor in scen["actors"]:
            if actor["kind"] != "malicious":
                continue
            lacking = tuple(
                f for f in actor["observable_with"] if have is not None and f not in have
            )
            for aid in actor["expected_analytics"]:
                hits = [r["detections"][aid] for r in actor["runs"] if aid in r["detections"]]
                out.append(
                    _ActorOutcome(
                        scenario=scen_id,
                        actor=actor["actor_id"],
                        analytic=aid,
                        scored=len(hits),
                        caught=sum(1 for h in hits if h["detected"]),
                        latencies=tuple(h["latency_s"] for h in hits if h["latency_s"] is not None),
                        bytes_before=tuple(
                            h["bytes_before_alert"]
                            for h in hits
                            if h["bytes_before_alert"] is not None
                        ),
                        unobservable=lacking,
                    )
                )
    return out


# --------------------------------------------------------------------------- sections


def _summary(doc: Mapping[str, Any]) -> str:
    table = _Table(
        "Per-analytic results over the main seeds",
        (
            "analytic",
            "title",
            "detector",
            "status",
            "detection rate [95% CI] (caught/expected)",
            "false alerts /100 host-days [95% CI] (count)",
            "false alerts /1000 benign processes",
            "precision [95% CI]",
            "latency median / p95",
            "bytes before alert median / p95",
        ),
        numeric=(4, 5, 6, 7, 8, 9),
    )
    problems = []
    for aid, a in doc["analytics"].items():
        c = a["counts"]
        status = a["status"].replace("_", " ")
        if a["missing_fields"]:
            status += " (missing " + ", ".join(a["missing_fields"]) + ")"
        if c["errors"]:
            status += f" ({c['errors']} errors)"
        fa = fmt_rate(a["false_alerts_per_100_host_days"], 1)
        if a["false_alerts_per_100_host_days"]["value"] is not None:
            fa += f" ({c['false_alerts']})"
        table.add(
            f'<span id="an-{_e(aid)}">{_e(aid)}</span>',
            _e(a["title"]),
            f"<code>{_e(a['detector'])}</code>" if a["detector"] else "none",
            _e(status),
            _e(_rate_counts(a["detection_rate"], c["detected_actors"], c["expected_actors"])),
            _e(fa),
            _e(fmt_rate(a["false_alerts_per_1000_benign_processes"], 2)),
            _e(fmt_rate(a["precision"])),
            _e(f"{fmt_seconds(a['latency_s']['median'])} / {fmt_seconds(a['latency_s']['p95'])}"),
            _e(
                f"{fmt_bytes(a['bytes_before_alert']['median'])} / "
                f"{fmt_bytes(a['bytes_before_alert']['p95'])}"
            ),
        )
        problems += [f"<li><strong>{_e(aid)}</strong>: {_e(err)}</li>" for err in a["errors"]]
    out = [
        table.html(),
        "<p class=note>Detection rate: share of the malicious actors expected to fire the "
        "analytic that drew a true alert (Wilson 95% interval). False alerts: per 100 host-days "
        "of detection window (Poisson score 95% interval). Latency: first true alert minus actor "
        "start, in event time. n/a: undefined (nothing to divide by), never zero.</p>",
    ]
    if problems:
        out.append(f"<h3>Detector errors</h3><ul>{''.join(problems)}</ul>")
    return "".join(out)


def _rate_chart(doc: Mapping[str, Any]) -> str:
    rows = []
    for aid, a in doc["analytics"].items():
        c = a["counts"]
        r = a["detection_rate"]
        rows.append(
            IntervalRow(
                label=aid,
                value=r["value"],
                low=r["ci_low"],
                high=r["ci_high"],
                text=_rate_counts(r, c["detected_actors"], c["expected_actors"]),
            )
        )
    svg = interval_chart(
        chart_id="chart-detection",
        title="Detection rate per analytic with 95% Wilson intervals",
        desc="; ".join(f"{r.label}: {r.text}" for r in rows),
        rows=rows,
        axis_label="detection rate (share of expected malicious actors caught)",
        x_max=1.0,
    )
    return _figure(svg, "Dot: detection rate; whiskers: 95% Wilson interval across seeds.")


def _false_alert_chart(doc: Mapping[str, Any]) -> str:
    rows = []
    for aid, a in doc["analytics"].items():
        r = a["false_alerts_per_100_host_days"]
        text = fmt_rate(r, 1)
        if r["value"] is not None:
            text += f" ({a['counts']['false_alerts']} alerts)"
        rows.append(
            IntervalRow(label=aid, value=r["value"], low=r["ci_low"], high=r["ci_high"], text=text)
        )
    svg = interval_chart(
        chart_id="chart-false-alerts",
        title="False alerts per 100 host-days per analytic with 95% Poisson intervals",
        desc="; ".join(f"{r.label}: {r.text}" for r in rows),
        rows=rows,
        axis_label="false alerts per 100 host-days of detection window",
    )
    return _figure(svg, "Dot: false-alert rate; whiskers: 95% Poisson score interval.")


def _not_scored(a: Mapping[str, Any]) -> str:
    """Why an analytic has no figures: no detector ran, or it could not be evaluated."""
    if a["status"] == "no_detector":
        return "no detector in the run"
    return "not evaluable: missing " + (", ".join(a["missing_fields"]) or NA)


def _latency(doc: Mapping[str, Any], outcomes: Sequence[_ActorOutcome]) -> str:
    rows = []
    for aid, a in doc["analytics"].items():
        mine = [o for o in outcomes if o.analytic == aid]
        points = tuple(v for o in mine for v in o.latencies)
        missed = sum(o.scored - o.caught for o in mine)
        lat = a["latency_s"]
        text = (
            f"median {fmt_seconds(lat['median'])}, p95 {fmt_seconds(lat['p95'])}; "
            f"{len(points)} caught, {missed} missed"
        )
        rows.append(
            StripRow(
                label=aid,
                points=points,
                median=lat["median"],
                p95=lat["p95"],
                text=text if a["evaluable"] else _not_scored(a),
                empty="n/a (nothing caught)" if a["evaluable"] else f"n/a ({_not_scored(a)})",
            )
        )
    svg = strip_chart(
        chart_id="chart-latency",
        title="Detection latency per analytic (log scale)",
        desc="; ".join(f"{r.label}: {r.text}" for r in rows),
        rows=rows,
        axis_label="first true alert minus actor start (event time, log scale)",
        unit="seconds",
    )
    table = _Table(
        "Latency and bytes before alert per malicious actor and expected analytic",
        (
            "actor",
            "scenario",
            "analytic",
            "caught (seeds)",
            "latency per caught seed",
            "bytes before alert per caught seed",
        ),
        numeric=(3,),
    )
    for o in sorted(outcomes, key=lambda o: (o.analytic, o.scenario, o.actor)):
        table.add(
            _e(o.actor),
            _e(o.scenario),
            _e(o.analytic),
            _e(f"{o.caught}/{o.scored}" if o.scored else _unscored(o.unobservable)),
            _e(", ".join(fmt_seconds(v) for v in o.latencies) or NA),
            _e(", ".join(fmt_bytes(v) for v in o.bytes_before) or NA),
        )
    return (
        _figure(
            svg,
            "Each dot is one actor in one seed that the analytic caught; the solid bar is the "
            "median and the dashed bar the 95th percentile over those points. Values under 1 s "
            "are drawn at 1 s.",
        )
        + table.html()
    )


def _bytes(doc: Mapping[str, Any], outcomes: Sequence[_ActorOutcome]) -> str:
    rows = []
    for aid, a in doc["analytics"].items():
        points = tuple(float(v) for o in outcomes if o.analytic == aid for v in o.bytes_before)
        dist = a["bytes_before_alert"]
        missed = a["counts"]["missed_actor_bytes"]
        rows.append(
            StripRow(
                label=aid,
                points=points,
                median=dist["median"],
                p95=dist["p95"],
                text=(
                    f"median {fmt_bytes(dist['median'])}, p95 {fmt_bytes(dist['p95'])}; "
                    f"uncaught: {fmt_bytes(missed)}"
                    if a["evaluable"]
                    else _not_scored(a)
                ),
                empty="n/a (nothing caught)" if a["evaluable"] else f"n/a ({_not_scored(a)})",
            )
        )
    svg = strip_chart(
        chart_id="chart-bytes",
        title="Bytes moved before the first true alert per analytic (log scale)",
        desc="; ".join(f"{r.label}: {r.text}" for r in rows),
        rows=rows,
        axis_label="bytes the actor moved before the analytic's first true alert (log scale)",
        unit="bytes",
    )
    return _figure(
        svg,
        "Each dot is one caught actor in one seed; bars are the median (solid) and p95 "
        "(dashed). 'Uncaught' on the right is the total the never-caught actors moved.",
    )


def _sweeps(doc: Mapping[str, Any]) -> str:
    out = []
    for aid, a in doc["analytics"].items():
        sweep = a.get("sweep")
        if not sweep:
            continue
        default = sweep["default"]
        points = [
            CurvePoint(
                label=_tunable(p["value"]),
                x=p["false_alerts_per_100_host_days"]["value"],
                x_low=p["false_alerts_per_100_host_days"]["ci_low"],
                x_high=p["false_alerts_per_100_host_days"]["ci_high"],
                y=p["detection_rate"]["value"],
                y_low=p["detection_rate"]["ci_low"],
                y_high=p["detection_rate"]["ci_high"],
                default=p["value"] == default,
            )
            for p in sweep["points"]
        ]
        svg = curve_chart(
            chart_id=f"chart-sweep-{_slug(aid)}",
            title=f"{aid}: detection rate against false alerts as {sweep['tunable']} varies",
            desc="; ".join(
                f"{sweep['tunable']}={p.label}: detection rate {_num(p.y)}, "
                f"false alerts per 100 host-days {_num(p.x, 1)}"
                for p in points
            ),
            points=points,
            x_label="false alerts per 100 host-days",
            y_label="detection rate",
            label_fmt=lambda p: p.label + ("*" if p.default else ""),
        )
        table = _Table(
            f"{aid} threshold sweep of {sweep['tunable']} (default {_tunable(default)}, marked *)",
            (
                sweep["tunable"],
                "detection rate [95% CI]",
                "false alerts /100 host-days",
                "precision",
            ),
            numeric=(0, 1, 2, 3),
        )
        for p in sweep["points"]:
            table.add(
                _e(_tunable(p["value"]) + (" *" if p["value"] == default else "")),
                _e(_rate_counts(p["detection_rate"], p["detected_actors"], p["expected_actors"])),
                _e(
                    fmt_rate(p["false_alerts_per_100_host_days"], 1)
                    + (
                        f" ({p['false_alerts']})"
                        if p["false_alerts_per_100_host_days"]["value"] is not None
                        else ""
                    )
                ),
                _e(fmt_rate(p["precision"])),
            )
        out.append(
            f'<div class="sweep"><h3>{_e(aid)}: <code>{_e(sweep["detector"])}</code> '
            f"{_e(sweep['tunable'])}</h3><p>{_rich(sweep['description'])}</p>"
            f'<div class="pair">'
            + _figure(
                svg,
                "Points in sweep order; whiskers are both 95% intervals; the ringed point "
                "is the default.",
            )
            + table.html()
            + "</div></div>"
        )
    return "".join(out)


_GROUPS = ("main seeds", "held-out seeds", "drawn knobs")


def _held_out(doc: Mapping[str, Any]) -> str:
    held = doc["held_out"]
    seeds = held["seeds"]["analytics"]
    drawn = held["drawn_knobs"]["analytics"] if held["drawn_knobs"] else {}
    rate_rows: list[IntervalRow] = []
    fa_rows: list[IntervalRow] = []
    table = _Table(
        "Main, held-out-seed and drawn-knob figures per analytic",
        (
            "analytic",
            "figures from",
            "detection rate [95% CI] (caught/expected)",
            "false alerts /100 host-days [95% CI]",
            "latency median / p95",
            "bytes before alert median",
        ),
        numeric=(2, 3, 4, 5),
    )
    for aid, a in doc["analytics"].items():
        if a["status"] == "no_detector":
            continue
        main = {
            **a,
            "detected_actors": a["counts"]["detected_actors"],
            "expected_actors": a["counts"]["expected_actors"],
            "false_alerts": a["counts"]["false_alerts"],
        }
        for series, (name, m) in enumerate(
            zip(_GROUPS, (main, seeds.get(aid), drawn.get(aid)), strict=True)
        ):
            label = f"{aid} {name}"
            if m is None:
                rate_rows.append(
                    IntervalRow(
                        label=label, value=None, low=None, high=None, text=NA, series=series
                    )
                )
                fa_rows.append(
                    IntervalRow(
                        label=label, value=None, low=None, high=None, text=NA, series=series
                    )
                )
                table.add(_e(aid), _e(name), NA, NA, NA, NA)
                continue
            r, f = m["detection_rate"], m["false_alerts_per_100_host_days"]
            rate_text = _rate_counts(r, m["detected_actors"], m["expected_actors"])
            rate_rows.append(
                IntervalRow(
                    label=label,
                    value=r["value"],
                    low=r["ci_low"],
                    high=r["ci_high"],
                    text=rate_text,
                    series=series,
                )
            )
            fa_rows.append(
                IntervalRow(
                    label=label,
                    value=f["value"],
                    low=f["ci_low"],
                    high=f["ci_high"],
                    text=fmt_rate(f, 1),
                    series=series,
                )
            )
            table.add(
                _e(aid),
                _e(name),
                _e(rate_text),
                _e(fmt_rate(f, 1) + (f" ({m['false_alerts']})" if f["value"] is not None else "")),
                _e(
                    f"{fmt_seconds(m['latency_s']['median'])} / "
                    f"{fmt_seconds(m['latency_s']['p95'])}"
                ),
                _e(fmt_bytes(m["bytes_before_alert"]["median"])),
            )
    draws = held["drawn_knobs"]["draws"] if held["drawn_knobs"] else []
    intro = (
        f"<p>The detectors were never tuned on these: held-out seeds "
        f"{_e(_seeds(held['seeds']['seeds']))} with the main knob settings, and "
        + (
            f"{len(draws)} knob setting(s) drawn by Hypothesis (seed "
            f"{_e(held['drawn_knobs']['hypothesis_seed'])}) over each scenario's valid range."
            if held["drawn_knobs"]
            else "no drawn knob settings (no scenario in the run publishes a knob strategy)."
        )
        + " A large gap between the main figures and these suggests tuning to the main seeds.</p>"
    )
    rate_svg = interval_chart(
        chart_id="chart-held-rate",
        title="Detection rate: main seeds against held-out seeds and drawn knobs",
        desc="; ".join(f"{r.label}: {r.text}" for r in rate_rows),
        rows=rate_rows,
        axis_label="detection rate",
        x_max=1.0,
        series_names=_GROUPS,
    )
    fa_svg = interval_chart(
        chart_id="chart-held-fa",
        title="False alerts per 100 host-days: main seeds against held-out seeds and drawn knobs",
        desc="; ".join(f"{r.label}: {r.text}" for r in fa_rows),
        rows=fa_rows,
        axis_label="false alerts per 100 host-days",
        series_names=_GROUPS,
    )
    draw_table = _Table("Drawn knob settings", ("scenario", "seed", "overrides"))
    for d in draws:
        draw_table.add(
            _e(d["scenario"]),
            _e(d["seed"]),
            _e(", ".join(f"{k}={_value(v)}" for k, v in sorted(d["overrides"].items())) or "-"),
        )
    return (
        intro
        + _figure(rate_svg, "Circle: main seeds; square: held-out seeds; diamond: drawn knobs.")
        + _figure(fa_svg, "Circle: main seeds; square: held-out seeds; diamond: drawn knobs.")
        + table.html()
        + (draw_table.html() if draws else "")
    )


def _actor_outcome_text(actor: Mapping[str, Any], have: frozenset[str] | None) -> str:
    parts = []
    if actor["kind"] == "malicious":
        lacking = [f for f in actor["observable_with"] if have is not None and f not in have]
        for aid in actor["expected_analytics"]:
            hits = [r["detections"][aid] for r in actor["runs"] if aid in r["detections"]]
            if not hits:
                parts.append(f"{aid}: {_unscored(lacking)}")
                continue
            caught = sum(1 for h in hits if h["detected"])
            lat = [h["latency_s"] for h in hits if h["latency_s"] is not None]
            text = f"{aid}: caught {caught}/{len(hits)}"
            if lat:
                text += f", first after {fmt_seconds(min(lat))}"
            parts.append(text)
    totals: dict[str, int] = {}
    for r in actor["runs"]:
        for aid, n in r["false_alerts"].items():
            totals[aid] = totals.get(aid, 0) + n
    if totals:
        parts += [f"{aid}: {n} false alert(s)" for aid, n in sorted(totals.items())]
    elif actor["kind"] == "benign":
        parts.append("no false alerts")
    return "; ".join(parts) or "-"


def _catalogue(doc: Mapping[str, Any]) -> str:
    out = []
    have = _profile_fields(doc["run"]["profile"])
    overview = _Table(
        "Scenarios of the run",
        ("scenario", "seeds", "events", "host-days in detection windows", "malicious", "benign"),
        numeric=(2, 3, 4, 5),
    )
    for name, scen in doc["scenarios"].items():
        kinds = [a["kind"] for a in scen["actors"]]
        overview.add(
            f'<a href="#scenario-{_slug(name)}">{_e(name)}</a>',
            _e(_seeds(scen["seeds"])),
            _e(f"{scen['telemetry']['events']:_}"),
            _e(f"{scen['telemetry']['detection_host_seconds'] / 86_400:.1f}"),
            _e(kinds.count("malicious")),
            _e(kinds.count("benign")),
        )
    out.append(overview.html())
    for name, scen in doc["scenarios"].items():
        params = ", ".join(
            f"<code>{_e(k)}={_e(_value(v))}</code>" for k, v in sorted(scen["parameters"].items())
        )
        actors = _Table(
            f"Actors of scenario {name}",
            (
                "actor",
                "kind",
                "description",
                "techniques",
                "expected analytics",
                "trap for",
                "observable with",
                "outcome over the seeds",
            ),
        )
        for a in scen["actors"]:
            actors.add(
                _e(a["actor_id"]),
                f'<span class="{_e(a["kind"])}">{_e(a["kind"])}</span>',
                _e(a["description"]),
                _e(_value(a["techniques"])),
                _e(_value(a["expected_analytics"])),
                _e(_value(a["trap_for"])),
                _e(_value(a["observable_with"])),
                _e(_actor_outcome_text(a, have)),
            )
        out.append(
            f'<section class="scenario" aria-labelledby="scenario-{_slug(name)}">'
            f'<h3 id="scenario-{_slug(name)}">Scenario <code>{_e(name)}</code></h3>'
            f"<p>Parameters: {params or 'defaults'}.</p>{actors.html()}</section>"
        )
    return "".join(out)


def _profile_fields(profile: str) -> frozenset[str] | None:
    try:
        return frozenset(f.value for f in PROFILE_FIELDS[Profile(profile)])
    except (ValueError, KeyError):
        return None


def _readiness(doc: Mapping[str, Any], facts: Mapping[str, DetectorFacts]) -> str:
    profile = doc["run"]["profile"]
    have = _profile_fields(profile)
    analytics = list(doc["analytics"])
    det_of = {aid: a["detector"] for aid, a in doc["analytics"].items()}
    verdicts = _Table(
        f"Telemetry readiness per analytic under profile {profile}",
        (
            "analytic",
            "detector",
            "detector requires",
            "MITRE minimum fields",
            "missing under the profile",
            "verdict",
        ),
    )
    for aid, a in doc["analytics"].items():
        det = det_of[aid]
        fact = facts.get(det) if det else None
        needed = sorted(fact.required_fields) if fact and fact.installed else None
        info = ANALYTICS.get(AnalyticId(aid))
        minimum = sorted(f.value for f in info.required_fields) if info else []
        if needed is None or have is None:
            missing = a["missing_fields"]
        else:
            missing = sorted(set(needed) - have)
        if not det:
            verdict = "no detector in the run"
        elif missing or a["status"] == "not_evaluable":
            verdict = "not evaluable: missing " + (", ".join(missing) or NA)
        else:
            verdict = "ready"
        verdicts.add(
            _e(aid),
            f"<code>{_e(det)}</code>" if det else "none",
            _e(", ".join(needed))
            if needed is not None
            else NA + " (detector not installed)"
            if det
            else "-",
            _e(", ".join(minimum) or "-"),
            _e(", ".join(missing) or "none"),
            _e(verdict),
        )
    matrix = _Table(
        "Fields each analytic's detector needs against the fields the profile supplies",
        ("field", f"supplied by {profile}", *analytics),
    )
    for f in Field:
        cells = [f"<code>{_e(f.value)}</code>"]
        cells.append(NA if have is None else ("yes" if f.value in have else "no"))
        for aid in analytics:
            det = det_of[aid]
            fact = facts.get(det) if det else None
            if not fact or not fact.installed:
                cells.append("-" if not det else NA)
            elif f.value not in fact.required_fields:
                cells.append("-")
            elif have is None:
                cells.append("needed")
            else:
                cells.append(
                    '<span class="ok">✔ needed, present</span>'
                    if f.value in have
                    else '<span class="bad">✘ needed, missing</span>'
                )
        matrix.add(*cells)
    note = (
        ""
        if have is not None
        else f"<p class=note>Profile <code>{_e(profile)}</code> has no fixed field set; the "
        "missing fields are those the run reported.</p>"
    )
    return verdicts.html() + matrix.html() + note


def _known_gaps(doc: Mapping[str, Any], facts: Mapping[str, DetectorFacts]) -> str:
    out = []
    for d in doc["run"]["detectors"]:
        fact = facts[d["id"]]
        head = f"<h3>{_e(d['analytic'])}: <code>{_e(d['id'])}</code></h3>"
        if not fact.installed:
            out.append(head + f"<p>{NA}: the detector is not installed here.</p>")
        elif not fact.gaps:
            out.append(
                head + f"<p>{NA}: the module <code>{_e(fact.module)}</code> docstring has no "
                '"Known gaps:" section.</p>'
            )
        else:
            items = "".join(f"<li>{_rich(g)}</li>" for g in fact.gaps)
            out.append(head + f"<p>From <code>{_e(fact.module)}</code>:</p><ul>{items}</ul>")
    return "".join(out) or "<p>No detector ran.</p>"


def _cli_value(value: Any) -> str:
    """A knob or tunable value as ``egress-harness run`` parses it back (exactly)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _cli_seeds(seeds: Sequence[int]) -> str:
    """Seeds as ``--seeds`` reads them: a range ``lo-hi`` when consecutive (a lone number
    would be a count), else a list."""
    lo, hi = seeds[0], seeds[-1]
    if list(seeds) == list(range(lo, hi + 1)):
        return f"{lo}-{hi}"
    return ",".join(map(str, seeds))


def reproduce_command(doc: Mapping[str, Any], facts: Mapping[str, DetectorFacts]) -> str | None:
    """An ``egress-harness run`` command equivalent to the run (same plan, so the same config
    digest), rebuilt from the document; ``None`` for recorded-telemetry evaluations."""
    run = doc["run"]
    if run["profile"] == "recorded":
        return None
    args = ["egress-harness", "run"]
    for s in run["scenarios"]:
        args += ["--scenario", s["id"]]
    for d in run["detectors"]:
        args += ["--detector", d["id"]]
    args += ["--seeds", _cli_seeds(run["seeds"]), "--profile", run["profile"]]
    for s in run["scenarios"]:
        for k, v in sorted(s["overrides"].items()):
            args += ["--param", f"{s['id']}.{k}={_cli_value(v)}"]
    for d in run["detectors"]:
        defaults = facts[d["id"]].defaults
        for k, v in sorted(d["tunables"].items()):
            if defaults.get(k) != v:
                args += ["--tunable", f"{d['id']}.{k}={_cli_value(v)}"]
    if run["sweep_points"]:
        args += ["--sweep", str(run["sweep_points"])]
    if doc["held_out"] is not None:
        args.append("--holdout")
    return shlex.join(args)


def _provenance(doc: Mapping[str, Any], facts: Mapping[str, DetectorFacts]) -> str:
    run = doc["run"]
    held = doc["held_out"]
    command = reproduce_command(doc, facts)
    items = [
        ("harness version", f"<code>{_e(doc['harness_version'])}</code>"),
        ("results schema version", f"<code>{_e(doc['schema_version'])}</code>"),
        ("configuration digest", f"<code>{_e(run['config_digest'])}</code>"),
        ("telemetry profile", f"<code>{_e(run['profile'])}</code>"),
        ("seeds", _e(_seeds(run["seeds"]))),
        ("held-out seeds", _e(_seeds(held["seeds"]["seeds"])) if held else NA),
        (
            "Hypothesis seed of the drawn knobs",
            _e(held["drawn_knobs"]["hypothesis_seed"]) if held and held["drawn_knobs"] else NA,
        ),
        ("threshold sweep points", _e(run["sweep_points"]) if run["sweep_points"] else "none"),
        (
            "equivalent command",
            f"<code>{_e(command)}</code>"
            if command
            else f"{NA} (recorded telemetry: see the evidence manifest)",
        ),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    scen = _Table("Scenarios and knob overrides", ("scenario", "overrides"))
    for s in run["scenarios"]:
        scen.add(
            _e(s["id"]),
            _e(", ".join(f"{k}={_value(v)}" for k, v in sorted(s["overrides"].items())) or "none"),
        )
    tun = _Table(
        "Detector tunables used by the run",
        ("detector", "analytic", "tunable", "value", "default", "meaning"),
        numeric=(3, 4),
    )
    for d in run["detectors"]:
        fact = facts[d["id"]]
        for k, v in sorted(d["tunables"].items()):
            default = fact.defaults.get(k)
            tun.add(
                _e(d["id"]),
                _e(d["analytic"]),
                f"<code>{_e(k)}</code>",
                _e(_tunable(v)) + ("" if default is None or default == v else " (changed)"),
                _e(NA if default is None else _tunable(default)),
                _rich(fact.descriptions.get(k, NA)),
            )
    return (
        f"<dl>{dl}</dl><p class=note>The command is rebuilt from the document: it names every "
        "scenario, detector, seed, knob override and non-default tunable, so it reproduces the "
        "same configuration digest. The evidence manifest, when present, records the exact "
        "command line and file hashes.</p>" + scen.html() + tun.html()
    )


def _frontier(front: Mapping[str, Any]) -> str:
    table = _Table(
        f"Evasion frontier (seeds {_seeds(front['seeds'])}, profile {front['profile']})",
        ("actor", "scenario", "analytic", "knob", "weakest caught", "ladder (easiest → hardest)"),
    )
    for r in front["frontier"]:
        ladder = " → ".join(
            f"{_value(x['value'])} {'✔' if x['seeds'] and x['caught_seeds'] == x['seeds'] else '✘'}"
            + (
                ""
                if x["caught_seeds"] in (0, x["seeds"])
                else f" ({x['caught_seeds']}/{x['seeds']})"
            )
            for x in r["ladder"]
        )
        weakest = "not caught" if r["weakest_caught"] is None else _value(r["weakest_caught"])
        if r["unobservable_without"]:
            weakest = f"unobservable (needs {', '.join(r['unobservable_without'])})"
        elif r["caught_at_hardest"]:
            weakest += " (hardest tried)"
        table.add(
            _e(r["actor"]),
            _e(r["scenario"]),
            _e(r["analytic"]),
            _e(r["knob"]),
            _e(weakest),
            _e(ladder),
        )
    errors = "".join(f"<li>{_e(e)}</li>" for e in front["errors"])
    return (
        "<p>One knob moves at a time, every other knob at its default; a rung counts as caught "
        "when the analytic caught the actor in every seed.</p>"
        + table.html()
        + (f"<h3>Errors</h3><ul>{errors}</ul>" if errors else "")
    )


_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
  margin: 0 auto; max-width: 1320px; padding: 16px 24px 48px; }
h1 { font-size: 1.7em; margin: 0.2em 0; }
h2 { font-size: 1.35em; border-bottom: 2px solid #0072B2; padding-bottom: 2px; margin-top: 1.8em; }
h3 { font-size: 1.1em; margin: 1.2em 0 0.4em; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.92em;
  overflow-wrap: anywhere; }
nav ol { columns: 3; margin: 0.4em 0; }
table { border-collapse: collapse; margin: 0.6em 0 1em; width: 100%; font-size: 0.92em; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
thead th { background: #eef3f8; }
tbody tr:nth-child(even) { background: #fafafa; }
th[scope=row] { font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 0.6em 0 1em; }
figcaption { font-size: 0.9em; color: #555; }
svg.chart { max-width: 100%; height: auto; display: block; }
.pair { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.pair figure { flex: 0 0 460px; }
.pair table { flex: 1 1 400px; width: auto; }
.note { color: #555; font-size: 0.92em; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
dt { font-weight: 600; }
dd { margin: 0; }
.ok { color: #006b4f; }
.bad { color: #a33a00; font-weight: 600; }
.malicious { color: #a33a00; font-weight: 600; }
.benign { color: #006b4f; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav { display: none; }
  h2 { break-after: avoid; }
  h3 { break-after: avoid; }
  figure, tr, .sweep { break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
}
@page { margin: 12mm; }
"""

#: No load of any kind may leave the page: styles inline, images only as data, no script.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_html(
    doc: Mapping[str, Any],
    *,
    frontier: Mapping[str, Any] | None = None,
    facts: Mapping[str, DetectorFacts] | None = None,
) -> str:
    """The report page for a results document (and optionally a frontier document).
    ``facts`` replaces what the installed detectors declare (for tests and foreign documents)."""
    ids = [d["id"] for d in doc["run"]["detectors"]]
    ids += [a["detector"] for a in doc["analytics"].values() if a["detector"]]
    known = dict(facts or {})
    for det in dict.fromkeys(ids):
        if det not in known:
            known[det] = detector_facts(det)
    outcomes = _actor_outcomes(doc)
    sections: list[tuple[str, str, str]] = [
        ("summary", "Summary", _summary(doc)),
        ("detection", "Detection rate", _rate_chart(doc)),
        ("false-alerts", "False alerts", _false_alert_chart(doc)),
        ("latency", "Detection latency", _latency(doc, outcomes)),
        ("bytes", "Bytes before alert", _bytes(doc, outcomes)),
    ]
    if any(a.get("sweep") for a in doc["analytics"].values()):
        sections.append(("sweeps", "Threshold curves", _sweeps(doc)))
    if doc["held_out"]:
        sections.append(
            ("held-out", "Not tuned on: held-out seeds and drawn knobs", _held_out(doc))
        )
    sections += [
        ("catalogue", "Scenario catalogue", _catalogue(doc)),
        ("readiness", "Telemetry readiness", _readiness(doc, known)),
        ("known-gaps", "Known gaps", _known_gaps(doc, known)),
    ]
    if frontier is not None:
        sections.append(("frontier", "Evasion frontier", _frontier(frontier)))
    sections.append(("provenance", "Provenance", _provenance(doc, known)))
    run = doc["run"]
    toc = "".join(f'<li><a href="#{sid}">{_e(title)}</a></li>' for sid, title, _ in sections)
    body = "".join(
        f'<section id="{sid}" aria-labelledby="{sid}-h"><h2 id="{sid}-h">{_e(title)}</h2>'
        f"{content}</section>"
        for sid, title, content in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="egress-harness">'
        '<link rel="icon" href="data:,">'
        f"<title>egress-harness results: {_e(run['config_digest'][:19])}</title>"
        f"<style>{_CSS}</style></head><body>"
        "<header><h1>egress-harness results</h1>"
        f"<p>Harness {_e(doc['harness_version'])}, results schema {_e(doc['schema_version'])}; "
        f"profile <code>{_e(run['profile'])}</code>; seeds {_e(_seeds(run['seeds']))}; "
        f"{len(doc['scenarios'])} scenario(s), {len(run['detectors'])} detector(s); "
        f"configuration <code>{_e(run['config_digest'])}</code>.</p></header>"
        f'<nav aria-label="Contents"><h2 id="contents">Contents</h2><ol>{toc}</ol></nav>'
        f"<main>{body}</main></body></html>\n"
    )


class HtmlReporter:
    id: ClassVar[str] = "html"
    filename: ClassVar[str | None] = "report.html"

    def __init__(self, *, frontier: Mapping[str, Any] | None = None) -> None:
        self._frontier = frontier

    def render(self, doc: Mapping[str, Any]) -> str:
        return render_html(doc, frontier=self._frontier)
