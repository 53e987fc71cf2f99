"""Durations in Prometheus' grammar, exactly as prometheus/common model.ParseDuration reads them.

A duration is `0`, or one or more `<digits><unit>` parts with units from `y w d h m s ms`,
each unit at most once and in that (descending) order: `90s`, `1h30m`, `2w3d`, `500ms`.
No fractions (`1.5s`), signs, spaces or bare numbers: a config that reads the same in a
Prometheus or Alertmanager file must mean the same here. A year is 365 days, a week 7.
"""

from __future__ import annotations

GRAMMAR = (
    "[0-9]+ then one of ms s m h d w y, repeated with units in descending order "
    "(30s, 1h30m, 500ms), or 0"
)

# Unit -> (rank, milliseconds). A part's rank must be greater than the previous part's.
_UNITS: dict[str, tuple[int, int]] = {
    "y": (1, 365 * 86_400_000),
    "w": (2, 7 * 86_400_000),
    "d": (3, 86_400_000),
    "h": (4, 3_600_000),
    "m": (5, 60_000),
    "s": (6, 1_000),
    "ms": (7, 1),
}
# Prometheus holds a duration in a Go time.Duration (int64 nanoseconds), about 292 years.
_MAX_NANOSECONDS = 2**63 - 1


class DurationError(ValueError):
    """Not a duration in the grammar; the message names the path when one was given."""


def parse(text: object, path: str = "") -> float:
    """Seconds in `text`; DurationError (naming `path` and the grammar) otherwise.

    A YAML integer reads as its text, as Prometheus reads it: `0` is a duration, `30` is not.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    millis = _parse_millis(text) if isinstance(text, str) else None
    if millis is None:
        where = f"{path}: " if path else ""
        raise DurationError(f"{where}expected a duration, got {text!r}; the grammar: {GRAMMAR}")
    return millis / 1000.0


def _parse_millis(text: str) -> int | None:
    if text == "0":
        return 0
    if not text or not text.isascii():
        return None
    total, rank, i = 0, 0, 0
    while i < len(text):
        start = i
        while i < len(text) and text[i].isdigit():
            i += 1
        # More digits than any in-range value has: refuse before int() does the work.
        if i == start or i - start > 20:
            return None
        value = int(text[start:i])
        start = i
        while i < len(text) and not text[i].isdigit():
            i += 1
        unit = _UNITS.get(text[start:i])
        if unit is None or unit[0] <= rank:
            return None
        rank = unit[0]
        total += value * unit[1]
        if total * 1_000_000 > _MAX_NANOSECONDS:
            return None
    return total


def format(seconds: float) -> str:
    """`seconds` as Prometheus writes a duration: `0s`, `1h30m`, `2w`, `1d1h`, `250ms`.

    Like Prometheus, years and weeks are used only when they divide the whole value
    (`90d` reads better than `12w6d`), and precision stops at milliseconds.
    """
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    sign = "-" if millis < 0 else ""
    millis = abs(millis)
    out = []
    for unit, (_, size) in _UNITS.items():
        if unit in ("y", "w") and millis % size:
            continue
        if millis >= size:
            out.append(f"{millis // size}{unit}")
            millis %= size
    return sign + "".join(out)
