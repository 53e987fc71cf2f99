"""node_nf_conntrack_entries{,_limit} from /proc/sys/net/netfilter (when conntrack is loaded)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ProbeContext
from exporter.collectors._common import single_values
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "conntrack"
SOURCES = {
    "node_nf_conntrack_entries": "/proc/sys/net/netfilter/nf_conntrack_count",
    "node_nf_conntrack_entries_limit": "/proc/sys/net/netfilter/nf_conntrack_max",
}
FILES = tuple(SOURCES.values())
HELP = {
    "node_nf_conntrack_entries": "Number of currently allocated flow entries for conntrack.",
    "node_nf_conntrack_entries_limit": "Maximum size of connection tracking table.",
}


def parse(sections: Mapping[str, str]) -> dict[str, float]:
    """`{metric: value}` for the one-number files present."""
    return single_values(sections, SOURCES)


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    values = parse(sections)
    return [gauge(name, HELP[name], value) for name, value in values.items()]


COLLECTOR = Collector(NAME, collect, files=FILES)
