"""The handful of fleet-wide PromQL queries one cycle runs (never one per server).

Several questions are folded into one query with `label_replace` markers and
`or`, so the number of queries per cycle does not grow with the fleet or with
the number of conditions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rules.conditions import Condition
from rules.promapi import escape_label_value
from rules.validate import format_duration

CONDITION_MARKER = "stacksense_condition_index"
METRIC_MARKER = "metric"

# Usage ratios behind health and anomalies: one selector, grouped by metric name
# (cheaper for Prometheus than five label_replace'd aggregations joined by `or`).
RATIO_NAMES = {
    "stacksense_cpu_usage_ratio": "cpu",
    "stacksense_memory_usage_ratio": "memory",
    "stacksense_swap_usage_ratio": "swap",
    "stacksense_filesystem_usage_ratio": "disk",  # the fullest filesystem
}
USAGE_RATIOS = (
    'max by (server, __name__) ({__name__=~"stacksense_(cpu|memory|swap|filesystem)_usage_ratio"})'
)
# Bytes/s received + sent. Two rates added, not one regex selector: rate() drops the
# metric name, and the receive and transmit series of one device would then collide.
NETWORK = (
    "label_replace("
    'sum by (server) (rate(node_network_receive_bytes_total{device!="lo"}[2m]))'
    ' + sum by (server) (rate(node_network_transmit_bytes_total{device!="lo"}[2m])),'
    f' "{METRIC_MARKER}", "network", "", "")'
)
HEALTH_METRICS = ("cpu", "memory", "swap", "disk")


def heartbeats(window_seconds: float) -> str:
    """Newest heartbeat per server across sources and exporter replicas.

    `max_over_time` over a window keeps a server's last heartbeat visible through
    exporter scrape gaps (a plain selector forgets it after 5 minutes).
    """
    return (
        "max by (server) (max_over_time("
        f"stacksense_last_heartbeat_timestamp_seconds[{format_duration(window_seconds)}]))"
    )


def suspended() -> str:
    """Suspension flag per inventory server: the inventory's server list, too.

    A plain selector on purpose: when the exporter drops a server from its
    inventory, Prometheus' staleness marker removes it at the next scrape.
    """
    return "max by (server) (stacksense_server_suspended)"


PART_MARKER = "stacksense_part"


# Why probes fail: the reason of the latest failed probe per server, and the exporter's
# last error message when it publishes one (absent on older exporters: no harm).
PROBE_FAILURES = "max by (server, reason) (stacksense_probe_failure == 1)"
PROBE_LAST_ERRORS = "max by (server, reason, detail, message) (stacksense_probe_last_error_info)"
# A probe scrape that failed outright (the exporter answered an error, or timed out):
# any scrape job whose targets carry a `server` label.
PROBE_SCRAPE_FAILED = 'max by (server) (up{server!=""} == 0)'


def heartbeats_and_inventory(window_seconds: float) -> str:
    """`heartbeats`, `suspended` and probe failures as one query, each part marked.

    One query reads one snapshot of Prometheus' head. As two queries, a scrape that
    lands between them could show a new server in the inventory but not yet its
    heartbeat. The failure reasons ride along so that the number of queries per
    cycle does not grow.
    """
    parts = (
        (heartbeats(window_seconds), "heartbeat"),
        (suspended(), "inventory"),
        (PROBE_FAILURES, "failure"),
        (PROBE_LAST_ERRORS, "error"),
        (PROBE_SCRAPE_FAILED, "scrape_failed"),
    )
    return " or ".join(
        f'label_replace({expr}, "{PART_MARKER}", "{name}", "", "")' for expr, name in parts
    )


def exporter_up(job: str, window_seconds: float) -> str:
    """Raw `up` samples of the exporter's own scrape job (a range selector)."""
    return f'up{{job="{escape_label_value(job)}"}}[{format_duration(window_seconds)}]'


def prometheus_start(job: str) -> str:
    """When Prometheus (last) started."""
    return f'max(process_start_time_seconds{{job="{escape_label_value(job)}"}})'


def fleet_metric_queries(names: Sequence[str]) -> list[str]:
    """The queries that return the fleet metrics in `names` (ratios, network)."""
    out = [USAGE_RATIOS]
    if "network" in names:
        out.append(NETWORK)
    return out


def metric_of(labels: Mapping[str, str]) -> str:
    """Short metric name (cpu, memory, swap, disk, network) of a fleet-metric series."""
    return labels.get(METRIC_MARKER) or RATIO_NAMES.get(labels.get("__name__", ""), "")


def conditions(conds: Sequence[Condition]) -> str:
    """Every condition in one query, each result marked with its index."""
    return " or ".join(
        f'label_replace(({c.expr}), "{CONDITION_MARKER}", "{i}", "", "")'
        for i, c in enumerate(conds)
    )
