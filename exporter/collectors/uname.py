"""node_uname_info from /proc/sys/kernel/* (no `uname` process on the host)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.metrics import Family, gauge

NAME = "uname"
# /proc/sys/kernel/arch (Linux 6.1+) gives uname -m for free; older kernels
# have no file with it, and `machine` is then "unknown" rather than costing a process.
SOURCES = {
    "domainname": "/proc/sys/kernel/domainname",
    "machine": "/proc/sys/kernel/arch",
    "nodename": "/proc/sys/kernel/hostname",
    "release": "/proc/sys/kernel/osrelease",
    "sysname": "/proc/sys/kernel/ostype",
    "version": "/proc/sys/kernel/version",
}
FILES = tuple(SOURCES.values())


def parse(sections: Mapping[str, str]) -> dict[str, str]:
    """`{label: value}` in node_exporter's (alphabetical) label order."""
    if "/proc/sys/kernel/ostype" not in sections and "/proc/sys/kernel/osrelease" not in sections:
        raise ParseError("uname: /proc/sys/kernel/ostype and osrelease missing")
    labels: dict[str, str] = {}
    for label, path in SOURCES.items():
        text = sections.get(path, "")
        value = text.split("\n", 1)[0].strip()
        labels[label] = value or ("unknown" if label == "machine" else "")
    return labels


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    labels = parse(sections)
    help_text = "Labeled system information as provided by the uname system call."
    return [gauge("node_uname_info", help_text, 1, **labels)]
