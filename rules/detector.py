"""Streaming anomaly detector: one instance per series, O(1) work per point.

The method: *range novelty* on four views of the series, a quiet period that
damps repeated alarms, and a monotone rescaling to [0, 1]. No model is fitted
and no labels are used; every decision reads one series' own past.

Range novelty (the core)
    For each view the detector keeps the range [lo, hi] of the values seen so
    far. A value inside the range scores 0. A value beyond it is surprising in
    proportion to how far beyond it lies, in units of the range itself:
    ``u = (x - hi) / (hi - lo)`` (or ``(lo - x) / (hi - lo)``). The range is
    forgotten slowly (``range_decay`` shrinks it towards its centre, never
    past the current value) so that old extremes do not blind the detector
    for ever. This is cheap, scale-free, and it has the property operators
    want: a level shift raises one alarm (the first value at the new level
    breaks the record, the next ones lie inside the widened range), a trend
    raises only tiny surprises, a counter reset raises one, and a series that
    was constant and starts to move raises one.

Views
    1. the value itself (spikes and dips, new levels);
    2. the mean of the last ``mean_points`` values (sustained shifts hidden in
       noise, that no single point reveals), each value first replaced by the
       median of itself and the two before it: a sustained shift passes that
       filter after two points, a lone spike does not pass at all, so isolated
       spikes neither raise this view's alarms nor widen its range until a
       real shift inside it goes unseen (an event that lasts one point is the
       business of view 1);
    3. ``|x - profile(same time of day)|`` for a daily season: a time-indexed
       ring of at most ``season_max_slots`` slots, each an exponentially
       weighted average of that time of day over past days
       (``season_smoothing``), so one noisy yesterday does not raise alarms
       (a pattern that breaks: a missing daily peak, a flat day, a higher
       plateau);
    4. ``|x - profile(same time of the week)|``: the same for a weekly season
       (``week_max_slots`` slots, ``week_smoothing``): a weekday that looks
       like a Sunday (a holiday, an upstream outage) is ordinary for the daily
       profile, which mixes weekdays and weekends, but not for this one. It
       only learns for its first ``week_min_age`` weeks: a profile of one week
       is one noisy sample.
    Each view learns ``warmup`` values before it may score (view 4:
    ``week_min_age`` weeks). The surprise of a point is the largest weighted
    surprise of the views. Every view is there because leaving it out lowers
    the cross-validated NAB score (``bench/nab_cv.py``); views that raised the
    plain score on the files they were tuned on but not the cross-validated
    one were removed (docs/decisions/anomaly-detector-rounds.md).

Quiet period
    Only the first detection of an event matters, and repeated alarms erode
    trust: a score that does not beat every raw score of the last
    ``quiet_points`` points (kept as ``quiet_blocks`` block maxima, O(1)) is
    multiplied by ``quiet_damping``. A lead that is itself an alarm (reported
    at ``refractory_score`` or more, just under the 0.5 operating point)
    opens a refractory period of ``refractory_points``: every score in it, a
    higher one too, is the same event still unfolding (a spike's second,
    taller point, a burst that keeps growing) and is multiplied by
    ``burst_damping``. A lead below that level opens none, so an event whose
    first point barely moves the score still reports its larger second point.

Score
    ``s = u / (1 + u)``, damped as above, then reported as
    ``s ** (log 0.5 / log score_pivot)``: a monotone map (ranks and NAB
    results unchanged) under which the best NAB operating point reads 0.5.

Cost and robustness
    A handful of float operations per point in plain Python (numpy per-point
    calls would cost more than the whole update); the state is a few scalars,
    a ``mean_points`` ring and the two season rings (<= 1440 and <= 504
    doubles), saved as plain JSON by ``get_state``. NaN and infinities score 0
    and leave the state untouched. Timestamps only place points in the season
    rings and detect gaps (longer than ``gap_seconds``, which restart the
    short mean); repeated and out-of-order timestamps are scored like any
    other point and never move the clock backwards. A state saved by an
    earlier version restores: what it lacks starts empty and fills in, what
    belonged to views since removed is ignored.

Figures (NAB, 41 shared series, plain and cross-validated) and the
reproduction commands are in docs/anomaly-detection.md.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import asdict, dataclass, fields
from typing import Any

# 2: weekly view; 3: refractory period; 4: median view; 5: recent-range and median views
# removed; 6: the short mean's spike filter (the two values before the current one)
STATE_VERSION = 6
_RESTORABLE = (1, 2, 3, 4, 5, 6)  # older states restore; what they lack starts empty
_LOG_HALF = math.log(0.5)
_DERIVED = frozenset({"params"})  # not saved: the parameters are the caller's


@dataclass(frozen=True)
class DetectorParams:
    """Every tunable of the detector, with the defaults scored on NAB."""

    warmup: int = 150  # values a view learns before it may score
    range_decay: float = 1e-5  # per point, how fast each view's range shrinks to its centre
    w_raw: float = 1.0  # weight of the raw-value view
    w_mean: float = 0.7  # weight of the short-mean view
    mean_points: int = 24  # length of the short mean
    w_season: float = 0.7  # weight of the same-time-of-day view
    season_seconds: float = 86400.0  # the season compared against
    season_smoothing: float = 0.3  # weight of the newest day in each slot's daily profile
    season_max_slots: int = 1440  # bounds memory: at most this many remembered slots
    season_setup_points: int = 32  # points used to learn the sampling interval
    w_week: float = 0.7  # weight of the same-time-of-the-week view
    week_seconds: float = 7 * 86400.0  # its season
    week_smoothing: float = 0.2  # weight of the newest week in each slot's weekly profile
    week_max_slots: int = 504  # memory bound of the weekly ring (slot width >= 20 min)
    week_min_age: float = 2.0  # weeks of history before the weekly view may score
    gap_seconds: float = 6 * 3600.0  # a longer silence restarts the short-mean window
    quiet_points: int = 500  # a score must beat every raw score this far back ...
    quiet_blocks: int = 20  # ... (tracked as this many block maxima) ...
    quiet_damping: float = 0.2  # ... or it is multiplied by this
    score_pivot: float = 0.0109  # internal score shown as 0.5 (NAB's best threshold)
    burst_damping: float = 0.05  # a score inside a refractory period is multiplied by this
    refractory_points: int = 120  # after an alarm, any score this soon is its echo ...
    refractory_score: float = 0.47  # ... an alarm: a lead reported at least this high


class Detector:
    """Scores each new point of one series against that series' own history."""

    __slots__ = (
        "params",
        "n",
        "last_ts",
        "dt",
        "raw_lo",
        "raw_hi",
        "raw_n",
        "mean_buf",
        "mean_prev",
        "mean_prev2",
        "mean_i",
        "mean_sum",
        "mean_lo",
        "mean_hi",
        "mean_n",
        "season",
        "season_width",
        "season_lo",
        "season_hi",
        "season_n",
        "week",
        "week_width",
        "week_lo",
        "week_hi",
        "week_n",
        "week_t0",
        "block_max",
        "block_top",
        "block_cur",
        "block_fill",
        "last_alarm",
    )

    def __init__(self, params: DetectorParams | None = None) -> None:
        self.params = params or DetectorParams()
        self.n = 0
        self.last_ts = -math.inf
        self.dt = math.inf
        self.raw_lo, self.raw_hi, self.raw_n = math.inf, -math.inf, 0
        self.mean_buf: list[float] = []
        self.mean_prev = math.nan  # the value before this one (NaN: none yet) ...
        self.mean_prev2 = math.nan  # ... and the one before that: the spike filter's window
        self.mean_i = 0
        self.mean_sum = 0.0
        self.mean_lo, self.mean_hi, self.mean_n = math.inf, -math.inf, 0
        self.season: array[float] | None = None
        self.season_width = 0.0
        self.season_lo, self.season_hi, self.season_n = math.inf, -math.inf, 0
        self.week: array[float] | None = None
        self.week_width = 0.0
        self.week_lo, self.week_hi, self.week_n = math.inf, -math.inf, 0
        self.week_t0 = math.nan  # when the weekly ring started
        self.block_max: list[float] = []
        self.block_top = 0.0
        self.block_cur = 0.0
        self.block_fill = 0
        self.last_alarm = -(10**9)

    def update(self, timestamp: float, value: float) -> float:
        """Learn one point and return its anomaly score in [0, 1]."""
        x = float(value)
        if not math.isfinite(x):
            return 0.0
        p = self.params
        t = float(timestamp)
        decay = p.range_decay
        warm = p.warmup
        self.n += 1
        # clock: learn the sampling interval, notice gaps, never go backwards
        step = t - self.last_ts
        if step > 0.0:
            if self.n <= p.season_setup_points and step < self.dt:
                self.dt = step
            if step > p.gap_seconds:
                self.mean_buf.clear()
                self.mean_prev = self.mean_prev2 = math.nan
                self.mean_i = 0
                self.mean_sum = 0.0
            self.last_ts = t

        # view 1: the value itself
        self.raw_n += 1
        self.raw_lo, self.raw_hi, u = _range_step(
            x, self.raw_lo, self.raw_hi, self.raw_n > warm, decay
        )
        u *= p.w_raw

        # view 2: mean of the last few values (sustained shifts in noisy data), each
        # the median of three consecutive values: a lone spike is not a shift
        a, b = self.mean_prev, self.mean_prev2
        self.mean_prev, self.mean_prev2 = x, a
        xm = x
        if b == b:  # not NaN: three values to take the median of
            if a > b:
                a, b = b, a
            if x < a:
                xm = a
            elif x > b:
                xm = b
        k = p.mean_points
        buf = self.mean_buf
        if len(buf) < k:
            buf.append(xm)
            self.mean_sum += xm
        else:
            i = self.mean_i
            self.mean_sum += xm - buf[i]
            buf[i] = xm
            i += 1
            if i == k:
                i = 0
                self.mean_sum = sum(buf)  # exact again once per lap: no drift
            self.mean_i = i
        if len(buf) == k:
            self.mean_n += 1
            self.mean_lo, self.mean_hi, um = _range_step(
                self.mean_sum / k, self.mean_lo, self.mean_hi, self.mean_n > warm, decay
            )
            um *= p.w_mean
            if um > u:
                u = um

        # view 3: distance to the profile of the same time of day
        season = self.season
        if season is None and self.n == p.season_setup_points and math.isfinite(self.dt):
            season, self.season_width = _new_ring(self.dt, p.season_seconds, p.season_max_slots)
            self.season = season
        if season is not None:
            # the slot keeps a profile over past days, not one noisy yesterday
            old = _profile_step(season, self.season_width, t, x, p.season_smoothing)
            if old == old:  # not NaN: that slot was seen before
                self.season_n += 1
                self.season_lo, self.season_hi, us = _range_step(
                    abs(x - old),
                    self.season_lo,
                    self.season_hi,
                    self.season_n > warm,
                    decay,
                    up_only=True,
                )
                us *= p.w_season
                if us > u:
                    u = us

        # view 4: distance to a profile of the same time of the week: a weekday
        # that looks like a Sunday (a holiday, an outage) is ordinary for the daily
        # profile, which mixes weekdays and weekends, but not for this one
        week = self.week
        if (
            week is None
            and not self.week_width
            and self.n >= p.season_setup_points
            and math.isfinite(self.dt)
        ):
            # ">=": a state saved before this view existed starts its ring too;
            # a width of -1 marks a series sampled too coarsely for a weekly ring
            week, self.week_width = _new_ring(self.dt, p.week_seconds, p.week_max_slots)
            self.week, self.week_t0 = week, t
        if week is not None:
            old = _profile_step(week, self.week_width, t, x, p.week_smoothing)
            if old == old:
                self.week_n += 1
                # a profile of one or two weeks is mostly noise: learn only
                self.week_lo, self.week_hi, uw = _range_step(
                    abs(x - old),
                    self.week_lo,
                    self.week_hi,
                    self.week_n > warm and t - self.week_t0 >= p.week_min_age * p.week_seconds,
                    decay,
                    up_only=True,
                )
                uw *= p.w_week
                if uw > u:
                    u = uw

        score = u / (1.0 + u)
        # quiet period: only a score that beats the recent ones keeps its full value
        recent = self.block_top
        if self.block_cur > recent:
            recent = self.block_cur
        if score > self.block_cur:
            self.block_cur = score
        self.block_fill += 1
        if self.block_fill >= max(1, p.quiet_points // p.quiet_blocks):
            blocks = self.block_max
            blocks.append(self.block_cur)
            if len(blocks) > p.quiet_blocks:
                del blocks[0]
            self.block_top = max(blocks)
            self.block_cur = 0.0
            self.block_fill = 0
        if self.n - self.last_alarm < p.refractory_points:
            # the same event still unfolding, a higher score too: reported already
            score *= p.burst_damping
        elif score <= recent:
            score *= p.quiet_damping
        elif score ** _exponent(p) >= p.refractory_score:
            self.last_alarm = self.n
        if score <= 0.0:
            return 0.0
        # monotone rescaling (ranks unchanged) so that the pivot reads as 0.5
        return float(score ** _exponent(p))

    def get_state(self) -> dict[str, Any]:
        """Return the full state as a JSON-serialisable dict."""
        state: dict[str, Any] = {"version": STATE_VERSION}
        for name in self.__slots__:
            if name in _DERIVED:
                continue
            state[name] = _enc(getattr(self, name))
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any], params: DetectorParams | None = None) -> Detector:
        """Rebuild a detector from ``get_state()`` output (fresh if incompatible).

        A state of an earlier version restores: fields it lacks keep their
        fresh values, fields of views removed since are ignored."""
        det = cls(params)
        if state.get("version") not in _RESTORABLE:
            return det
        for name in cls.__slots__:
            if name not in _DERIVED and name in state:
                setattr(det, name, _dec(state[name]))
        return det


