"""node_cpu_scaling_frequency_* and node_cpu_frequency_* from cpufreq in sysfs (kHz)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ProbeContext
from exporter.collectors._common import guarded, label_text
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "cpufreq"
PREFIX = "/sys/devices/system/cpu/cpu"
MIDDLE = "/cpufreq/"
METRICS = {
    "scaling_cur_freq": (
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    "scaling_max_freq": (
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
    "scaling_min_freq": (
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
    "cpuinfo_cur_freq": ("node_cpu_frequency_hertz", "Current CPU thread frequency in hertz."),
    "cpuinfo_max_freq": ("node_cpu_frequency_max_hertz", "Maximum CPU thread frequency in hertz."),
    "cpuinfo_min_freq": ("node_cpu_frequency_min_hertz", "Minimum CPU thread frequency in hertz."),
}
FILES = tuple(f"{PREFIX}*{MIDDLE}{name}" for name in METRICS)


@guarded("cpufreq")
def parse(sections: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """`{file name: {cpu: hertz}}` from the files present (a VM usually has none)."""
    out: dict[str, dict[str, float]] = {}
    for path, text in sections.items():
        if not path.startswith(PREFIX) or MIDDLE not in path:
            continue
        cpu, _, name = path[len(PREFIX) :].partition(MIDDLE)
        if name in METRICS and cpu.isdigit() and text:
            # kHz, one integer per file; float() accepts the trailing newline
            out.setdefault(name, {})[cpu] = float(text) * 1000.0
    return out


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    values = parse(sections)
    families: list[Family] = []
    for name, (metric, help_text) in METRICS.items():
        per_cpu = values.get(name)
        if not per_cpu:
            continue
        family = gauge(metric, help_text)
        for cpu in sorted(per_cpu, key=int):
            family.samples.append((label_text(cpu=cpu), per_cpu[cpu]))
        families.append(family)
    return families


COLLECTOR = Collector(NAME, collect, files=FILES)
