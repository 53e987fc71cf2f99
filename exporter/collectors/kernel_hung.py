"""node_kernel_hung_tasks: tasks the kernel's hung-task detector has reported (Linux 6.7+)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ProbeContext
from exporter.collectors._common import single_values
from exporter.collectors.base import Collector
from exporter.exposition import Family

NAME = "kernel_hung"
SOURCES = {"node_kernel_hung_tasks": "/proc/sys/kernel/hung_task_detect_count"}
FILES = tuple(SOURCES.values())


def parse(sections: Mapping[str, str]) -> dict[str, float]:
    """`{metric: value}` for the one-number files present."""
    return single_values(sections, SOURCES)


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    # Untyped like node_exporter's sysctl-style counts: it only grows, but an admin can
    # reset it at run time, and the dashboard reads it without rate().
    return [
        Family(name, "untyped", "Number of tasks detected as hung since boot.", [("", value)])
        for name, value in parse(sections).items()
    ]


COLLECTOR = Collector(NAME, collect, files=FILES)
