"""Collectors on captured and hand-built hosts: exact values, names, labels and exclusions."""

from __future__ import annotations

import pytest

from tests.exporter.collector_helpers import Samples, host_samples

KIB = 1024


@pytest.fixture(scope="module")
def server() -> Samples:
    return host_samples("ubuntu2204-server64")


@pytest.fixture(scope="module")
def centos() -> Samples:
    return host_samples("centos7")


@pytest.fixture(scope="module")
def alpine() -> Samples:
    return host_samples("alpine318")


@pytest.fixture(scope="module")
def debian() -> Samples:
    return host_samples("debian12-vm")


# ---------------------------------------------------------------- cpu and /proc/stat


def test_cpu_seconds_from_user_hz_ticks_on_64_cpus(server: Samples) -> None:
    assert server.labels("node_cpu_seconds_total", "cpu") == {str(i) for i in range(64)}
    assert server.labels("node_cpu_seconds_total", "mode") == {
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    }  # fmt: skip
    # cpu7 2463180 1201 301377 80514426 41207 0 12850 0 512 0 (ticks of 1/100 s)
    assert server.get("node_cpu_seconds_total", cpu="7", mode="user") == 24631.8
    assert server.get("node_cpu_seconds_total", cpu="7", mode="nice") == 12.01
    assert server.get("node_cpu_seconds_total", cpu="7", mode="idle") == 805144.26
    assert server.get("node_cpu_seconds_total", cpu="7", mode="iowait") == 412.07
    assert server.get("node_cpu_guest_seconds_total", cpu="7", mode="user") == 5.12
    assert server.get("node_cpu_guest_seconds_total", cpu="7", mode="nice") == 0


def test_label_order_matches_node_exporter(server: Samples) -> None:
    # node_exporter (client_golang) renders label names sorted; dashboards do not care,
    # but diffing our exposition against node_exporter's should show values only.
    assert 'node_cpu_seconds_total{cpu="7",mode="user"} 24631.8\n' in server.text
    assert (
        'node_filesystem_avail_bytes{device="/dev/mapper/vg0-data",fstype="xfs",mountpoint="/data"}'
        in server.text
    )


def test_stat_counters_and_gauges(server: Samples) -> None:
    assert server["node_boot_time_seconds"] == 1699999999
    assert server["node_context_switches_total"] == 5234567890123
    assert server["node_forks_total"] == 987654321
    assert server["node_intr_total"] == 98765432109
    assert server["node_procs_running"] == 5
    assert server["node_procs_blocked"] == 2


def test_time_is_the_hosts_clock_from_btime_and_uptime(server: Samples) -> None:
    assert server["node_time_seconds"] == pytest.approx(1699999999 + 1234567.89)
    uptime = server["node_time_seconds"] - server["node_boot_time_seconds"]
    assert uptime == pytest.approx(1234567.89)


def test_cpu_usage_ratio_needs_a_previous_probe(server: Samples) -> None:
    assert server.get("stacksense_cpu_usage_ratio") is None


def test_old_kernel_cpu_lines(centos: Samples) -> None:
    assert centos.labels("node_cpu_seconds_total", "cpu") == {"0", "1", "2", "3"}
    assert centos.get("node_cpu_seconds_total", cpu="3", mode="system") == 3044.55


# ---------------------------------------------------------------- memory


def test_meminfo_names_units_and_anon_file_renaming(server: Samples) -> None:
    assert server["node_memory_MemTotal_bytes"] == 263855720 * KIB
    assert server["node_memory_MemAvailable_bytes"] == 198765432 * KIB
    assert server["node_memory_Active_anon_bytes"] == 45678901 * KIB
    assert server["node_memory_Inactive_file_bytes"] == 139000000 * KIB
    assert server["node_memory_DirectMap1G_bytes"] == 207618048 * KIB
    # counts without a unit keep their name and value
    assert server["node_memory_HugePages_Total"] == 1024
    assert server["node_memory_HugePages_Rsvd"] == 128
    assert "node_memory_Active(anon)_bytes" not in server.text


