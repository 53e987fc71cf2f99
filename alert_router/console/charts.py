"""Line charts as inline SVG, drawn on the server: no JavaScript chart library to vendor.

The SVG is built from numbers only (coordinates and formatted axis labels), with every
text node escaped, so a chart can be marked safe in a template.
"""

from __future__ import annotations

import time
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 600, 160
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 8, 22
MAX_POINTS = 600  # ranges are queried with a step giving about this many points


def step_for(seconds: float) -> float:
    """A query_range step giving at most MAX_POINTS points (at least 15 s)."""
    return max(15.0, round(seconds / MAX_POINTS))


def fmt_value(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value * 100:.0f}%"
    if unit == "bytes":
        for suffix in ("B", "kB", "MB", "GB"):
            if abs(value) < 1000:
                return f"{value:.0f} {suffix}" if suffix == "B" else f"{value:.1f} {suffix}"
            value /= 1000
        return f"{value:.1f} TB"
    return f"{value:.2f}"


def _fmt_time(t: float, span: float) -> str:
    pattern = "%H:%M" if span <= 2 * 86400 else "%m-%d"
    return time.strftime(pattern, time.gmtime(t))


def svg_chart(
    title: str, points: list[tuple[float, float]], start: float, end: float, unit: str
) -> Markup:
    """A chart of `points` over [start, end]; an empty state when there are none."""
    label = escape(title)
    if not points:
        return Markup(
            f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{label}: no data"><text x="{WIDTH / 2}" y="{HEIGHT / 2}" '
            f'text-anchor="middle" class="nodata">no data in this range</text></svg>'
        )
    values = [v for _, v in points]
    low = min(0.0, min(values))
    high = max(values)
    if unit == "ratio":
        high = max(high, 1.0)
    if high <= low:
        high = low + 1.0
    span = max(end - start, 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (t - start) / span * plot_w

    def y(v: float) -> float:
        return TOP + (1 - (v - low) / (high - low)) * plot_h

    # A gap longer than 3 steps breaks the line instead of drawing across missing data.
    gap = 3 * (span / max(len(points), 1)) if len(points) > 1 else span
    gap = max(gap, 3 * step_for(span))
    segments: list[list[str]] = [[]]
    last_t = None
    for t, v in points:
        if last_t is not None and t - last_t > gap:
            segments.append([])
        segments[-1].append(f"{x(t):.1f},{y(v):.1f}")
        last_t = t
    lines = "".join(f'<polyline points="{" ".join(seg)}"/>' for seg in segments if seg)
    grid = []
    for frac in (0.0, 0.5, 1.0):
        v = low + frac * (high - low)
        gy = y(v)
        grid.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{gy:.1f}" '
            f'y2="{gy:.1f}"/><text class="axis" x="{LEFT - 4}" y="{gy + 4:.1f}" '
            f'text-anchor="end">{escape(fmt_value(v, unit))}</text>'
        )
    for frac in (0.0, 0.5, 1.0):
        t = start + frac * span
        anchor = ("start", "middle", "end")[int(frac * 2)]
        grid.append(
            f'<text class="axis" x="{x(t):.1f}" y="{HEIGHT - 6}" '
            f'text-anchor="{anchor}">{escape(_fmt_time(t, span))}</text>'
        )
    latest = escape(fmt_value(points[-1][1], unit))
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{label}, latest {latest}">{"".join(grid)}'
        f'<g class="series">{lines}</g></svg>'
    )
