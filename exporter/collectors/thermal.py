"""node_cooling_device_* and node_power_supply_online from sysfs classes (absent on most VMs)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ProbeContext
from exporter.collectors._common import label_text, number
from exporter.metrics import Family, gauge

NAME = "thermal"
COOLING = "/sys/class/thermal/cooling_device"
POWER = "/sys/class/power_supply/"
FILES = (
    f"{COOLING}*/type",
    f"{COOLING}*/cur_state",
    f"{COOLING}*/max_state",
    f"{POWER}*/online",
)


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    cur = gauge("node_cooling_device_cur_state", "Current throttle state of the cooling device")
    top = gauge("node_cooling_device_max_state", "Maximum throttle state of the cooling device")
    online = gauge(
        "node_power_supply_online", "online value of /sys/class/power_supply/<power_supply>."
    )
    for path, text in sorted(sections.items()):
        if path.startswith(COOLING):
            name, _, file = path[len(COOLING) :].partition("/")
            if not name.isdigit() or file not in ("cur_state", "max_state") or not text.strip():
                continue
            kind = sections.get(f"{COOLING}{name}/type", "").strip()
            family = cur if file == "cur_state" else top
            family.samples.append((label_text(name=name, type=kind), number(text, path)))
        elif path.startswith(POWER) and path.endswith("/online") and text.strip():
            supply = path[len(POWER) : -len("/online")]
            if supply and "/" not in supply:
                online.samples.append((label_text(power_supply=supply), number(text, path)))
    return [cur, top, online]