def test_memory_and_swap_usage_ratios(server: Samples, alpine: Samples) -> None:
    assert server["stacksense_memory_usage_ratio"] == pytest.approx(1 - 198765432 / 263855720)
    assert server["stacksense_swap_usage_ratio"] == pytest.approx((8388604 - 6291452) / 8388604)
    assert alpine["stacksense_swap_usage_ratio"] == 0  # no swap configured


# ---------------------------------------------------------------- filesystems


def test_filesystems_reported_and_excluded_as_node_exporter_does(server: Samples) -> None:
    assert server.labels("node_filesystem_size_bytes", "mountpoint") == {
        "/", "/run", "/run/lock", "/run/user/1000", "/boot/efi", "/data",
        "/mnt/backup disk", "/mnt/share",
    }  # fmt: skip
    # /dev and /dev/shm (mount point rule), squashfs snaps and docker overlays (fs type rule)
    # are left out, as node_exporter's default exclusions leave them out.
    assert "squashfs" not in server.labels("node_filesystem_size_bytes", "fstype")
    assert "overlay" not in server.labels("node_filesystem_size_bytes", "fstype")


def test_filesystem_values_from_df(server: Samples) -> None:
    labels = {"device": "/dev/mapper/vg0-data", "fstype": "xfs", "mountpoint": "/data"}
    assert server.get("node_filesystem_size_bytes", **labels) == 3998614552576
    assert server.get("node_filesystem_free_bytes", **labels) == 3998614552576 - 3598753097318
    assert server.get("node_filesystem_avail_bytes", **labels) == 399861455258
    assert server.get("node_filesystem_files", **labels) == 390625000
    assert server.get("node_filesystem_files_free", **labels) == 371093750
    assert server.get("node_filesystem_readonly", **labels) == 0
    assert server.get("node_filesystem_device_error", **labels) == 0
    assert server.get("stacksense_filesystem_usage_ratio", mountpoint="/data") == pytest.approx(
        1 - 399861455258 / 3998614552576
    )


def test_mount_point_with_space_and_readonly_flag(server: Samples) -> None:
    labels = {"device": "/dev/sdb1", "fstype": "ext4", "mountpoint": "/mnt/backup disk"}
    assert server.get("node_filesystem_readonly", **labels) == 1
    assert server.get("node_filesystem_size_bytes", **labels) == 983350091776


def test_nfs_without_inode_counts(server: Samples) -> None:
    labels = {
        "device": "nfs.example.com:/export/share", "fstype": "nfs4", "mountpoint": "/mnt/share"
    }  # fmt: skip
    assert server.get("node_filesystem_size_bytes", **labels) == 10995116277760
    assert server.get("node_filesystem_files", **labels) is None


def test_busybox_df(alpine: Samples) -> None:
    root = {"device": "/dev/vda3", "fstype": "ext4", "mountpoint": "/"}
    assert alpine.get("node_filesystem_size_bytes", **root) == 8191416 * KIB
    assert alpine.get("node_filesystem_free_bytes", **root) == (8191416 - 2097152) * KIB
    assert alpine.get("node_filesystem_avail_bytes", **root) == 5675920 * KIB
    assert "node_filesystem_files" not in alpine.names()  # busybox df has no inode columns
    # fstype comes from /proc/mounts; the space in the mount point from \040
    spaced = {"device": "/dev/vdb", "fstype": "xfs", "mountpoint": "/srv/app data"}
    assert alpine.get("node_filesystem_size_bytes", **spaced) == 20961280 * KIB
    # podman's overlay under /var/lib/containers/storage is excluded by mount point and type
    assert alpine.labels("node_filesystem_size_bytes", "mountpoint") == {
        "/", "/run", "/boot", "/srv/app data",
    }  # fmt: skip


def test_rootfs_entry_does_not_hide_the_real_root(centos: Samples) -> None:
    assert (
        centos.get(
            "node_filesystem_size_bytes",
            device="/dev/mapper/centos-root",
            fstype="xfs",
            mountpoint="/",
        )
        == 53660876800
    )


# ---------------------------------------------------------------- disks


