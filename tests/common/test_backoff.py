"""The one backoff: doubling ceiling, cap, downward jitter, delay from an attempt's end."""

from __future__ import annotations

import pytest

from stacksense_common import backoff


@pytest.mark.parametrize(
    "failures, expected",
    [
        (1, 1.0),
        (2, 2.0),
        (3, 4.0),
        (6, 32.0),
        (7, 60.0),
        (100, 60.0),
        (10_000, 60.0),
    ],
)
def test_the_ceiling_doubles_from_initial_up_to_the_maximum(failures: int, expected: float) -> None:
    assert backoff.ceiling(failures, initial=1.0, maximum=60.0) == expected


def test_jitter_only_shortens_so_the_maximum_is_a_true_maximum() -> None:
    top = [backoff.delay(n, initial=2.0, maximum=60.0, rand=lambda: 1.0) for n in (1, 2, 9)]
    low = [backoff.delay(n, initial=2.0, maximum=60.0, rand=lambda: 0.0) for n in (1, 2, 9)]
    assert top == [2.0, 4.0, 60.0]
    assert low == [1.0, 2.0, 30.0]  # equal jitter by default: never below half the ceiling


def test_the_jitter_fraction_is_a_parameter_and_zero_means_none() -> None:
    assert backoff.delay(3, initial=0.1, maximum=5, jitter=0.0, rand=lambda: 0.7) == pytest.approx(
        0.4
    )
    assert backoff.delay(1, initial=10, maximum=10, jitter=0.2, rand=lambda: 0.5) == pytest.approx(
        9.0
    )
    assert backoff.delay(1, initial=10, maximum=10, jitter=0.2, rand=lambda: 0.0) == 8.0


def test_random_delays_stay_within_the_band() -> None:
    for failures in range(1, 12):
        top = backoff.ceiling(failures, initial=0.5, maximum=8.0)
        d = backoff.delay(failures, initial=0.5, maximum=8.0)
        assert top / 2 <= d <= top


def test_the_next_attempt_is_counted_from_the_end_of_the_failed_one() -> None:
    assert backoff.next_attempt_at(1000.0, 2, initial=1, maximum=60, rand=lambda: 1.0) == 1002.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failures": 0, "initial": 1.0, "maximum": 2.0},
        {"failures": 1, "initial": 0.0, "maximum": 2.0},
        {"failures": 1, "initial": 3.0, "maximum": 2.0},
        {"failures": 1, "initial": 1.0, "maximum": 2.0, "jitter": 1.5},
    ],
)
def test_nonsense_arguments_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        backoff.delay(**kwargs)  # type: ignore[arg-type]
