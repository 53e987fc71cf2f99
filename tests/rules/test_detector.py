"""Edge cases and contract of the streaming detector."""

import json
import math
import random
import types
from dataclasses import dataclass

import pytest

from rules.anomaly import AnomalyThresholds
from rules.detector import STATE_VERSION, Detector, DetectorParams, params_from_dict

ALERT = AnomalyThresholds().start  # the rule engine's default anomaly start threshold


def noisy_daily(n, seed=1, start=0.0, step=300.0):
    rnd = random.Random(seed)
    for i in range(n):
        yield start + i * step, 50 + 10 * math.sin(2 * math.pi * i / 288) + rnd.gauss(0, 1)


def run(det, points):
    return [det.update(t, v) for t, v in points]


def test_scores_always_in_unit_interval():
    rnd = random.Random(7)
    det = Detector()
    for i in range(5000):
        v = rnd.choice(
            [
                rnd.gauss(0, 1),
                rnd.expovariate(0.1) * 1e6,
                -1e300,
                1e300,
                0.0,
                float("nan"),
                float("inf"),
                -float("inf"),
            ]
        )
        s = det.update(float(i), v)
        assert 0.0 <= s <= 1.0 and math.isfinite(s)


def test_clear_spike_is_detected_and_normal_data_is_quiet():
    pts = list(noisy_daily(2000))
    det = Detector()
    scores = run(det, pts)
    assert max(scores[300:]) < ALERT
    t, v = pts[-1]
    spike = det.update(t + 300, v + 200)
    assert spike >= ALERT


def test_dip_is_detected():
    det = Detector()
    pts = list(noisy_daily(2000))
    run(det, pts)
    assert det.update(pts[-1][0] + 300, -150.0) >= ALERT


def test_level_shift_raises_no_storm():
    pts = list(noisy_daily(2000))
    det = Detector()
    run(det, pts)
    shifted = [(t + 2000 * 300, v + 100) for t, v in noisy_daily(2000, seed=2)]
    scores = run(det, shifted)
    assert max(scores[:5]) >= ALERT  # the shift itself is news
    assert sum(s >= ALERT for s in scores) <= 3
    assert max(scores[300:]) < ALERT  # then it is the new normal


def test_constant_series_is_quiet_then_change_is_flagged_once():
    det = Detector()
    scores = run(det, [(float(i), 5.0) for i in range(1000)])
    assert max(scores) == 0.0
    after = run(det, [(1000.0 + i, 7.0) for i in range(500)])
    assert after[0] >= ALERT
    assert sum(s >= ALERT for s in after) <= 2


def test_nan_and_inf_score_zero_and_leave_state_untouched():
    det = Detector()
    run(det, noisy_daily(1000))
    before = json.dumps(det.get_state(), sort_keys=True)
    for bad in (float("nan"), float("inf"), -float("inf")):
        assert det.update(1e9, bad) == 0.0
    assert json.dumps(det.get_state(), sort_keys=True) == before


def test_gaps_do_not_raise_a_storm():
    det = Detector()
    pts = list(noisy_daily(3000))
    gapped = pts[:1000] + [(t + 86400 * 3, v) for t, v in pts[1000:]]
    scores = run(det, gapped)
    assert sum(s >= ALERT for s in scores) <= 1


def test_repeated_and_out_of_order_timestamps():
    det = Detector()
    pts = list(noisy_daily(2000))
    rnd = random.Random(3)
    messy = []
    for t, v in pts:
        r = rnd.random()
        if r < 0.05:
            messy.append((t, v))
            messy.append((t, v))  # repeated
        elif r < 0.1:
            messy.append((t - 3000, v))  # late / out of order
        else:
            messy.append((t, v))
    scores = run(det, messy)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert sum(s >= ALERT for s in scores[300:]) <= 2


def test_counter_reset_is_one_event_not_a_storm():
    det = Detector()
    rnd = random.Random(5)
    total = 0.0
    scores = []
    for i in range(4000):
        if i == 2500:
            total = 0.0  # reboot resets the counter
        total += 1000 + rnd.gauss(0, 50)
        scores.append(det.update(i * 60.0, total))
    assert sum(s >= ALERT for s in scores[2500:]) <= 3
    assert sum(s >= ALERT for s in scores[300:2500]) <= 1