def test_disk_devices_and_default_exclusions(server: Samples) -> None:
    assert server.labels("node_disk_reads_completed_total", "device") == {
        "nvme0n1", "nvme1n1", "sda", "sdb", "dm-0", "dm-1", "md0",
    }  # fmt: skip


def test_disk_values_in_bytes_and_seconds(server: Samples) -> None:
    # 259 0 nvme0n1 18236512 1024 1456123456 4012345 98765432 2345678 3567890123 98234567
    #               3 45678901 102345678 123456 0 98765432 12345 4567890 23456
    def disk(name: str) -> float | None:
        return server.get(name, device="nvme0n1")

    assert disk("node_disk_reads_completed_total") == 18236512
    assert disk("node_disk_reads_merged_total") == 1024
    assert disk("node_disk_read_bytes_total") == 1456123456 * 512
    assert disk("node_disk_read_time_seconds_total") == pytest.approx(4012.345)
    assert disk("node_disk_written_bytes_total") == 3567890123 * 512
    assert disk("node_disk_io_now") == 3
    assert disk("node_disk_io_time_seconds_total") == pytest.approx(45678.901)
    assert disk("node_disk_io_time_weighted_seconds_total") == pytest.approx(102345.678)
    assert disk("node_disk_discards_completed_total") == 123456
    assert disk("node_disk_discarded_sectors_total") == 98765432
    assert disk("node_disk_flush_requests_total") == 4567890
    assert disk("node_disk_flush_requests_time_seconds_total") == pytest.approx(23.456)
    assert server.get("node_disk_info", device="nvme0n1", major="259", minor="0") == 1


def test_old_kernel_diskstats_without_discard_columns(centos: Samples) -> None:
    assert centos.labels("node_disk_reads_completed_total", "device") == {"sda", "dm-0", "dm-1"}
    assert centos.get("node_disk_io_time_weighted_seconds_total", device="sda") == 1444.443
    assert centos.get("node_disk_discards_completed_total", device="sda") is None


# ---------------------------------------------------------------- network


def test_netdev_all_columns_on_a_bond(server: Samples) -> None:
    def bond(name: str) -> float | None:
        return server.get(f"node_network_{name}_total", device="bond0")

    assert bond("receive_bytes") == 98765432101234
    assert bond("receive_packets") == 87654321012
    assert bond("receive_errs") == 12
    assert bond("receive_drop") == 3456
    assert bond("receive_frame") == 1
    assert bond("receive_multicast") == 123456
    assert bond("transmit_bytes") == 12345678901234
    assert bond("transmit_drop") == 7
    assert bond("receive_nohandler") == 42
    assert server.labels("node_network_receive_bytes_total", "device") == {
        "lo", "eno1", "eno2", "bond0", "bond0.100", "br0", "docker0", "veth3f2a1b9", "virbr0",
    }  # fmt: skip


def test_netclass_link_state(server: Samples) -> None:
    assert server.get("node_network_up", device="eno1") == 1
    assert server.get("node_network_up", device="docker0") == 0
    assert server.get("node_network_up", device="lo") == 0  # operstate "unknown"
    assert server.get("node_network_speed_bytes", device="eno1") == 25000 * 125000
    assert server.get("node_network_speed_bytes", device="docker0") is None  # unreadable
    assert server.get("node_network_mtu_bytes", device="bond0.100") == 9000
    assert server.get("node_network_carrier", device="docker0") is None


def test_label_values_are_escaped(server: Samples) -> None:
    # ifalias `storage "vlan" 100` must survive the text format both ways
    assert 'ifalias="storage \\"vlan\\" 100"' in server.text
    aliases = server.labels("node_network_info", "ifalias")
    assert 'storage "vlan" 100' in aliases


def test_netstat_default_fields_only(server: Samples) -> None:
    assert server["node_netstat_Udp_InDatagrams"] == 7100000
    assert server["node_netstat_Udp_InErrors"] == 3
    assert server["node_netstat_Tcp_CurrEstab"] == 4
    assert server["node_netstat_IpExt_InOctets"] == 272997926
    assert "node_netstat_TcpExt_ListenOverflows" in server.names()
    assert "node_netstat_Ip6_InOctets" in server.names()
    assert "node_netstat_Tcp_MaxConn" not in server.names()  # not a default field
    assert not any(name.startswith("node_netstat_MPTcpExt") for name in server.names())


