"""node_network_{receive,transmit}_*_total from /proc/net/dev (all 16 columns)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded, label_text, number, require
from exporter.collectors.base import Collector
from exporter.exposition import Family, counter

NAME = "netdev"
NOHANDLER_PREFIX = "/sys/class/net/"
NOHANDLER_SUFFIX = "/statistics/rx_nohandler"
FILES = ("/proc/net/dev", NOHANDLER_PREFIX + "*" + NOHANDLER_SUFFIX)

# Column order of /proc/net/dev, named as node_exporter names the metrics.
COLUMNS = (
    "receive_bytes", "receive_packets", "receive_errs", "receive_drop",
    "receive_fifo", "receive_frame", "receive_compressed", "receive_multicast",
    "transmit_bytes", "transmit_packets", "transmit_errs", "transmit_drop",
    "transmit_fifo", "transmit_colls", "transmit_carrier", "transmit_compressed",
)  # fmt: skip


@guarded("/proc/net/dev")
def parse(text: str) -> dict[str, tuple[int, ...]]:
    """`{device: 16 counters}`; the two header lines are skipped."""
    out: dict[str, tuple[int, ...]] = {}
    for line in text.split("\n"):
        device, sep, rest = line.partition(":")
        if not sep or "|" in line:
            if line.strip() and "|" not in line:
                raise ParseError(f"/proc/net/dev: unexpected line {line[:60]!r}")
            continue
        values = rest.split()
        if len(values) != len(COLUMNS):
            raise ParseError(f"/proc/net/dev: {len(values)} columns for {device.strip()!r}")
        out[device.strip()] = tuple(int(v) for v in values)
    return out


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    devices = parse(require(sections, "/proc/net/dev", NAME))
    families = [
        counter(f"node_network_{column}_total", f"Network device statistic {column}.")
        for column in COLUMNS
    ]
    for device, values in devices.items():
        labels = label_text(device=device)
        for family, value in zip(families, values, strict=True):
            family.samples.append((labels, value))
    nohandler = counter(
        "node_network_receive_nohandler_total", "Network device statistic receive_nohandler."
    )
    for device in devices:
        path = f"{NOHANDLER_PREFIX}{device}{NOHANDLER_SUFFIX}"
        text = sections.get(path)
        if text and text.strip():
            nohandler.samples.append((label_text(device=device), number(text, path)))
    families.append(nohandler)
    return families


COLLECTOR = Collector(NAME, collect, files=FILES)
