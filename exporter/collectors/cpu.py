"""Per-CPU time from /proc/stat (node_cpu_*) and StackSense's busy ratio."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from exporter.collectors import ProbeContext, procstat
from exporter.collectors._common import USER_HZ, label_text, require
from exporter.collectors.base import Collector
from exporter.exposition import Family, counter, gauge

NAME = "cpu"
FILES = ("/proc/stat",)

# Column order of a cpu line in /proc/stat (proc(5)); older kernels stop early.
MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
GUEST_MODES = ("user", "nice")  # columns 9 and 10: guest, guest_nice
STATE_KEY = "cpu.previous_total"


def parse(text: str) -> procstat.ProcStat:
    """/proc/stat, parsed once per probe text and shared with the stat collector."""
    return procstat.parse(text)


@functools.lru_cache(maxsize=4096)
def cpu_labels(cpu: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Rendered `{cpu,mode}` label strings for one CPU's modes and guest modes."""
    return (
        tuple(label_text(cpu=cpu, mode=mode) for mode in MODES),
        tuple(label_text(cpu=cpu, mode=mode) for mode in GUEST_MODES),
    )


def usage_ratio(previous: tuple[int, ...] | None, current: tuple[int, ...]) -> float | None:
    """Busy share of CPU time between two aggregate cpu lines; None when not computable.

    Busy is everything but idle and iowait. Guest time is already counted in
    user/nice, so only the first eight columns are summed. A counter that went
    backwards (reboot, counter reset) or no elapsed ticks gives None.
    """
    if previous is None or len(previous) != len(current):
        return None
    cur = current[:8]
    prev = previous[:8]
    if any(c < p for c, p in zip(cur, prev, strict=True)):
        return None
    total = sum(cur) - sum(prev)
    if total <= 0:
        return None
    idle = (cur[3] - prev[3]) + ((cur[4] - prev[4]) if len(cur) > 4 else 0)
    return min(1.0, max(0.0, (total - idle) / total))


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    data = parse(require(sections, "/proc/stat", NAME))
    seconds = counter("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.")
    guest = counter(
        "node_cpu_guest_seconds_total",
        "Seconds the CPUs spent in guests (VMs) for each mode.",
    )
    for key, ticks in data.cpus.items():
        if key == "cpu":
            continue
        mode_labels, guest_labels = cpu_labels(key[3:])
        for labels, value in zip(mode_labels, ticks, strict=False):
            seconds.samples.append((labels, value / USER_HZ))
        for labels, value in zip(guest_labels, ticks[8:10], strict=False):
            guest.samples.append((labels, value / USER_HZ))
    families = [seconds, guest]
    total = data.cpus["cpu"]
    ratio = usage_ratio(ctx.state.get(STATE_KEY), total)
    ctx.state[STATE_KEY] = total
    if ratio is not None:
        families.append(
            gauge(
                "stacksense_cpu_usage_ratio",
                "Share of CPU time not idle or waiting for I/O since the previous probe (0-1).",
                ratio,
            )
        )
    return families


# The usage ratio depends on the previous probe too: never reuse this probe's families.
COLLECTOR = Collector(NAME, collect, files=FILES, memoizable=False)
