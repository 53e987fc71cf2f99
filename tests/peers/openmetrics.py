"""Build OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.

Samples of one family must be contiguous and each series' timestamps must
increase, so history is collected per series first and rendered at the end.
Timestamps are unix seconds (milliseconds are silently misread by promtool).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"'.replace("\n", "\\n") for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


@dataclass
class History:
    """Series history keyed by (metric name, labels), rendered as one OpenMetrics document."""

    types: dict[str, str] = field(default_factory=dict)
    series: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)

    def add(
        self, name: str, labels: Mapping[str, str], ts: float, value: float, kind: str = "gauge"
    ) -> None:
        family = name.removesuffix("_total") if kind == "counter" else name
        self.types[family] = kind
        self.series.setdefault(family, {}).setdefault(name + _labels(labels), []).append(
            (ts, value)
        )

    def fill(
        self,
        name: str,
        labels: Mapping[str, str],
        start: float,
        end: float,
        step: float,
        value: Callable[[float], float | None],
        kind: str = "gauge",
    ) -> None:
        """Add samples every `step` seconds in [start, end); `value(t)` None means no sample."""
        t = start
        while t < end:
            v = value(t)
            if v is not None:
                self.add(name, labels, t, v, kind)
            t += step

    def render(self) -> str:
        lines: list[str] = []
        for family, series in self.series.items():
            lines.append(f"# TYPE {family} {self.types[family]}")
            for key, points in series.items():
                for ts, v in sorted(points):
                    lines.append(f"{key} {_value(v)} {ts:.3f}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


def render_stream(families: Iterable[tuple[str, str, Iterable[str]]]) -> Iterable[str]:
    """Stream a large document: (family, type, sample lines) -> text chunks, then # EOF."""
    for family, kind, lines in families:
        yield f"# TYPE {family} {kind}\n"
        yield from lines
    yield "# EOF\n"
