"""Inline SVG charts for the HTML report: interval (dot-and-whisker) charts, log-scale strip
plots and threshold curves, returned as markup with no script and no external reference.

Every chart is an ``<svg role="img">`` labelled by its own ``<title>`` and ``<desc>``; series are
told apart by marker shape as well as colour, and every figure drawn is also printed as text
beside it (the report repeats the numbers in tables). Coordinates are formatted to one decimal,
so the same data always gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "CurvePoint",
    "IntervalRow",
    "StripRow",
    "curve_chart",
    "fmt_seconds",
    "interval_chart",
    "linear_ticks",
    "strip_chart",
]

#: Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
#: Marker shapes, one per series, so that series never differ by colour alone.
SHAPES = ("circle", "square", "diamond", "triangle")
INK = "#222"
GRID = "#ddd"
MUTED = "#666"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True, slots=True, kw_only=True)
class IntervalRow:
    """One row of an interval chart: an estimate with its 95% interval (``None``: undefined)."""

    label: str
    value: float | None
    low: float | None
    high: float | None
    #: The figure printed at the right of the row ("0.80 [0.49, 0.94] (4/5)" or "n/a").
    text: str
    series: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StripRow:
    """One row of a strip plot: individual observations and the row's median and p95."""

    label: str
    points: tuple[float, ...]
    median: float | None
    p95: float | None
    text: str
    #: Shown in the plot area when the row has nothing to draw.
    empty: str = "n/a (nothing caught)"


@dataclass(frozen=True, slots=True, kw_only=True)
class CurvePoint:
    """One swept value of a threshold curve: false-alert rate (x) against detection rate (y)."""

    label: str
    x: float | None
    x_low: float | None
    x_high: float | None
    y: float | None
    y_low: float | None
    y_high: float | None
    default: bool


def _f(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _text(x: float, y: float, body: str, *, anchor: str = "start", extra: str = "") -> str:
    attrs = f' text-anchor="{anchor}"' if anchor != "start" else ""
    return f'<text x="{_f(x)}" y="{_f(y)}"{attrs}{extra}>{escape(body)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, extra: str = "") -> str:
    return (
        f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" stroke="{stroke}"{extra}/>'
    )


def _marker(shape: str, x: float, y: float, r: float, fill: str, extra: str = "") -> str:
    if shape == "square":
        return (
            f'<rect x="{_f(x - r)}" y="{_f(y - r)}" width="{_f(2 * r)}" height="{_f(2 * r)}" '
            f'fill="{fill}"{extra}/>'
        )
    if shape == "diamond":
        d = r * 1.3
        pts = f"{_f(x)},{_f(y - d)} {_f(x + d)},{_f(y)} {_f(x)},{_f(y + d)} {_f(x - d)},{_f(y)}"
        return f'<polygon points="{pts}" fill="{fill}"{extra}/>'
    if shape == "triangle":
        d = r * 1.3
        pts = f"{_f(x)},{_f(y - d)} {_f(x + d)},{_f(y + d * 0.8)} {_f(x - d)},{_f(y + d * 0.8)}"
        return f'<polygon points="{pts}" fill="{fill}"{extra}/>'
    return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(r)}" fill="{fill}"{extra}/>'


def _open(chart_id: str, width: float, height: float, title: str, desc: str) -> str:
    return (
        f'<svg class="chart" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" width="{_f(width)}" height="{_f(height)}" '
        f'{FONT} fill="{INK}">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>'
    )


