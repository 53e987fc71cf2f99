"""node_udp_queues{ip,queue}: bytes queued in UDP sockets, from /proc/net/udp{,6}."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "udp_queues"
SOURCES = {"v4": "/proc/net/udp", "v6": "/proc/net/udp6"}
FILES = tuple(SOURCES.values())


@guarded("/proc/net/udp")
def parse(text: str) -> tuple[int, int]:
    """(tx bytes, rx bytes) summed over sockets; column 5 is `tx_queue:rx_queue` in hex."""
    tx = rx = 0
    for line in text.split("\n"):
        parts = line.split()
        if not parts or parts[0] == "sl":
            continue
        if len(parts) < 5 or ":" not in parts[4]:
            raise ParseError(f"udp: unexpected line {line[:60]!r}")
        tx_hex, _, rx_hex = parts[4].partition(":")
        tx += int(tx_hex, 16)
        rx += int(rx_hex, 16)
    return tx, rx


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    family = gauge(
        "node_udp_queues", "Number of allocated memory in the kernel for UDP datagrams in bytes."
    )
    for ip, path in SOURCES.items():
        text = sections.get(path)
        if text is None:
            continue
        tx, rx = parse(text)
        family.add(rx, ip=ip, queue="rx")
        family.add(tx, ip=ip, queue="tx")
    return [family]


COLLECTOR = Collector(NAME, collect, files=FILES)