def test_state_round_trip_gives_identical_scores():
    pts = list(noisy_daily(3000, seed=11))
    a = Detector()
    run(a, pts[:1500])
    state = json.loads(json.dumps(a.get_state()))
    b = Detector.from_state(state)
    tail = pts[1500:] + [(pts[-1][0] + 300, 500.0)]
    assert run(a, tail) == run(b, tail)


def test_from_state_with_unknown_version_starts_fresh():
    det = Detector.from_state({"version": -1})
    assert det.get_state() == Detector().get_state()


@pytest.mark.parametrize("step", [300.0, 60.0])  # 60 s: both season rings at their bound
def test_state_is_small(step):
    det = Detector()
    run(det, noisy_daily(20000, step=step))
    assert len(json.dumps(det.get_state())) < 64 * 1024


def test_params_from_dict_rejects_unknown_keys():
    assert params_from_dict({}) == DetectorParams()
    with pytest.raises(ValueError, match="nope"):
        params_from_dict({"nope": 1})


def test_removed_parameters_are_rejected_by_name():
    # views 2 (recent range) and 6 (median) and the burst span are gone: a
    # configuration that still sets them is told which keys are unknown
    for name in ("w_recent", "recent_points", "recent_margin", "w_median", "burst_points"):
        with pytest.raises(ValueError, match=name):
            params_from_dict({name: 1})


def _shift_after_an_old_spike(params, shift, seed=1):
    """Level 50 (noise 5) with one spike of +100 early on, then the level moves by
    ``shift``: inside the raw range the spike left, outside the short mean's range.
    Returns (top score of the ordinary stretch, scores after the shift)."""
    rnd = random.Random(seed)
    det = Detector(params)
    before = run(
        det, [(i * 300.0, 50 + rnd.gauss(0, 5) + (100 if i == 400 else 0)) for i in range(3000)]
    )
    after = run(det, [((3000 + i) * 300.0, 50 + shift + rnd.gauss(0, 5)) for i in range(300)])
    return max(before[500:]), after


def test_mean_view_sees_a_sustained_shift_hidden_in_noise():
    quiet, after = _shift_after_an_old_spike(DetectorParams(), shift=8)
    assert max(after) > quiet and max(after) >= 0.5  # the shift beats every ordinary point
    assert sum(s >= 0.5 for s in after) == 1  # once: one event
    _, without = _shift_after_an_old_spike(DetectorParams(w_mean=0.0), shift=8)
    assert max(without) == 0.0  # no single point leaves the raw or season ranges
    _, same = _shift_after_an_old_spike(DetectorParams(), shift=0)
    assert max(same) == 0.0


def _peak_missing_on_last_day(seed):
    rnd = random.Random(seed)
    for i in range(288 * 14):
        day, k = divmod(i, 288)
        v = 50 + 20 * math.sin(2 * math.pi * k / 288) + rnd.gauss(0, 4)
        if day == 13 and 50 <= k < 90:
            v = 50 + rnd.gauss(0, 4)  # the daily peak does not come
        yield i * 300.0, v


def test_daily_profile_keeps_noisy_days_quiet_and_sees_a_missing_peak():
    last_day = slice(288 * 13 + 50, 288 * 13 + 90)
    normal = slice(300, 288 * 13)
    smoothed, one_yesterday = [], []
    for seed in range(1, 6):
        pts = list(_peak_missing_on_last_day(seed))
        scores = run(Detector(), pts)
        assert max(scores[last_day]) > max(scores[normal])  # the missing peak stands out
        smoothed.append(max(scores[normal]))
        raw_yesterday = run(Detector(DetectorParams(season_smoothing=1.0)), pts)
        one_yesterday.append(max(raw_yesterday[normal]))
    # comparing with a profile of past days, not with one noisy yesterday, means
    # lower false scores on ordinary days
    assert sum(smoothed) < sum(one_yesterday) - 0.2


def _older_state(det, dropped_prefix, version=None):
    """``det``'s state as JSON, as an earlier round saved it: without the fields
    whose names start with ``dropped_prefix``, under that round's version."""
    old = {
        k: v
        for k, v in json.loads(json.dumps(det.get_state())).items()
        if not k.startswith(dropped_prefix)
    }
    if version is not None:
        old["version"] = version
    return old


