"""node_pressure_* from /proc/pressure/{cpu,io,memory,irq} (PSI, Linux 4.20+)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded
from exporter.collectors.base import Collector
from exporter.exposition import Family, counter

NAME = "pressure"
RESOURCES = ("cpu", "io", "memory", "irq")
FILES = tuple(f"/proc/pressure/{resource}" for resource in RESOURCES)
# node_exporter's names: "some" is waiting, "full" is stalled.
KINDS = {"some": "waiting", "full": "stalled"}
HELP = {
    ("cpu", "some"): "Total time in seconds that processes have waited for CPU time",
    ("cpu", "full"): "Total time in seconds no process could make progress due to CPU congestion",
    ("io", "some"): "Total time in seconds that processes have waited due to IO congestion",
    ("io", "full"): "Total time in seconds no process could make progress due to IO congestion",
    ("memory", "some"): "Total time in seconds that processes have waited for memory",
    ("memory", "full"): "Total time in seconds no process could make progress due to memory",
    ("irq", "full"): "Total time in seconds no process could make progress due to IRQ",
}


@guarded("/proc/pressure")
def parse(text: str) -> dict[str, float]:
    """`{some|full: total seconds}` from a PSI file (totals are in microseconds)."""
    out: dict[str, float] = {}
    for line in text.split("\n"):
        parts = line.split()
        if not parts:
            continue
        if parts[0] not in KINDS:
            raise ParseError(f"pressure: unexpected line {line[:60]!r}")
        for part in parts[1:]:
            if part.startswith("total="):
                out[parts[0]] = int(part[6:]) / 1e6
                break
        else:
            raise ParseError(f"pressure: no total in {line[:60]!r}")
    return out


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    families: list[Family] = []
    for resource in RESOURCES:
        text = sections.get(f"/proc/pressure/{resource}")
        if text is None:
            continue  # kernels before 4.20 or booted with psi=0 have no PSI: not an error
        for kind, seconds in parse(text).items():
            # cpu "full" is all zero outside cgroups on most kernels; node_exporter skips
            # only what it cannot read, so both lines are exported when present.
            help_text = HELP.get((resource, kind))
            if help_text is None:
                continue
            families.append(
                counter(f"node_pressure_{resource}_{KINDS[kind]}_seconds_total", help_text, seconds)
            )
    return families


COLLECTOR = Collector(NAME, collect, files=FILES)
