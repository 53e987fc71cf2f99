"""Helpers shared by the collectors: section lookup, number parsing, error guarding."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import ParamSpec, TypeVar

from exporter.collectors import ParseError
from exporter.exposition import escape_label_value

P = ParamSpec("P")
R = TypeVar("R")

# The kernel's USER_HZ: /proc/stat counts CPU time in 1/100 s on every Linux
# architecture (it is fixed by the ABI, unlike the internal HZ).
USER_HZ = 100.0


def guarded(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn any ValueError/IndexError/KeyError inside a parser into a ParseError.

    Parsers work on text from a remote host that may be anything (a banner, a
    truncated read, a different kernel's format); the probe only expects
    ParseError from a collector, so every other parsing failure is mapped to it
    with the collector's name in the message.
    """

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except ParseError:
                raise
            except (ValueError, IndexError, KeyError, OverflowError) as exc:
                raise ParseError(f"{name}: unexpected format ({exc})") from exc

        return inner

    return wrap


def cheap_sections_key(collector: str) -> str:
    """The `ctx.state` key where a collector says its cheap sections are safe on this host."""
    return f"{collector}.cheap_sections_ok"


def require(sections: Mapping[str, str], path: str, collector: str) -> str:
    """The text of `path`, or a ParseError saying it is missing."""
    text = sections.get(path)
    if text is None:
        raise ParseError(f"{collector}: {path} missing from the probe output")
    return text


def number(text: str, what: str) -> float:
    """Parse one number, naming `what` in the error."""
    try:
        value = float(text)
    except ValueError:
        raise ParseError(f"{what}: not a number: {text.strip()[:40]!r}") from None
    if value != value:  # NaN never comes from the kernel; treat it as garbage
        raise ParseError(f"{what}: not a number: {text.strip()[:40]!r}")
    return value


def single_values(sections: Mapping[str, str], paths: Mapping[str, str]) -> dict[str, float]:
    """Read one-number files (`/proc/sys/...`): `{key: value}` for the present, valid ones."""
    out: dict[str, float] = {}
    for key, path in paths.items():
        text = sections.get(path)
        if text is None or not text.strip():
            continue
        out[key] = number(text.split()[0], path)
    return out


# Sized for a fleet: label sets repeat per host (devices, mount points, CPUs);
# a miss only costs re-rendering one string.
@functools.lru_cache(maxsize=16384)
def label_text(**labels: str) -> str:
    """Pre-rendered `{k="v",...}` for Family.samples (cached: devices and CPUs repeat)."""
    return "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items()) + "}"
