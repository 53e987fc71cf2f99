"""node_softnet_*_total per CPU from /proc/net/softnet_stat (hex columns)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded, label_text
from exporter.collectors.base import Collector
from exporter.exposition import Family, counter

NAME = "softnet"
FILES = ("/proc/net/softnet_stat",)
# (column, metric, help); columns 9 and 10 exist since 2.6.36 / 3.11.
COLUMNS = (
    (0, "node_softnet_processed_total", "Number of processed packets"),
    (1, "node_softnet_dropped_total", "Number of dropped packets"),
    (2, "node_softnet_times_squeezed_total", "Number of times processing packets ran out of quota"),
    (9, "node_softnet_received_rps_total", "Number of times cpu woken up received_rps"),
    (10, "node_softnet_flow_limit_count_total", "Number of times flow limit has been reached"),
)


WANTED = tuple(column for column, _, _ in COLUMNS)


@guarded("/proc/net/softnet_stat")
def parse(text: str) -> list[tuple[str, list[int]]]:
    """`[(cpu, wanted columns or -1)]`; the CPU is column 13 on 5.10+ kernels, else the row."""
    rows: list[tuple[str, list[int]]] = []
    for index, line in enumerate(line for line in text.split("\n") if line.strip()):
        words = line.split()
        if len(words) < 3:
            raise ParseError(f"softnet_stat: short line {line[:60]!r}")
        values = [int(words[c], 16) if c < len(words) else -1 for c in WANTED]
        cpu = str(int(words[12], 16)) if len(words) > 12 else str(index)
        rows.append((cpu, values))
    return rows


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    text = sections.get("/proc/net/softnet_stat")
    if text is None:
        return []
    families = [counter(metric, help_text) for _, metric, help_text in COLUMNS]
    for cpu, values in parse(text):
        labels = label_text(cpu=cpu)
        for value, family in zip(values, families, strict=True):
            if value >= 0:
                family.samples.append((labels, value))
    return families


COLLECTOR = Collector(NAME, collect, files=FILES)
