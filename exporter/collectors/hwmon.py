"""node_hwmon_* temperatures and fan speeds from /sys/class/hwmon (absent on most VMs).

node_exporter names a chip after its device path (`platform_coretemp_0`),
which needs a readlink per chip; here the chip label is the hwmon directory
(`hwmon3`), stable for a boot, and `node_hwmon_chip_names` maps it to the
driver name so that the dashboards' `on(chip) group_left(chip_name)` joins work.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ProbeContext
from exporter.collectors._common import guarded, label_text, number
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "hwmon"
PREFIX = "/sys/class/hwmon/"
# (file suffix, metric, help, scale): temperatures are millidegrees, fans RPM.
READINGS = (
    ("temp", "_input", "node_hwmon_temp_celsius", "Hardware monitor temperature (input)", 1e-3),
    ("temp", "_crit", "node_hwmon_temp_crit_celsius", "Hardware monitor temperature (crit)", 1e-3),
    ("temp", "_max", "node_hwmon_temp_max_celsius", "Hardware monitor temperature (max)", 1e-3),
    ("fan", "_input", "node_hwmon_fan_rpm", "Hardware monitor fan speed (input)", 1.0),
    ("fan", "_min", "node_hwmon_fan_min_rpm", "Hardware monitor fan speed (min)", 1.0),
)  # fmt: skip
FILES = (
    f"{PREFIX}hwmon*/name",
    *(f"{PREFIX}hwmon*/{kind}*{suffix}" for kind, suffix, _, _, _ in READINGS),
)


@guarded("hwmon")
def parse(
    sections: Mapping[str, str],
) -> tuple[dict[str, str], dict[str, list[tuple[str, str, float]]]]:
    """(chip -> driver name, metric -> [(chip, sensor, value)]) from the files present."""
    names: dict[str, str] = {}
    readings: dict[str, list[tuple[str, str, float]]] = {}
    for path, text in sections.items():
        if not path.startswith(PREFIX):
            continue
        chip, _, file = path[len(PREFIX) :].partition("/")
        if not chip.startswith("hwmon") or "/" in file:
            continue
        if file == "name":
            names[chip] = text.strip()
            continue
        for kind, suffix, metric, _, scale in READINGS:
            sensor = file[: -len(suffix)] if file.endswith(suffix) else ""
            if sensor.startswith(kind) and sensor[len(kind) :].isdigit() and text.strip():
                value = number(text, path) * scale
                readings.setdefault(metric, []).append((chip, sensor, value))
                break
    return names, readings


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    names, readings = parse(sections)
    if not names and not readings:
        return []
    chip_names = gauge("node_hwmon_chip_names", "Annotation metric for human-readable chip names")
    for chip in sorted(names):
        chip_names.samples.append((label_text(chip=chip, chip_name=names[chip]), 1))
    families = [chip_names]
    for _, _, metric, help_text, _ in READINGS:
        family = gauge(metric, help_text)
        for chip, sensor, value in sorted(readings.get(metric, [])):
            family.samples.append((label_text(chip=chip, sensor=sensor), value))
        families.append(family)
    return families


COLLECTOR = Collector(NAME, collect, files=FILES)
