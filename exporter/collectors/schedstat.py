"""node_schedstat_* per CPU from /proc/schedstat (absent on kernels built without it)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded, label_text
from exporter.collectors.base import Collector
from exporter.exposition import Family, counter

NAME = "schedstat"
FILES = ("/proc/schedstat",)


@guarded("/proc/schedstat")
def parse(text: str) -> dict[str, tuple[float, float, float]]:
    """`{cpu: (running ns, waiting ns, timeslices)}` from the `cpuN` lines (fields 7-9)."""
    out: dict[str, tuple[float, float, float]] = {}
    for line in text.split("\n"):
        parts = line.split()
        if not parts or not parts[0].startswith("cpu"):
            continue
        if len(parts) < 10 or not parts[0][3:].isdigit():
            raise ParseError(f"schedstat: unexpected cpu line {line[:60]!r}")
        out[parts[0][3:]] = (float(int(parts[7])), float(int(parts[8])), float(int(parts[9])))
    return out


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    text = sections.get("/proc/schedstat")
    if text is None:
        return []
    running = counter(
        "node_schedstat_running_seconds_total", "Number of seconds CPU spent running a process."
    )
    waiting = counter(
        "node_schedstat_waiting_seconds_total",
        "Number of seconds spent by processing waiting for this CPU.",
    )
    timeslices = counter("node_schedstat_timeslices_total", "Number of timeslices executed by CPU.")
    for cpu, (run_ns, wait_ns, slices) in parse(text).items():
        labels = label_text(cpu=cpu)
        running.samples.append((labels, run_ns / 1e9))
        waiting.samples.append((labels, wait_ns / 1e9))
        timeslices.samples.append((labels, slices))
    return [running, waiting, timeslices]


COLLECTOR = Collector(NAME, collect, files=FILES)