# fields a version-4 state (commit 003ef12) held for its recent-range and median
# views and its burst span, all removed since
_V4_ONLY = {
    "recent_max": [55.1, 60.2],
    "recent_min": [40.3, 39.9],
    "recent_top": 60.2,
    "recent_bot": 39.9,
    "recent_cur_max": 58.0,
    "recent_cur_min": 41.0,
    "recent_fill": 12,
    "median_lo": 40.0,
    "median_hi": 60.0,
    "median_n": 2800,
    "last_lead": 1234,
}


@pytest.mark.parametrize("version", [3, 4])  # 3: rounds 4-5, before the median view
def test_state_saved_by_version_3_or_4_restores_and_scores_like_the_state_it_carries(version):
    det = Detector()
    pts = list(noisy_daily(3000))
    run(det, pts[:2500])
    extra = {k: v for k, v in _V4_ONLY.items() if version == 4 or not k.startswith("median_")}
    old = {**json.loads(json.dumps(det.get_state())), **extra, "version": version}
    back = Detector.from_state(json.loads(json.dumps(old)))
    assert back.get_state() == det.get_state() | {"version": STATE_VERSION}  # nothing lost
    tail = pts[2500:] + [(pts[-1][0] + 300, 500.0)]
    assert run(back, tail) == run(det, tail)  # the removed views' fields change nothing
    assert back.get_state().keys().isdisjoint(_V4_ONLY)  # and are not carried on


def _weekdays_and_weekends(seed, weeks=6, holiday=None):
    # office-hours load: a high daily peak on weekdays, a low one at weekends
    rnd = random.Random(seed)
    for i in range(288 * 7 * weeks):
        day, k = divmod(i, 288)
        weekend = day % 7 in (5, 6) or day == holiday
        amp = 5 if weekend else 30
        yield i * 300.0, 20 + amp * max(0.0, math.sin(2 * math.pi * k / 288)) + rnd.gauss(0, 2)


def test_weekly_profile_sees_a_weekday_that_looks_like_a_weekend():
    # a Wednesday with a weekend's load (a holiday, an outage upstream) is ordinary
    # for the daily profile, which mixes weekdays and weekends, but not for the
    # weekly one
    holiday = 7 * 5 + 2
    day = slice(288 * holiday, 288 * (holiday + 1))
    ordinary = slice(288 * 14, 288 * holiday)  # after the weekly view's two weeks
    for seed in range(1, 4):
        pts = list(_weekdays_and_weekends(seed, holiday=holiday))
        scores = run(Detector(), pts)
        assert max(scores[day]) >= 0.5  # NAB's operating point
        assert max(scores[day]) > max(scores[ordinary])
        # how far the day stands out is the view's doing; with the refractory period
        # the day's later, larger deviations are echoes of its first alarm
        alone = run(Detector(DetectorParams(refractory_points=0)), pts)
        assert max(alone[day]) > max(alone[ordinary]) + 0.1
        daily_only = run(Detector(DetectorParams(w_week=0.0)), pts)
        assert max(daily_only[day]) < max(daily_only[ordinary])


def test_weekly_view_only_learns_for_its_first_two_weeks():
    # a profile of one week is one noisy sample: the view waits for two
    pts = list(_weekdays_and_weekends(7, weeks=3))
    pts[288 * 10 + 100] = (pts[288 * 10 + 100][0], 5.0)  # a dip in week 2
    two_weeks = 288 * 14
    with_week = run(Detector(), pts)
    without = run(Detector(DetectorParams(w_week=0.0)), pts)
    assert with_week[:two_weeks] == without[:two_weeks]
    ungated = run(Detector(DetectorParams(week_min_age=0.0)), pts)
    assert ungated[:two_weeks] != without[:two_weeks]  # the wait is what keeps it quiet


def test_state_saved_before_the_weekly_view_existed_still_restores():
    det = Detector()
    run(det, noisy_daily(3000))
    old = _older_state(det, "week", version=1)  # what round 2 saved
    back = Detector.from_state(old)
    assert back.raw_hi == det.raw_hi and back.season_n == det.season_n
    assert back.week is None
    assert back.update(3001 * 300.0, 500.0) >= ALERT  # it works at once ...
    assert back.week is not None and back.week_t0 == 3001 * 300.0  # ... and view 4 starts


