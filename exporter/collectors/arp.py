"""node_arp_entries{device} from /proc/net/arp."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "arp"
FILES = ("/proc/net/arp",)


@guarded("/proc/net/arp")
def parse(text: str) -> dict[str, int]:
    """Entries per device; the header line is skipped."""
    counts: dict[str, int] = {}
    for line in text.split("\n"):
        parts = line.split()
        if not parts or parts[0] == "IP":
            continue
        if len(parts) != 6:
            raise ParseError(f"arp: unexpected line {line[:60]!r}")
        counts[parts[5]] = counts.get(parts[5], 0) + 1
    return counts


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    text = sections.get("/proc/net/arp")
    if text is None:
        return []
    family = gauge("node_arp_entries", "ARP entries by device")
    for device, count in sorted(parse(text).items()):
        family.add(count, device=device)
    return [family]


COLLECTOR = Collector(NAME, collect, files=FILES)
