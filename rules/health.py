"""Server health: green / yellow / red and a 0-100 score from the monitored usage ratios.

A server is as healthy as its most loaded resource: the colour comes from the
highest ratio (green when all are under `yellow_at`, yellow up to and
including `red_at`, red above it), and the score is the headroom left on that
resource, `100 * (1 - max ratio)`. An average would let one full disk hide
behind an idle CPU. Each component keeps its own score for the breakdown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

COLORS = ("green", "yellow", "red")


@dataclass(frozen=True)
class Health:
    """The health of one server."""

    color: str
    score: float  # 0-100, 100 = idle
    components: dict[str, float]  # component -> score 0-100
    worst: str  # the component that decided


def color_of(ratio: float, yellow_at: float = 0.70, red_at: float = 0.85) -> str:
    """Colour for one usage ratio."""
    if ratio > red_at:
        return "red"
    if ratio >= yellow_at:
        return "yellow"
    return "green"


def component_score(ratio: float) -> float:
    """Headroom of one ratio in 0-100 (ratios are clamped to 0-1)."""
    if ratio >= 1.0:
        return 0.0
    if ratio <= 0.0:
        return 100.0
    return round(100.0 * (1.0 - ratio), 2)


def health_of(
    ratios: Mapping[str, float], *, yellow_at: float = 0.70, red_at: float = 0.85
) -> Health | None:
    """Health from component ratios; None when no ratio is known (e.g. server offline)."""
    # One pass, no sorting: this runs for every server of the fleet every cycle.
    components: dict[str, float] = {}
    worst, worst_ratio = "", -math.inf
    for name, ratio in ratios.items():
        if not math.isfinite(ratio):
            continue
        components[name] = component_score(ratio)
        if ratio > worst_ratio or (ratio == worst_ratio and name < worst):
            worst, worst_ratio = name, ratio
    if not components:
        return None
    return Health(
        color=color_of(worst_ratio, yellow_at, red_at),
        score=components[worst],
        components=components,
        worst=worst,
    )