def _exponent(p: DetectorParams) -> float:
    """Exponent of the monotone rescaling under which ``score_pivot`` reads 0.5."""
    return _LOG_HALF / math.log(p.score_pivot)


def _new_ring(dt: float, period: float, max_slots: int) -> tuple[array[float] | None, float]:
    """An empty profile ring for ``period`` (slot width >= ``dt``) and its slot width
    (None and -1 if the series is sampled too coarsely for this season)."""
    slots = round(period / max(dt, period / max_slots))
    if slots < 4:
        return None, -1.0
    return array("d", [math.nan]) * slots, period / slots


def _profile_step(ring: array[float], width: float, t: float, x: float, smoothing: float) -> float:
    """Move the slot of time ``t`` towards ``x``; return its old value (NaN if unseen)."""
    n = len(ring)
    slot = int((t % (width * n)) / width) % n
    old = ring[slot]
    ring[slot] = x if old != old else old + smoothing * (x - old)
    return old


def _range_step(
    x: float, lo: float, hi: float, scoring: bool, decay: float, up_only: bool = False
) -> tuple[float, float, float]:
    """Surprise of ``x`` against the range [lo, hi]; return the new range and it."""
    u = 0.0
    if scoring:
        rng = hi - lo
        if rng <= 0.0:
            rng = 1e-9 * max(1.0, abs(hi))  # a constant so far: any move is news
        if x > hi:
            u = (x - hi) / rng
        elif x < lo and not up_only:
            u = (lo - x) / rng
    if x > hi:
        hi = x
    if x < lo:
        lo = x
    if decay:
        # forget old extremes slowly so the range follows the recent data (no
        # min/max calls: this runs four times per point)
        shrink = decay * 0.5 * (hi - lo)
        hi -= shrink
        if hi < x:
            hi = x
        lo += shrink
        if lo > x:
            lo = x
    return lo, hi, u


def params_from_dict(raw: dict[str, Any]) -> DetectorParams:
    """Build params from a mapping, rejecting unknown keys."""
    known = {f.name for f in fields(DetectorParams)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown detector parameter(s): {sorted(unknown)}")
    return DetectorParams(**{**asdict(DetectorParams()), **raw})


def _enc(v: Any) -> Any:
    # JSON has no infinities or NaN: infinities become strings, NaN in arrays None.
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if isinstance(v, array):
        return {"array": [x if x == x else None for x in v]}
    if isinstance(v, list):
        return list(v)
    return v


def _dec(v: Any) -> Any:
    if v in ("inf", "-inf", "nan"):
        return float(v)
    if isinstance(v, dict) and "array" in v:
        return array("d", [math.nan if x is None else float(x) for x in v["array"]])
    if isinstance(v, list):
        return list(v)
    return v
