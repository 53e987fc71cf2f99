"""The name → collector module table and the default set."""

from __future__ import annotations

from types import ModuleType

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

# Output order: what the first dashboard rows need first, then the rest.
COLLECTORS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        cpu,
        loadavg,
        meminfo,
        filesystem,
        netdev,
        diskstats,
        procstat,
        clock,
        uname,
        osrelease,
        pressure,
        vmstat,
        netstat,
        sockstat,
        netclass,
        filefd,
        entropy,
        conntrack,
        cpufreq,
        processes,
        schedstat,
        softnet,
        arp,
        udp,
        kernel_hung,
        hwmon,
        thermal,
    )
}

DEFAULT_COLLECTORS: tuple[str, ...] = tuple(COLLECTORS)