def test_sockstat_pages_in_bytes(server: Samples, alpine: Samples) -> None:
    assert server["node_sockstat_sockets_used"] == 4321
    assert server["node_sockstat_TCP_tw"] == 5400
    assert server["node_sockstat_TCP_mem"] == 2048
    assert server["node_sockstat_TCP_mem_bytes"] == 2048 * 4096
    assert server["node_sockstat_TCP6_inuse"] == 80
    # the aarch64 host has 16 kB pages, found from MemFree / nr_free_pages
    assert alpine["node_sockstat_TCP_mem_bytes"] == 16384


def test_arp_and_udp_queues(server: Samples) -> None:
    assert server.get("node_arp_entries", device="bond0.100") == 3
    assert server.get("node_arp_entries", device="docker0") == 1
    assert server.get("node_udp_queues", ip="v4", queue="rx") == 0xA00
    assert server.get("node_udp_queues", ip="v4", queue="tx") == 0x100
    assert server.get("node_udp_queues", ip="v6", queue="rx") == 0x200


def test_softnet_per_cpu(server: Samples) -> None:
    assert server.get("node_softnet_processed_total", cpu="7") == 0x0A1B2C3D
    assert server.get("node_softnet_dropped_total", cpu="7") == 0x10
    assert server.get("node_softnet_times_squeezed_total", cpu="7") == 0x2F
    assert len(server.labels("node_softnet_processed_total", "cpu")) == 64


# ---------------------------------------------------------------- the rest


def test_pressure(server: Samples, centos: Samples) -> None:
    assert server["node_pressure_cpu_waiting_seconds_total"] == pytest.approx(987.654321)
    assert server["node_pressure_io_waiting_seconds_total"] == pytest.approx(123.456789)
    assert server["node_pressure_io_stalled_seconds_total"] == pytest.approx(98.765432)
    assert server["node_pressure_memory_stalled_seconds_total"] == pytest.approx(3.456789)
    assert not any(name.startswith("node_pressure") for name in centos.names())  # 3.10: no PSI


def test_vmstat_default_fields(server: Samples) -> None:
    assert server["node_vmstat_oom_kill"] == 3
    assert server["node_vmstat_pgfault"] == 123456789012
    assert "node_vmstat_pgmajfault" in server.names()
    assert "node_vmstat_pgpgin" in server.names()
    assert "node_vmstat_nr_free_pages" not in server.names()


def test_schedstat_cpufreq_and_limits(server: Samples) -> None:
    assert server.get("node_schedstat_running_seconds_total", cpu="7") == pytest.approx(
        98765.432101234
    )
    assert server.get("node_schedstat_waiting_seconds_total", cpu="7") == pytest.approx(
        1234.567890123
    )
    assert server.get("node_schedstat_timeslices_total", cpu="7") == 456789012
    assert server.get("node_cpu_scaling_frequency_hertz", cpu="7") == 3.1e9
    assert server.get("node_cpu_scaling_frequency_max_hertz", cpu="7") == 3.5e9
    assert server.get("node_cpu_scaling_frequency_min_hertz", cpu="63") == 1e9
    assert server["node_processes_max_processes"] == 4194304
    assert server["node_processes_max_threads"] == 2061374
    assert server["node_processes_threads"] == 2345
    assert server["node_filefd_allocated"] == 23456
    assert server["node_nf_conntrack_entries"] == 81234
    assert server["node_nf_conntrack_entries_limit"] == 262144
    assert server["node_entropy_available_bits"] == 256


def test_uname_and_os(server: Samples, centos: Samples, alpine: Samples) -> None:
    assert (
        server.get(
            "node_uname_info",
            domainname="(none)",
            machine="x86_64",  # from the CPU modalias: 5.15 has no /proc/sys/kernel/arch
            nodename="db-prod-07",
            release="5.15.0-91-generic",
            sysname="Linux",
            version="#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023",
        )
        == 1
    )
    assert centos.labels("node_uname_info", "machine") == {"x86_64"}  # from the release
    assert alpine.labels("node_uname_info", "machine") == {"aarch64"}  # /proc/sys/kernel/arch
    assert server.get("node_os_version", id="ubuntu", id_like="debian", name="Ubuntu") == 22.04
    assert alpine.get("node_os_version", id="alpine", id_like="", name="Alpine Linux") == 3.18
    assert centos.labels("node_os_info", "pretty_name") == {"CentOS Linux 7 (Core)"}
    assert centos.labels("node_os_info", "id_like") == {"rhel fedora"}


