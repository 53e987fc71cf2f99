"""node_network_* link state from /sys/class/net/<device>/ (up, carrier, speed, MTU, info)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded, label_text, number
from exporter.collectors.base import Collector
from exporter.exposition import Family, counter, gauge

NAME = "netclass"
PREFIX = "/sys/class/net/"
# A subset of node_exporter's netclass attributes: every attribute is one more
# glob and one more read per interface on the host at every probe (hosts with
# hundreds of veths exist), so only what dashboards and node-mixin alerts read
# is collected: link state, speed, MTU and the info labels.
ATTRIBUTES = (
    "address", "broadcast", "duplex", "ifalias", "operstate", "mtu", "speed", "carrier",
)  # fmt: skip
FILES = tuple(f"{PREFIX}*/{attribute}" for attribute in ATTRIBUTES)

# attribute -> (metric, help, kind); speed is handled apart (Mbit/s to bytes/s).
NUMERIC = {
    "mtu": ("node_network_mtu_bytes", "MTU of the device.", "gauge"),
    "carrier": ("node_network_carrier", "Carrier of the device.", "gauge"),
}  # fmt: skip
INFO_LABELS = ("address", "broadcast", "duplex", "ifalias", "operstate")


@guarded("netclass")
def parse(sections: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """`{device: {attribute: text}}` from the files grep found under /sys/class/net/."""
    devices: dict[str, dict[str, str]] = {}
    for path, text in sections.items():
        if not path.startswith(PREFIX):
            continue
        device, _, attribute = path[len(PREFIX) :].partition("/")
        if attribute in ATTRIBUTES and device:
            devices.setdefault(device, {})[attribute] = text.strip()
    return devices


def _to_int(text: str, path: str) -> float:
    # flags and friends are printed in hex (0x1003), the rest in decimal.
    if text.startswith("0x"):
        try:
            return float(int(text, 16))
        except ValueError:
            raise ParseError(f"{path}: not a hex number: {text[:20]!r}") from None
    return number(text, path)


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    devices = parse(sections)
    info = gauge("node_network_info", "Non-numeric data of the device, value is always 1.")
    up = gauge("node_network_up", "Whether the operstate of the device is up.")
    speed = gauge("node_network_speed_bytes", "Speed of the device in bytes per second.")
    numeric = {
        attribute: (counter if kind == "counter" else gauge)(metric, help_text)
        for attribute, (metric, help_text, kind) in NUMERIC.items()
    }
    for device in sorted(devices):
        attributes = devices[device]
        labels = label_text(device=device)
        info_labels = [(name, attributes.get(name, "")) for name in INFO_LABELS]
        info_labels.insert(2, ("device", device))  # alphabetical, as node_exporter renders
        info.add_labels(1, info_labels)
        operstate = attributes.get("operstate")
        if operstate is not None:
            up.samples.append((labels, 1 if operstate == "up" else 0))
        for attribute, family in numeric.items():
            text = attributes.get(attribute)
            if text:
                family.samples.append((labels, _to_int(text, f"{PREFIX}{device}/{attribute}")))
        if attributes.get("speed"):
            # Mbit/s to bytes/s; -1 (unknown) stays negative as in node_exporter.
            speed.samples.append((labels, number(attributes["speed"], device + "/speed") * 125000))
    return [info, up, speed, *numeric.values()]


COLLECTOR = Collector(NAME, collect, files=FILES)
