"""node_cooling_device_* and node_power_supply_online from sysfs classes (absent on most VMs)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ProbeContext
from exporter.collectors._common import guarded, label_text, number
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "thermal"
COOLING = "/sys/class/thermal/cooling_device"
POWER = "/sys/class/power_supply/"
FILES = (
    f"{COOLING}*/type",
    f"{COOLING}*/cur_state",
    f"{COOLING}*/max_state",
    f"{POWER}*/online",
)


Reading = tuple[str, dict[str, str], float]  # (metric, labels, value)


@guarded("thermal")
def parse(sections: Mapping[str, str]) -> list[Reading]:
    """Cooling device states and power supply online flags from the files present."""
    readings: list[Reading] = []
    for path, text in sorted(sections.items()):
        if path.startswith(COOLING):
            name, _, file = path[len(COOLING) :].partition("/")
            if not name.isdigit() or file not in ("cur_state", "max_state") or not text.strip():
                continue
            kind = sections.get(f"{COOLING}{name}/type", "").strip()
            metric = f"node_cooling_device_{file}"
            readings.append((metric, {"name": name, "type": kind}, number(text, path)))
        elif path.startswith(POWER) and path.endswith("/online") and text.strip():
            supply = path[len(POWER) : -len("/online")]
            if supply and "/" not in supply:
                labels = {"power_supply": supply}
                readings.append(("node_power_supply_online", labels, number(text, path)))
    return readings


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    families = {
        "node_cooling_device_cur_state": gauge(
            "node_cooling_device_cur_state", "Current throttle state of the cooling device"
        ),
        "node_cooling_device_max_state": gauge(
            "node_cooling_device_max_state", "Maximum throttle state of the cooling device"
        ),
        "node_power_supply_online": gauge(
            "node_power_supply_online", "online value of /sys/class/power_supply/<power_supply>."
        ),
    }
    for metric, labels, value in parse(sections):
        families[metric].samples.append((label_text(**labels), value))
    return list(families.values())


COLLECTOR = Collector(NAME, collect, files=FILES)
