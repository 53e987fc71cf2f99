"""node_processes_threads and the pid/thread limits, from files the kernel keeps counted.

node_exporter's processes collector (off by default) walks every /proc/<pid>;
over SSH that costs the host far too much per probe. The thread count comes
from /proc/loadavg's "running/total" field (total scheduling entities, i.e.
threads), the limits from /proc/sys/kernel. node_processes_pids and
node_processes_state need the walk and are not exported.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import number, single_values
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "processes"
LIMITS = {
    "node_processes_max_processes": "/proc/sys/kernel/pid_max",
    "node_processes_max_threads": "/proc/sys/kernel/threads-max",
}
FILES = ("/proc/loadavg", *LIMITS.values())
HELP = {
    "node_processes_max_processes": "Number of max PIDs limit",
    "node_processes_max_threads": "Limit of threads in the system",
}


def parse(text: str) -> float:
    """Total threads from /proc/loadavg's fourth field (`2/1234`)."""
    fields = text.split()
    if len(fields) < 4 or "/" not in fields[3]:
        raise ParseError("processes: /proc/loadavg has no running/total field")
    return number(fields[3].partition("/")[2], "/proc/loadavg threads")


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    families = [gauge(name, HELP[name], v) for name, v in single_values(sections, LIMITS).items()]
    if "/proc/loadavg" in sections:
        families.append(
            gauge(
                "node_processes_threads",
                "Allocated threads in system",
                parse(sections["/proc/loadavg"]),
            )
        )
    return families


COLLECTOR = Collector(NAME, collect, files=FILES)
