"""node_load1/5/15 from /proc/loadavg (reference collector)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import require
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "loadavg"
FILES = ("/proc/loadavg",)


class LoadAvg(NamedTuple):
    load1: float
    load5: float
    load15: float


def parse(text: str) -> LoadAvg:
    """Parse `/proc/loadavg`: `0.52 0.58 0.59 2/1234 5678`."""
    fields = text.split()
    if len(fields) < 3:
        raise ParseError(f"loadavg: expected at least 3 fields, got {len(fields)}")
    try:
        values = LoadAvg(float(fields[0]), float(fields[1]), float(fields[2]))
    except ValueError as exc:
        raise ParseError(f"loadavg: not a number in {text.strip()[:40]!r}") from exc
    if any(v != v for v in values):
        raise ParseError(f"loadavg: not a number in {text.strip()[:40]!r}")
    return values


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    data = parse(require(sections, "/proc/loadavg", NAME))
    return [
        gauge("node_load1", "1m load average.", data.load1),
        gauge("node_load5", "5m load average.", data.load5),
        gauge("node_load15", "15m load average.", data.load15),
    ]


COLLECTOR = Collector(NAME, collect, files=FILES)
