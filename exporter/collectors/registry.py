"""The name → Collector table and the default set: one line per collector module."""

from __future__ import annotations

from exporter.collectors import (
    arp,
    clock,
    conntrack,
    cpu,
    cpufreq,
    diskstats,
    entropy,
    filefd,
    filesystem,
    hwmon,
    kernel_hung,
    loadavg,
    meminfo,
    netclass,
    netdev,
    netstat,
    osrelease,
    pressure,
    processes,
    procstat,
    schedstat,
    sockstat,
    softnet,
    thermal,
    udp,
    uname,
    vmstat,
)
from exporter.collectors.base import Collector

# Output order: what the first dashboard rows need first, then the rest.
# Each entry is typed: mypy checks every module's COLLECTOR against the contract.
COLLECTORS: dict[str, Collector] = {
    collector.name: collector
    for collector in (
        cpu.COLLECTOR,
        loadavg.COLLECTOR,
        meminfo.COLLECTOR,
        filesystem.COLLECTOR,
        netdev.COLLECTOR,
        diskstats.COLLECTOR,
        procstat.COLLECTOR,
        clock.COLLECTOR,
        uname.COLLECTOR,
        osrelease.COLLECTOR,
        pressure.COLLECTOR,
        vmstat.COLLECTOR,
        netstat.COLLECTOR,
        sockstat.COLLECTOR,
        netclass.COLLECTOR,
        filefd.COLLECTOR,
        entropy.COLLECTOR,
        conntrack.COLLECTOR,
        cpufreq.COLLECTOR,
        processes.COLLECTOR,
        schedstat.COLLECTOR,
        softnet.COLLECTOR,
        arp.COLLECTOR,
        udp.COLLECTOR,
        kernel_hung.COLLECTOR,
        hwmon.COLLECTOR,
        thermal.COLLECTOR,
    )
}

DEFAULT_COLLECTORS: tuple[str, ...] = tuple(
    name for name, collector in COLLECTORS.items() if collector.default
)
