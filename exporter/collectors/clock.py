"""node_time_seconds as the host's clock sees it: boot time plus uptime."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext, procstat
from exporter.collectors._common import number, require
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "time"
FILES = ("/proc/uptime", "/proc/stat")


def parse(text: str) -> float:
    """Seconds since boot from /proc/uptime (`12345.67 23456.78`)."""
    fields = text.split()
    if not fields:
        raise ParseError("/proc/uptime: empty")
    uptime = number(fields[0], "/proc/uptime")
    if uptime < 0 or uptime == float("inf"):
        raise ParseError(f"/proc/uptime: impossible uptime {fields[0][:20]!r}")
    return uptime


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    # btime is the host's wall clock minus its boot clock, so btime + uptime is the
    # host's wall clock at read time (to within a second: btime is whole seconds),
    # read from two files the probe reads anyway instead of running `date`.
    uptime = parse(require(sections, "/proc/uptime", NAME))
    boot = procstat.parse(require(sections, "/proc/stat", NAME)).scalars["btime"]
    return [gauge("node_time_seconds", "System time in seconds since epoch (1970).", boot + uptime)]


COLLECTOR = Collector(NAME, collect, files=FILES)