def test_coarse_series_has_no_season_rings_and_still_scores():
    # one point every three days: no daily or weekly profile can be kept
    det = Detector()
    scores = run(det, [(i * 259200.0, 10.0 + (i % 5)) for i in range(400)])
    assert det.season is None and det.week is None and det.week_width == -1.0
    assert max(scores[200:]) < ALERT
    assert det.update(400 * 259200.0, 100.0) >= ALERT


def _spike_then_higher_spike(params, gap, rise=1000.0):
    det = Detector(params)
    pts = list(noisy_daily(2000))
    run(det, pts)
    t, v = pts[-1]
    first = det.update(t + 300, v + 60)
    run(det, [(t + 300 * (2 + i), v) for i in range(gap - 1)])
    second = det.update(t + 300 * (gap + 1), v + rise)  # 1000: a new record, a lead
    return first, second


def test_a_higher_score_soon_after_an_alarm_is_its_echo():
    first, second = _spike_then_higher_spike(DetectorParams(), gap=10)
    assert first >= ALERT and second < ALERT  # the event is reported once
    # without the refractory period the rise is a second alarm
    _, again = _spike_then_higher_spike(DetectorParams(refractory_points=0), gap=10)
    assert again >= ALERT
    # and after it, a higher score is news again
    _, later = _spike_then_higher_spike(DetectorParams(), gap=130)
    assert later >= ALERT
    # inside the refractory period a smaller surprise (not a lead) is damped as an
    # echo too, harder than the quiet period would
    _, echo = _spike_then_higher_spike(DetectorParams(), gap=80, rise=90.0)
    _, quiet = _spike_then_higher_spike(DetectorParams(refractory_points=0), gap=80, rise=90.0)
    assert 0.0 < echo < quiet < ALERT


def _two_spikes(params, gap):
    """A tall spike, ``gap`` ordinary points, then a taller one (a new record that
    beats its range by less than the first did); the second spike's score."""
    det = Detector(params)
    pts = list(noisy_daily(2000))
    run(det, pts)
    t, v = pts[-1]
    det.update(t + 300, v + 200)
    run(det, [(t + 300 * (2 + i), v) for i in range(gap)])
    return det.update(t + 300 * (gap + 2), v + 230)


def test_a_score_that_does_not_beat_the_recent_ones_is_damped():
    # past the refractory period, inside the quiet window: the second record is
    # scored below the first one's raw score, so it is multiplied by quiet_damping
    p = DetectorParams()
    damped = _two_spikes(p, gap=200)
    undamped = _two_spikes(DetectorParams(quiet_damping=1.0), gap=200)
    assert 0.0 < damped < undamped
    exponent = math.log(0.5) / math.log(p.score_pivot)
    assert damped == pytest.approx(undamped * p.quiet_damping**exponent)
    # once the first spike has left the quiet window, the same record is not damped
    gap = p.quiet_points + p.quiet_points // p.quiet_blocks  # the window moves by blocks
    later = _two_spikes(p, gap=gap)
    assert later == pytest.approx(_two_spikes(DetectorParams(quiet_damping=1.0), gap=gap))
    assert later > damped


def test_state_saved_before_the_refractory_period_existed_still_restores():
    det = Detector()
    run(det, noisy_daily(3000))
    old = _older_state(det, "last_alarm", version=2)  # what round 3 saved
    back = Detector.from_state(old)
    assert back.raw_hi == det.raw_hi and back.week_n == det.week_n
    assert back.update(3001 * 300.0, 500.0) >= ALERT
    assert back.last_alarm == back.n


def test_a_gap_restarts_the_short_mean():
    det = Detector()
    run(det, noisy_daily(1000))
    det.update(1000 * 300.0 + 7 * 3600, 50.0)  # silent for 7 h: the short window restarts
    assert det.mean_buf == [50.0] and det.mean_i == 0 and det.mean_sum == 50.0
    assert det.mean_prev == 50.0 and math.isnan(det.mean_prev2)  # so does its spike filter


