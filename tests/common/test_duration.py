"""Prometheus' duration grammar, against prometheus/common model/time_test.go's tables."""

from __future__ import annotations

import pytest

from stacksense_common import duration
from stacksense_common.config import ConfigError, duration_at

MS, S, M, H, D, W, Y = 0.001, 1, 60, 3600, 86400, 7 * 86400, 365 * 86400


# (input, seconds, how Prometheus writes it back; None: the same as the input)
@pytest.mark.parametrize(
    "text, seconds, written",
    [
        ("0", 0, "0s"),
        ("0w", 0, "0s"),
        ("0s", 0, None),
        ("324ms", 324 * MS, None),
        ("3s", 3 * S, None),
        ("5m", 5 * M, None),
        ("1h", H, None),
        ("4d", 4 * D, None),
        ("4d1h", 4 * D + H, None),
        ("14d", 14 * D, "2w"),
        ("3w", 3 * W, None),
        ("3w2d1h", 3 * W + 2 * D + H, "23d1h"),  # weeks only when they divide the whole
        ("10y", 10 * Y, None),
        ("1h30m", 90 * M, None),
        # years likewise
        ("1y2w3d4h5m6s7ms", Y + 2 * W + 3 * D + 4 * H + 5 * M + 6 + 7 * MS, "382d4h5m6s7ms"),
        ("90s", 90, "1m30s"),
        ("500ms", 0.5, None),
        ("01s", 1, "1s"),
    ],
)
def test_valid(text: str, seconds: float, written: str | None) -> None:
    assert duration.parse(text) == pytest.approx(seconds)
    assert duration.format(duration.parse(text)) == (written or text)


@pytest.mark.parametrize(
    "text",
    [
        "1",  # a bare number (only 0 may go without a unit)
        "1y1m1d",  # units out of order
        "1m1h",
        "1h1h",  # a unit twice
        "1s1ms1s",
        "-1w",  # no signs
        "+1s",
        "1.5d",  # no fractions
        "1.5s",
        "",
        "d",
        "s1",
        "1 s",  # no spaces, anywhere
        " 1s",
        "1s ",
        "1S",  # units are lower case
        "1sec",
        "1us",
        "293y",  # past Go's int64 nanoseconds, as Prometheus refuses
        "9" * 40 + "s",
        "１s",  # fullwidth digit
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(duration.DurationError, match="grammar: .*descending order"):
        duration.parse(text)


def test_errors_name_the_path_and_the_grammar() -> None:
    with pytest.raises(ConfigError) as err:
        duration_at("1.5s", "status.offline_after")
    assert str(err.value).startswith(
        "status.offline_after: expected a duration, got '1.5s'; "
        "the grammar: [0-9]+ then one of ms s m h d w y"
    )
    with pytest.raises(duration.DurationError, match=r"^a\[0\]: expected a duration, got .5.;"):
        duration.parse(5, "a[0]")


def test_yaml_integers_read_as_their_text_like_prometheus() -> None:
    assert duration_at(0, "x") == 0.0
    raws: list[object] = [30, 1.5, True, None, [], {}]
    for raw in raws:
        with pytest.raises(ConfigError, match="^x: expected a duration, got "):
            duration_at(raw, "x")


@pytest.mark.parametrize(
    "seconds, written",
    [
        (0, "0s"),
        (0.0004, "0s"),
        (0.25, "250ms"),
        (1.5, "1s500ms"),
        (59, "59s"),
        (3600, "1h"),
        (86400 * 90, "90d"),
        (-90, "-1m30s"),
        (Y + D, "366d"),
        (Y * 2, "2y"),
    ],
)
def test_format(seconds: float, written: str) -> None:
    assert duration.format(seconds) == written
    if seconds >= 0.001:
        assert duration.parse(written) == pytest.approx(seconds, abs=0.001)
