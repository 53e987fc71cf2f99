"""node_sockstat_* from /proc/net/sockstat and /proc/net/sockstat6."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import guarded
from exporter.collectors.base import Collector
from exporter.exposition import Family, gauge

NAME = "sockstat"
FILES = ("/proc/net/sockstat", "/proc/net/sockstat6", "/proc/meminfo", "/proc/vmstat")
DEFAULT_PAGE_SIZE = 4096


@guarded("/proc/net/sockstat")
def parse(text: str) -> dict[str, int]:
    """`TCP: inuse 1 orphan 0` lines into `{TCP_inuse: 1, TCP_orphan: 0}`."""
    out: dict[str, int] = {}
    for line in text.split("\n"):
        if not line.strip():
            continue
        protocol, sep, rest = line.partition(":")
        pairs = rest.split()
        if not sep or len(pairs) % 2 or not protocol.isascii() or not protocol.isalnum():
            raise ParseError(f"sockstat: unexpected line {line[:60]!r}")
        for key, value in zip(pairs[::2], pairs[1::2], strict=True):
            if not key.replace("_", "").isalnum() or not key.isascii():
                raise ParseError(f"sockstat: bad field name {key[:20]!r}")
            out[f"{protocol}_{key}"] = int(value)
    return out


def _field(text: str, prefix: str) -> str | None:
    """The first word after `prefix` at the start of a line of `text`."""
    at = text.find(prefix) if text.startswith(prefix) else text.find("\n" + prefix) + 1
    if at <= 0 and not text.startswith(prefix):
        return None
    words = text[at + len(prefix) : at + len(prefix) + 40].split()
    return words[0] if words else None


def page_size(sections: Mapping[str, str]) -> int:
    """The host's page size, from MemFree (kB) over nr_free_pages, as a power of two.

    The two files are read a few microseconds apart, so the ratio is within a
    hair of the real size; rounding to a power of two removes the noise. No
    extra process (`getconf PAGESIZE`) is needed. 4096 when either is missing.
    """
    free_kb = _field(sections.get("/proc/meminfo", ""), "MemFree:")
    nr_free = _field(sections.get("/proc/vmstat", ""), "nr_free_pages ")
    try:
        ratio = int(free_kb or 0) * 1024 / int(nr_free or 0)
    except (ValueError, ZeroDivisionError, OverflowError):
        return DEFAULT_PAGE_SIZE
    size = 1 << max(12, min(20, round(ratio).bit_length() - 1))
    if ratio > size * 1.5:
        size <<= 1
    return size


def collect(sections: Mapping[str, str], ctx: ProbeContext) -> list[Family]:
    """This probe's metric families, built fresh from its sections."""
    fields: dict[str, int] = {}
    for path in ("/proc/net/sockstat", "/proc/net/sockstat6"):
        if path in sections:
            fields.update(parse(sections[path]))
    if not fields:
        raise ParseError("sockstat: /proc/net/sockstat missing")
    families = []
    for key, value in fields.items():
        families.append(gauge(f"node_sockstat_{key}", f"Number of {key} sockets in state.", value))
        if key.endswith("_mem"):  # TCP/UDP memory is counted in pages
            families.append(
                gauge(
                    f"node_sockstat_{key}_bytes",
                    f"Number of {key} sockets in state, in bytes.",
                    value * page_size(sections),
                )
            )
    return families


COLLECTOR = Collector(NAME, collect, files=FILES)
