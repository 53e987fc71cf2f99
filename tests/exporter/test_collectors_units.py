"""Collector details on small inputs: CPU ratio across probes, hung df, escaping, fallbacks."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from exporter.collectors import (
    ParseError,
    ProbeContext,
    cpu,
    diskstats,
    filesystem,
    osrelease,
    registry,
    sockstat,
    uname,
)
from exporter.collectors._common import cheap_sections_key
from exporter.command import build_script
from exporter.exposition import render
from tests.exporter.collector_helpers import Samples, sections


def stat_text(user: int, system: int, idle: int, iowait: int, btime: int = 1700000000) -> str:
    line = f"{user} 0 {system} {idle} {iowait} 0 0 0 0 0"
    return f"cpu  {line}\ncpu0 {line}\nbtime {btime}\n"


def probe_cpu(ctx: ProbeContext, text: str) -> Samples:
    return Samples(render(cpu.collect({"/proc/stat": text}, ctx)))


def test_cpu_usage_ratio_from_the_previous_probe() -> None:
    ctx = ProbeContext(target="h")
    assert probe_cpu(ctx, stat_text(1000, 500, 8000, 500)).get("stacksense_cpu_usage_ratio") is None
    # +300 user, +100 system, +500 idle, +100 iowait: busy 400 of 1000 ticks
    second = probe_cpu(ctx, stat_text(1300, 600, 8500, 600))
    assert second["stacksense_cpu_usage_ratio"] == pytest.approx(0.4)
    # a reboot sends the counters backwards: no ratio this time, the next one works again
    assert probe_cpu(ctx, stat_text(10, 5, 80, 5)).get("stacksense_cpu_usage_ratio") is None
    assert probe_cpu(ctx, stat_text(60, 5, 130, 5))["stacksense_cpu_usage_ratio"] == 0.5


def test_cpu_usage_ratio_state_is_per_target() -> None:
    first, other = ProbeContext(target="a"), ProbeContext(target="b")
    probe_cpu(first, stat_text(1000, 500, 8000, 500))
    assert (
        probe_cpu(other, stat_text(1300, 600, 8500, 600)).get("stacksense_cpu_usage_ratio") is None
    )


def test_old_kernel_with_eight_cpu_columns() -> None:
    text = "cpu  10 0 20 300 4 0 0 0\ncpu0 10 0 20 300 4 0 0 0\nbtime 1\n"
    out = Samples(render(cpu.collect({"/proc/stat": text}, ProbeContext(target="h"))))
    assert out.get("node_cpu_seconds_total", cpu="0", mode="steal") == 0
    assert "node_cpu_guest_seconds_total" not in out.names()


DF_HEADER = "Filesystem Type 1B-blocks Used Avail Inodes IFree Mounted on"
MOUNTS = (
    "/dev/sda1 / ext4 rw 0 0\n"
    "nfs:/export /mnt/nfs nfs4 rw 0 0\n"
    "/dev/sdc1 /mnt/odd\\134name\\042q ext4 ro 0 0\n"
)


def fs_samples(df: str, mounts: str = MOUNTS) -> Samples:
    secs = {"df": df, "/proc/mounts": mounts}
    return Samples(render(filesystem.collect(secs, ProbeContext(target="h"))))


def test_hung_mount_is_reported_as_device_error() -> None:
    # df printed / and then hung on the NFS mount until `timeout` killed it (exit 124)
    out = fs_samples(f"{DF_HEADER}\n/dev/sda1 ext4 1000 400 500 10 5 /\n#rc=124\n")
    assert (
        out.get(
            "node_filesystem_device_error",
            device="nfs:/export",
            device_error="mountpoint timeout",
            fstype="nfs4",
            mountpoint="/mnt/nfs",
        )
        == 1
    )
    assert out.get("node_filesystem_size_bytes", device="/dev/sda1", fstype="ext4", mountpoint="/")
    assert out.labels("node_filesystem_size_bytes", "mountpoint") == {"/"}


def test_no_device_errors_without_a_timeout() -> None:
    out = fs_samples(f"{DF_HEADER}\n/dev/sda1 ext4 1000 400 500 10 5 /\n#rc=1\n")
    assert set(out.values) and all(
        value == 0 for (name, _), value in out.values.items() if name.endswith("device_error")
    )


def test_posix_fallback_after_a_gnu_table_is_ignored() -> None:
    # GNU df exits 1 when one mount fails yet prints its table; the script then also
    # runs the POSIX fallback (meant for busybox), whose 1K-rounded sizes must not win.
    df = (
        f"{DF_HEADER}\n/dev/sda1 ext4 1000 400 500 10 5 /\n"
        "Filesystem 1024-blocks Used Available Capacity Mounted on\n"
        "/dev/sda1 1 1 0 100% /\n/dev/sdb1 4 1 3 25% /data\n#rc=1\n"
    )
    out = fs_samples(df)
    assert (
        out.get("node_filesystem_size_bytes", device="/dev/sda1", fstype="ext4", mountpoint="/")
        == 1000
    )
    assert out.labels("node_filesystem_size_bytes", "mountpoint") == {"/"}
    # Busybox: the POSIX table alone is read, in 1K blocks.
    posix = fs_samples(
        "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 4 1 3 25% /\n#rc=1\n"
    )
    assert (
        posix.get("node_filesystem_size_bytes", device="/dev/sda1", fstype="ext4", mountpoint="/")
        == 4096
    )


def test_mount_point_escapes_survive_the_exposition() -> None:
    # /proc/mounts escapes the backslash (\134); df prints the name as it is
    df = f'{DF_HEADER}\n/dev/sdc1 ext4 2048 1024 1024 8 4 /mnt/odd\\name"q\n#rc=0\n'
    out = fs_samples(df)
    labels = {"device": "/dev/sdc1", "fstype": "ext4", "mountpoint": '/mnt/odd\\name"q'}
    assert out.get("node_filesystem_readonly", **labels) == 1  # joined with /proc/mounts
    assert 'mountpoint="/mnt/odd\\\\name\\"q"' in out.text


def test_unescape() -> None:
    assert filesystem.unescape("/mnt/a\\040b\\011c\\134d") == "/mnt/a b\tc\\d"
    assert filesystem.unescape("/plain") == "/plain"
    assert filesystem.unescape("/bad\\9x") == "/bad\\9x"


@pytest.mark.parametrize(
    "mountpoint, fstype, excluded",
    [
        ("/", "ext4", False),
        ("/dev", "devtmpfs", True),
        ("/dev/shm", "tmpfs", True),
        ("/run/credentials/systemd-journald.service", "tmpfs", True),
        ("/run/credentials", "tmpfs", False),
        ("/var/lib/docker/overlay2/x/merged", "ext4", True),
        ("/var/lib/docker", "ext4", False),
        ("/snap/core/1", "squashfs", True),
        ("/home", "nfs4", False),
        ("/sys/fs/cgroup", "cgroup2", True),
        ("/mnt/iso", "iso9660", True),
        ("/devices", "ext4", False),
    ],
)
def test_filesystem_exclusions(mountpoint: str, fstype: str, excluded: bool) -> None:
    assert filesystem.excluded(mountpoint, fstype) is excluded


@pytest.mark.parametrize(
    "device, excluded",
    [
        ("sda", False), ("sda1", True), ("nvme0n1", False), ("nvme0n1p3", True),
        ("vdb2", True), ("xvda1", True), ("dm-0", False), ("md127", False), ("loop0", True),
        ("ram0", True), ("zram0", True), ("fd0", True), ("mmcblk0", False), ("sr0", False),
    ],
)  # fmt: skip
def test_disk_exclusions(device: str, excluded: bool) -> None:
    assert bool(diskstats.DEVICES_EXCLUDED.match(device)) is excluded


def test_df_garbage_line_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="df: unexpected line"):
        filesystem.parse(f"{DF_HEADER}\nthis is not df\n#rc=0\n")


def test_missing_df_section_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="df section missing"):
        filesystem.collect({"/proc/mounts": MOUNTS}, ProbeContext(target="h"))


@pytest.mark.parametrize(
    "release, machine",
    [
        ("3.10.0-1160.el7.x86_64", "x86_64"),
        ("4.18.0-513.el8.aarch64", "aarch64"),
        ("6.1.0-13-amd64", "x86_64"),
        ("6.1.0-13-arm64", "aarch64"),
        ("5.15.0-91-generic", "unknown"),
    ],
)
def test_machine_from_release(release: str, machine: str) -> None:
    assert uname.machine_from_release(release) == machine


def test_machine_sources_in_order() -> None:
    base = {"/proc/sys/kernel/ostype": "Linux\n", "/proc/sys/kernel/osrelease": "6.1.0-13-amd64\n"}
    assert uname.parse(base)["machine"] == "x86_64"
    with_modalias = {**base, uname.MODALIAS: "cpu:type:aarch64:feature:,0000\n"}
    assert uname.parse(with_modalias)["machine"] == "aarch64"
    with_arch = {**with_modalias, "/proc/sys/kernel/arch": "riscv64\n"}
    assert uname.parse(with_arch)["machine"] == "riscv64"
    with pytest.raises(ParseError):
        uname.parse({})


def test_os_release_quoting_and_version() -> None:
    fields = osrelease.parse(
        "NAME=\"Red Hat Enterprise Linux\"\nVERSION_ID='9.3'\nID=rhel\n# comment\nBROKEN\n"
        'PRETTY_NAME="say \\"hi\\""\n'
    )
    assert fields["NAME"] == "Red Hat Enterprise Linux"
    assert fields["VERSION_ID"] == "9.3"
    assert fields["PRETTY_NAME"] == 'say "hi"'
    assert "BROKEN" not in fields
    assert osrelease.version_number("7.9.2009") == 7.9
    assert osrelease.version_number("rolling") is None
    assert osrelease.collect({}, ProbeContext(target="h")) == []


def test_page_size_from_meminfo_and_vmstat() -> None:
    def size(free_kb: int, pages: int) -> int:
        return sockstat.page_size(
            {
                "/proc/meminfo": f"MemFree: {free_kb} kB\n",
                "/proc/vmstat": f"nr_free_pages {pages}\n",
            }
        )

    assert size(400000, 100000) == 4096
    assert size(400100, 100000) == 4096  # read a moment apart: rounded
    assert size(1600000, 100000) == 16384
    assert size(6400000, 100000) == 65536
    assert sockstat.page_size({}) == 4096
    assert size(0, 0) == 4096


def test_df_snippet_on_a_hung_network_mount(tmp_path: Path) -> None:
    """The real snippet under /bin/sh with a df that hangs unless asked for local mounts only."""
    real_df = shutil.which("df")
    assert real_df
    fake = tmp_path / "df"
    fake.write_text(
        f'#!/bin/sh\ncase " $* " in *" -l "*) exec {real_df} "$@";; esac\nexec sleep 30\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "LC_ALL": "C"}
    started = time.monotonic()
    output = subprocess.run(
        ["/bin/sh", "-c", filesystem.SECTIONS["df"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert time.monotonic() - started < 7
    usages, timed_out = filesystem.parse(output)
    assert timed_out
    assert "/" in {u.mountpoint for u in usages}  # local filesystems still measured
    mounts = Path("/proc/mounts").read_text() + "nas:/vol /mnt/nas nfs4 rw 0 0\n"
    out = fs_samples(output, mounts)
    assert out.get(
        "node_filesystem_device_error",
        device="nas:/vol", device_error="mountpoint timeout", fstype="nfs4", mountpoint="/mnt/nas",
    ) == 1  # fmt: skip
    assert "/" in out.labels("node_filesystem_size_bytes", "mountpoint")


def test_old_short_partition_lines_are_skipped() -> None:
    text = "   8    0 sda 10 0 80 5 20 0 160 9 0 12 14\n   8    1 sda1 10 80 20 160\n"
    rows = diskstats.parse(text)
    assert [row[0] for row in rows] == ["sda"]
    with pytest.raises(ParseError, match="short line"):
        diskstats.parse("   8    0 sdb 1 2 3\n")


def cheap_ok(host: str, df: str | None = None) -> bool:
    secs = sections(host)
    if df is not None:
        secs["df"] = df
    ctx = ProbeContext(target="h")
    filesystem.collect(secs, ctx)
    return bool(ctx.state[cheap_sections_key("filesystem")])


def test_df_without_timeout_only_where_no_mount_can_hang() -> None:
    # Only local filesystems: the cheaper df (no `timeout` process) is safe.
    assert cheap_ok("debian12-vm") and cheap_ok("centos7") and cheap_ok("alpine318")
    # An NFS mount (and autofs) could hang statfs(): keep the guard.
    assert not cheap_ok("ubuntu2204-server64")
    # A df that timed out, whatever the mounts say, keeps the guard too.
    assert not cheap_ok("debian12-vm", f"{DF_HEADER}\n#rc=124\n")


def test_cheap_script_drops_only_the_timeout_around_df() -> None:
    guarded = build_script(registry.COLLECTORS.values())
    cheap = build_script(registry.COLLECTORS.values(), cheap=("filesystem",))
    assert "timeout -k 1 4 df -B1" in guarded and "timeout" not in cheap
    assert cheap.replace("df -B1 $ss_df; ss_r", "") != cheap
    assert guarded.split("@@stacksense@@ df")[0] == cheap.split("@@stacksense@@ df")[0]