def test_captured_host_has_every_first_row_metric(debian: Samples) -> None:
    for name in (
        "node_cpu_seconds_total", "node_load1", "node_memory_MemAvailable_bytes",
        "node_memory_SwapTotal_bytes", "node_filesystem_size_bytes", "node_time_seconds",
        "node_boot_time_seconds", "node_network_receive_bytes_total",
        "node_pressure_cpu_waiting_seconds_total", "node_uname_info",
    ):  # fmt: skip
        assert name in debian.names(), name
    assert debian.labels("node_filesystem_size_bytes", "mountpoint") >= {"/"}
    assert debian.labels("node_disk_reads_completed_total", "device") == {"vda"}


def test_netstat_series_are_exactly_node_exporters_defaults(debian: Samples) -> None:
    # The set node_exporter 1.5 exports on the captured host, plus the two TcpExt fields
    # later releases added to the default regex (TCPOFOQueue, TCPRcvQDrop).
    expected = {
        "Icmp6_InErrors", "Icmp6_InMsgs", "Icmp6_OutMsgs", "Icmp_InErrors", "Icmp_InMsgs",
        "Icmp_OutMsgs", "Ip6_InOctets", "Ip6_OutOctets", "IpExt_InOctets", "IpExt_OutOctets",
        "Ip_Forwarding", "TcpExt_ListenDrops", "TcpExt_ListenOverflows",
        "TcpExt_SyncookiesFailed", "TcpExt_SyncookiesRecv", "TcpExt_SyncookiesSent",
        "TcpExt_TCPOFOQueue", "TcpExt_TCPRcvQDrop", "TcpExt_TCPSynRetrans", "TcpExt_TCPTimeouts",
        "Tcp_ActiveOpens", "Tcp_CurrEstab", "Tcp_InErrs", "Tcp_InSegs", "Tcp_OutRsts",
        "Tcp_OutSegs", "Tcp_PassiveOpens", "Tcp_RetransSegs", "Udp6_InDatagrams", "Udp6_InErrors",
        "Udp6_NoPorts", "Udp6_OutDatagrams", "Udp6_RcvbufErrors", "Udp6_SndbufErrors",
        "UdpLite6_InErrors", "UdpLite_InErrors", "Udp_InDatagrams", "Udp_InErrors",
        "Udp_NoPorts", "Udp_OutDatagrams", "Udp_RcvbufErrors", "Udp_SndbufErrors",
    }  # fmt: skip
    ours = {n[len("node_netstat_") :] for n in debian.names() if n.startswith("node_netstat_")}
    assert ours == expected


def test_hwmon_thermal_and_hung_tasks(server: Samples, alpine: Samples) -> None:
    assert server.get("node_hwmon_chip_names", chip="hwmon0", chip_name="coretemp") == 1
    assert server.get("node_hwmon_temp_celsius", chip="hwmon1", sensor="temp1") == 38.85
    assert server.get("node_hwmon_temp_crit_celsius", chip="hwmon0", sensor="temp2") == 100
    assert server.get("node_hwmon_fan_rpm", chip="hwmon2", sensor="fan1") == 5400
    assert server.get("node_hwmon_fan_min_rpm", chip="hwmon2", sensor="fan1") == 1200
    assert server.get("node_cooling_device_cur_state", name="0", type="Processor") == 1
    assert server.get("node_cooling_device_max_state", name="1", type="intel_powerclamp") == 50
    assert server["node_kernel_hung_tasks"] == 2
    assert alpine.get("node_power_supply_online", power_supply="AC") == 1
    assert not any(n.startswith("node_hwmon") for n in alpine.names())  # no hwmon: no series
