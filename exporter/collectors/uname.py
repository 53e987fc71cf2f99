"""node_uname_info from /proc/sys/kernel/* (no `uname` process on the host)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "uname"
# /proc/sys/kernel/arch gives `uname -m` for free on Linux 6.1+. Older kernels
# have no file with it: the CPU modalias names the type (`cpu:type:x86,...`,
# `cpu:type:aarch64:...`), else the release string often ends with the
# architecture (RHEL `...el7.x86_64`, Debian `...-amd64`); failing all that
# `machine` is "unknown" rather than costing a `uname` process per probe.
MODALIAS = "/sys/devices/system/cpu/modalias"
# 32-bit x86 kernels have all but disappeared from servers: "x86" is taken as x86_64.
MODALIAS_TYPES = {"x86": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
SOURCES = {
    "domainname": "/proc/sys/kernel/domainname",
    "machine": "/proc/sys/kernel/arch",
    "nodename": "/proc/sys/kernel/hostname",
    "release": "/proc/sys/kernel/osrelease",
    "sysname": "/proc/sys/kernel/ostype",
    "version": "/proc/sys/kernel/version",
}
FILES = (*SOURCES.values(), MODALIAS)


RELEASE_SUFFIXES = {
    "x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64",
    "ppc64le": "ppc64le", "s390x": "s390x", "i686": "i686", "armv7l": "armv7l",
    "riscv64": "riscv64",
}  # fmt: skip


def machine_from_modalias(text: str) -> str | None:
    """`cpu:type:x86,ven0000...` -> x86_64; None when absent or unknown."""
    if not text.startswith("cpu:type:"):
        return None
    kind = text[len("cpu:type:") :].split(",", 1)[0].split(":", 1)[0]
    return MODALIAS_TYPES.get(kind)


def machine_from_release(release: str) -> str:
    """The architecture a kernel release string ends with, or "unknown"."""
    for separator in (".", "-", "+"):
        suffix = release.rsplit(separator, 1)[-1]
        if suffix in RELEASE_SUFFIXES:
            return RELEASE_SUFFIXES[suffix]
    return "unknown"


def parse(sections: Mapping[str, str]) -> dict[str, str]:
    """`{label: value}` in node_exporter's (alphabetical) label order."""
    if "/proc/sys/kernel/ostype" not in sections and "/proc/sys/kernel/osrelease" not in sections:
        raise ParseError("uname: /proc/sys/kernel/ostype and osrelease missing")
    labels: dict[str, str] = {}
    for label, path in SOURCES.items():
        text = sections.get(path, "")
        value = text.split("\n", 1)[0].strip()
        labels[label] = value
    if not labels["machine"]:
        labels["machine"] = machine_from_modalias(sections.get(MODALIAS, "")) or (
            machine_from_release(labels["release"])
        )
    return labels


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    labels = parse(sections)
    help_text = "Labeled system information as provided by the uname system call."
    return [gauge("node_uname_info", help_text, 1, **labels)]


COLLECTOR = Collector(NAME, collect, files=FILES)
