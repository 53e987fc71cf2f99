"""The one retry backoff: a doubling ceiling, capped, with downward jitter.

`failures` counts the failed attempts in a row (1 after the first failure) and the delay
runs from the END of the failed attempt, not its start: a slow attempt (a timeout, say)
then never eats into the pause the peer is given.

Jitter only shortens the wait, within [(1 - jitter) * ceiling, ceiling], so `maximum` is a
true maximum and many clients failing together spread out instead of retrying in step.
The default 0.5 is "equal jitter": at least half the ceiling, so the backoff still grows.
"""

from __future__ import annotations

import random
from collections.abc import Callable

DEFAULT_JITTER = 0.5


def ceiling(failures: int, *, initial: float, maximum: float) -> float:
    """The un-jittered delay after `failures` failures: initial * 2^(failures-1), capped."""
    if failures < 1:
        raise ValueError(f"failures must be at least 1, got {failures}")
    if initial <= 0 or maximum < initial:
        raise ValueError(f"need 0 < initial <= maximum, got initial={initial} maximum={maximum}")
    # The exponent is bounded so that a long outage cannot overflow the float.
    return min(maximum, initial * 2.0 ** min(failures - 1, 60))


def delay(
    failures: int,
    *,
    initial: float,
    maximum: float,
    jitter: float = DEFAULT_JITTER,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait, from the end of the failed attempt, before the next one.

    `rand` returns a number in [0, 1): 0 gives the shortest wait, 1 the ceiling; tests pass
    a constant to pin the jitter.
    """
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be within [0, 1], got {jitter}")
    top = ceiling(failures, initial=initial, maximum=maximum)
    return top * (1.0 - jitter) + top * jitter * rand()


def next_attempt_at(
    ended_at: float,
    failures: int,
    *,
    initial: float,
    maximum: float,
    jitter: float = DEFAULT_JITTER,
    rand: Callable[[], float] = random.random,
) -> float:
    """When to try again: `ended_at` (the failed attempt's end) plus the delay."""
    return ended_at + delay(failures, initial=initial, maximum=maximum, jitter=jitter, rand=rand)
