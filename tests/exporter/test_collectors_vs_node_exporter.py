"""Our collectors against the real node_exporter on the same machine: names, labels, values.

node_exporter (installed by apt) and the round-trip command both read this
host; what node_exporter exports and we do not must be a known, documented
gap, and the series we share must carry the same label names and agree on
values that do not move between two reads.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import requests

from exporter.collectors import ProbeContext, registry
from exporter.command import build_script, split_sections
from exporter.exposition import render
from tests.exporter.collector_helpers import Samples, collect_all
from tests.peers.util import free_port, stop, wait_for

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"

# What node_exporter exports by default that the collectors do not (docs/collectors.md
# says why): adjtimex(2) data, netfilter's per-CPU statistics, netclass attributes no
# dashboard reads, node_exporter's own scrape and build metrics, and a few facts that
# need a syscall or a process on the host.
NOT_IMPLEMENTED_PREFIXES = (
    "node_timex_",
    "node_nf_conntrack_stat_",
    "node_scrape_collector_",
    "node_exporter_build_info",
    "node_textfile_",
    "node_selinux_",
    "node_time_clocksource_",
    "node_time_zone_offset_seconds",
    "node_network_address_assign_type",
    "node_network_carrier_changes_total",
    "node_network_carrier_up_changes_total",
    "node_network_carrier_down_changes_total",
    "node_network_transmit_queue_length",
    "node_network_device_id",
    "node_network_dormant",
    "node_network_flags",
    "node_network_iface_",
    "node_network_name_assign_type",
    "node_network_net_dev_group",
    "node_network_protocol_type",
    "node_hwmon_",
    "node_thermal_zone_",
    "node_cooling_device_",
    "node_power_supply_",
    "node_rapl_",
    "node_edac_",
    "node_bonding_",
    "node_md_",
    "node_nfs_",
    "node_nfsd_",
    "node_zfs_",
    "node_btrfs_",
    "node_xfs_",
    "node_schedstat_",  # we have it; listed in case this host's kernel has no schedstat
    "node_dmi_",
    "node_watchdog_",
    "node_cpu_info",
    "node_cpu_core_throttles_total",
    "node_cpu_package_throttles_total",
    "node_disk_filesystem_info",
    "node_disk_device_mapper_info",
    "node_disk_ata_",
    "node_infiniband_",
    "node_fibrechannel_",
    "node_tapestats_",
    "node_mdadm_",
    "node_os_",  # present when the host has os-release; compared below
)
# node_exporter fills these from udev, which is not readable over one cheap round trip.
UDEV_LABELS = {"model", "path", "revision", "serial", "wwn", "rotational", "bus", "removable"}


@pytest.fixture(scope="module")
def node_exporter_samples() -> Iterator[Samples]:
    port = free_port()
    proc = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        text = wait_for(
            lambda: requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text,
            timeout=20,
            what="node_exporter /metrics",
        )
        yield Samples(text)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def ours() -> Samples:
    script = build_script(registry.COLLECTORS.values())
    output = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=30)
    return Samples(render(collect_all(split_sections(output.stdout), ProbeContext("local"))))


def test_every_node_exporter_default_metric_is_implemented_or_a_known_gap(
    node_exporter_samples: Samples, ours: Samples
) -> None:
    theirs = {n for n in node_exporter_samples.names() if n.startswith("node_")}
    missing = sorted(n for n in theirs - ours.names() if not n.startswith(NOT_IMPLEMENTED_PREFIXES))
    assert not missing, missing


def test_shared_metrics_have_the_same_label_names(
    node_exporter_samples: Samples, ours: Samples
) -> None:
    differ = {}
    for name in node_exporter_samples.names() & ours.names():
        theirs = {frozenset(s) for s in node_exporter_samples.by_name[name]}
        mine = {frozenset(s) for s in ours.by_name[name]}
        if name == "node_disk_info":
            theirs = {frozenset(set(s) - UDEV_LABELS) for s in theirs}
        # node_exporter >= 1.8 adds device_error to filesystem series; apt's 1.5 does not.
        mine = {frozenset(set(s) - {"device_error"}) for s in mine}
        theirs = {frozenset(set(s) - {"device_error"}) for s in theirs}
        if theirs != mine:
            differ[name] = (theirs, mine)
    assert not differ, differ


def test_values_agree(node_exporter_samples: Samples, ours: Samples) -> None:
    ne = node_exporter_samples
    for name in ("node_memory_MemTotal_bytes", "node_memory_SwapTotal_bytes"):
        assert ours[name] == ne[name], name
    assert ours["node_boot_time_seconds"] == pytest.approx(ne["node_boot_time_seconds"], abs=1)
    assert ours["node_time_seconds"] == pytest.approx(ne["node_time_seconds"], abs=30)
    assert ours.labels("node_cpu_seconds_total", "cpu") == ne.labels(
        "node_cpu_seconds_total", "cpu"
    )
    assert ours.by_name["node_uname_info"] == ne.by_name["node_uname_info"]
    if "node_os_info" in ne.names():
        assert ours.by_name["node_os_info"] == ne.by_name["node_os_info"]
        assert ours.by_name["node_os_version"] == ne.by_name["node_os_version"]
    root = [s for s in ne.by_name["node_filesystem_size_bytes"] if s["mountpoint"] == "/"]
    for labels in root:
        assert ours.get("node_filesystem_size_bytes", **labels) == ne.get(
            "node_filesystem_size_bytes", **labels
        )
    for labels in ne.by_name["node_network_mtu_bytes"]:
        assert ours.get("node_network_mtu_bytes", **labels) == ne.get(
            "node_network_mtu_bytes", **labels
        )