def linear_ticks(top: float, count: int = 5) -> list[float]:
    """Evenly spaced "nice" ticks from 0 to at least ``top`` (1, 2, 2.5 or 5 times 10^k)."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def _tick_text(value: float) -> str:
    return f"{value:g}"


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        out.append(_marker(SHAPES[i % len(SHAPES)], x + 5, y - 4, 4.5, colour))
        out.append(_text(x + 14, y, name))
        x += 24 + 7 * len(name)
    return out


def interval_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    rows: Sequence[IntervalRow],
    axis_label: str,
    x_max: float | None = None,
    series_names: Sequence[str] = (),
) -> str:
    """Horizontal dot-and-whisker chart, one row per estimate; undefined rows say "n/a"."""
    width, left, right = 1100.0, 170.0, 340.0
    row_h, top = 24.0, 30.0 if series_names else 12.0
    plot_w = width - left - right
    highs = [r.high for r in rows if r.high is not None] + [r.value for r in rows if r.value]
    ticks = linear_ticks(x_max if x_max is not None else max(highs, default=1.0) or 1.0)
    domain = ticks[-1]
    height = top + row_h * len(rows) + 40

    def sx(v: float) -> float:
        return left + plot_w * min(max(v, 0.0), domain) / domain

    out = [_open(chart_id, width, height, title, desc)]
    if series_names:
        out += _legend(series_names, left, 16)
    bottom = top + row_h * len(rows)
    for t in ticks:
        out.append(_line(sx(t), top, sx(t), bottom, GRID))
        out.append(_text(sx(t), bottom + 15, _tick_text(t), anchor="middle"))
    out.append(_text(left + plot_w / 2, bottom + 33, axis_label, anchor="middle"))
    for i, row in enumerate(rows):
        y = top + row_h * (i + 0.5)
        colour = PALETTE[row.series % len(PALETTE)]
        out.append(_text(left - 8, y + 4, row.label, anchor="end"))
        out.append(_text(width - right + 10, y + 4, row.text))
        if row.value is None:
            out.append(_text(left + 4, y + 4, "n/a (undefined)", extra=f' fill="{MUTED}"'))
            continue
        if row.low is not None and row.high is not None:
            out.append(_line(sx(row.low), y, sx(row.high), y, colour, ' stroke-width="2"'))
            for end in (row.low, row.high):
                out.append(_line(sx(end), y - 5, sx(end), y + 5, colour, ' stroke-width="2"'))
        out.append(_marker(SHAPES[row.series % len(SHAPES)], sx(row.value), y, 5, colour))
    out.append("</svg>")
    return "".join(out)


#: Log-axis ticks for durations and byte counts, with their labels.
_SECOND_TICKS = (
    (1.0, "1 s"),
    (10.0, "10 s"),
    (60.0, "1 min"),
    (600.0, "10 min"),
    (3600.0, "1 h"),
    (21600.0, "6 h"),
    (86400.0, "1 d"),
    (604800.0, "1 w"),
    (2592000.0, "30 d"),
)
_BYTE_TICKS = tuple(
    (10.0**k, f"{10 ** (k % 3)} {unit}")
    for k, unit in enumerate(["B"] * 3 + ["kB"] * 3 + ["MB"] * 3 + ["GB"] * 3 + ["TB"] * 3)
)


def fmt_seconds(seconds: float | None) -> str:
    """A duration for people: "42 s", "12.5 min", "3.1 h", "2.0 d"; ``None`` is "n/a"."""
    if seconds is None:
        return "n/a"
    if abs(seconds) < 120:
        return f"{seconds:.0f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.1f} min"
    if abs(seconds) < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def strip_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    rows: Sequence[StripRow],
    axis_label: str,
    unit: str,
) -> str:
    """Log-scale strip plot: every observation a dot, the median a solid bar and the p95 a
    dashed bar. ``unit`` is "seconds" or "bytes"; values under 1 are drawn at 1."""
    scale = _SECOND_TICKS if unit == "seconds" else _BYTE_TICKS
    width, left, right = 1100.0, 170.0, 340.0
    row_h, top = 34.0, 30.0
    plot_w = width - left - right
    values = [v for r in rows for v in (*r.points, r.median, r.p95) if v is not None]
    lo_v, hi_v = max(1.0, min(values, default=1.0)), max(1.0, max(values, default=10.0))
    lo = max((t for t, _ in scale if t <= lo_v), default=scale[0][0])
    hi = min((t for t, _ in scale if t >= hi_v), default=scale[-1][0])
    if hi <= lo:
        hi = next((t for t, _ in scale if t > lo), lo * 10)
    span = math.log10(hi) - math.log10(lo)

    def sx(v: float) -> float:
        v = min(max(v, lo), hi)
        return left + plot_w * (math.log10(v) - math.log10(lo)) / span

    height = top + row_h * len(rows) + 40
    bottom = top + row_h * len(rows)
    out = [_open(chart_id, width, height, title, desc)]
    out.append(_marker("circle", left + 5, 12, 3.5, PALETTE[0], ' fill-opacity="0.6"'))
    out.append(_text(left + 14, 16, "one actor in one seed"))
    out.append(_line(left + 170, 6, left + 170, 18, INK, ' stroke-width="3"'))
    out.append(_text(left + 178, 16, "median"))
    out.append(
        _line(left + 240, 6, left + 240, 18, INK, ' stroke-width="2" stroke-dasharray="3 2"')
    )
    out.append(_text(left + 248, 16, "p95"))
    for t, label in scale:
        if lo <= t <= hi:
            out.append(_line(sx(t), top, sx(t), bottom, GRID))
            out.append(_text(sx(t), bottom + 15, label, anchor="middle"))
    out.append(_text(left + plot_w / 2, bottom + 33, axis_label, anchor="middle"))
    for i, row in enumerate(rows):
        y = top + row_h * (i + 0.5)
        out.append(_text(left - 8, y + 4, row.label, anchor="end"))
        out.append(_text(width - right + 10, y + 4, row.text))
        if not row.points and row.median is None:
            out.append(_text(left + 4, y + 4, row.empty, extra=f' fill="{MUTED}"'))
            continue
        for j, v in enumerate(sorted(row.points)):
            jitter = ((j * 7) % 5 - 2) * 3.0  # a fixed spread so equal values stay visible
            out.append(
                _marker("circle", sx(v), y + jitter, 3.5, PALETTE[0], ' fill-opacity="0.55"')
            )
        if row.median is not None:
            out.append(
                _line(sx(row.median), y - 12, sx(row.median), y + 12, INK, ' stroke-width="3"')
            )
        if row.p95 is not None:
            out.append(
                _line(
                    sx(row.p95),
                    y - 12,
                    sx(row.p95),
                    y + 12,
                    INK,
                    ' stroke-width="2" stroke-dasharray="3 2"',
                )
            )
    out.append("</svg>")
    return "".join(out)


def curve_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    points: Sequence[CurvePoint],
    x_label: str,
    y_label: str,
    label_fmt: Callable[[CurvePoint], str] = lambda p: p.label,
) -> str:
    """Detection rate (0-1, y) against false alerts (x) for each swept value, joined in sweep
    order, with both 95% intervals as whiskers; the default value is ringed. Points with an
    undefined coordinate are left out of the drawing (the table beside it lists them)."""
    width, height = 460.0, 320.0
    left, right, top, bottom = 52.0, 20.0, 16.0, 46.0
    plot_w, plot_h = width - left - right, height - top - bottom
    drawn = [p for p in points if p.x is not None and p.y is not None]
    x_top = max(
        [p.x_high for p in drawn if p.x_high is not None] + [p.x for p in drawn if p.x] + [0.0]
    )
    xt = linear_ticks(x_top or 1.0, 4)
    yt = [0.0, 0.25, 0.5, 0.75, 1.0]

    def sx(v: float) -> float:
        return left + plot_w * min(max(v, 0.0), xt[-1]) / xt[-1]

    def sy(v: float) -> float:
        return top + plot_h * (1 - min(max(v, 0.0), 1.0))

    out = [_open(chart_id, width, height, title, desc)]
    for t in xt:
        out.append(_line(sx(t), top, sx(t), top + plot_h, GRID))
        out.append(_text(sx(t), top + plot_h + 15, _tick_text(t), anchor="middle"))
    for t in yt:
        out.append(_line(left, sy(t), left + plot_w, sy(t), GRID))
        out.append(_text(left - 6, sy(t) + 4, _tick_text(t), anchor="end"))
    out.append(_text(left + plot_w / 2, height - 8, x_label, anchor="middle"))
    out.append(
        f'<text x="14" y="{_f(top + plot_h / 2)}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_f(top + plot_h / 2)})">{escape(y_label)}</text>'
    )
    if not drawn:
        out.append(
            _text(left + plot_w / 2, top + plot_h / 2, "n/a: no defined point", anchor="middle")
        )
    colour = PALETTE[0]
    if len(drawn) > 1:
        path = " ".join(f"{_f(sx(p.x or 0))},{_f(sy(p.y or 0))}" for p in drawn)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    # Points that land on the same spot share one label ("1,000, 2,000*") instead of overprinting.
    labels: dict[tuple[str, str], list[str]] = {}
    for p in drawn:
        labels.setdefault((_f(sx(p.x or 0.0)), _f(sy(p.y or 0.0))), []).append(label_fmt(p))
    for p in drawn:
        x, y = sx(p.x or 0.0), sy(p.y or 0.0)
        if p.y_low is not None and p.y_high is not None:
            out.append(_line(x, sy(p.y_low), x, sy(p.y_high), PALETTE[5]))
        if p.x_low is not None and p.x_high is not None:
            out.append(_line(sx(p.x_low), y, sx(p.x_high), y, PALETTE[5]))
        out.append(_marker("circle", x, y, 4, colour))
        if p.default:
            out.append(
                f'<circle cx="{_f(x)}" cy="{_f(y)}" r="8" fill="none" stroke="{PALETTE[1]}" '
                'stroke-width="2"/>'
            )
        shared = labels.pop((_f(x), _f(y)), None)
        if shared:
            anchor = "end" if x > left + plot_w * 0.6 else "start"
            dx = -7 if anchor == "end" else 7
            dy = 14 if y < top + 12 else -7
            out.append(
                _text(x + dx, y + dy, ", ".join(shared), anchor=anchor, extra=' font-size="11"')
            )
    out.append("</svg>")
    return "".join(out)
