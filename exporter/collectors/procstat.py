"""Kernel activity from /proc/stat: boot time, forks, context switches, interrupts, procs."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded, require
from exporter.collectors.base import Collector
from exporter.exposition import Family, counter, gauge

NAME = "stat"
FILES = ("/proc/stat",)


@dataclass(frozen=True)
class ProcStat:
    """What /proc/stat says; `cpus` maps "cpu0".. (and "cpu" for the total) to tick counts."""

    cpus: dict[str, tuple[int, ...]] = field(default_factory=dict)
    scalars: dict[str, int] = field(default_factory=dict)


@functools.lru_cache(maxsize=64)
@guarded("/proc/stat")
def parse(text: str) -> ProcStat:
    """Parse /proc/stat (cached: the cpu, stat and time collectors share one probe's text;
    sized so that concurrent probes of many targets do not evict each other)."""
    cpus: dict[str, tuple[int, ...]] = {}
    scalars: dict[str, int] = {}
    for line in text.split("\n"):
        parts = line.split()
        if not parts:
            continue
        key = parts[0]
        if key.startswith("cpu"):
            # 3.10 kernels have 9 or 10 columns, 2.6.33+ have guest_nice: take what is there.
            if len(parts) < 5:
                raise ParseError(f"/proc/stat: short cpu line {line[:60]!r}")
            cpus[key] = tuple(int(v) for v in parts[1:11])
        elif key in ("btime", "ctxt", "processes", "procs_running", "procs_blocked", "intr"):
            scalars[key] = int(parts[1])
    if "cpu" not in cpus or "btime" not in scalars:
        raise ParseError("/proc/stat: no aggregate cpu line or btime")
    return ProcStat(cpus, scalars)


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    data = parse(require(sections, "/proc/stat", NAME))
    s = data.scalars
    families = [gauge("node_boot_time_seconds", "Node boot time, in unixtime.", s["btime"])]
    if "ctxt" in s:
        families.append(
            counter("node_context_switches_total", "Total number of context switches.", s["ctxt"])
        )
    if "processes" in s:
        families.append(counter("node_forks_total", "Total number of forks.", s["processes"]))
    if "intr" in s:
        families.append(
            counter("node_intr_total", "Total number of interrupts serviced.", s["intr"])
        )
    if "procs_running" in s:
        families.append(
            gauge(
                "node_procs_running", "Number of processes in runnable state.", s["procs_running"]
            )
        )
    if "procs_blocked" in s:
        families.append(
            gauge(
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
                s["procs_blocked"],
            )
        )
    return families


COLLECTOR = Collector(NAME, collect, files=FILES)
