"""node_filesystem_* from one guarded `df` run and /proc/mounts, plus usage ratios.

node_exporter calls statfs() on every mount of /proc/1/mountinfo; over SSH one
`df` does the same in one process. GNU df (coreutils) gives bytes and inodes
in one call; busybox df (Alpine) only gives 1K blocks, so inode metrics are
absent there. `timeout` guards against a hung NFS mount; when it fires, the
mounts df did not reach are reported with node_filesystem_device_error=1, as
node_exporter reports a stuck mount.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import cheap_sections_key, guarded, label_text
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "filesystem"
FILES = ("/proc/mounts",)
DF_SECTION = "df"
# GNU df prints nothing until every statfs() returned (it aligns its columns),
# so a hung NFS mount would hide every filesystem. On a timeout (124, or 137
# after the -k kill) df runs again with -l, local filesystems only, under a
# shorter timeout; the network mounts it leaves out are then reported with
# device_error. The exit status of the first df goes on the last line so the
# parser can tell a timeout from a df that simply listed nothing. Any other
# failure (busybox df has no --output) falls back to POSIX `df -P -k`; GNU df
# also exits 1 when one mount fails but still prints its table, so the parser
# ignores a POSIX table that follows a GNU one. df writes straight to the
# output: capturing it with $(...) would cost the host a fork per probe.
# Worst case 4 + 1 + 2 + 1 s.
SECTIONS = {
    DF_SECTION: (
        "ss_df=--output=source,fstype,size,used,avail,itotal,iavail,target\n"
        "timeout -k 1 4 df -B1 $ss_df; ss_r=$?\n"
        "case $ss_r in 0) ;; 124|137) timeout -k 1 2 df -l -B1 $ss_df ;;\n"
        "*) if command -v timeout >/dev/null; then timeout 5 df -P -k; else df -P -k; fi ;;\n"
        "esac\n"
        'echo "#rc=$ss_r"'
    )
}

# The same without `timeout` (one process less for the host on every probe),
# offered as cheap sections: the probe uses it only while every mount of the host
# is a local filesystem that cannot hang statfs() (see collect) and no probe of
# the target has timed out with it.
CHEAP_SECTIONS = {
    DF_SECTION: (
        "ss_df=--output=source,fstype,size,used,avail,itotal,iavail,target\n"
        "df -B1 $ss_df; ss_r=$?\n"
        "case $ss_r in 0) ;; *) df -P -k ;; esac\n"
        'echo "#rc=$ss_r"'
    )
}
# Filesystems whose statfs() is answered from memory, never over a network or by
# a user-space daemon. Anything else (nfs, cifs, fuse.*, ceph, autofs, an
# unknown type...) keeps the guarded df.
LOCAL_FS_TYPES = frozenset(
    "ext2 ext3 ext4 xfs btrfs zfs f2fs jfs reiserfs vfat exfat ntfs ntfs3 iso9660 udf erofs"
    " squashfs overlay tmpfs ramfs devtmpfs devpts proc sysfs cgroup cgroup2 mqueue debugfs"
    " tracefs securityfs pstore bpf hugetlbfs configfs fusectl binfmt_misc efivarfs nsfs"
    " selinuxfs rpc_pipefs rootfs".split()
)

# node_exporter's defaults (collector/filesystem_linux.go, current release).
MOUNT_POINTS_EXCLUDED = re.compile(
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
FS_TYPES_EXCLUDED = re.compile(
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs"
    r"|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs"
    r"|squashfs|erofs|sysfs|tracefs)$"
)
TIMEOUT_CODES = ("124", "137")


@dataclass(frozen=True)
class Mount:
    """One line of /proc/mounts, mount point unescaped."""

    device: str
    mountpoint: str
    fstype: str
    readonly: bool


@dataclass(frozen=True)
class Usage:
    """One line of df; inode counts are None when df cannot tell (busybox, "-")."""

    device: str
    fstype: str | None
    mountpoint: str
    size: float
    free: float
    avail: float
    files: float | None
    files_free: float | None


def unescape(field: str) -> str:
    r"""Undo the octal escapes of /proc/mounts (`\040` space, `\011` tab, `\134` backslash)."""
    if "\\" not in field:
        return field
    out: list[str] = []
    i = 0
    while i < len(field):
        ch = field[i]
        digits = field[i + 1 : i + 4]
        if ch == "\\" and len(digits) == 3 and all(d in "01234567" for d in digits):
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@functools.lru_cache(maxsize=1024)  # the same text probe after probe, host after host
@guarded("/proc/mounts")
def parse_mounts(text: str) -> dict[str, Mount]:
    """`{mount point: Mount}`; the last mount on a path wins, as it hides the earlier ones."""
    mounts: dict[str, Mount] = {}
    for line in text.split("\n"):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 4:
            raise ParseError(f"/proc/mounts: short line {line[:60]!r}")
        mountpoint = unescape(parts[1])
        mounts[mountpoint] = Mount(
            unescape(parts[0]), mountpoint, parts[2], "ro" in parts[3].split(",")
        )
    return mounts


def _count(token: str) -> float | None:
    return None if token == "-" else float(int(token))


@guarded("df")
def parse(text: str) -> tuple[list[Usage], bool]:
    """Parse the df section: (usage per filesystem, whether df timed out)."""
    usages: list[Usage] = []
    timed_out = False
    posix = gnu_seen = skipping = False
    for line in text.split("\n"):
        if not line.strip():
            continue
        if line.startswith("#rc="):
            timed_out = line[4:].strip() in TIMEOUT_CODES
            continue
        if line.startswith("Filesystem"):
            posix = "Type" not in line
            gnu_seen = gnu_seen or not posix
            skipping = posix and gnu_seen  # the fallback after a GNU df that exited 1
            continue
        if skipping:
            continue
        tokens = line.split()
        usages.append(_parse_posix(tokens) if posix else _parse_gnu(tokens))
    return usages, timed_out


def _numeric(token: str) -> bool:
    return token.isdigit() or token == "-"


def _parse_gnu(tokens: list[str]) -> Usage:
    # source,fstype,size,used,avail,itotal,iavail,target: the source and the target may
    # hold spaces, so find the fstype as the token followed by five numbers.
    for i in range(1, len(tokens) - 6):
        if all(_numeric(t) for t in tokens[i + 1 : i + 6]) and tokens[i + 1] != "-":
            size, used, avail = (float(int(t)) for t in tokens[i + 1 : i + 4])
            return Usage(
                device=" ".join(tokens[:i]),
                fstype=tokens[i],
                mountpoint=" ".join(tokens[i + 6 :]),
                size=size,
                free=size - used,
                avail=avail,
                files=_count(tokens[i + 4]),
                files_free=_count(tokens[i + 5]),
            )
    raise ParseError(f"df: unexpected line {' '.join(tokens)[:60]!r}")


def _parse_posix(tokens: list[str]) -> Usage:
    # Filesystem 1024-blocks Used Available Capacity Mounted-on (busybox, POSIX -P).
    for i in range(1, len(tokens) - 4):
        if all(t.isdigit() for t in tokens[i : i + 3]) and tokens[i + 3].endswith("%"):
            size, used, avail = (float(int(t)) * 1024 for t in tokens[i : i + 3])
            return Usage(
                device=" ".join(tokens[:i]),
                fstype=None,
                mountpoint=" ".join(tokens[i + 4 :]),
                size=size,
                free=size - used,
                avail=avail,
                files=None,
                files_free=None,
            )
    raise ParseError(f"df: unexpected line {' '.join(tokens)[:60]!r}")


@functools.lru_cache(maxsize=1024)
def excluded(mountpoint: str, fstype: str) -> bool:
    """Whether node_exporter's default filters drop this mount."""
    return bool(MOUNT_POINTS_EXCLUDED.match(mountpoint) or FS_TYPES_EXCLUDED.match(fstype))


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    df_text = sections.get(DF_SECTION)
    if df_text is None:
        raise ParseError("filesystem: df section missing from the probe output")
    usages, timed_out = parse(df_text)
    mounts = parse_mounts(sections.get("/proc/mounts", ""))
    ctx.state[cheap_sections_key(NAME)] = (
        bool(mounts)
        and not timed_out
        and all(mount.fstype in LOCAL_FS_TYPES for mount in mounts.values())
    )
    size = gauge("node_filesystem_size_bytes", "Filesystem size in bytes.")
    free = gauge("node_filesystem_free_bytes", "Filesystem free space in bytes.")
    avail = gauge(
        "node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes."
    )
    files = gauge("node_filesystem_files", "Filesystem total file nodes.")
    files_free = gauge("node_filesystem_files_free", "Filesystem total free file nodes.")
    readonly = gauge("node_filesystem_readonly", "Filesystem read-only status.")
    device_error = gauge(
        "node_filesystem_device_error",
        "Whether an error occurred while getting statistics for the given device.",
    )
    ratio = gauge(
        "stacksense_filesystem_usage_ratio",
        "Share of the filesystem's space not available to non-root users (0-1).",
    )
    seen: set[tuple[str, str, str]] = set()
    ratio_seen: set[str] = set()
    for use in usages:
        mount = mounts.get(use.mountpoint)
        fstype = use.fstype or (mount.fstype if mount else "")
        if excluded(use.mountpoint, fstype):
            continue
        key = (use.device, fstype, use.mountpoint)
        if key in seen:  # node_exporter exposes a mount once even when mounted twice
            continue
        seen.add(key)
        labels = label_text(device=use.device, fstype=fstype, mountpoint=use.mountpoint)
        device_error.samples.append((labels, 0))
        readonly.samples.append((labels, 1 if mount and mount.readonly else 0))
        size.samples.append((labels, use.size))
        free.samples.append((labels, use.free))
        avail.samples.append((labels, use.avail))
        if use.files is not None:
            files.samples.append((labels, use.files))
        if use.files_free is not None:
            files_free.samples.append((labels, use.files_free))
        if use.size > 0 and use.mountpoint not in ratio_seen:
            ratio_seen.add(use.mountpoint)
            used = (use.size - use.avail) / use.size
            ratio.add(min(1.0, max(0.0, used)), mountpoint=use.mountpoint)
    if timed_out:
        reported = {key[2] for key in seen}
        for mount in mounts.values():
            if mount.mountpoint in reported or excluded(mount.mountpoint, mount.fstype):
                continue
            stuck = label_text(
                device=mount.device,
                device_error="mountpoint timeout",
                fstype=mount.fstype,
                mountpoint=mount.mountpoint,
            )
            device_error.samples.append((stuck, 1))
            readonly.samples.append((stuck, 1 if mount.readonly else 0))
    return [size, free, avail, files, files_free, readonly, device_error, ratio]


COLLECTOR = Collector(NAME, collect, files=FILES, sections=SECTIONS, cheap_sections=CHEAP_SECTIONS)