def _lone_spikes_then_shift(shift, seed):
    """Level 50 (noise 2), one spike of +300 early on; from row 3000, 300 rows
    with a spike of +180 every 24th row (inside the raw and daily ranges the
    first spike left); then 300 rows at level 50 + ``shift``.
    Returns (the rows, the scores of the spike stretch, those of the shift)."""
    rnd = random.Random(seed)
    pts = []
    for i in range(3600):
        v = 50 + rnd.gauss(0, 2) + (300 if i == 400 else 0)
        if 3000 <= i < 3300 and i % 24 == 0:
            v += 180
        elif i >= 3300:
            v += shift
        pts.append((i * 300.0, v))
    scores = run(Detector(), pts)
    return pts, scores[3000:3300], scores[3300:]


@pytest.mark.parametrize("seed", range(1, 9))
def test_short_mean_ignores_lone_spikes_and_still_sees_a_shift(seed):
    pts, spikes, after = _lone_spikes_then_shift(shift=8, seed=seed)
    values = [v for _, v in pts]

    def top_mean(lo, hi):  # highest plain mean of the 24 values before a row in [lo, hi)
        return max(sum(values[i - 24 : i]) / 24 for i in range(lo, hi))

    # unfiltered, the first spike would widen the short mean's range past the
    # shift's level, and every later lone spike would break the range of the rest
    assert top_mean(401, 425) > 50 + 8 + 2
    assert top_mean(3000, 3300) > top_mean(600, 3000) + 5
    assert max(spikes) < ALERT  # lone spikes inside the raw range: no anomaly ...
    assert max(after) >= 0.5 and max(after) > max(spikes)  # ... the shift stands out
    assert sum(s >= 0.5 for s in after) == 1  # once
    _, _, same = _lone_spikes_then_shift(shift=0, seed=seed)
    assert max(same) < 0.5


def test_state_saved_by_version_5_restores_and_its_spike_filter_refills():
    det = Detector()
    pts = list(noisy_daily(3000))
    run(det, pts[:2500])
    old = _older_state(det, "mean_prev", version=5)  # before the spike filter
    back = Detector.from_state(json.loads(json.dumps(old)))
    assert back.mean_buf == det.mean_buf and back.raw_hi == det.raw_hi
    assert math.isnan(back.mean_prev) and math.isnan(back.mean_prev2)
    run(back, pts[2500:2502])  # two values refill the filter's window ...
    run(det, pts[2500:2502])
    tail = pts[2502:] + [(pts[-1][0] + 300, 500.0)]
    assert run(back, tail) == run(det, tail)  # ... after which nothing differs


@dataclass(frozen=True)
class _FireAboveParams:
    fire_above: float = 7.0


class _FireAbove:
    """A stand-in detector for the protocol test: 1 above a constant, else 0."""

    def __init__(self, params):
        self.params = params

    def update(self, t, v):
        return 1.0 if v > self.params.fire_above else 0.0


def test_cross_validation_scores_each_category_with_constants_chosen_without_it():
    # five categories whose events reach 10 over noise up to 5, one whose events
    # reach only 3 over noise up to 2: the grid point that fits the sixth (2.5)
    # must not be the one it is scored with
    from bench import nab_cv

    rnd = random.Random(3)
    corpus, units = [], []
    for i, cat in enumerate(nab_cv.CATEGORIES):
        odd = cat == "realTweets"
        values = [rnd.uniform(0, 2 if odd else 5) for _ in range(1000)]
        values[600:605] = [3.0 if odd else 10.0] * 5
        stamps = [str(k * 300) for k in range(1000)]
        corpus.append((f"{cat}/x.csv", stamps, [k * 300.0 for k in range(1000)], values))
        units.append(nab_cv.Unit(cat, i, 0, 1000, ((600, 620),)))
    fam = nab_cv.Family(
        "fake",
        types.SimpleNamespace(Detector=_FireAbove, DetectorParams=_FireAboveParams),
        {"fire_above": (2.5, 7.0)},
    )
    res = nab_cv.cross_validate(fam, corpus, units, log=lambda _: None)
    folds = {f.held_out: f for f in res.folds}
    assert folds["realTweets"].config == {"fire_above": 7.0}  # chosen on the other five
    assert folds["realTweets"].held_out_score == 0.0  # so its event is missed: no fitting
    assert folds["realTraffic"].config == {"fire_above": 7.0}
    assert folds["realTraffic"].held_out_score == 100.0
    # the plain score (defaults, 7.0) and the pooled one agree here; both miss realTweets
    assert res.plain["standard"]["windows_detected"] == 5
    assert res.pooled["standard"]["windows_detected"] == 5
