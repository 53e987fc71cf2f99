"""node_disk_* from /proc/diskstats, with node_exporter's default device exclusions."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded, label_text, require
from exporter.collectors.base import Collector
from exporter.exposition import Family, counter, gauge

NAME = "diskstats"
FILES = ("/proc/diskstats",)

# node_exporter's default --collector.diskstats.device-exclude: partitions of
# whole disks that are reported anyway, RAM disks, loop and floppy devices.
DEVICES_EXCLUDED = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
SECTOR_BYTES = 512.0  # diskstats counts 512-byte sectors whatever the device's block size
MS = 0.001

# (metric, help, factor, is counter) per column after major, minor, name.
# The kernel has grown columns over time: 11 (2.6), 15 (4.18 discards), 17 (5.5 flushes).
COLUMNS = (
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        1.0,
        True,
    ),
    ("node_disk_reads_merged_total", "The total number of reads merged.", 1.0, True),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        SECTOR_BYTES,
        True,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        MS,
        True,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        1.0,
        True,
    ),
    ("node_disk_writes_merged_total", "The number of writes merged.", 1.0, True),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        SECTOR_BYTES,
        True,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        MS,
        True,
    ),
    ("node_disk_io_now", "The number of I/Os currently in progress.", 1.0, False),
    ("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", MS, True),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        MS,
        True,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        1.0,
        True,
    ),
    ("node_disk_discards_merged_total", "The total number of discards merged.", 1.0, True),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        1.0,
        True,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        MS,
        True,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        1.0,
        True,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        MS,
        True,
    ),
)


@functools.lru_cache(maxsize=1024)
def excluded(device: str) -> bool:
    """Whether node_exporter's default device filter drops `device`."""
    return DEVICES_EXCLUDED.match(device) is not None


@guarded("/proc/diskstats")
def parse(text: str) -> list[tuple[str, int, int, tuple[int, ...]]]:
    """`[(device, major, minor, counters)]` for the devices node_exporter does not exclude."""
    out: list[tuple[str, int, int, tuple[int, ...]]] = []
    for line in text.split("\n"):
        parts = line.split()
        if not parts:
            continue
        # Excluded first: loop and partition lines are most of the file, and
        # 2.6.18-era kernels print partitions with only four counters.
        if len(parts) >= 3 and excluded(parts[2]):
            continue
        if len(parts) < 14:
            raise ParseError(f"/proc/diskstats: short line {line[:60]!r}")
        out.append((parts[2], int(parts[0]), int(parts[1]), tuple(int(v) for v in parts[3:20])))
    return out


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    rows = parse(require(sections, "/proc/diskstats", NAME))
    info = gauge("node_disk_info", "Info of /sys/block/<block_device>.")
    families = [
        (counter if is_counter else gauge)(metric, help_text)
        for metric, help_text, _, is_counter in COLUMNS
    ]
    factors = [factor for _, _, factor, _ in COLUMNS]
    for device, major, minor, values in rows:
        info.add(1, device=device, major=str(major), minor=str(minor))
        labels = label_text(device=device)
        for family, factor, value in zip(families, factors, values, strict=False):
            family.samples.append((labels, value * factor if factor != 1.0 else value))
    return [info, *families]


COLLECTOR = Collector(NAME, collect, files=FILES)
