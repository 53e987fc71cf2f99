"""node_entropy_available_bits and node_entropy_pool_size_bits from /proc/sys/kernel/random."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ProbeContext
from exporter.collectors._common import single_values
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "entropy"
SOURCES = {
    "node_entropy_available_bits": "/proc/sys/kernel/random/entropy_avail",
    "node_entropy_pool_size_bits": "/proc/sys/kernel/random/poolsize",
}
FILES = tuple(SOURCES.values())
HELP = {
    "node_entropy_available_bits": "Bits of available entropy.",
    "node_entropy_pool_size_bits": "Bits of entropy pool.",
}


def parse(sections: Mapping[str, str]) -> dict[str, float]:
    """`{metric: value}` for the one-number files present."""
    return single_values(sections, SOURCES)


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    values = parse(sections)
    return [gauge(name, HELP[name], value) for name, value in values.items()]


COLLECTOR = Collector(NAME, collect, files=FILES)
