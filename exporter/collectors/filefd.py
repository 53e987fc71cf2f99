"""node_filefd_allocated and node_filefd_maximum from /proc/sys/fs/file-nr."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import number, require
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "filefd"
FILES = ("/proc/sys/fs/file-nr",)


def parse(text: str) -> tuple[float, float]:
    """(allocated, maximum) from `672\\t0\\t2466170`."""
    fields = text.split()
    if len(fields) != 3:
        raise ParseError(f"file-nr: expected 3 fields, got {len(fields)}")
    return number(fields[0], "file-nr"), number(fields[2], "file-nr")


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    allocated, maximum = parse(require(sections, "/proc/sys/fs/file-nr", NAME))
    return [
        gauge("node_filefd_allocated", "File descriptor statistics: allocated.", allocated),
        gauge("node_filefd_maximum", "File descriptor statistics: maximum.", maximum),
    ]


COLLECTOR = Collector(NAME, collect, files=FILES)
